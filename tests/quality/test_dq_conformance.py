"""Conformance checks fail on deliberately broken CDMs (exact counts) and pass on the sound one."""

from __future__ import annotations

from datetime import date

from ctcl_map.store.database import Database

EHR = 32817  # Type Concept
MYCOSIS_FUNGOIDES = 4040380
SEZARY = 4041799
MOGAMULIZUMAB = 35200202  # RxNorm Ingredient


def condition_row(condition_id: int, person_id: int, concept_id: int, **extra) -> dict:
    row = {"condition_occurrence_id": condition_id, "person_id": person_id, "condition_concept_id": concept_id,
           "condition_start_date": date(2020, 3, 1), "condition_type_concept_id": EHR}
    row.update(extra)
    return row


def test_is_required_counts_null_required_values(sound_db: Database, result, run) -> None:
    assert result(run(sound_db, ["isRequired"], ["person"]), "isRequired", "person", "year_of_birth").status == "pass"
    sound_db.execute("UPDATE person SET year_of_birth = NULL WHERE person_id IN (1, 2)")
    check = result(run(sound_db, ["isRequired"], ["person"]), "isRequired", "person", "year_of_birth")
    assert (check.status, check.num_violated, check.num_denominator, check.pct_violated) == ("fail", 2, 4, 50.0)
    assert check.threshold == 0.0


def test_cdm_datatype_flags_non_integers_in_text_and_float_columns(sound_db: Database, result, run) -> None:
    sound_db.execute("ALTER TABLE person ALTER COLUMN year_of_birth TYPE VARCHAR")
    sound_db.execute("ALTER TABLE person ALTER COLUMN month_of_birth TYPE DOUBLE PRECISION")
    report = run(sound_db, ["cdmDatatype"], ["person"])
    assert result(report, "cdmDatatype", "person", "year_of_birth").status == "pass"  # '1950' is an integer
    sound_db.execute("UPDATE person SET year_of_birth = '1950.5' WHERE person_id = 1")
    sound_db.execute("UPDATE person SET year_of_birth = 'unknown' WHERE person_id = 2")
    sound_db.execute("UPDATE person SET month_of_birth = 3.0 WHERE person_id = 1")  # integral: fine, as in DQD
    sound_db.execute("UPDATE person SET month_of_birth = 2.5 WHERE person_id = 2")
    report = run(sound_db, ["cdmDatatype"], ["person"])
    year = result(report, "cdmDatatype", "person", "year_of_birth")
    month = result(report, "cdmDatatype", "person", "month_of_birth")
    assert (year.status, year.num_violated, year.num_denominator) == ("fail", 2, 4)
    assert (month.status, month.num_violated, month.num_denominator) == ("fail", 1, 4)


def test_is_primary_key_counts_every_row_sharing_a_key(sound_db: Database, insert, result, run) -> None:
    assert result(run(sound_db, ["isPrimaryKey"], ["person"]), "isPrimaryKey", "person").num_violated == 0
    insert(sound_db, "person", [{"person_id": 1, "gender_concept_id": 8532, "year_of_birth": 1990,
                                 "race_concept_id": 0, "ethnicity_concept_id": 0}])
    check = result(run(sound_db, ["isPrimaryKey"], ["person"]), "isPrimaryKey", "person", "person_id")
    assert (check.status, check.num_violated, check.num_denominator) == ("fail", 2, 5)


def test_is_foreign_key_counts_values_missing_from_the_referenced_table(sound_db: Database, insert, result, run) -> None:
    report = run(sound_db, ["isForeignKey"], ["condition_occurrence"])
    assert {r.status for r in report.results} <= {"pass", "not_applicable"}
    insert(sound_db, "condition_occurrence", [condition_row(5, 99, MYCOSIS_FUNGOIDES, visit_occurrence_id=77)])
    report = run(sound_db, ["isForeignKey"], ["condition_occurrence"])
    person = result(report, "isForeignKey", "condition_occurrence", "person_id")
    visit = result(report, "isForeignKey", "condition_occurrence", "visit_occurrence_id")
    concept = result(report, "isForeignKey", "condition_occurrence", "condition_concept_id")
    assert (person.status, person.num_violated, person.num_denominator) == ("fail", 1, 5)
    assert (visit.status, visit.num_violated, visit.num_denominator) == ("fail", 1, 5)
    assert (concept.status, concept.num_violated) == ("pass", 0)


