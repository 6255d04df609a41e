"""The official OMOP CDM v5.4 indices and foreign keys, applied to a loaded CDM (`ctcl-map constraints`).

Indices: OHDSI/CommonDataModel's script (ddl/OMOPCDM_5.4_indices.sql, 70 CREATE INDEX, 32 CLUSTER);
DuckDB has no CLUSTER, so only the CREATE INDEX statements run there.
Foreign keys: the 176 of the spec (`isForeignKey`), named and written as CommonDataModel writes them
(fpk_<table>_<field>). PostgreSQL only: DuckDB cannot add a foreign key to an existing table. They
are created DEFERRABLE (checked at commit, not per statement), the one difference from the official
script: a load replaces a changed resource's rows by delete + insert in one transaction, and an
Encounter that others refer to is briefly absent in between. Every write transaction of ctcl-map
defers them (Database.transaction); a deferrable constraint behaves like the official one for
anybody else.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from ctcl_map.cdm.schema import cdm_fields, qualified
from ctcl_map.errors import DatabaseError
from ctcl_map.store.database import Database

INDEX_FILE = "OMOPCDM_5.4_indices.sql"
_INDEX_NAME = re.compile(r"^CREATE INDEX (\w+)\s", re.IGNORECASE)
_INDEX_TABLE = re.compile(r"\sON\s+(?:\w+\.)?(\w+)\s*\(", re.IGNORECASE)


@dataclass
class ConstraintReport:
    created: list[str] = field(default_factory=list)  # names of indices / constraints created
    present: list[str] = field(default_factory=list)  # already there: left alone
    skipped: list[str] = field(default_factory=list)  # not applicable on this backend, with the reason


def _schema_sql(text: str, schema: str | None) -> str:
    return text.replace("@cdmDatabaseSchema.", f"{schema}." if schema else "")


def index_statements(dialect: str, schema: str | None) -> list[tuple[str, str]]:
    """(index name, statement) of the official script; CLUSTER statements follow their index on PostgreSQL."""
    text = resources.files("ctcl_map.cdm").joinpath("ddl", INDEX_FILE).read_text(encoding="utf-8")
    statements: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if line.upper().startswith("CREATE INDEX"):
            index_name = _INDEX_NAME.match(line)
            if index_name is None:  # the shipped script names every index; a changed script must too
                raise ValueError(f"{INDEX_FILE}: an index statement without a name: {line[:80]}")
            statements.append((index_name.group(1), _schema_sql(line.rstrip(";"), schema)))
        elif line.upper().startswith("CLUSTER") and dialect == "postgresql":
            name, statement = statements[-1]
            statements[-1] = (name, statement + ";\n" + _schema_sql(line.rstrip(";").strip(), schema))
    return statements


def table_index_statements(tables: Sequence[str], schema: str | None) -> list[tuple[str, str]]:
    """(index name, CREATE INDEX statement) of the official script on `tables`, without CLUSTER:
    a vocabulary load creates them after its bulk load, and CLUSTER (a rewrite of the table in
    index order, which OHDSI's script adds on PostgreSQL) would cost more than the load itself."""
    wanted = {table.lower() for table in tables}
    return [(name, statement) for name, statement in index_statements("duckdb", schema)
            if (on := _INDEX_TABLE.search(statement)) is not None and on.group(1).lower() in wanted]


def create_table_indices(db: Database, tables: Sequence[str]) -> list[str]:
    """Create the official indices of `tables` that are missing (in the caller's transaction); their names."""
    existing = db.index_names()
    created = []
    for name, statement in table_index_statements(tables, db.cdm_schema):
        if name.lower() not in existing:
            db.execute(statement)
            created.append(name)
    return created


def drop_table_indices(db: Database, tables: Sequence[str]) -> None:
    """Drop the official indices of `tables` (before a bulk load: loading into indexed tables is slower)."""
    existing = db.index_names()
    prefix = f"{db.cdm_schema}." if db.cdm_schema else ""
    for name, _ in table_index_statements(tables, db.cdm_schema):
        if name.lower() in existing:
            db.execute(f"DROP INDEX {prefix}{name}")


def foreign_key_statements(schema: str | None, deferrable: bool = True) -> list[tuple[str, str]]:
    """(constraint name, ALTER TABLE statement) for every foreign key of the spec."""
    out = []
    for table, fields in cdm_fields().items():
        for f in fields:
            if not f.fk_table:
                continue
            target_field = _fk_field(table, f.name)
            name = f"fpk_{table}_{f.name}"
            out.append((name, f"ALTER TABLE {qualified(table, schema)}  ADD CONSTRAINT {name} FOREIGN KEY ({f.name}) "
                              f"REFERENCES {qualified(f.fk_table.upper(), schema)} ({target_field})"
                              + (" DEFERRABLE INITIALLY IMMEDIATE" if deferrable else "")))
    return out


@cache
def _fk_fields() -> dict[tuple[str, str], str]:
    """(table, field) -> the referenced field as the spec writes it (e.g. CONCEPT_ID)."""
    text = resources.files("ctcl_map.cdm").joinpath("OMOP_CDMv5.4_Field_Level.csv").read_text(encoding="utf-8-sig")
    return {(row["cdmTableName"].strip().lower(), row["cdmFieldName"].strip().lower()): row["fkFieldName"].strip()
            for row in csv.DictReader(text.splitlines()) if row["isForeignKey"].strip().lower() == "yes"}


def _fk_field(table: str, field_name: str) -> str:
    return _fk_fields()[(table, field_name)]


def apply_indices(db: Database) -> ConstraintReport:
    report = ConstraintReport()
    existing = db.index_names()
    for name, statement in index_statements(db.dialect, db.cdm_schema):
        if name.lower() in existing:
            report.present.append(name)
            continue
        with db.transaction():
            for part in statement.split(";\n"):
                db.execute(part)
        report.created.append(name)
    return report


def apply_foreign_keys(db: Database) -> ConstraintReport:
    """Add the spec's foreign keys (PostgreSQL); existing ones are made deferrable, not duplicated."""
    report = ConstraintReport()
    if db.dialect != "postgresql":
        report.skipped.append("DuckDB cannot add a foreign key to an existing table (ALTER TABLE "
                              "ADD CONSTRAINT is not supported); DQD's isForeignKey check measures the same references")
        return report
    existing = _existing_foreign_keys(db)
    statements = foreign_key_statements(db.cdm_schema)
    with db.transaction():
        for name, statement in statements:
            if name in existing:
                if not existing[name]:  # applied by hand from the official script: make it deferrable
                    db.execute(f"ALTER TABLE {_table_of(db, name)} ALTER CONSTRAINT {name} DEFERRABLE INITIALLY IMMEDIATE")
                report.present.append(name)
                continue
            try:
                db.execute(statement)
            except Exception as exc:
                raise DatabaseError(f"cannot add foreign key {name}: {str(exc).splitlines()[0]} "
                                    "(run `ctcl-map dq --check isForeignKey` to list the rows that break it)") from None
            report.created.append(name)
    return report


def _table_of(db: Database, constraint: str) -> str:
    rows = db.query("SELECT conrelid::regclass::text FROM pg_constraint WHERE conname = ?", [constraint])
    return rows[0][0]


def _existing_foreign_keys(db: Database) -> dict[str, bool]:
    """Foreign key name -> deferrable, in the CDM schema."""
    rows = db.query(
        "SELECT c.conname, c.condeferrable FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
        "WHERE c.contype = 'f' AND n.nspname = ?", [db.cdm_schema or "public"])
    return {str(name): bool(deferrable) for name, deferrable in rows}
