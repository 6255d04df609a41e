"""One connection type for both backends: an embedded DuckDB file (the default) or PostgreSQL.

Everything above this module speaks plain SQL that both dialects accept, plus the two bulk paths
that matter for speed: DuckDB's JSON reader and PostgreSQL's COPY. URLs follow
SQLAlchemy's syntax (`postgresql+psycopg://user@host:5432/db`); a bare path means a DuckDB file.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ctcl_map.errors import DatabaseError, DatabaseLocked, DatabaseUsageError


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SMALL_RELATION_ROWS = 1000  # PostgreSQL temp relations up to this size get planner statistics
COLUMN_WISE_ROWS = 1000  # DuckDB: batches from this size are handed over column-wise (see _json_relation)


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
    """A connection plus the schema names the CDM and our results live in."""

    dialect: str

    def __init__(self, raw: Any, dialect: str, cdm_schema: str | None, results_schema: str | None, label: str):
        self.raw = raw
        self.dialect = dialect
        self.cdm_schema = cdm_schema
        self.results_schema = results_schema or cdm_schema
        self.label = label  # printable, never contains a password
        self._in_transaction = False
        self._holds_load_lock = False  # inside exclusive(): its transaction holds the load lock
        self._types: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        # The table OHDSI cohorts are written to (`--cohort-table`): the standard COHORT by default,
        # another name to stay clear of tools (CohortGenerator) that drop and recreate their own.
        self.cohort_table = "cohort"

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

    # -- statements -----------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        if self.dialect == "duckdb":
            self.raw.execute(sql, params or [])
        else:
            with self.raw.cursor() as cur:
                cur.execute(*_pg_args(sql, params))

    def execute_count(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """Run an INSERT, UPDATE or DELETE and return the number of rows it affected."""
        if self.dialect == "duckdb":
            row = self.raw.execute(sql, params or []).fetchone()
            return int(row[0]) if row else 0
        with self.raw.cursor() as cur:
            cur.execute(*_pg_args(sql, params))
            return max(cur.rowcount, 0)

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
        """Bulk insert: DuckDB reads the rows as one JSON document in one statement, PostgreSQL uses COPY.

        `temporary`: the table is a session temporary table, so it is not schema-qualified.
        """
        if not rows:
            return
        qualified = table if "." in table or temporary else self.table(table)
        if self.dialect == "duckdb":
            col_list = ", ".join(columns)
            with self._json_relation(columns, self._column_types(qualified, columns), rows) as relation:
                self.raw.execute(f"INSERT INTO {qualified} ({col_list}) SELECT {col_list} FROM {relation}")
        else:
            col_list = ", ".join(columns)
            with self.raw.cursor() as cur:
                with cur.copy(f"COPY {qualified} ({col_list}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)

    def delete_keys(self, table: str, columns: Sequence[str], keys: Sequence[Sequence[Any]]) -> None:
        """Delete the rows of `table` whose `columns` equal one of the `keys` tuples, in one statement."""
        if not keys:
            return
        with self.temp_relation("ctcl_delete_keys", columns, keys) as relation:
            self.execute(f"DELETE FROM {self.table(table)} AS target WHERE EXISTS "
                         f"(SELECT 1 FROM {relation} k WHERE {_key_match('k', 'target', columns)})")

    def upsert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], key: Sequence[str]) -> None:
        """Insert rows (unique by `key`); a row whose `key` columns match an existing row replaces it.

        DuckDB: delete the matching rows, then insert (the table needs no key: see
        cdm/ctcl_tables.DUCKDB_KEYLESS; ON CONFLICT costs 2-4 ms a statement there). PostgreSQL:
        INSERT ... ON CONFLICT on the table's primary key."""
        if not rows:
            return
        col_list, qualified = ", ".join(columns), self.table(table)
        if self.dialect == "duckdb":
            # One JSON hand-over serves both statements (delete_keys would write the keys again).
            with self._json_relation(columns, self._column_types(qualified, columns), rows) as relation:
                self.raw.execute(f"DELETE FROM {qualified} AS target WHERE EXISTS "
                                 f"(SELECT 1 FROM {relation} s WHERE {_key_match('s', 'target', key)})")
                self.raw.execute(f"INSERT INTO {qualified} ({col_list}) SELECT {col_list} FROM {relation}")
            return
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
        conflict = f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}" if updates else f"ON CONFLICT ({', '.join(key)}) DO NOTHING"
        # A staging table with the target's own column types, filled by COPY.
        self.execute("DROP TABLE IF EXISTS pg_temp.ctcl_upsert")
        self.execute(f"CREATE TEMP TABLE ctcl_upsert AS SELECT {col_list} FROM {qualified} WITH NO DATA")
        try:
            self.insert_rows("ctcl_upsert", columns, rows, temporary=True)
            self.execute(f"INSERT INTO {qualified} ({col_list}) SELECT {col_list} FROM ctcl_upsert {conflict}")
        finally:
            self.execute("DROP TABLE IF EXISTS pg_temp.ctcl_upsert")

    @contextmanager
    def temp_relation(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Iterator[str]:
        """A temporary relation holding `rows`, to join against instead of huge IN lists: a
        read_json(...) table function on DuckDB, a temporary table filled by COPY on PostgreSQL.
        Columns are BIGINT or TEXT by their first non-null value; use the relation with an alias.
        """
        check_identifier(name)
        types = _inferred_types(columns, rows)
        if self.dialect == "duckdb":
            # The JSON file itself is the relation: no table to create and drop (2 statements).
            with self._json_relation(columns, types, rows) as relation:
                yield relation
        else:
            # Re-created each time: the same name may be used with other columns.
            self.execute(f"DROP TABLE IF EXISTS pg_temp.{name}")
            self.execute(f"CREATE TEMP TABLE {name} ({', '.join(f'{c} {t}' for c, t in zip(columns, types))})")
            self.insert_rows(name, columns, rows, temporary=True)
            if len(rows) <= SMALL_RELATION_ROWS:
                # Statistics, so the planner probes the big table's index for a few keys instead
                # of hashing the whole table (a temp table is never auto-analysed). Large key
                # sets are best hashed anyway, and analysing them costs a few ms each.
                self.execute(f"ANALYZE pg_temp.{name}")
            try:
                yield name
            finally:
                self.execute(f"DROP TABLE IF EXISTS pg_temp.{name}")

    def key_relation(self, keys: Sequence[str]):
        """A one-column relation `k` holding `keys`."""
        return self.temp_relation("ctcl_keys", ("k",), [(k,) for k in keys])

    def _column_types(self, qualified: str, columns: Sequence[str]) -> list[str]:
        """DuckDB types of `columns` in table `qualified`: as our DDL declares them, else as the
        database describes them (cached: tables do not change during a run)."""
        from ctcl_map.store.ctcl_tables import declared_types

        key = (qualified, tuple(columns))
        if key not in self._types:
            declared = declared_types(qualified.rsplit(".", 1)[-1])
            if all(column in declared for column in columns):
                self._types[key] = [declared[column] for column in columns]
            else:
                described = self.raw.execute(f"SELECT {', '.join(columns)} FROM {qualified} LIMIT 0").description
                self._types[key] = [str(d[1]) for d in described]
        return self._types[key]

    @contextmanager
    def _json_relation(self, columns: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]]) -> Iterator[str]:
        """`rows` as a DuckDB read_json relation with the given column types.

        Why JSON and not Arrow: building an Arrow array imports pandas (pyarrow checks for it),
        0.35 s per run, which made a one-bundle incremental run cost 20 % of a full load; orjson
        plus DuckDB's JSON reader is as fast as Arrow for our batch sizes and needs neither.
        Values are int, float, str, date, datetime or None (orjson writes ISO dates, which DuckDB
        casts to the declared DATE / TIMESTAMP). The file lives only for the statement; a process
        killed meanwhile leaves it in the temporary folder.
        """
        import orjson

        # Large batches go column-wise (one list per column, zipped back by UNNEST): building that
        # costs a third of one dict per row. Small ones go row-wise: UNNEST adds 2 ms a statement,
        # which an incremental run pays dozens of times.
        handle = tempfile.NamedTemporaryFile("wb", prefix="ctcl_map_rows_", suffix=".json", delete=False)
        try:
            path = handle.name.replace("'", "''")
            column_wise = len(rows) >= COLUMN_WISE_ROWS
            with handle:
                if column_wise:
                    handle.write(orjson.dumps(dict(zip(columns, map(list, zip(*rows))))))
                else:
                    handle.write(orjson.dumps([dict(zip(columns, row)) for row in rows]))
            if column_wise:
                spec = ", ".join(f"'{c}': '{t}[]'" for c, t in zip(columns, types))
                unnested = ", ".join(f"UNNEST({c}) AS {c}" for c in columns)
                yield f"(SELECT {unnested} FROM read_json('{path}', format = 'unstructured', columns = {{{spec}}}))"
            else:
                spec = ", ".join(f"'{c}': '{t}'" for c, t in zip(columns, types))
                yield f"read_json('{path}', format = 'array', columns = {{{spec}}})"
        finally:
            os.unlink(handle.name)

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
                    # Deferrable foreign keys (`ctcl-map constraints`) are checked at commit: a
                    # replaced resource's rows are deleted and re-inserted within the transaction.
                    self.execute("SET CONSTRAINTS ALL DEFERRED")
                    yield
        finally:
            self._in_transaction = False

    def has_foreign_keys(self) -> bool:
        """Whether the CDM schema has foreign keys (PostgreSQL: `ctcl-map constraints`; DuckDB has none)."""
        if self.dialect != "postgresql":
            return False
        return bool(self.query(
            "SELECT 1 FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
            "WHERE c.contype = 'f' AND n.nspname = ? LIMIT 1", [self.cdm_schema or "public"]))

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
            if self.dialect == "postgresql":
                self.query("SELECT pg_advisory_xact_lock(?)", [self._lock_key("load")])
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
        return name in self.existing_tables(schema)

    def tables_exist(self, names: Sequence[str]) -> bool:
        """True when every one of `names` exists in the CDM schema.

        DuckDB: a LIMIT 0 probe of the tables themselves (5 ms), because listing its catalog loads
        every table's metadata (13 ms, the largest single cost of a small incremental run)."""
        if self.dialect != "duckdb":
            return set(names) <= self.existing_tables()
        import duckdb

        probe = " UNION ALL ".join(f"(SELECT 1 FROM {self.table(name)} LIMIT 0)" for name in names)
        try:
            self.raw.execute(probe)
        except duckdb.CatalogException:
            return False
        return True

    def existing_tables(self, schema: str | None = None) -> set[str]:
        """Names of the tables in `schema` (default: the CDM schema)."""
        schema = schema if schema is not None else self.cdm_schema
        default = "main" if self.dialect == "duckdb" else "public"
        rows = self.query("SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [schema or default])
        return {name for (name,) in rows}

    def ensure_schema(self, schema: str | None) -> None:
        if schema:
            self.execute(f"CREATE SCHEMA IF NOT EXISTS {check_identifier(schema)}")

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _key_match(left: str, right: str, columns: Sequence[str]) -> str:
    return " AND ".join(f"{left}.{column} = {right}.{column}" for column in columns)


def _inferred_types(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """BIGINT for a column whose first non-null value is an int, else text (a temp relation's keys)."""
    types = []
    for index, _ in enumerate(columns):
        sample = next((row[index] for row in rows if row[index] is not None), None)
        types.append("BIGINT" if isinstance(sample, int) and not isinstance(sample, bool) else "TEXT")
    return types


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
    import duckdb

    _check_duckdb_file(path)
    for name in (cdm_schema, results_schema):
        if name:
            check_identifier(name)
    # New files are written in DuckDB 1.1's storage format, so that R users on duckdb 1.1-1.4 can
    # open them; DuckDB 1.1 itself has no such setting (and writes that format anyway).
    config = {"storage_compatibility_version": DUCKDB_STORAGE_VERSION} if _duckdb_at_least(duckdb, 1, 2) else {}
    try:
        raw = duckdb.connect(str(path), read_only=read_only, config=config)
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
        if url.password:
            first_line = first_line.replace(url.password, "***")
        raise DatabaseError(f"cannot connect to PostgreSQL at {url.host}:{url.port or 5432}: {first_line}") from None
    db = Database(raw, "postgresql", cdm_schema, results_schema, label=url.render_as_string(hide_password=True))
    db.ensure_schema(cdm_schema)
    db.ensure_schema(results_schema)
    return db
