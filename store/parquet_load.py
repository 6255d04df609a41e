"""Load a Parquet CDM into a database (`ctcl-map cdm load`): PostgreSQL by COPY, DuckDB from Arrow.

The tables are created by the same DDL fhir2omop uses (CDM v5.4 and our ctcl_ tables), then every
CDM table and every ctcl_ table with a folder is appended, file by file in Arrow batches, in one
transaction: a failed load leaves the database as it was. The loaded version is recorded in
ctcl_settings, so running the same load again changes nothing; a load into tables that already hold
rows is refused before anything is written (it would duplicate them). Other folders are skipped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from ctcl_map.cdm.schema import cdm_ddl, cdm_fields
from ctcl_map.errors import DatabaseError, DatabaseUsageError
from ctcl_map.store.ctcl_tables import CTCL_TABLES, DERIVED_TABLES, ctcl_ddl
from ctcl_map.store.database import Database
from ctcl_map.store.derived_rows import ensure_tables
from ctcl_map.store.export import arrow_schema
from ctcl_map.store.parquet_cdm import column_sources, table_folders
from ctcl_map.store.settings import record_setting, recorded_setting

LOADED_SETTING = "parquet_cdm_loaded"  # ctcl_settings: the identity of the Parquet CDM loaded here
BATCH_ROWS = 65_536


@dataclass
class CdmLoad:
    identity: str  # the loaded version's folder name and a digest of its files
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows loaded
    skipped: list[str] = field(default_factory=list)  # folders that are neither CDM nor ctcl_ tables
    already_loaded: bool = False


def load_parquet_cdm(db: Database, cdm_dir: Path) -> CdmLoad:
    """Create the CDM in `db` and copy the Parquet CDM `cdm_dir` into it (see the module docstring)."""
    version = Path(cdm_dir).resolve()  # one version, even if a new one is published meanwhile
    folders = table_folders(version)
    order = [*cdm_fields(), *CTCL_TABLES, *DERIVED_TABLES]
    result = CdmLoad(_identity(version, folders), skipped=sorted(set(folders) - set(order)))
    tables = [name for name in order if name in folders]
    with db.exclusive():
        for statement in cdm_ddl(db.dialect, db.cdm_schema) + ctcl_ddl(db.table, db.dialect):
            db.execute(statement)
        ensure_tables(db)  # the derivation step's tables
        if recorded_setting(db, LOADED_SETTING) == result.identity:
            result.already_loaded = True
            return result
        _refuse_occupied(db, tables)
        for table in tables:
            result.rows[table] = sum(_load_file(db, table, file) for file in sorted(folders[table].glob("*.parquet")))
        record_setting(db, LOADED_SETTING, result.identity)
    return result


def _refuse_occupied(db: Database, tables: list[str]) -> None:
    occupied = [(t, n) for t in tables if (n := db.query(f"SELECT COUNT(*) FROM {db.table(t)}")[0][0])]
    if occupied:
        listed = ", ".join(f"{db.table(t)} ({n:,} rows)" for t, n in occupied[:5]) + (", ..." if len(occupied) > 5 else "")
        raise DatabaseUsageError(
            f"{db.label} already holds rows in {listed}: cdm load fills empty tables only, so that no row is "
            "loaded twice; give a new --cdm-schema (or database), or empty those tables first")


def _load_file(db: Database, table: str, file: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(file)
        chosen = [(column, source) for column, source, _ in column_sources(table, parquet.schema_arrow.names, file) if source]
        targets, sources = [c for c, _ in chosen], [s for _, s in chosen]
        schema = pa.schema([arrow_schema(table).field(t) for t in targets]) if table in cdm_fields() else None
        rows = 0
        for batch in parquet.iter_batches(BATCH_ROWS, columns=sources):
            data = pa.Table.from_batches([batch]).rename_columns(targets)
            db.insert_arrow(table, targets, data.cast(schema) if schema is not None else data)
            rows += batch.num_rows
    except (pa.ArrowException, OSError) as problem:
        raise DatabaseError(f"cannot load {file}: {problem}") from problem
    return rows


def _identity(version: Path, folders: dict[str, Path]) -> str:
    """The version's folder name and a digest of its files' names, sizes and modification times."""
    digest = hashlib.sha256()
    for name, folder in sorted(folders.items()):
        for file in sorted(folder.glob("*.parquet")):
            stat = file.stat()
            digest.update(f"{name}/{file.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return f"{version.name[:300]}:{digest.hexdigest()}"
