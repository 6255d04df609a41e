"""Concept-level checks: sex-specific concepts recorded for persons of the other gender, and
measurement units outside the approved list for a measurement concept."""

from __future__ import annotations

from ctcl_map.errors import CheckSetupError
from ctcl_map.quality.definitions import CheckInstance
from ctcl_map.quality.sqlparts import CountSql, SqlContext, ident, integer_list

# The two gender concepts DQD's plausibleGender templates compare with (Gender vocabulary, verified
# in ../shared/reference/vocab-concepts.csv: 8507 MALE, 8532 FEMALE).
_GENDER_CONCEPT = {"Male": 8507, "Female": 8532}


def _gender_concept(inst: CheckInstance, column: str) -> int:
    gender = inst.value(column)
    if gender not in _GENDER_CONCEPT:
        raise CheckSetupError(f"{column} must be Male or Female, got {gender!r}")
    return _GENDER_CONCEPT[gender]


def plausible_gender(ctx: SqlContext, inst: CheckInstance) -> CountSql:
    """concept_plausible_gender.sql: records of the concept for persons whose gender is not the
    plausible one (unknown gender counts as implausible, as in DQD)."""
    table, column = ctx.table(inst.table), ident(inst.field_name)
    concept = integer_list(inst.concept_id or "")
    gender = _gender_concept(inst, "plausibleGender")
    return CountSql(
        f"SELECT COUNT(*) FROM {table} t JOIN {ctx.table('person')} p ON t.person_id = p.person_id "
        f"WHERE t.{column} = {concept} AND p.gender_concept_id <> {gender}",
        f"SELECT COUNT(*) FROM {table} WHERE {column} = {concept}",
    )


def plausible_gender_use_descendants(ctx: SqlContext, inst: CheckInstance) -> CountSql:
    """concept_plausible_gender_use_descendants.sql: as plausibleGender, for every descendant of the
    listed concept ids (through CONCEPT_ANCESTOR, which includes the concept itself)."""
    table, column = ctx.table(inst.table), ident(inst.field_name)
    ancestors = integer_list(inst.concept_id or "")
    gender = _gender_concept(inst, "plausibleGenderUseDescendants")
    descendant_rows = (
        f"FROM {table} t JOIN {ctx.table('concept_ancestor')} ca ON ca.descendant_concept_id = t.{column}"
    )
    in_set = f"ca.ancestor_concept_id IN ({ancestors})"
    return CountSql(
        f"SELECT COUNT(*) {descendant_rows} JOIN {ctx.table('person')} p ON t.person_id = p.person_id "
        f"WHERE {in_set} AND p.gender_concept_id <> {gender}",
        f"SELECT COUNT(*) {descendant_rows} WHERE {in_set}",
    )


def plausible_unit_concept_ids(ctx: SqlContext, inst: CheckInstance) -> CountSql:
    """concept_plausible_unit_concept_ids.sql: numeric results of the concept whose unit is not in the
    approved list. Like DQD, only rows with a value_as_number and a unit_source_value are counted
    (DQD's `unit_source_value IS NOT NULL OR unit_source_value <> ''` reduces to IS NOT NULL)."""
    table, column = ctx.table(inst.table), ident(inst.field_name)
    concept = integer_list(inst.concept_id or "")
    approved = inst.value("plausibleUnitConceptIds")
    unit_condition = "t.unit_concept_id IS NOT NULL" if not approved else f"t.unit_concept_id NOT IN ({integer_list(approved)})"
    scope = f"t.{column} = {concept} AND t.value_as_number IS NOT NULL AND t.unit_source_value IS NOT NULL"
    return CountSql(
        f"SELECT COUNT(*) FROM {table} t WHERE {scope} AND {unit_condition}",
        f"SELECT COUNT(*) FROM {table} t WHERE {scope}",
    )