def test_fk_domain_counts_concepts_of_another_domain_but_not_concept_zero(sound_db: Database, insert, result, run) -> None:
    assert result(run(sound_db, ["fkDomain"], ["condition_occurrence"]), "fkDomain", "condition_occurrence",
                  "condition_concept_id").status == "pass"
    insert(sound_db, "condition_occurrence", [condition_row(5, 1, MOGAMULIZUMAB), condition_row(6, 2, 0)])
    check = result(run(sound_db, ["fkDomain"], ["condition_occurrence"]), "fkDomain", "condition_occurrence",
                   "condition_concept_id")
    assert (check.status, check.num_violated, check.num_denominator) == ("fail", 1, 6)
    assert "CONDITION" in check.description


def test_fk_class_counts_drug_eras_that_are_not_ingredients(sound_db: Database, insert, result, run) -> None:
    assert result(run(sound_db, ["fkClass"], ["drug_era"]), "fkClass", "drug_era").status == "pass"
    insert(sound_db, "drug_era", [{"drug_era_id": 2, "person_id": 2, "drug_concept_id": MYCOSIS_FUNGOIDES,
                                   "drug_era_start_date": date(2020, 3, 1), "drug_era_end_date": date(2020, 3, 1)}])
    check = result(run(sound_db, ["fkClass"], ["drug_era"]), "fkClass", "drug_era", "drug_concept_id")
    assert (check.status, check.num_violated, check.num_denominator) == ("fail", 1, 2)


def test_is_standard_valid_concept_counts_invalid_and_non_standard_concepts(sound_db: Database, result, run) -> None:
    assert result(run(sound_db, ["isStandardValidConcept"], ["condition_occurrence"]), "isStandardValidConcept",
                  "condition_occurrence", "condition_concept_id").status == "pass"
    sound_db.execute(f"UPDATE concept SET invalid_reason = 'U' WHERE concept_id = {SEZARY}")  # 1 condition row
    check = result(run(sound_db, ["isStandardValidConcept"], ["condition_occurrence"]), "isStandardValidConcept",
                   "condition_occurrence", "condition_concept_id")
    assert (check.status, check.num_violated, check.num_denominator) == ("fail", 1, 4)
    # standard_concept NULL (a source concept): 3 more rows; DQD's literal SQL would miss these.
    sound_db.execute(f"UPDATE concept SET standard_concept = NULL WHERE concept_id = {MYCOSIS_FUNGOIDES}")
    check = result(run(sound_db, ["isStandardValidConcept"], ["condition_occurrence"]), "isStandardValidConcept",
                   "condition_occurrence", "condition_concept_id")
    assert (check.num_violated, check.num_denominator) == (4, 4)


def test_cdm_table_and_cdm_field_fail_when_missing_and_dependent_checks_become_not_applicable(
    sound_db: Database, result, run,
) -> None:
    report = run(sound_db, ["cdmTable", "cdmField", "isForeignKey"], ["note", "person"])
    assert {r.status for r in report.results if r.check_name in ("cdmTable", "cdmField")} == {"pass"}
    sound_db.execute("DROP TABLE note")
    sound_db.execute("ALTER TABLE person DROP COLUMN provider_id")
    report = run(sound_db, ["cdmTable", "cdmField", "isForeignKey"], ["note", "person"])
    table = result(report, "cdmTable", "note")
    field = result(report, "cdmField", "person", "provider_id")
    assert (table.status, table.num_violated, table.num_denominator) == ("fail", 1, 1)
    assert (field.status, field.num_violated, field.num_denominator) == ("fail", 1, 1)
    note_fk = result(report, "isForeignKey", "note", "person_id")
    assert (note_fk.status, note_fk.not_applicable_reason) == ("not_applicable", "Table NOTE does not exist.")
    provider_fk = result(report, "isForeignKey", "person", "provider_id")
    assert provider_fk.not_applicable_reason == "Field PERSON.PROVIDER_ID does not exist."
    assert report.exit_code == 1
