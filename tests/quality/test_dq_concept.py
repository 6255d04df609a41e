"""Concept-level checks fail on deliberately broken CDMs (exact counts), pass on the sound one, and are
not applicable when their concept never occurs (DQD's rule)."""

from __future__ import annotations

from datetime import date

from ctcl_map.store.database import Database

EHR = 32817  # Type Concept
TESTICULAR_HYPOFUNCTION = 26662  # DQD: plausibleGender Male
AST_MEASUREMENT = 3013721  # DQD: plausibleUnitConceptIds 8645,8923
AST_UNIT = 8645  # DQD
MG_PER_DL = 8840  # DQD

# DQD Concept_Level row: plausibleGenderUseDescendants Male for "4090861, 4025213" (Male genitalia
# finding, Male reproductive finding). CONCEPT_ANCESTOR lists every standard concept as its own
# descendant (level 0), so a record of 4090861 itself is in the checked set.
MALE_GENITALIA_FINDING = 4090861


def condition(condition_id: int, person_id: int, concept_id: int) -> dict:
    return {"condition_occurrence_id": condition_id, "person_id": person_id, "condition_concept_id": concept_id,
            "condition_start_date": date(2020, 3, 1), "condition_type_concept_id": EHR}


def test_plausible_gender_counts_records_for_persons_of_the_other_gender(sound_db: Database, insert, result, run) -> None:
    concept = str(TESTICULAR_HYPOFUNCTION)
    check = result(run(sound_db, ["plausibleGender"], ["condition_occurrence"]), "plausibleGender",
                   "condition_occurrence", concept=concept)
    assert (check.status, check.not_applicable_reason) == (
        "not_applicable", "CONDITION_CONCEPT_ID=26662 is missing from the CONDITION_OCCURRENCE table.")
    insert(sound_db, "condition_occurrence", [condition(5, 1, TESTICULAR_HYPOFUNCTION)])  # person 1: male
    check = result(run(sound_db, ["plausibleGender"], ["condition_occurrence"]), "plausibleGender",
                   "condition_occurrence", concept=concept)
    assert (check.status, check.num_violated, check.num_denominator) == ("pass", 0, 1)
    insert(sound_db, "condition_occurrence", [condition(6, 2, TESTICULAR_HYPOFUNCTION)])  # person 2: female
    check = result(run(sound_db, ["plausibleGender"], ["condition_occurrence"]), "plausibleGender",
                   "condition_occurrence", concept=concept)
    assert (check.status, check.num_violated, check.num_denominator, check.threshold) == ("fail", 1, 2, 5.0)
    assert "TESTICULAR HYPOFUNCTION" in check.description and "MALE" in check.description


def test_plausible_gender_use_descendants_follows_concept_ancestor(sound_db: Database, insert, result, run) -> None:
    insert(sound_db, "concept_ancestor", [{"ancestor_concept_id": MALE_GENITALIA_FINDING,
                                           "descendant_concept_id": MALE_GENITALIA_FINDING,
                                           "min_levels_of_separation": 0, "max_levels_of_separation": 0}])
    insert(sound_db, "condition_occurrence", [condition(5, 1, MALE_GENITALIA_FINDING)])
    checks = ["plausibleGenderUseDescendants"]
    check = result(run(sound_db, checks, ["condition_occurrence"]), checks[0], "condition_occurrence",
                   concept="4090861, 4025213")
    assert (check.status, check.num_violated, check.num_denominator) == ("pass", 0, 1)
    insert(sound_db, "condition_occurrence", [condition(6, 4, MALE_GENITALIA_FINDING)])  # person 4: female
    check = result(run(sound_db, checks, ["condition_occurrence"]), checks[0], "condition_occurrence",
                   concept="4090861, 4025213")
    assert (check.status, check.num_violated, check.num_denominator, check.threshold) == ("fail", 1, 2, 2.0)


def test_plausible_unit_concept_ids_counts_numeric_results_with_unapproved_units(sound_db: Database, insert, result, run) -> None:
    concept = str(AST_MEASUREMENT)
    check = result(run(sound_db, ["plausibleUnitConceptIds"], ["measurement"]), "plausibleUnitConceptIds",
                   "measurement", concept=concept)
    assert (check.status, check.num_violated, check.num_denominator) == ("pass", 0, 1)

    def ast(measurement_id: int, unit: int, unit_source: str | None) -> dict:
        return {"measurement_id": measurement_id, "person_id": 2, "measurement_concept_id": AST_MEASUREMENT,
                "measurement_date": date(2020, 3, 1), "measurement_type_concept_id": EHR, "value_as_number": 5.0,
                "unit_concept_id": unit, "unit_source_value": unit_source}

    insert(sound_db, "measurement", [ast(2, MG_PER_DL, "mg/dL"), ast(3, MG_PER_DL, None), ast(4, AST_UNIT, "U/L")])
    check = result(run(sound_db, ["plausibleUnitConceptIds"], ["measurement"]), "plausibleUnitConceptIds",
                   "measurement", concept=concept)
    # Rows without unit_source_value are outside both counts, as in DQD.
    assert (check.status, check.num_violated, check.num_denominator, check.threshold) == ("fail", 1, 3, 5.0)
