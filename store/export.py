"""Export every CDM table to Parquet or CSV files, one file per table (OUT/<table>.parquet|csv),
or as a Parquet CDM (`parquet-cdm`: OUT/<table>/part-00000.parquet, published atomically; see
store/parquet_cdm.py), which the analysis commands open with --db OUT.

Parquet files from both backends have one Arrow schema per table, built from the CDM spec
(`arrow_schema`): int32 where the spec says integer, float64, date32, timestamp[us], string, and a
column is non-nullable exactly when the spec requires it; so exports of two databases concatenate.
Rows are streamed in chunks (DuckDB's Arrow record batches, a PostgreSQL server-side cursor), so
memory stays bounded for any table size and an all-NULL first chunk does not fix a wrong type.
CSV: DuckDB's COPY ... TO, PostgreSQL's COPY ... TO STDOUT straight into the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ctcl_map.cdm.schema import cdm_fields
from ctcl_map.errors import DatabaseError, OutputPathError
from ctcl_map.store.ctcl_tables import declared_types
from ctcl_map.store.database import Database
from ctcl_map.store.output_folder import inside, prepare_output_folder
from ctcl_map.store.parquet_cdm import ANALYSIS_TABLES, PART_FILE, discard, is_published, new_version_dir, publish

FORMATS = ("parquet", "csv", "parquet-cdm")
# Our SQL types as spec datatypes (`_arrow_type`); any other (VARCHAR(n), TEXT) is text.
_SPEC_TYPE_OF_SQL = {"INTEGER": "integer", "BIGINT": "bigint", "DATE": "date", "TIMESTAMP": "datetime",
                     "DOUBLE": "float"}
CHUNK_ROWS = 50_000


@dataclass
class ExportedTable:
    table: str
    path: Path
    rows: int


def export_cdm(db: Database, out_dir: Path, file_format: str, tables: list[str] | None = None) -> list[ExportedTable]:
    """Write each CDM table (all 39 by default, empty ones too) to out_dir; returns what was written."""
    if file_format not in FORMATS:
        raise DatabaseError(f"unknown export format {file_format!r}: use {', '.join(FORMATS)}")
    fields = cdm_fields()
    names = tables or list(fields)
    unknown = [name for name in names if name not in fields]
    if unknown:
        raise DatabaseError(f"not CDM tables: {', '.join(unknown)}")
    missing = [name for name in names if not db.table_exists(name)]
    if missing:
        raise DatabaseError(f"{db.label} has no CDM table {missing[0]} (load data with fhir2omop first)")
    if file_format == "parquet-cdm":
        extra = [] if tables else [name for name in ANALYSIS_TABLES if db.table_exists(name)]
        return _export_parquet_cdm(db, out_dir, names + extra)
    if is_published(out_dir):  # a published version never changes: readers may be inside it
        raise OutputPathError(f"{out_dir} is a Parquet CDM: write a new version of it with --format parquet-cdm, "
                              "or give another folder")
    prepare_output_folder(out_dir)
    paths = {table: inside(out_dir, out_dir / f"{table}.{file_format}") for table in names}  # all checked before any is written
    return [_export_table(db, table, path, file_format) for table, path in paths.items()]


def _export_table(db: Database, table: str, path: Path, file_format: str) -> ExportedTable:
    schema = arrow_schema(table)
    select = f"SELECT {', '.join(_quoted(c) for c in schema.names)} FROM {db.table(table)}"
    if file_format == "csv":
        db.write_csv(select, path)
    else:
        write_parquet(db.arrow_batches(select, schema, CHUNK_ROWS), schema, path)
    return ExportedTable(table, path, db.query(f"SELECT COUNT(*) FROM {db.table(table)}")[0][0])


def _export_parquet_cdm(db: Database, cdm_dir: Path, names: list[str]) -> list[ExportedTable]:
    """A Parquet CDM (store/parquet_cdm.py): OUT/<table>/part-00000.parquet in a new version,
    published atomically over the one OUT showed (if any)."""
    if (cdm_dir.exists() or cdm_dir.is_symlink()) and not is_published(cdm_dir):
        raise OutputPathError(f"{cdm_dir} exists and is not a Parquet CDM published by ctcl-map (a link to a "
                              "version folder): give a new path to write a Parquet CDM to")
    version = new_version_dir(cdm_dir)
    try:
        written = []
        for table in names:
            (version / table).mkdir()
            written.append(_export_table(db, table, version / table / PART_FILE, "parquet"))
        publish(cdm_dir, version)
    except BaseException:
        discard(version)
        raise
    return [ExportedTable(t.table, cdm_dir / t.table / PART_FILE, t.rows) for t in written]


def arrow_schema(table: str):
    """The Arrow schema of a CDM table, from the spec: the same for every backend and every export.
    (One of our ctcl_ tables: from its declared SQL types, every column nullable.)"""
    import pyarrow as pa

    if table not in cdm_fields():
        return pa.schema([pa.field(name, _arrow_type(_SPEC_TYPE_OF_SQL.get(kind, "varchar")))
                          for name, kind in declared_types(table).items()])
    return pa.schema([pa.field(f.name.strip('"'), _arrow_type(f.datatype), nullable=not f.required)
                      for f in cdm_fields()[table]])


def write_parquet(batches: Iterable, schema, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pq.ParquetWriter(path, schema) as writer:
        for batch in batches:
            chunk = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
            writer.write_table(chunk.rename_columns(schema.names).cast(schema))
        # an empty table still gets its schema (ParquetWriter writes it on close)


def _arrow_type(datatype: str):
    import pyarrow as pa

    if datatype == "bigint":
        return pa.int64()
    if datatype == "integer":
        return pa.int32()
    if datatype == "float":
        return pa.float64()
    if datatype == "date":
        return pa.date32()
    if datatype == "datetime":
        return pa.timestamp("us")
    return pa.string()


def _quoted(column: str) -> str:
    """Always quoted (the spec names a column offset, a keyword); the spec may quote it already."""
    return f'"{column.strip(chr(34))}"'
