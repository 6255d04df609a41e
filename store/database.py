"""One connection type for every engine: an embedded DuckDB file (the default) or PostgreSQL.

Everything above this module speaks plain SQL that both dialects accept, through Database; what
differs between engines (the bulk paths that matter for speed, DuckDB's JSON reader and
PostgreSQL's COPY, transactions, locks, a few SQL fragments) is its Backend's (store/backend.py,
duckdb_backend.py, postgres_backend.py). URLs follow SQLAlchemy's syntax
(`postgresql+psycopg://user@host:5432/db`); a bare path means a DuckDB file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ctcl_map.errors import DatabaseError, DatabaseLocked, DatabaseUsageError
from ctcl_map.store.backend import Backend, first_non_null_types, key_match

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of every DuckDB database file
URL_FORM = "postgresql+psycopg://user[:password]@host[:port]/database"


def check_identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise DatabaseUsageError(f"invalid SQL identifier {name!r}: use letters, digits and underscores")
    return name


def check_schema(name: str | None) -> None:
    """A schema we may create tables in: a plain identifier, not a system schema."""
    if not name:
        return
    check_identifier(name)
    lowered = name.lower()
    if lowered.startswith("pg_") or lowered == "information_schema":
        raise DatabaseUsageError(f"schema {name!r} is reserved for the database system: choose another --cdm-schema / --results-schema")


class Database:
    """A connection plus the schema names the CDM and our results live in.

    What differs between engines is its backend's (store/backend.py); every driver error a method
    meets leaves it as a DatabaseError (the driver's error kept as its __cause__).
    """

    def __init__(self, backend: Backend, cdm_schema: str | None, results_schema: str | None, label: str):
        self.backend = backend
        self.cdm_schema = cdm_schema
        self.results_schema = results_schema or cdm_schema
        self.label = label  # printable, never contains a password
        self._in_transaction = False
        self._holds_load_lock = False  # inside exclusive(): its transaction holds the load lock
        # The table OHDSI cohorts are written to (`--cohort-table`): the standard COHORT by default,
        # another name to stay clear of tools (CohortGenerator) that drop and recreate their own.
        self.cohort_table = "cohort"
        # A DuckDB file this connection created (it did not exist): store.prepare may fill it from a
        # prepared template instead of creating the CDM statement by statement.
        self.created = False

    @property
    def dialect(self) -> str:
        return self.backend.name

    @property
    def raw(self) -> Any:
        """The driver's connection, for the engine-specific export paths."""
        return self.backend.raw

    @property
    def default_schema(self) -> str:
        """The schema unqualified names live in ('main' on DuckDB, 'public' on PostgreSQL)."""
        return self.backend.default_schema

    @property
    def concurrent_writers(self) -> bool:
        """Whether other loaders may write this CDM while we do (PostgreSQL; a DuckDB file has one writer)."""
        return self.backend.concurrent_writers

    # -- naming ---------------------------------------------------------------------------------
    def table(self, name: str) -> str:
        """A CDM or ctcl_ table name, qualified with the CDM schema when one is set."""
        return f"{self.cdm_schema}.{name}" if self.cdm_schema else name

    def results_table(self, name: str) -> str:
        """cohort / cohort_definition and analysis outputs live in the results schema; 'cohort' names
        the table chosen as self.cohort_table, 'cohort_definition' its companion <cohort_table>_definition."""
        if name in ("cohort", "cohort_definition"):
            name = self.cohort_table + name[len("cohort"):]
        return f"{self.results_schema}.{name}" if self.results_schema else name

    @contextmanager
    def _driver_errors(self) -> Iterator[None]:
        """Driver errors leave the store as DatabaseError, their message without secrets."""
        try:
            yield
        except self.backend.driver_error as error:
            raise DatabaseError(self.backend.describe(error)) from error

    # -- statements -----------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with self._driver_errors():
            self.backend.execute(sql, params)

    def execute_count(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """Run an INSERT, UPDATE or DELETE and return the number of rows it affected."""
        with self._driver_errors():
            return self.backend.execute_count(sql, params)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        with self._driver_errors():
            return self.backend.query(sql, params)

    def query_df(self, sql: str, params: Sequence[Any] | None = None):
        with self._driver_errors():
            return self.backend.query_df(sql, params)

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], temporary: bool = False) -> None:
        """Bulk insert: DuckDB reads the rows as one JSON document in one statement, PostgreSQL uses COPY.

        `temporary`: the table is a session temporary table, so it is not schema-qualified.
        """
        if not rows:
            return
        qualified = table if "." in table or temporary else self.table(table)
        with self._driver_errors():
            self.backend.insert_rows(qualified, columns, rows)

    def insert_arrow(self, table: str, columns: Sequence[str], rows: Any) -> None:
        """Append an Arrow table whose columns are `columns` (DuckDB scans it in place, PostgreSQL
        receives it by COPY)."""
        with self._driver_errors():
            self.backend.insert_arrow(self.table(table), columns, rows)

    def load_tab_separated(self, table: str, path: Path, columns: Sequence[str], types: Sequence[str]) -> None:
        """Append the rows of a tab-separated file (an Athena vocabulary file: see Backend)."""
        with self._driver_errors():
            self.backend.load_tab_separated(self.table(table), path, columns, types)

    def write_csv(self, select: str, path: Path) -> None:
        """The result of `select` as a CSV file with a header row (streamed)."""
        with self._driver_errors():
            self.backend.write_csv(select, path)

    def arrow_batches(self, select: str, schema: Any, chunk_rows: int) -> Iterator[Any]:
        """The result of `select` as Arrow tables or batches of `schema`, at most `chunk_rows` rows each (streamed)."""
        with self._driver_errors():
            yield from self.backend.arrow_batches(select, schema, chunk_rows)

    def delete_keys(self, table: str, columns: Sequence[str], keys: Sequence[Sequence[Any]]) -> None:
        """Delete the rows of `table` whose `columns` equal one of the `keys` tuples, in one statement."""
        if not keys:
            return
        with self.temp_relation("ctcl_delete_keys", columns, keys) as relation:
            self.execute(f"DELETE FROM {self.table(table)} AS target WHERE EXISTS "
                         f"(SELECT 1 FROM {relation} k WHERE {key_match('k', 'target', columns)})")

    def upsert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], key: Sequence[str]) -> None:
        """Insert rows (unique by `key`); a row whose `key` columns match an existing row replaces it.
        (PostgreSQL needs `key` to be the table's primary key; DuckDB needs no key at all.)"""
        if not rows:
            return
        with self._driver_errors():
            self.backend.upsert_rows(self.table(table), columns, rows, key)

    @contextmanager
    def temp_relation(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Iterator[str]:
        """A temporary relation holding `rows`, to join against instead of huge IN lists: a
        read_json(...) table function on DuckDB, a temporary table filled by COPY on PostgreSQL.
        Columns are BIGINT or TEXT by their first non-null value; use the relation with an alias.
        """
        check_identifier(name)
        with self._driver_errors(), self.backend.temp_relation(name, columns, first_non_null_types(columns, rows), rows) as relation:
            yield relation

    def key_relation(self, keys: Sequence[str]):
        """A one-column relation `k` holding `keys`."""
        return self.temp_relation("ctcl_keys", ("k",), [(k,) for k in keys])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All statements inside commit together or not at all."""
        if self._in_transaction:
            yield
            return
        self._in_transaction = True
        try:
            with self._driver_errors(), self.backend.transaction():
                yield
        finally:
            self._in_transaction = False

    def has_foreign_keys(self) -> bool:
        """Whether the CDM schema has foreign keys (PostgreSQL: `ctcl-map constraints`; DuckDB has none)."""
        with self._driver_errors():
            return self.backend.has_foreign_keys(self.cdm_schema or self.default_schema)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """A transaction that holds the load lock of this CDM until it ends.

        PostgreSQL lets several loaders share one CDM: each commits its batches (and the run-level
        steps) under a transaction-level advisory lock, so id allocation, resource state and derived
        tables see one committed state at a time while conversion still runs in parallel. A DuckDB
        file has a single writer process (its file lock), so a plain transaction suffices there.
        """
        if self._in_transaction and self._holds_load_lock:
            yield  # nested: the enclosing transaction holds the lock already
            return
        with self.transaction():
            with self._driver_errors():
                self.backend.hold_load_lock(self._lock_key("load"))
            self._holds_load_lock = True
            try:
                yield
            finally:
                self._holds_load_lock = False

    def claim_run(self, run_id: int) -> bool:
        """Mark `run_id` as alive for this connection's lifetime; False when another session holds it.

        A run whose ctcl_run.status is still 'running' but that nobody holds was killed: the next
        run finishes its derivations. (DuckDB: the file lock already guarantees nobody else runs.)
        """
        with self._driver_errors():
            return self.backend.try_lock_run(self._lock_key(f"run:{run_id}"))

    def release_run(self, run_id: int) -> None:
        with self._driver_errors():
            self.backend.unlock_run(self._lock_key(f"run:{run_id}"))

    def _lock_key(self, name: str) -> int:
        """A signed 64-bit advisory lock key private to this CDM schema."""
        digest = hashlib.blake2b(f"ctcl-map:{self.cdm_schema or ''}:{name}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big", signed=True)

    def table_exists(self, name: str, schema: str | None = None) -> bool:
        return name in self.existing_tables(schema)

    def database_file(self) -> Path | None:
        """The file the database lives in (a DuckDB file); None for a server or an in-memory database."""
        with self._driver_errors():
            return self.backend.database_file()

    def tables_exist(self, names: Sequence[str]) -> bool:
        """True when every one of `names` exists in the CDM schema."""
        with self._driver_errors():
            return self.backend.tables_exist(self.cdm_schema or self.default_schema, [self.table(name) for name in names])

    def index_names(self) -> set[str]:
        """Names (lower case) of the indexes in the CDM schema."""
        with self._driver_errors():
            return self.backend.index_names(self.cdm_schema or self.default_schema)

    def existing_tables(self, schema: str | None = None) -> set[str]:
        """Names of the tables in `schema` (default: the CDM schema)."""
        schema = schema if schema is not None else self.cdm_schema
        rows = self.query("SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [schema or self.default_schema])
        return {name for (name,) in rows}

    def ensure_schema(self, schema: str | None) -> None:
        if schema:
            self.execute(f"CREATE SCHEMA IF NOT EXISTS {check_identifier(schema)}")

    # -- SQL fragments that differ between engines (see Backend) --------------------------------
    def regex_full_match(self, text_expr: str, pattern: str) -> str:
        return self.backend.regex_full_match(text_expr, pattern)

    def empty_table(self, name: str) -> None:
        """Delete every row of table `name` (transactional; TRUNCATE where the engine has it)."""
        self.execute(self.backend.empty_table(self.table(name)))

    def group_maxima(self, name: str, group: str, value: str) -> list[tuple]:
        """(group, MAX(value)) for each group of table `name`, as fast as the engine allows."""
        return self.query(self.backend.group_maxima(self.table(name), group, value))

    def persist(self) -> list[str]:
        """Make durable what this session wrote where the engine does not by itself; what was done,
        in words. A DuckDB file's or PostgreSQL's statements are durable when they commit: nothing
        to do (a Parquet CDM publishes its cohort tables: store/parquet_database.py)."""
        return []

    def close(self) -> None:
        with self._driver_errors():
            self.backend.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(
    target: str | Path,
    cdm_schema: str | None = None,
    results_schema: str | None = None,
    read_only: bool = False,
) -> Database:
    """Open `target`: a SQLAlchemy-style URL (postgresql+psycopg://...) or a DuckDB file path."""
    text = str(target)
    for name in (cdm_schema, results_schema):
        check_schema(name)
    if "://" not in text:
        return _connect_duckdb(Path(text), cdm_schema, results_schema, read_only)
    url = _parse_url(text)
    backend = url.get_backend_name()
    if backend == "duckdb":
        return _connect_duckdb(Path(url.database or ":memory:"), cdm_schema, results_schema, read_only)
    if backend == "postgresql":
        return _connect_postgres(url, cdm_schema, results_schema)
    raise DatabaseError(f"unsupported database URL scheme {url.drivername!r}: use a DuckDB path or postgresql+psycopg://")


DUCKDB_STORAGE_VERSION = "v1.1.0"  # the oldest DuckDB that opens the files we write
DUCKDB_CHECKPOINT_THRESHOLD = "256MB"  # see _connect_duckdb


def _duckdb_at_least(duckdb, major: int, minor: int) -> bool:
    numbers = re.findall(r"\d+", duckdb.__version__)[:2]
    return tuple(int(n) for n in numbers) >= (major, minor)


def _parse_url(text: str):
    """The URL, or a usage error that never repeats the text (it may hold a password)."""
    from sqlalchemy.engine import make_url  # only for URLs: importing it costs ~0.2 s per run
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(text)
    except ValueError:
        raise DatabaseUsageError("the port in the database URL must be a number from 1 to 65535") from None
    except ArgumentError:
        raise DatabaseUsageError(f"cannot parse the database URL: expected {URL_FORM}") from None
    if url.port is not None and not 1 <= url.port <= 65535:
        raise DatabaseUsageError(f"the port in the database URL must be a number from 1 to 65535, not {url.port}")
    return url


def _check_duckdb_file(path: Path) -> None:
    """Refuse a path that exists but is not a DuckDB database: DuckDB would otherwise treat, say,
    a JSON file as something it cannot write, or worse open it in memory and keep nothing."""
    if str(path) == ":memory:":
        return
    if path.is_dir():
        from ctcl_map.store.parquet_cdm import is_parquet_cdm

        if is_parquet_cdm(path):
            raise DatabaseUsageError(
                f"--db {path} is a Parquet CDM, which this command cannot write: fhir2omop writes one with "
                "--engine spark --out DIR; dq, survival, study and export read it; `ctcl-map cdm load` copies it into a database")
        raise DatabaseUsageError(f"--db {path} is a folder, not a DuckDB database file")
    try:
        with open(path, "rb") as handle:
            header = handle.read(12)
    except FileNotFoundError:
        return  # a new database
    except OSError as problem:
        raise DatabaseError(f"cannot open DuckDB file {path}: {problem.strerror or problem}") from None
    if header and header[8:12] != DUCKDB_MAGIC:
        raise DatabaseUsageError(f"--db {path} exists and is not a DuckDB database (a JSON, CSV or other file?): "
                                 "give a new file name or an existing DuckDB file")


def _connect_duckdb(path: Path, cdm_schema: str | None, results_schema: str | None, read_only: bool) -> Database:
    from ctcl_map.store.duckdb_backend import DuckDBBackend

    _check_duckdb_file(path)
    for name in (cdm_schema, results_schema):
        if name:
            check_identifier(name)
    new_file = str(path) != ":memory:" and not path.exists()
    db = Database(DuckDBBackend(open_duckdb(path, read_only)), cdm_schema, results_schema, label=str(path))
    db.created = new_file and not read_only
    if not read_only:
        db.ensure_schema(cdm_schema)
        db.ensure_schema(results_schema)
    return db


def open_duckdb(path: Path, read_only: bool = False):
    """A DuckDB connection to `path`, its errors as ours."""
    import duckdb

    # New files are written in DuckDB 1.1's storage format, so that R users on duckdb 1.1-1.4 can
    # open them; DuckDB 1.1 itself has no such setting (and writes that format anyway).
    config: dict[str, str | bool | int | float | list[str]] = {}  # duckdb.connect's config type
    if _duckdb_at_least(duckdb, 1, 2):
        config["storage_compatibility_version"] = DUCKDB_STORAGE_VERSION
    # The write-ahead log is folded into the file when it reaches this size (DuckDB's default:
    # 16 MB), and at close. Folding during the load cost more than it saves: with 16 MB, loading
    # the 113 Synthea bundles spent 0.71 s of CPU in commits and close, with 256 MB 0.46 s. The
    # log is as durable as the file, so a killed run loses nothing more; a larger log is replayed
    # when the file is next opened.
    config["checkpoint_threshold"] = DUCKDB_CHECKPOINT_THRESHOLD
    try:
        return duckdb.connect(str(path), read_only=read_only, config=config)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise DatabaseLocked(
                f"{path} is locked by another run (only one process may write a DuckDB file at a time)"
            ) from exc
        raise DatabaseError(f"cannot open DuckDB file {path}: {exc}") from exc
    except duckdb.Error as exc:  # a file of a newer DuckDB, a damaged file ...
        raise DatabaseError(f"cannot open DuckDB file {path}: {str(exc).strip() or type(exc).__name__}") from exc


def _connect_postgres(url, cdm_schema: str | None, results_schema: str | None) -> Database:
    import psycopg

    from ctcl_map.store.postgres_backend import PostgresBackend

    conninfo = {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "dbname": url.database or "postgres",
        "user": url.username,
        "password": url.password,
        # No JIT compilation: our statements run for milliseconds and their estimates are rough (a
        # batch's keys in an unanalysed temporary table), so PostgreSQL's JIT threshold was crossed
        # by a batch's lookup of what the CDM holds, compiling for 2 s a query that runs in 0.3 s.
        "options": "-c jit=off",
    }
    try:
        raw = psycopg.connect(**{k: v for k, v in conninfo.items() if v is not None}, autocommit=True)
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else "connection failed"
        if url.password:
            first_line = first_line.replace(url.password, "***")
        # The driver's error stays as the cause: libpq's messages never repeat the password.
        raise DatabaseError(f"cannot connect to PostgreSQL at {url.host}:{url.port or 5432}: {first_line}") from exc
    db = Database(PostgresBackend(raw, url.password), cdm_schema, results_schema, label=url.render_as_string(hide_password=True))
    db.ensure_schema(cdm_schema)
    db.ensure_schema(results_schema)
    return db
