"""The OMOP CDM v5.4 schema, read from the official field-level specification shipped beside this file.

Nothing here is hand-typed: every table, column, type, NOT NULL flag and primary key comes from
`OMOP_CDMv5.4_Field_Level.csv` (OHDSI/CommonDataModel, Apache-2.0), so the DDL cannot drift from
the spec. Our own bookkeeping tables (prefix `ctcl_`) live in `ctcl_tables.py`, outside the CDM.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

SPEC_FILE = "OMOP_CDMv5.4_Field_Level.csv"

VOCABULARY_TABLES = (
    "concept",
    "vocabulary",
    "domain",
    "concept_class",
    "concept_relationship",
    "relationship",
    "concept_synonym",
    "concept_ancestor",
    "source_to_concept_map",
    "drug_strength",
)


@dataclass(frozen=True)
class Field:
    table: str
    name: str
    required: bool
    datatype: str  # as written in the spec, lower-cased: integer, float, date, datetime, varchar(50) ...
    primary_key: bool
    fk_table: str | None

    @property
    def max_length(self) -> int | None:
        """Declared varchar length; None for varchar(MAX) and non-text types."""
        match = re.fullmatch(r"varchar\((\d+)\)", self.datatype)
        return int(match.group(1)) if match else None

    @property
    def python_kind(self) -> str:
        """One of int, float, date, datetime, str: what a converter must put in this column."""
        if self.datatype == "integer":
            return "int"
        if self.datatype == "float":
            return "float"
        if self.datatype in ("date", "datetime"):
            return self.datatype
        return "str"


@cache
def cdm_fields() -> dict[str, tuple[Field, ...]]:
    """Table name -> its fields in specification order."""
    tables: dict[str, list[Field]] = {}
    text = resources.files("ctcl_map.cdm").joinpath(SPEC_FILE).read_text(encoding="utf-8-sig")
    rows = csv.reader(text.splitlines())
    # Plain rows, not DictReader: every run reads this 130 kB spec, and dicts cost half its time.
    at = {name: index for index, name in enumerate(next(rows))}
    table, name, required, datatype, is_key, fk_table = (
        at[c] for c in ("cdmTableName", "cdmFieldName", "isRequired", "cdmDatatype", "isPrimaryKey", "fkTableName"))
    for row in rows:
        if not row:
            continue  # blank line
        field = Field(
            table=row[table].strip().lower(),
            name=row[name].strip().lower(),
            required=row[required].strip().lower() == "yes",
            datatype=row[datatype].strip().lower(),
            primary_key=row[is_key].strip().lower() == "yes",
            fk_table=None if row[fk_table] in ("", "NA") else row[fk_table].lower(),
        )
        tables.setdefault(field.table, []).append(field)
    return {name: tuple(fields) for name, fields in tables.items()}


@cache  # both are called per row by the writer
def columns(table: str) -> tuple[str, ...]:
    return tuple(f.name for f in cdm_fields()[table])


@cache
def primary_key(table: str) -> str | None:
    keys = [f.name for f in cdm_fields()[table] if f.primary_key]
    return keys[0] if keys else None


def sql_type(datatype: str, dialect: str) -> str:
    """Spec datatype -> SQL type for 'duckdb' or 'postgresql'."""
    if datatype == "integer":
        return "INTEGER"
    if datatype == "float":
        return "DOUBLE PRECISION"
    if datatype == "date":
        return "DATE"
    if datatype == "datetime":
        return "TIMESTAMP"
    if datatype == "varchar(max)":
        return "TEXT"
    match = re.fullmatch(r"varchar\((\d+)\)", datatype)
    if match:
        return f"VARCHAR({match.group(1)})"
    raise ValueError(f"unknown CDM datatype {datatype!r} in {SPEC_FILE}")


def qualified(table: str, schema: str | None) -> str:
    return f"{schema}.{table}" if schema else table


def create_table_sql(table: str, dialect: str, schema: str | None = None, name: str | None = None) -> str:
    """CREATE TABLE IF NOT EXISTS for spec table `table`, created as `name` (default: the same name)."""
    lines = []
    for f in cdm_fields()[table]:
        null = " NOT NULL" if f.required else ""
        lines.append(f"    {f.name} {sql_type(f.datatype, dialect)}{null}")
    pk = primary_key(table)
    if pk:
        lines.append(f"    PRIMARY KEY ({pk})")
    body = ",\n".join(lines)
    return f"CREATE TABLE IF NOT EXISTS {qualified(name or table, schema)} (\n{body}\n)"


def cdm_ddl(dialect: str, schema: str | None = None) -> list[str]:
    """CREATE TABLE statements for every CDM v5.4 table, vocabulary tables included."""
    return [create_table_sql(table, dialect, schema) for table in cdm_fields()]
