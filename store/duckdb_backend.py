"""The DuckDB backend: an embedded database file with one writer process.

Bulk rows reach DuckDB as a JSON document read by its JSON reader (see _json_relation).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from ctcl_map.store.backend import Backend, key_match

COLUMN_WISE_ROWS = 1000  # batches from this size are handed over column-wise (see _json_relation)


class DuckDBBackend(Backend):
    name = "duckdb"
    default_schema = "main"
    concurrent_writers = False
    driver_error = duckdb.Error

    def __init__(self, raw: Any):
        super().__init__(raw)
        self._types: dict[tuple[str, tuple[str, ...]], list[str]] = {}

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.raw.execute(sql, params or [])

    def execute_count(self, sql: str, params: Sequence[Any] | None = None) -> int:
        row = self.raw.execute(sql, params or []).fetchone()
        return int(row[0]) if row else 0

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        return self.raw.execute(sql, params or []).fetchall()

    def query_df(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        return self.raw.execute(sql, params or []).df()

    def insert_rows(self, qualified: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        col_list = ", ".join(columns)
        with self._json_relation(columns, self._column_types(qualified, columns), rows) as relation:
            self.raw.execute(f"INSERT INTO {qualified} ({col_list}) SELECT {col_list} FROM {relation}")

    def upsert_rows(self, qualified: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], key: Sequence[str]) -> None:
        """Delete the matching rows, then insert: the table needs no key (see
        ctcl_tables.DUCKDB_KEYLESS; ON CONFLICT costs 2-4 ms a statement here)."""
        col_list = ", ".join(columns)
        # One JSON hand-over serves both statements.
        with self._json_relation(columns, self._column_types(qualified, columns), rows) as relation:
            self.raw.execute(f"DELETE FROM {qualified} AS target WHERE EXISTS "
                             f"(SELECT 1 FROM {relation} s WHERE {key_match('s', 'target', key)})")
            self.raw.execute(f"INSERT INTO {qualified} ({col_list}) SELECT {col_list} FROM {relation}")

    def load_tab_separated(self, qualified: str, path: Path, columns: Sequence[str], types: Sequence[str]) -> None:
        spec = ", ".join(f"'{name}': '{kind}'" for name, kind in zip(columns, types))
        # quote='' : Athena does not quote fields, and concept names contain '"' characters.
        source = (f"read_csv(?, delim='\t', header=true, quote='', escape='', auto_detect=false, "
                  f"columns={{{spec}}}, dateformat='%Y%m%d', nullstr='')")
        col_list = ", ".join(columns)
        self.raw.execute(f"INSERT INTO {qualified} ({col_list}) SELECT {col_list} FROM {source}", [str(path)])

    def insert_arrow(self, qualified: str, columns: Sequence[str], table: Any) -> None:
        col_list = ", ".join(f'"{c}"' for c in columns)
        self.raw.register("ctcl_arrow_rows", table)  # DuckDB scans the Arrow buffers in place
        try:
            self.raw.execute(f"INSERT INTO {qualified} ({col_list}) SELECT {col_list} FROM ctcl_arrow_rows")
        finally:
            self.raw.unregister("ctcl_arrow_rows")

    @contextmanager
    def temp_relation(self, name: str, columns: Sequence[str], types: Sequence[str],
                      rows: Sequence[Sequence[Any]]) -> Iterator[str]:
        # The JSON file itself is the relation: no table to create and drop (2 statements).
        with self._json_relation(columns, types, rows) as relation:
            yield relation

    def write_csv(self, select: str, path: Path) -> None:
        quoted = str(path).replace("'", "''")
        self.raw.execute(f"COPY ({select}) TO '{quoted}' (FORMAT csv, HEADER true)")

    def arrow_batches(self, select: str, schema: Any, chunk_rows: int) -> Iterator[Any]:
        relation = self.raw.sql(select)
        # DuckDB >= 1.4 names it to_arrow_reader; 1.1-1.3 record_batch
        reader = getattr(relation, "to_arrow_reader", None) or relation.record_batch
        yield from reader(chunk_rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.raw.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.raw.execute("ROLLBACK")
            raise
        self.raw.execute("COMMIT")

    def hold_load_lock(self, key: int) -> None:
        """Nothing to do: the file lock already makes this process the only writer."""

    def try_lock_run(self, key: int) -> bool:
        return True  # the file lock already guarantees nobody else runs

    def unlock_run(self, key: int) -> None:
        """Nothing to release (see try_lock_run)."""

    def tables_exist(self, schema: str, qualified: Sequence[str]) -> bool:
        """A LIMIT 0 probe of the tables themselves (5 ms): listing DuckDB's catalog loads every
        table's metadata (13 ms, the largest single cost of a small incremental run)."""
        probe = " UNION ALL ".join(f"(SELECT 1 FROM {name} LIMIT 0)" for name in qualified)
        try:
            self.raw.execute(probe)
        except duckdb.CatalogException:
            return False
        return True

    def database_file(self) -> Path | None:
        rows = self.query("SELECT path FROM duckdb_databases() WHERE database_name = current_database()")
        return Path(rows[0][0]).resolve() if rows and rows[0][0] else None  # None: in memory

    def has_foreign_keys(self, schema: str) -> bool:
        return False  # `ctcl-map constraints` adds foreign keys on PostgreSQL only

    def index_names(self, schema: str) -> set[str]:
        return {str(name).lower() for (name,) in self.query("SELECT index_name FROM duckdb_indexes() WHERE schema_name = ?", [schema])}

    def regex_full_match(self, text_expr: str, pattern: str) -> str:
        return f"regexp_full_match({text_expr}, '{pattern}')"

    def empty_table(self, qualified: str) -> str:
        return f"DELETE FROM {qualified}"

    def group_maxima(self, qualified: str, group: str, value: str) -> str:
        return f"SELECT {group}, MAX({value}) FROM {qualified} GROUP BY {group}"

    def _column_types(self, qualified: str, columns: Sequence[str]) -> list[str]:
        """Types of `columns` in table `qualified`: as our DDL declares them, else as the database
        describes them (cached: tables do not change during a run)."""
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
