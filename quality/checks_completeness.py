"""Completeness checks: unmapped concepts (concept 0), unmapped source values, persons without records
in a table, persons with conditions but no condition era."""

from __future__ import annotations

from ctcl_map.quality.definitions import CheckInstance
from ctcl_map.quality.sqlparts import CountSql, SqlContext, ident


def concept_record_completeness(ctx: SqlContext, inst: CheckInstance) -> CountSql:
    """field_concept_record_completeness.sql (standard- and sourceConceptRecordCompleteness): rows
    whose concept field is 0. For MEASUREMENT/OBSERVATION.unit_concept_id both counts only look at rows
    with a value_as_number, since a unit is only expected for a numeric result."""
    table = ctx.table(inst.table)
    numeric_only = inst.field == "unit_concept_id" and inst.table in ("measurement", "observation")
    scope = " AND value_as_number IS NOT NULL" if numeric_only else ""
    return CountSql(
        f"SELECT COUNT(*) FROM {table} WHERE {ident(inst.field_name)} = 0{scope}",
        f"SELECT COUNT(*) FROM {table} WHERE 1 = 1{scope}",
    )


def source_value_completeness(ctx: SqlContext, inst: CheckInstance) -> CountSql:
    """field_source_value_completeness.sql: distinct source values (NULL counts as one) whose
    standard concept field is 0, out of all distinct source values."""
    table = ctx.table(inst.table)
    column = ident(inst.field_name)
    standard = ident(inst.value("standardConceptFieldName"))
    return CountSql(
        f"SELECT COUNT(*) FROM (SELECT DISTINCT {column} FROM {table} WHERE {standard} = 0) unmapped",
        f"SELECT COUNT(DISTINCT {column}) + COUNT(DISTINCT CASE WHEN {column} IS NULL THEN 1 END) FROM {table}",
    )


def measure_person_completeness(ctx: SqlContext, inst: CheckInstance) -> CountSql:
    """table_person_completeness.sql: persons with no record in the table."""
    person = ctx.table("person")
    return CountSql(
        f"SELECT COUNT(*) FROM {person} p WHERE NOT EXISTS "
        f"(SELECT 1 FROM {ctx.table(inst.table)} t WHERE t.person_id = p.person_id)",
        f"SELECT COUNT(*) FROM {person}",
    )


def measure_condition_era_completeness(ctx: SqlContext, inst: CheckInstance) -> CountSql:
    """table_condition_era_completeness.sql (DQD 2.8): persons with a mapped condition (concept != 0)
    in CONDITION_OCCURRENCE and no CONDITION_ERA; unmapped conditions build no era, so they do not count."""
    occurrences = ctx.table("condition_occurrence")
    return CountSql(
        f"SELECT COUNT(DISTINCT co.person_id) FROM {occurrences} co WHERE co.condition_concept_id <> 0 AND NOT EXISTS "
        f"(SELECT 1 FROM {ctx.table(inst.table)} t WHERE t.person_id = co.person_id)",
        f"SELECT COUNT(DISTINCT person_id) FROM {occurrences} WHERE condition_concept_id <> 0",
    )
