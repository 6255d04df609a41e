"""Export every CDM table to Parquet or CSV files, one file per table (OUT/<table>.parquet|csv).

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
from ctcl_map.errors import DatabaseError
from ctcl_map.store.database import Database
from ctcl_map.store.output_folder import inside, prepare_output_folder

FORMATS = ("parquet", "csv")
CHUNK_ROWS = 50_000


@dataclass
class ExportedTable:
    table: str
    path: Path
    rows: int


def export_cdm(db: Database, out_dir: Path, file_format: str, tables: list[str] | None = None) -> list[ExportedTable]:
    """Write each CDM table (all 39 by default, empty ones too) to out_dir; returns what was written."""
    if file_format not in FORMATS:
        raise DatabaseError(f"unknown export format {file_format!r}: use parquet or csv")
    fields = cdm_fields()
    names = tables or list(fields)
    unknown = [name for name in names if name not in fields]
    if unknown:
        raise DatabaseError(f"not CDM tables: {', '.join(unknown)}")
    missing = [name for name in names if not db.table_exists(name)]
    if missing:
        raise DatabaseError(f"{db.label} has no CDM table {missing[0]} (load data with fhir2omop first)")
    prepare_output_folder(out_dir)
    paths = {table: inside(out_dir, out_dir / f"{table}.{file_format}") for table in names}  # all checked before any is written
    written = []
    for table in names:
        path = paths[table]
        columns = [f.name for f in fields[table]]
        select = f"SELECT {', '.join(_quoted(c) for c in columns)} FROM {db.table(table)}"
        if file_format == "parquet":
            schema = arrow_schema(table)
            _write_parquet(db.arrow_batches(select, schema, CHUNK_ROWS), schema, path)
        else:
            db.write_csv(select, path)
        written.append(ExportedTable(table, path, db.query(f"SELECT COUNT(*) FROM {db.table(table)}")[0][0]))
    return written


def arrow_schema(table: str):
    """The Arrow schema of a CDM table, from the spec: the same for every backend and every export."""
    import pyarrow as pa

    return pa.schema([pa.field(f.name.strip('"'), _arrow_type(f.datatype), nullable=not f.required)
                      for f in cdm_fields()[table]])


def _write_parquet(batches: Iterable, schema, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pq.ParquetWriter(path, schema) as writer:
        for batch in batches:
            chunk = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
            writer.write_table(chunk.rename_columns(schema.names).cast(schema))
        # an empty table still gets its schema (ParquetWriter writes it on close)


def _arrow_type(datatype: str):
    import pyarrow as pa

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
