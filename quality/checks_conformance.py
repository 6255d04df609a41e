"""Conformance checks: required fields, integer datatype, primary and foreign keys, concept domain/class
and standard validity. Each function re-implements one DQD template (named in its docstring)."""

from __future__ import annotations

from ctcl_map.quality.definitions import CheckInstance
from ctcl_map.quality.sqlparts import CountSql, SqlContext, ident, text_literal

_INTEGER_TYPES = ("integer", "bigint", "smallint", "tinyint", "hugeint", "int", "int4", "int8", "int2")
_NUMERIC_TYPES = ("double", "double precision", "real", "float", "numeric", "decimal")


def _all_rows(ctx: SqlContext, inst: CheckInstance) -> str:
    return f"SELECT COUNT(*) FROM {ctx.table(inst.table)}"


def is_required(ctx: SqlContext, inst: CheckInstance) -> CountSql:
    """field_is_not_nullable.sql: rows whose required field is NULL."""
    return CountSql(
        f"SELECT COUNT(*) FROM {ctx.table(inst.table)} WHERE {ident(inst.field_name)} IS NULL",
        _all_rows(ctx, inst),
    )


def cdm_datatype(ctx: SqlContext, inst: CheckInstance) -> CountSql:
    """field_cdm_datatype.sql: non-NULL values of an integer field that are not integers.

    DQD uses SQL Server's ISNUMERIC plus 'no decimal point in CAST(ABS(x) AS varchar)'. A float 3.0
    renders as '3' there, so integral floats pass; we compare with FLOOR for numeric columns and use
    an integer pattern on the text for every other column type (text columns loaded from CSV, dates).
    """
    column = f"t.{ident(inst.field_name)}"
    column_type = ctx.catalog.column_type(inst.table, inst.field_name)
    if column_type.startswith(_INTEGER_TYPES) and not column_type.startswith("interval"):
        not_integer = "FALSE"  # the database type already guarantees integers
    elif column_type.startswith(_NUMERIC_TYPES):
        as_double = f"CAST({column} AS DOUBLE PRECISION)"
        not_integer = f"{as_double} <> FLOOR({as_double})"
    else:
        not_integer = "NOT " + ctx.regex_full_match(f"TRIM(CAST({column} AS VARCHAR))", "[+-]{0,1}[0-9]+")
    return CountSql(
        f"SELECT COUNT(*) FROM {ctx.table(inst.table)} t WHERE {column} IS NOT NULL AND {not_integer}",
        _all_rows(ctx, inst),
    )


def is_primary_key(ctx: SqlContext, inst: CheckInstance) -> CountSql:
    """field_is_primary_key.sql: every row whose key value occurs more than once."""
    table, column = ctx.table(inst.table), ident(inst.field_name)
    return CountSql(
        f"SELECT COUNT(*) FROM {table} WHERE {column} IN "
        f"(SELECT {column} FROM {table} GROUP BY {column} HAVING COUNT(*) > 1)",
        _all_rows(ctx, inst),
    )


def is_foreign_key(ctx: SqlContext, inst: CheckInstance) -> CountSql:
    """is_foreign_key.sql: non-NULL values with no matching row in fkTableName.fkFieldName."""
    fk_table = ctx.table(inst.value("fkTableName").lower())
    fk_column = ident(inst.value("fkFieldName"))
    column = ident(inst.field_name)
    return CountSql(
        f"SELECT COUNT(*) FROM {ctx.table(inst.table)} t LEFT JOIN {fk_table} fk ON t.{column} = fk.{fk_column} "
        f"WHERE fk.{fk_column} IS NULL AND t.{column} IS NOT NULL",
        _all_rows(ctx, inst),
    )


def _concept_attribute_mismatch(ctx: SqlContext, inst: CheckInstance, condition: str) -> CountSql:
    """Rows whose concept (other than 0) exists in CONCEPT but fails `condition` (alias co)."""
    return CountSql(
        f"SELECT COUNT(*) FROM {ctx.table(inst.table)} t JOIN {ctx.table('concept')} co "
        f"ON t.{ident(inst.field_name)} = co.concept_id WHERE co.concept_id <> 0 AND {condition}",
        _all_rows(ctx, inst),
    )


def fk_domain(ctx: SqlContext, inst: CheckInstance) -> CountSql:
    """field_fk_domain.sql: concepts outside the expected domain (concept 0 and unknown ids excluded)."""
    return _concept_attribute_mismatch(ctx, inst, f"co.domain_id <> {text_literal(inst.value('fkDomain'))}")


def fk_class(ctx: SqlContext, inst: CheckInstance) -> CountSql:
    """field_fk_class.sql: concepts outside the expected concept class (drug eras: Ingredient)."""
    return _concept_attribute_mismatch(ctx, inst, f"co.concept_class_id <> {text_literal(inst.value('fkClass'))}")


def is_standard_valid_concept(ctx: SqlContext, inst: CheckInstance) -> CountSql:
    """field_is_standard_valid_concept.sql: concepts that are not standard ('S') or are invalid.

    DQD writes `co.standard_concept != 'S'`, which is UNKNOWN (so not counted) for the commonest
    non-standard case, standard_concept NULL (source concepts); we count those too, as the check's
    description ("do not have a standard, valid concept") says.
    """
    return _concept_attribute_mismatch(
        ctx, inst, "(COALESCE(co.standard_concept, '') <> 'S' OR co.invalid_reason IS NOT NULL)"
    )
