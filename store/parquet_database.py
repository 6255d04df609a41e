"""A Parquet CDM opened as a Database: an in-memory DuckDB with one view per table folder.

Each view reads CDM_DIR/<table>/*.parquet with read_parquet and casts every column to the type our
DDL declares (store/ctcl_tables.declared_types), so SQL sees the same tables and types as in a
DuckDB file, whatever engine wrote the files. The link CDM_DIR is resolved once, when the CDM is
opened: a whole command reads one published version even if a new one is published meanwhile.
CDM tables without a folder are empty tables; without a concept/ folder the vocabulary tables hold
the shipped subset (`load_vocabulary`, given by the vocabulary layer).

Writes: the cohort tables (`cohort_table` and its _definition companion) are in-memory tables,
filled from their folders. `persist()` publishes them back (store/parquet_cdm.publish): a new
version sharing every other table's files by hard links, published only if no other version was
published meanwhile; otherwise, or when CDM_DIR cannot be written, they stay in memory and
persist() says so. Any other write goes to the in-memory database only.
"""

from __future__ import annotations

import re
from pathlib import Path

from ctcl_map.cdm.schema import VOCABULARY_TABLES, cdm_fields, create_table_sql
from ctcl_map.errors import DatabaseError, OutputWriteError
from ctcl_map.store.ctcl_tables import declared_types
from ctcl_map.store.database import Database, check_identifier, check_schema
from ctcl_map.store.export import arrow_schema, write_parquet
from ctcl_map.store.parquet_cdm import (
    PART_FILE,
    column_sources,
    current_version,
    discard,
    is_published,
    link_tables,
    new_version_dir,
    publish,
    table_folders,
)

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")  # folders named otherwise are not tables


class ParquetCdmDatabase(Database):
    """A Database over a Parquet CDM (see the module's docstring)."""

    def __init__(self, backend, cdm_dir: Path, version: Path, cdm_schema: str | None,
                 results_schema: str | None, read_only: bool):
        self.cdm_dir = cdm_dir
        self.version = version  # the resolved version folder every view reads
        self.read_only = read_only
        self.folders = table_folders(version)
        self._writable: dict[str, tuple[str, tuple]] = {}  # results table -> (spec table, content digest when read)
        super().__init__(backend, cdm_schema, results_schema, label=f"{cdm_dir} (Parquet CDM)")

    @property
    def cohort_table(self) -> str:
        return self._cohort_table

    @cohort_table.setter
    def cohort_table(self, name: str) -> None:
        """Choosing the cohort table makes it (and its _definition) writable in memory."""
        self._cohort_table = name
        if not self.read_only:
            for table, spec in ((name, "cohort"), (f"{name}_definition", "cohort_definition")):
                self._materialize(check_identifier(table), spec)

    def persist(self) -> list[str]:
        """Publish the cohort tables that changed as a new version of CDM_DIR; what happened, in words."""
        changed = {name: spec for name, (spec, digest) in self._writable.items() if self._digest(name) != digest}
        if not changed:
            return []
        names = ", ".join(sorted(changed))
        if not is_published(self.cdm_dir):
            return [f"note: {names} kept in memory only: {self.cdm_dir} is a plain folder, not a published "
                    "Parquet CDM (a link to a version; see README, Parquet CDM)"]
        try:
            self._publish_with(changed)
        except (OSError, OutputWriteError) as problem:
            reason = problem.strerror if isinstance(problem, OSError) and problem.strerror else str(problem)
            return [f"note: {names} kept in memory only, not published to {self.cdm_dir}: {reason}"]
        return [f"{names} published to {self.cdm_dir} (version {current_version(self.cdm_dir).name})"]  # type: ignore[union-attr]

    def _publish_with(self, changed: dict[str, str]) -> None:
        target = new_version_dir(self.cdm_dir)
        try:
            link_tables(self.version, target, {n: f for n, f in self.folders.items() if n not in changed})
            for name, spec in changed.items():
                (target / name).mkdir()
                schema = arrow_schema(spec)
                select = f"SELECT {', '.join(_quoted(c) for c in schema.names)} FROM {self.results_table_named(name)}"
                write_parquet(self.arrow_batches(select, schema, 50_000), schema, target / name / PART_FILE)
            publish(self.cdm_dir, target, expected=self.version)
        except BaseException:
            discard(target)
            raise

    def results_table_named(self, name: str) -> str:
        return f"{self.results_schema}.{name}" if self.results_schema else name

    def _materialize(self, name: str, spec: str) -> None:
        if name in self._writable:
            return
        qualified = self.results_table_named(name)
        self.ensure_schema(self.results_schema)
        self.execute(f"DROP VIEW IF EXISTS {qualified}")
        self.execute(create_table_sql(spec, "duckdb", self.results_schema, name))
        folder = self.folders.get(name)
        if folder is not None:
            self.execute(f"INSERT INTO {qualified} {_typed_select(folder, spec)}")
        self._writable[name] = (spec, self._digest(name))

    def _digest(self, name: str) -> tuple:
        table = self.results_table_named(name)
        return tuple(self.query(f"SELECT COUNT(*), SUM(hash(t)) FROM {table} t")[0])


