"""One connection type for both backends: an embedded DuckDB file (the default) or PostgreSQL.

Everything above this module speaks plain SQL that both dialects accept, plus the two bulk paths
that matter for speed: DuckDB's Arrow/DataFrame ingestion and PostgreSQL's COPY. URLs follow
SQLAlchemy's syntax (`postgresql+psycopg://user@host:5432/db`); a bare path means a DuckDB file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DatabaseError(RuntimeError):
    """A database could not be opened or a statement failed; the message is meant for users."""


class DatabaseLocked(DatabaseError):
    """Another process holds the DuckDB file open for writing."""


def check_identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise DatabaseError(f"invalid SQL identifier {name!r}: use letters, digits and underscores")
    return name


class Database:
    """A connection plus the schema names the CDM and our results live in."""

    dialect: str

    def __init__(self, raw: Any, dialect: str, cdm_schema: str | None, results_schema: str | None, label: str):
        self.raw = raw
        self.dialect = dialect
        self.cdm_schema = cdm_schema
        self.results_schema = results_schema or cdm_schema
        self.label = label  # printable, never contains a password
        self._in_transaction = False

    # -- naming ---------------------------------------------------------------------------------
    def table(self, name: str) -> str:
        """A CDM or ctcl_ table name, qualified with the CDM schema when one is set."""
        return f"{self.cdm_schema}.{name}" if self.cdm_schema else name

    def results_table(self, name: str) -> str:
        """cohort / cohort_definition and analysis outputs live in the results schema."""
        return f"{self.results_schema}.{name}" if self.results_schema else name

    # -- statements -----------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        if self.dialect == "duckdb":
            self.raw.execute(sql, params or [])
        else:
            with self.raw.cursor() as cur:
                cur.execute(*_pg_args(sql, params))

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        if self.dialect == "duckdb":
            return self.raw.execute(sql, params or []).fetchall()
        with self.raw.cursor() as cur:
            cur.execute(*_pg_args(sql, params))
            return cur.fetchall()

    def query_df(self, sql: str, params: Sequence[Any] | None = None):
        import pandas as pd

        if self.dialect == "duckdb":
            return self.raw.execute(sql, params or []).df()
        with self.raw.cursor() as cur:
            cur.execute(*_pg_args(sql, params))
            names = [d.name for d in cur.description]
            return pd.DataFrame(cur.fetchall(), columns=names)

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], temporary: bool = False) -> None:
        """Bulk insert: DuckDB ingests an Arrow table in one statement, PostgreSQL uses COPY.

        `temporary`: the table is a session temporary table, so it is not schema-qualified.
        """
        if not rows:
            return
        qualified = table if "." in table or temporary else self.table(table)
        if self.dialect == "duckdb":
            import pyarrow as pa

            arrays = list(zip(*rows))
            data = pa.table({c: pa.array(list(vals)) for c, vals in zip(columns, arrays)})
            self.raw.register("_ctcl_bulk", data)
            try:
                col_list = ", ".join(columns)
                self.raw.execute(f"INSERT INTO {qualified} ({col_list}) SELECT {col_list} FROM _ctcl_bulk")
            finally:
                self.raw.unregister("_ctcl_bulk")
        else:
            col_list = ", ".join(columns)
            with self.raw.cursor() as cur:
                with cur.copy(f"COPY {qualified} ({col_list}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)

    @contextmanager
    def temp_relation(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Iterator[str]:
        """A temporary relation holding `rows`, to join against instead of huge IN lists.

        DuckDB scans a registered Arrow table in place; PostgreSQL gets a temporary table via COPY.
        Column types are inferred (DuckDB) or TEXT/BIGINT by the first row's values (PostgreSQL).
        """
        check_identifier(name)
        if self.dialect == "duckdb":
            import pyarrow as pa

            values = list(zip(*rows)) if rows else [[] for _ in columns]
            self.raw.register(name, pa.table({c: pa.array(list(v)) if rows else pa.array([], pa.string())
                                              for c, v in zip(columns, values)}))
            try:
                yield name
            finally:
                self.raw.unregister(name)
        else:
            sample = rows[0] if rows else ["" for _ in columns]
            types = ", ".join(f"{c} {'BIGINT' if isinstance(v, int) else 'TEXT'}" for c, v in zip(columns, sample))
            # Re-created each time: the same name may be used with other columns.
            self.execute(f"DROP TABLE IF EXISTS pg_temp.{name}")
            self.execute(f"CREATE TEMP TABLE {name} ({types})")
            self.insert_rows(name, columns, rows, temporary=True)
            try:
                yield name
            finally:
                self.execute(f"DROP TABLE IF EXISTS pg_temp.{name}")

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
            if self.dialect == "duckdb":
                self.raw.execute("BEGIN TRANSACTION")
                try:
                    yield
                except BaseException:
                    self.raw.execute("ROLLBACK")
                    raise
                self.raw.execute("COMMIT")
            else:
                with self.raw.transaction():
                    yield
        finally:
            self._in_transaction = False

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """A transaction that holds the load lock of this CDM until it ends.

        PostgreSQL lets several loaders share one CDM: each commits its batches (and the run-level
        steps) under a transaction-level advisory lock, so id allocation, resource state and derived
        tables see one committed state at a time while conversion still runs in parallel. A DuckDB
        file has a single writer process (its file lock), so a plain transaction suffices there.
        """
        with self.transaction():
            if self.dialect == "postgresql":
                self.query("SELECT pg_advisory_xact_lock(?)", [self._lock_key("load")])
            yield

    def claim_run(self, run_id: int) -> bool:
        """Mark `run_id` as alive for this connection's lifetime; False when another session holds it.

        A run whose ctcl_run.status is still 'running' but that nobody holds was killed: the next
        run finishes its derivations. (DuckDB: the file lock already guarantees nobody else runs.)
        """
        if self.dialect != "postgresql":
            return True
        return bool(self.query("SELECT pg_try_advisory_lock(?)", [self._lock_key(f"run:{run_id}")])[0][0])

    def release_run(self, run_id: int) -> None:
        if self.dialect == "postgresql":
            self.query("SELECT pg_advisory_unlock(?)", [self._lock_key(f"run:{run_id}")])

    def _lock_key(self, name: str) -> int:
        """A signed 64-bit advisory lock key private to this CDM schema."""
        digest = hashlib.blake2b(f"ctcl-map:{self.cdm_schema or ''}:{name}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big", signed=True)

    def table_exists(self, name: str, schema: str | None = None) -> bool:
        schema = schema if schema is not None else self.cdm_schema
        if self.dialect == "duckdb":
            rows = self.query(
                "SELECT 1 FROM information_schema.tables WHERE table_name = ? AND table_schema = ?",
                [name, schema or "main"],
            )
        else:
            rows = self.query(
                "SELECT 1 FROM information_schema.tables WHERE table_name = ? AND table_schema = ?",
                [name, schema or "public"],
            )
        return bool(rows)

    def ensure_schema(self, schema: str | None) -> None:
        if schema:
            self.execute(f"CREATE SCHEMA IF NOT EXISTS {check_identifier(schema)}")

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pg_args(sql: str, params: Sequence[Any] | None) -> tuple:
    """Our SQL uses DuckDB's `?` placeholders; psycopg wants `%s` (and a literal % doubled).

    Without parameters psycopg does not parse placeholders, so the SQL passes unchanged.
    """
    if not params:
        return (sql,)
    return (sql.replace("%", "%%").replace("?", "%s"), list(params))


def connect(
    target: str | Path,
    cdm_schema: str | None = None,
    results_schema: str | None = None,
    read_only: bool = False,
) -> Database:
    """Open `target`: a SQLAlchemy-style URL (postgresql+psycopg://...) or a DuckDB file path."""
    text = str(target)
    if "://" not in text:
        return _connect_duckdb(Path(text), cdm_schema, results_schema, read_only)
    from sqlalchemy.engine import make_url  # only for URLs: importing it costs ~0.2 s per run

    url = make_url(text)
    backend = url.get_backend_name()
    if backend == "duckdb":
        return _connect_duckdb(Path(url.database or ":memory:"), cdm_schema, results_schema, read_only)
    if backend == "postgresql":
        return _connect_postgres(url, cdm_schema, results_schema)
    raise DatabaseError(f"unsupported database URL scheme {url.drivername!r}: use a DuckDB path or postgresql+psycopg://")


def _connect_duckdb(path: Path, cdm_schema: str | None, results_schema: str | None, read_only: bool) -> Database:
    import duckdb

    for name in (cdm_schema, results_schema):
        if name:
            check_identifier(name)
    try:
        raw = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise DatabaseLocked(
                f"{path} is locked by another run (only one process may write a DuckDB file at a time)"
            ) from None
        raise DatabaseError(f"cannot open DuckDB file {path}: {exc}") from None
    db = Database(raw, "duckdb", cdm_schema, results_schema, label=str(path))
    if not read_only:
        db.ensure_schema(cdm_schema)
        db.ensure_schema(results_schema)
    return db


def _connect_postgres(url, cdm_schema: str | None, results_schema: str | None) -> Database:
    import psycopg

    for name in (cdm_schema, results_schema):
        if name:
            check_identifier(name)
    conninfo = {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "dbname": url.database or "postgres",
        "user": url.username,
        "password": url.password,
    }
    try:
        raw = psycopg.connect(**{k: v for k, v in conninfo.items() if v is not None}, autocommit=True)
    except psycopg.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else "connection failed"
        raise DatabaseError(f"cannot connect to PostgreSQL at {url.host}:{url.port or 5432}: {first_line}") from None
    db = Database(raw, "postgresql", cdm_schema, results_schema, label=url.render_as_string(hide_password=True))
    db.ensure_schema(cdm_schema)
    db.ensure_schema(results_schema)
    return db
