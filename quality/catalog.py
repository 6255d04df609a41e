"""What the database actually holds: which CDM tables and columns exist, their SQL types, row counts.

DQD's cdmTable/cdmField checks and its 'not applicable' rules (missing or empty table, field that is
NULL in every row) all rest on these facts, so we gather them once per run: one information_schema
query and one COUNT statement per table, instead of one probe per check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ctcl_map.quality.definitions import table_schema_kind
from ctcl_map.store.backend import Backend
from ctcl_map.store.database import Database, check_identifier


@dataclass
class TableFacts:
    qualified_name: str
    column_types: dict[str, str]  # lower case column -> information_schema data_type, lower case
    row_count: int | None = None  # None until counted (or when counting failed)
    non_null_counts: dict[str, int] = field(default_factory=dict)


@dataclass
class Catalog:
    engine: Backend  # the SQL fragments that differ between database engines
    tables: dict[str, TableFacts]  # lower case table name -> facts; only tables that exist

    def has_table(self, table: str) -> bool:
        return table in self.tables

    def has_field(self, table: str, field_name: str) -> bool:
        return table in self.tables and field_name in self.tables[table].column_types

    def name(self, table: str) -> str:
        """Schema-qualified name of an existing table (raises KeyError for a missing one)."""
        return self.tables[table].qualified_name

    def is_empty(self, table: str) -> bool:
        return self.tables[table].row_count == 0

    def field_is_empty(self, table: str, field_name: str) -> bool:
        facts = self.tables[table]
        return facts.row_count is not None and facts.non_null_counts.get(field_name, 0) == 0

    def column_type(self, table: str, field_name: str) -> str:
        return self.tables[table].column_types.get(field_name, "")


def read_catalog(db: Database, tables: Iterable[str]) -> Catalog:
    """Locate `tables` (DQD names): vocabulary and CDM tables in the CDM schema, cohort tables in the
    results schema first (where ctcl-map writes them), then in the CDM schema."""
    cdm_schema = db.cdm_schema or db.default_schema
    results_schema = db.results_schema or cdm_schema
    schemas = sorted({cdm_schema, results_schema})
    placeholders = ", ".join("?" for _ in schemas)
    rows = db.query(
        "SELECT table_schema, lower(table_name), lower(column_name), lower(data_type) "
        f"FROM information_schema.columns WHERE table_schema IN ({placeholders})",
        schemas,
    )
    by_schema: dict[tuple[str, str], dict[str, str]] = {}
    for schema, table, column, data_type in rows:
        by_schema.setdefault((schema, table), {})[column] = data_type
    kinds = table_schema_kind()
    found: dict[str, TableFacts] = {}
    for table in tables:
        search = [results_schema, cdm_schema] if kinds.get(table) == "cohort" else [cdm_schema]
        for schema in search:
            columns = by_schema.get((schema, table))
            if columns is not None:
                found[table] = TableFacts(f"{check_identifier(schema)}.{check_identifier(table)}", columns)
                break
    return Catalog(db.backend, found)


def count_rows(db: Database, catalog: Catalog, table: str, fields: Iterable[str]) -> None:
    """Fill row_count and per-field non-NULL counts of one table in a single statement."""
    facts = catalog.tables[table]
    present = [f for f in dict.fromkeys(fields) if f in facts.column_types]
    select = ", ".join(["COUNT(*)"] + [f'COUNT("{check_identifier(f)}")' for f in present])
    counts = db.query(f"SELECT {select} FROM {facts.qualified_name}")[0]
    facts.row_count = int(counts[0])
    facts.non_null_counts = {f: int(n) for f, n in zip(present, counts[1:])}