def open_parquet_cdm(cdm_dir: Path, cdm_schema: str | None = None, results_schema: str | None = None,
                     read_only: bool = True, load_vocabulary=None) -> ParquetCdmDatabase:
    """Open Parquet CDM `cdm_dir` (a published link or a plain folder of table folders)."""
    import duckdb

    from ctcl_map.store.duckdb_backend import DuckDBBackend

    for name in (cdm_schema, results_schema):
        check_schema(name)
    cdm_dir = Path(cdm_dir)
    version = cdm_dir.resolve()
    if not version.is_dir():
        raise DatabaseError(f"{cdm_dir} is not a Parquet CDM folder")
    db = ParquetCdmDatabase(DuckDBBackend(duckdb.connect(":memory:")), cdm_dir, version, cdm_schema, results_schema, read_only)
    try:
        # Timestamps with a time zone (Spark writes instants) are cast to the CDM's TIMESTAMP as UTC
        # wall-clock time, not in whatever zone this machine is set to.
        db.execute("SET TimeZone = 'UTC'")
        _create_tables(db, load_vocabulary)
    except BaseException:
        db.close()
        raise
    return db


def _create_tables(db: ParquetCdmDatabase, load_vocabulary) -> None:
    db.ensure_schema(db.cdm_schema)
    db.ensure_schema(db.results_schema)
    specs = cdm_fields()
    shipped_vocabulary = "concept" not in db.folders
    for name, folder in db.folders.items():
        if name in db._writable or (shipped_vocabulary and name in VOCABULARY_TABLES) or not _IDENTIFIER.match(name):
            continue
        db.execute(f"CREATE OR REPLACE VIEW {db.table(name)} AS {_typed_select(folder, name)}")
    for name in specs:
        if name not in db.folders or (shipped_vocabulary and name in VOCABULARY_TABLES):
            db.execute(create_table_sql(name, "duckdb", db.cdm_schema))
    if shipped_vocabulary and load_vocabulary is not None:
        load_vocabulary(db)


def _typed_select(folder: Path, table: str) -> str:
    """SELECT over the folder's Parquet files with each declared column cast to its declared type
    (absent optional columns as NULL); a table we do not declare is read as it is."""
    source = f"read_parquet('{_literal(folder)}/*.parquet', union_by_name = true)"
    if not declared_types(table):
        return f"SELECT * FROM {source}"
    parts = [f"CAST({_quoted(name) if name else 'NULL'} AS {kind}) AS {_quoted(column)}"
             for column, name, kind in column_sources(table, _parquet_columns(folder), folder)]
    return f"SELECT {', '.join(parts)} FROM {source}"


def _parquet_columns(folder: Path) -> list[str]:
    """The column names of the folder's Parquet files (their union, as union_by_name reads them)."""
    import pyarrow.parquet as pq

    names: dict[str, None] = {}
    for file in sorted(folder.glob("*.parquet")):
        names.update(dict.fromkeys(pq.read_schema(file).names))
    return list(names)


def _literal(path: Path) -> str:
    return str(path).replace("'", "''")


def _quoted(column: str) -> str:
    return '"' + column.strip('"').replace('"', '""') + '"'
