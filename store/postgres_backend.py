"""The PostgreSQL backend: a server several loaders may write to at once.

Bulk rows go by COPY; loaders serialise their commits on a transaction-level advisory lock.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from ctcl_map.store.backend import Backend

SMALL_RELATION_ROWS = 1000  # temp relations up to this size get planner statistics
COPY_BLOCK_BYTES = 1 << 20  # a file is streamed to COPY in blocks of this size


class PostgresBackend(Backend):
    name = "postgresql"
    default_schema = "public"
    concurrent_writers = True
    driver_error = psycopg.Error

    def __init__(self, raw: Any, password: str | None = None):
        super().__init__(raw)
        self._password = password  # only to keep it out of error messages

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with self.raw.cursor() as cur:
            cur.execute(*_pg_args(sql, params))

    def execute_count(self, sql: str, params: Sequence[Any] | None = None) -> int:
        with self.raw.cursor() as cur:
            cur.execute(*_pg_args(sql, params))
            return max(cur.rowcount, 0)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        with self.raw.cursor() as cur:
            cur.execute(*_pg_args(sql, params))
            return cur.fetchall()

    def query_df(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        import pandas as pd

        with self.raw.cursor() as cur:
            cur.execute(*_pg_args(sql, params))
            names = [d.name for d in cur.description]
            return pd.DataFrame(cur.fetchall(), columns=names)

    def insert_rows(self, qualified: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        with self.raw.cursor() as cur:
            with cur.copy(f"COPY {qualified} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    def upsert_rows(self, qualified: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], key: Sequence[str]) -> None:
        """INSERT ... ON CONFLICT on the table's primary key, from a staging table filled by COPY."""
        col_list = ", ".join(columns)
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
        conflict = f"ON CONFLICT ({', '.join(key)}) " + (f"DO UPDATE SET {updates}" if updates else "DO NOTHING")
        # The staging table has the target's own column types.
        self.execute("DROP TABLE IF EXISTS pg_temp.ctcl_upsert")
        self.execute(f"CREATE TEMP TABLE ctcl_upsert AS SELECT {col_list} FROM {qualified} WITH NO DATA")
        try:
            self.insert_rows("ctcl_upsert", columns, rows)
            self.execute(f"INSERT INTO {qualified} ({col_list}) SELECT {col_list} FROM ctcl_upsert {conflict}")
        finally:
            self.execute("DROP TABLE IF EXISTS pg_temp.ctcl_upsert")

    def load_tab_separated(self, qualified: str, path: Path, columns: Sequence[str], types: Sequence[str]) -> None:
        # CSV mode with a quote character that never occurs (backspace): fields are taken verbatim,
        # an empty field is NULL, and YYYYMMDD is a valid PostgreSQL date literal.
        sql = (f"COPY {qualified} ({', '.join(columns)}) FROM STDIN "
               "WITH (FORMAT csv, DELIMITER E'\\t', HEADER true, QUOTE E'\\b', NULL '')")
        with self.raw.cursor() as cur, path.open("rb") as handle:
            with cur.copy(sql) as copy:
                while block := handle.read(COPY_BLOCK_BYTES):
                    copy.write(block)

    def insert_arrow(self, qualified: str, columns: Sequence[str], table: Any) -> None:
        """COPY in CSV, written by Arrow's C++ writer (no Python object per value): it quotes every
        string and leaves NULL unquoted and empty, which is how COPY's CSV format tells "" from NULL."""
        import io

        import pyarrow.csv as pa_csv

        text = io.BytesIO()
        pa_csv.write_csv(table, text, pa_csv.WriteOptions(include_header=False))
        col_list = ", ".join(f'"{c}"' for c in columns)
        with self.raw.cursor() as cur, cur.copy(f"COPY {qualified} ({col_list}) FROM STDIN WITH (FORMAT csv)") as copy:
            copy.write(text.getbuffer())

    @contextmanager
    def temp_relation(self, name: str, columns: Sequence[str], types: Sequence[str],
                      rows: Sequence[Sequence[Any]]) -> Iterator[str]:
        # Re-created each time: the same name may be used with other columns.
        self.execute(f"DROP TABLE IF EXISTS pg_temp.{name}")
        self.execute(f"CREATE TEMP TABLE {name} ({', '.join(f'{c} {t}' for c, t in zip(columns, types))})")
        self.insert_rows(name, columns, rows)
        if len(rows) <= SMALL_RELATION_ROWS:
            # Statistics, so the planner probes the big table's index for a few keys instead
            # of hashing the whole table (a temp table is never auto-analysed). Large key
            # sets are best hashed anyway, and analysing them costs a few ms each.
            self.execute(f"ANALYZE pg_temp.{name}")
        try:
            yield name
        finally:
            self.execute(f"DROP TABLE IF EXISTS pg_temp.{name}")

    def write_csv(self, select: str, path: Path) -> None:
        with open(path, "wb") as handle, self.raw.cursor() as cur:
            with cur.copy(f"COPY ({select}) TO STDOUT WITH (FORMAT csv, HEADER true)") as copy:
                for block in copy:
                    handle.write(block)

    def arrow_batches(self, select: str, schema: Any, chunk_rows: int) -> Iterator[Any]:
        import pyarrow as pa

        # A named (server-side) cursor in its own transaction: the rows arrive chunk by chunk.
        with self.raw.transaction(), self.raw.cursor(name="ctcl_export") as cur:
            cur.itersize = chunk_rows
            cur.execute(select)
            while rows := cur.fetchmany(chunk_rows):
                yield pa.Table.from_arrays(
                    [pa.array(list(values), type=column.type) for values, column in zip(zip(*rows), schema)],
                    names=schema.names)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.raw.transaction():
            # Deferrable foreign keys (`ctcl-map constraints`) are checked at commit: a
            # replaced resource's rows are deleted and re-inserted within the transaction.
            self.execute("SET CONSTRAINTS ALL DEFERRED")
            yield

    def hold_load_lock(self, key: int) -> None:
        self.query("SELECT pg_advisory_xact_lock(?)", [key])

    def try_lock_run(self, key: int) -> bool:
        return bool(self.query("SELECT pg_try_advisory_lock(?)", [key])[0][0])

    def unlock_run(self, key: int) -> None:
        self.query("SELECT pg_advisory_unlock(?)", [key])

    def tables_exist(self, schema: str, qualified: Sequence[str]) -> bool:
        rows = self.query("SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [schema])
        return {name.rsplit(".", 1)[-1] for name in qualified} <= {name for (name,) in rows}

    def database_file(self) -> Path | None:
        return None  # a server

    def has_foreign_keys(self, schema: str) -> bool:
        return bool(self.query(
            "SELECT 1 FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
            "WHERE c.contype = 'f' AND n.nspname = ? LIMIT 1", [schema]))

    def index_names(self, schema: str) -> set[str]:
        return {str(name).lower() for (name,) in self.query("SELECT indexname FROM pg_indexes WHERE schemaname = ?", [schema])}

    def regex_full_match(self, text_expr: str, pattern: str) -> str:
        return f"{text_expr} ~ '^{pattern}$'"

    def empty_table(self, qualified: str) -> str:
        return f"TRUNCATE TABLE {qualified}"  # transactional here, and much faster than DELETE on millions of rows

    def group_maxima(self, qualified: str, group: str, value: str) -> str:
        """A loose index scan over (group, value): one probe per group instead of a scan of the
        whole table (which a 100-bundle CDM's incremental run would spend 10 ms on for ctcl_id_map)."""
        return (f"WITH RECURSIVE seen_groups AS (SELECT MIN({group}) AS g FROM {qualified} UNION ALL "
                f"SELECT (SELECT MIN({group}) FROM {qualified} WHERE {group} > seen_groups.g) FROM seen_groups WHERE g IS NOT NULL) "
                f"SELECT g, (SELECT MAX({value}) FROM {qualified} WHERE {group} = seen_groups.g) FROM seen_groups WHERE g IS NOT NULL")

    def describe(self, error: BaseException) -> str:
        text = super().describe(error)
        return text.replace(self._password, "***") if self._password else text


def _pg_args(sql: str, params: Sequence[Any] | None) -> tuple:
    """Our SQL uses DuckDB's `?` placeholders; psycopg wants `%s` (and a literal % doubled).

    Without parameters psycopg does not parse placeholders, so the SQL passes unchanged.
    """
    if not params:
        return (sql,)
    return (sql.replace("%", "%%").replace("?", "%s"), list(params))
