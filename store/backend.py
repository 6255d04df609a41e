"""What a database engine must provide to the store: a Backend.

`Database` (store/database.py) is what the rest of the program uses: it names tables, checks
identifiers and turns driver errors into DatabaseError. Everything that differs between engines
(statement execution, the bulk paths, temporary relations, transactions, locks and the few SQL
fragments callers need) is a Backend method, so a new engine is one new module implementing this.
Backends raise their driver's own errors; `Database` translates them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any


class Backend(ABC):
    name: str  # the dialect: 'duckdb' or 'postgresql' (cdm/ddl and sqlglot use the same names)
    default_schema: str  # the schema unqualified names live in
    # Several loaders may write one CDM at once (they serialise their commits on the load lock);
    # False: one writer process (DuckDB's file lock), so nothing else changes the CDM meanwhile.
    concurrent_writers: bool
    driver_error: type[BaseException]  # the driver's base error class, translated by Database

    def __init__(self, raw: Any):
        self.raw = raw  # the driver's connection (export streams from it directly)

    # -- statements -----------------------------------------------------------------------------
    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None: ...

    @abstractmethod
    def execute_count(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """Run an INSERT, UPDATE or DELETE and return the number of rows it affected."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]: ...

    @abstractmethod
    def query_df(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        """The result as a pandas DataFrame."""

    # -- bulk paths -----------------------------------------------------------------------------
    @abstractmethod
    def insert_rows(self, qualified: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert many rows into table `qualified` in one bulk operation."""

    @abstractmethod
    def upsert_rows(self, qualified: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], key: Sequence[str]) -> None:
        """Insert rows; a row whose `key` columns match an existing row replaces it."""

    @abstractmethod
    def load_tab_separated(self, qualified: str, path: Path, columns: Sequence[str], types: Sequence[str]) -> None:
        """Append the rows of tab-separated file `path` (a header row naming `columns`, of DuckDB
        `types`; fields verbatim, never quoted; an empty field is NULL; dates as YYYYMMDD)."""

    @abstractmethod
    def insert_arrow(self, qualified: str, columns: Sequence[str], table: Any) -> None:
        """Append the rows of Arrow table `table`, whose columns are `columns` in this order (a
        Parquet CDM being loaded: store/parquet_load.py)."""

    @abstractmethod
    def temp_relation(self, name: str, columns: Sequence[str], types: Sequence[str],
                      rows: Sequence[Sequence[Any]]) -> AbstractContextManager[str]:
        """A relation holding `rows` (columns of the given BIGINT/TEXT types), for the context's lifetime."""

    # -- export ----------------------------------------------------------------------------------
    @abstractmethod
    def write_csv(self, select: str, path: Path) -> None:
        """The result of `select` as a CSV file with a header row, streamed (never held whole)."""

    @abstractmethod
    def arrow_batches(self, select: str, schema: Any, chunk_rows: int) -> Iterator[Any]:
        """The result of `select` as Arrow tables or record batches (of `schema`) of at most
        `chunk_rows` rows, streamed."""

    # -- transactions and locks -----------------------------------------------------------------
    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """All statements inside commit together or not at all (never nested: Database sees to it)."""

    @abstractmethod
    def hold_load_lock(self, key: int) -> None:
        """Inside a transaction: wait for the CDM's load lock `key`, held until the transaction ends."""

    @abstractmethod
    def try_lock_run(self, key: int) -> bool:
        """Hold session lock `key` (a run being alive); False when another session holds it."""

    @abstractmethod
    def unlock_run(self, key: int) -> None: ...

    # -- catalog --------------------------------------------------------------------------------
    @abstractmethod
    def tables_exist(self, schema: str, qualified: Sequence[str]) -> bool:
        """True when every table of `qualified` (names in `schema`) exists."""

    @abstractmethod
    def has_foreign_keys(self, schema: str) -> bool: ...

    @abstractmethod
    def database_file(self) -> Path | None:
        """The file the database lives in, if it is one (derived files are kept beside it)."""

    @abstractmethod
    def index_names(self, schema: str) -> set[str]:
        """Names (lower case) of the indexes on tables of `schema`."""

    # -- SQL fragments that differ --------------------------------------------------------------
    @abstractmethod
    def regex_full_match(self, text_expr: str, pattern: str) -> str:
        """A condition: `text_expr` matches `pattern` as a whole."""

    @abstractmethod
    def empty_table(self, qualified: str) -> str:
        """The fastest transactional statement that deletes every row of `qualified`."""

    @abstractmethod
    def group_maxima(self, qualified: str, group: str, value: str) -> str:
        """A query of (group, MAX(value)) for each group of table `qualified`."""

    def close(self) -> None:
        self.raw.close()

    def describe(self, error: BaseException) -> str:
        """A driver error as a message for users (without secrets)."""
        text = str(error).strip()
        return text or type(error).__name__


def first_non_null_types(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """BIGINT for a column whose first non-null value is an int, else TEXT (a temp relation's keys)."""
    types = []
    for index, _ in enumerate(columns):
        sample = next((row[index] for row in rows if row[index] is not None), None)
        types.append("BIGINT" if isinstance(sample, int) and not isinstance(sample, bool) else "TEXT")
    return types


def key_match(left: str, right: str, columns: Sequence[str]) -> str:
    return " AND ".join(f"{left}.{column} = {right}.{column}" for column in columns)

