"""End to end on real third-party FHIR: the committed Synthea sample always, ../shared when present."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[3] / "shared"
EVENT_DATES = {
    "visit_occurrence": ("visit_start_date", "visit_end_date"),
    "condition_occurrence": ("condition_start_date", "condition_end_date"),
    "drug_exposure": ("drug_exposure_start_date", "drug_exposure_end_date"),
    "procedure_occurrence": ("procedure_date", "procedure_end_date"),
    "measurement": ("measurement_date", "measurement_date"),
    "observation": ("observation_date", "observation_date"),
    "death": ("death_date", "death_date"),
}
CONCEPT_COLUMNS = {
    "person": ("gender_concept_id", "race_concept_id", "ethnicity_concept_id"),
    "visit_occurrence": ("visit_concept_id", "visit_type_concept_id"),
    "condition_occurrence": ("condition_concept_id", "condition_type_concept_id", "condition_source_concept_id"),
    "drug_exposure": ("drug_concept_id", "drug_type_concept_id", "route_concept_id", "drug_source_concept_id"),
    "procedure_occurrence": ("procedure_concept_id", "procedure_type_concept_id", "procedure_source_concept_id"),
    "measurement": ("measurement_concept_id", "measurement_type_concept_id", "value_as_concept_id", "unit_concept_id"),
    "observation": ("observation_concept_id", "observation_type_concept_id", "value_as_concept_id", "unit_concept_id"),
    "death": ("death_type_concept_id",),
    "observation_period": ("period_type_concept_id",),
}


def check_cdm_integrity(db, report) -> None:
    t = db.table
    for table, written in report.outcome.rows_by_table.items():
        assert db.query(f"SELECT COUNT(*) FROM {t(table)}")[0][0] == written, table
    for table in EVENT_DATES:
        orphans = db.query(f"SELECT COUNT(*) FROM {t(table)} WHERE person_id NOT IN (SELECT person_id FROM {t('person')})")
        assert orphans == [(0,)], table
        if table not in ("visit_occurrence", "death"):
            dangling_visits = db.query(
                f"SELECT COUNT(*) FROM {t(table)} WHERE visit_occurrence_id IS NOT NULL "
                f"AND visit_occurrence_id NOT IN (SELECT visit_occurrence_id FROM {t('visit_occurrence')})")
            assert dangling_visits == [(0,)], table
    for table, concept_columns in CONCEPT_COLUMNS.items():
        for column in concept_columns:
            unknown = db.query(
                f"SELECT COUNT(*) FROM {t(table)} WHERE {column} IS NOT NULL AND {column} <> 0 "
                f"AND {column} NOT IN (SELECT concept_id FROM {t('concept')})")
            assert unknown == [(0,)], f"{table}.{column}"
    for table, (start, end) in EVENT_DATES.items():
        outside = db.query(
            f"SELECT COUNT(*) FROM {t(table)} e WHERE NOT EXISTS (SELECT 1 FROM {t('observation_period')} op "
            f"WHERE op.person_id = e.person_id AND e.{start} >= op.observation_period_start_date "
            f"AND COALESCE(e.{end}, e.{start}) <= op.observation_period_end_date)")
        assert outside == [(0,)], f"{table} rows outside their person's observation period"


def test_committed_synthea_sample_loads_consistently(db, load):
    report = load(db, TESTS / "data" / "synthea", oncology=True)
    assert report.outcome.resources_loaded["Patient"] == 2
    assert db.query(f"SELECT COUNT(*) FROM {db.table('death')}") == [(1,)]
    assert report.quarantined == 0
    check_cdm_integrity(db, report)


@pytest.mark.shared_data
def test_all_synthea_bundles(fresh_db, load):
    bundles = SHARED / "testdata" / "synthea-r4-bundles"
    if not bundles.is_dir():
        pytest.skip(f"{bundles} is absent (the shared test data is not beside this checkout)")
    db = fresh_db()
    report = load(db, bundles, oncology=True)
    assert report.files == 113
    assert report.outcome.resources_loaded["Patient"] == 111
    assert db.query(f"SELECT COUNT(*) FROM {db.table('death')}") == [(57,)]
    assert report.quarantined == 0
    check_cdm_integrity(db, report)
    db.close()


@pytest.mark.shared_data
def test_synthea_bulk_ndjson_with_relative_references(fresh_db, load):
    folder = SHARED / "testdata" / "synthea-bulk-ndjson" / "10-patients"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent (the shared test data is not beside this checkout)")
    db = fresh_db()
    report = load(db, folder, oncology=True)
    assert report.outcome.resources_loaded["Patient"] == 13
    assert db.query(f"SELECT COUNT(*) FROM {db.table('death')}") == [(3,)]
    check_cdm_integrity(db, report)
    db.close()


@pytest.mark.shared_data
def test_mcode_and_us_core_examples_load_without_crashing(fresh_db, load):
    """Deliberately invalid fixtures are among them: they must be quarantined, not crash the run."""
    for name in ("mcode-extraction-fixtures", "us-core-examples"):
        folder = SHARED / "testdata" / name
        if not folder.is_dir():
            pytest.skip(f"{folder} is absent (the shared test data is not beside this checkout)")
        db = fresh_db()
        report = load(db, folder)
        assert report.resources_read > 0
        check_cdm_integrity(db, report)
        db.close()
