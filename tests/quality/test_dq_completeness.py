"""Completeness checks fail on deliberately broken CDMs (exact counts) and pass on the sound one."""

from __future__ import annotations

from datetime import date

from ctcl_map.store.database import Database

EHR = 32817  # Type Concept
AST_MEASUREMENT = 3013721  # DQD: plausibleUnitConceptIds 8645,8923


def unmapped_condition(condition_id: int, person_id: int, source_value: str | None) -> dict:
    return {"condition_occurrence_id": condition_id, "person_id": person_id, "condition_concept_id": 0,
            "condition_start_date": date(2020, 3, 1), "condition_type_concept_id": EHR,
            "condition_source_value": source_value}


def test_standard_concept_record_completeness_counts_concept_zero_against_threshold(sound_db: Database, insert, result, run) -> None:
    check = result(run(sound_db, ["standardConceptRecordCompleteness"], ["condition_occurrence"]),
                   "standardConceptRecordCompleteness", "condition_occurrence", "condition_concept_id")
    assert (check.status, check.num_violated, check.threshold) == ("pass", 0, 5.0)
    insert(sound_db, "condition_occurrence", [unmapped_condition(5, 1, "L99")])
    check = result(run(sound_db, ["standardConceptRecordCompleteness"], ["condition_occurrence"]),
                   "standardConceptRecordCompleteness", "condition_occurrence", "condition_concept_id")
    assert (check.status, check.num_violated, check.num_denominator, check.pct_violated) == ("fail", 1, 5, 20.0)


def test_unit_completeness_only_counts_measurements_with_a_numeric_value(sound_db: Database, insert, result, run) -> None:
    rows = [
        {"measurement_id": 2, "person_id": 2, "measurement_concept_id": AST_MEASUREMENT,
         "measurement_date": date(2020, 3, 1), "measurement_type_concept_id": EHR,
         "value_as_number": number, "unit_concept_id": 0}
        for number in (None, 12.0)
    ]
    rows[1]["measurement_id"] = 3
    insert(sound_db, "measurement", rows)
    check = result(run(sound_db, ["standardConceptRecordCompleteness"], ["measurement"]),
                   "standardConceptRecordCompleteness", "measurement", "unit_concept_id")
    # 3 rows, 2 with a value; of those, 1 has unit 0.
    assert (check.status, check.num_violated, check.num_denominator) == ("fail", 1, 2)


def test_source_concept_record_completeness_counts_source_concept_zero(sound_db: Database, result, run) -> None:
    sound_db.execute("UPDATE condition_occurrence SET condition_source_concept_id = 0 WHERE condition_occurrence_id = 1")
    check = result(run(sound_db, ["sourceConceptRecordCompleteness"], ["condition_occurrence"]),
                   "sourceConceptRecordCompleteness", "condition_occurrence", "condition_source_concept_id")
    assert (check.status, check.num_violated, check.num_denominator, check.threshold) == ("fail", 1, 4, 10.0)


def test_source_value_completeness_counts_distinct_unmapped_source_values_with_null_as_one(
    sound_db: Database, insert, result, run,
) -> None:
    check = result(run(sound_db, ["sourceValueCompleteness"], ["condition_occurrence"]),
                   "sourceValueCompleteness", "condition_occurrence", "condition_source_value")
    assert (check.status, check.num_violated, check.num_denominator) == ("pass", 0, 2)  # C84.0, C84.1
    insert(sound_db, "condition_occurrence", [unmapped_condition(5, 1, "L99"), unmapped_condition(6, 2, "L99"),
                                              unmapped_condition(7, 3, None)])
    check = result(run(sound_db, ["sourceValueCompleteness"], ["condition_occurrence"]),
                   "sourceValueCompleteness", "condition_occurrence", "condition_source_value")
    # unmapped: L99, NULL -> 2; distinct values: C84.0, C84.1, L99, NULL -> 4
    assert (check.status, check.num_violated, check.num_denominator, check.pct_violated) == ("fail", 2, 4, 50.0)


def test_measure_value_completeness_thresholds_are_zero_for_required_and_100_for_optional_fields(
    sound_db: Database, result, run,
) -> None:
    report = run(sound_db, ["measureValueCompleteness"], ["person"])
    month = result(report, "measureValueCompleteness", "person", "month_of_birth")
    assert (month.status, month.num_violated, month.num_denominator, month.threshold) == ("pass", 4, 4, 100.0)
    sound_db.execute("UPDATE person SET year_of_birth = NULL WHERE person_id = 4")
    year = result(run(sound_db, ["measureValueCompleteness"], ["person"]), "measureValueCompleteness", "person",
                  "year_of_birth")
    assert (year.status, year.num_violated, year.num_denominator, year.threshold) == ("fail", 1, 4, 0.0)


def test_measure_person_completeness_counts_persons_without_records(sound_db: Database, result, run) -> None:
    sound_db.execute("DELETE FROM observation_period WHERE person_id = 4")
    sound_db.execute("DELETE FROM visit_occurrence WHERE person_id IN (1, 2, 3)")
    report = run(sound_db, ["measurePersonCompleteness"], ["observation_period", "visit_occurrence"])
    periods = result(report, "measurePersonCompleteness", "observation_period")
    visits = result(report, "measurePersonCompleteness", "visit_occurrence")
    assert (periods.status, periods.num_violated, periods.num_denominator, periods.threshold) == ("fail", 1, 4, 0.0)
    # 75% of persons lack a visit, DQD tolerates up to 95%.
    assert (visits.status, visits.num_violated, visits.pct_violated, visits.threshold) == ("pass", 3, 75.0, 95.0)


def test_measure_condition_era_completeness_counts_persons_with_conditions_but_no_era(sound_db: Database, result, run) -> None:
    sound_db.execute("DELETE FROM condition_era WHERE person_id = 2")
    check = result(run(sound_db, ["measureConditionEraCompleteness"]), "measureConditionEraCompleteness",
                   "condition_era")
    assert (check.status, check.num_violated, check.num_denominator) == ("fail", 1, 4)
    # DQD's special rule: not applicable when CONDITION_OCCURRENCE (not CONDITION_ERA) is empty.
    sound_db.execute("DELETE FROM condition_occurrence")
    check = result(run(sound_db, ["measureConditionEraCompleteness"]), "measureConditionEraCompleteness",
                   "condition_era")
    assert (check.status, check.not_applicable_reason) == ("not_applicable", "Table CONDITION_OCCURRENCE is empty.")



def test_condition_era_completeness_ignores_unmapped_conditions_as_dqd_2_8_does(sound_db: Database, insert, result, run) -> None:
    # A person whose only condition is unmapped (concept 0) gets no era: DQD 2.8 does not count them.
    sound_db.execute("INSERT INTO person (person_id, gender_concept_id, year_of_birth, race_concept_id, "
                     "ethnicity_concept_id) VALUES (99, 8507, 1950, 8527, 38003564)")
    insert(sound_db, "condition_occurrence", [unmapped_condition(99, 99, "L99")])
    check = result(run(sound_db, ["measureConditionEraCompleteness"], ["condition_era"]),
                   "measureConditionEraCompleteness", "condition_era")
    mapped = sound_db.query("SELECT COUNT(DISTINCT person_id) FROM condition_occurrence WHERE condition_concept_id <> 0")
    assert (check.status, check.num_violated, check.num_denominator) == ("pass", 0, mapped[0][0])
