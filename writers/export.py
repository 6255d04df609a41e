"""Export every CDM table to Parquet or CSV files, one file per table (OUT/<table>.parquet|csv).

DuckDB writes the files itself (COPY ... TO), streaming. PostgreSQL: CSV through COPY ... TO
STDOUT straight into the file; Parquet by a server-side cursor read in chunks into a Parquet
writer whose column types come from the CDM spec, so memory stays bounded for any table size and
an all-NULL first chunk does not fix a wrong type.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ctcl_map.cdm.schema import cdm_fields
from ctcl_map.writers.db import Database, DatabaseError
from ctcl_map.writers.output_folder import inside, prepare_output_folder

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
        if db.dialect == "duckdb":
            options = "FORMAT parquet" if file_format == "parquet" else "FORMAT csv, HEADER true"
            db.execute(f"COPY ({select}) TO '{_sql_string(path)}' ({options})")
        elif file_format == "csv":
            _postgres_csv(db, select, path)
        else:
            _postgres_parquet(db, table, select, path)
        written.append(ExportedTable(table, path, db.query(f"SELECT COUNT(*) FROM {db.table(table)}")[0][0]))
    return written


def _postgres_csv(db: Database, select: str, path: Path) -> None:
    with open(path, "wb") as handle, db.raw.cursor() as cur:
        with cur.copy(f"COPY ({select}) TO STDOUT WITH (FORMAT csv, HEADER true)") as copy:
            for block in copy:
                handle.write(block)


def _postgres_parquet(db: Database, table: str, select: str, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(f.name.strip('"'), _arrow_type(f.datatype)) for f in cdm_fields()[table]])
    with db.raw.transaction(), db.raw.cursor(name=f"ctcl_export_{table}") as cur, pq.ParquetWriter(path, schema) as writer:
        cur.itersize = CHUNK_ROWS
        cur.execute(select)
        wrote = False
        while rows := cur.fetchmany(CHUNK_ROWS):
            arrays = [pa.array(list(values), type=column.type) for values, column in zip(zip(*rows), schema)]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            wrote = True
        if not wrote:
            writer.write_table(schema.empty_table())


def _arrow_type(datatype: str):
    import pyarrow as pa

    if datatype == "integer":
        return pa.int64()
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


def _sql_string(path: Path) -> str:
    return str(path).replace("'", "''")
