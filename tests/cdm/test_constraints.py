"""The official CDM v5.4 indices and foreign keys (`ctcl-map constraints`), and every load, update
and delete path with them on: on PostgreSQL for real, and the indices on DuckDB."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctcl_map.pipeline import RunOptions, run_fhir2omop
from ctcl_map.store.constraints import apply_foreign_keys, apply_indices, foreign_key_statements, index_statements

TESTS = Path(__file__).resolve().parents[1]
# A patient, an encounter and a condition in it (tests/fixtures: shared with other tests).
PATIENT, ENCOUNTER, CONDITION = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "patient_encounter_condition.json").read_text())



# Lines of OHDSI/CommonDataModel inst/ddl/5.4/postgresql/OMOPCDM_postgresql_5.4_constraints.sql, verbatim.
OFFICIAL_FOREIGN_KEYS = [
    "ALTER TABLE @cdmDatabaseSchema.person  ADD CONSTRAINT fpk_person_gender_concept_id FOREIGN KEY (gender_concept_id) REFERENCES @cdmDatabaseSchema.CONCEPT (CONCEPT_ID);",
    "ALTER TABLE @cdmDatabaseSchema.visit_occurrence  ADD CONSTRAINT fpk_visit_occurrence_preceding_visit_occurrence_id FOREIGN KEY (preceding_visit_occurrence_id) REFERENCES @cdmDatabaseSchema.VISIT_OCCURRENCE (VISIT_OCCURRENCE_ID);",
    "ALTER TABLE @cdmDatabaseSchema.visit_detail  ADD CONSTRAINT fpk_visit_detail_parent_visit_detail_id FOREIGN KEY (parent_visit_detail_id) REFERENCES @cdmDatabaseSchema.VISIT_DETAIL (VISIT_DETAIL_ID);",
    "ALTER TABLE @cdmDatabaseSchema.condition_occurrence  ADD CONSTRAINT fpk_condition_occurrence_visit_occurrence_id FOREIGN KEY (visit_occurrence_id) REFERENCES @cdmDatabaseSchema.VISIT_OCCURRENCE (VISIT_OCCURRENCE_ID);",
    "ALTER TABLE @cdmDatabaseSchema.measurement  ADD CONSTRAINT fpk_measurement_meas_event_field_concept_id FOREIGN KEY (meas_event_field_concept_id) REFERENCES @cdmDatabaseSchema.CONCEPT (CONCEPT_ID);",
]


def _load(db, path: Path):
    return run_fhir2omop(db, RunOptions(inputs=[path], workers=1, oncology=True, incremental=True))


def test_foreign_keys_are_the_official_statements_and_counts():
    generated = {statement + ";" for _, statement in foreign_key_statements("@cdmDatabaseSchema", deferrable=False)}
    assert len(generated) == 176
    assert set(OFFICIAL_FOREIGN_KEYS) <= generated
    assert len(index_statements("duckdb", None)) == 70
    assert sum("CLUSTER" in s for _, s in index_statements("postgresql", "cdm")) == 32
    assert all("CLUSTER" not in s for _, s in index_statements("duckdb", None))


def _update_and_delete_paths(db, tmp_path: Path, transaction_bundle) -> None:
    """Update an Encounter others refer to, delete it, let it vanish: each commits and stays consistent."""
    _load(db, transaction_bundle(tmp_path / "day1.json", PATIENT, ENCOUNTER, CONDITION))
    moved = dict(ENCOUNTER, period={"start": "2020-03-03T09:00:00Z", "end": "2020-03-03T10:00:00Z"})
    report = _load(db, transaction_bundle(tmp_path / "day2.json", moved))
    assert report.outcome.resources_loaded["Encounter"] == 1
    condition_visit = f"SELECT visit_occurrence_id FROM {db.table('condition_occurrence')} WHERE condition_source_value = 'C84.0'"
    (visit_id,), = db.query(condition_visit)
    assert visit_id is not None
    assert [str(d) for (d,) in db.query(f"SELECT visit_start_date FROM {db.table('visit_occurrence')} "
                                        "WHERE visit_occurrence_id = ?", [visit_id])] == ["2020-03-03"]
    report = _load(db, transaction_bundle(tmp_path / "day3.json", {"request": {"method": "DELETE", "url": "Encounter/e1"}}))
    assert report.outcome.deleted == 1
    assert db.query(condition_visit) == [(None,)]
    report = _load(db, transaction_bundle(tmp_path / "day4.json", {"request": {"method": "DELETE", "url": "Patient/p1"}}))
    assert report.outcome.deleted == 1


@pytest.mark.postgres
def test_postgresql_with_the_official_constraints_loads_updates_and_deletes(tmp_path, drop_schema, fresh_db, load, postgres_or_skip,
                                                                            transaction_bundle):
    url, schema = postgres_or_skip("ctcl_fk")
    db = fresh_db(url, cdm_schema=schema)
    try:
        load(db, TESTS / "data" / "synthea")  # third-party data first: the keys must hold on it
        indices, keys = apply_indices(db), apply_foreign_keys(db)
        assert (len(indices.created), len(keys.created)) == (70, 176)
        assert db.query("SELECT COUNT(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
                        "WHERE c.contype = 'f' AND n.nspname = ?", [schema]) == [(176,)]
        again = apply_indices(db), apply_foreign_keys(db)
        assert (len(again[0].present), len(again[1].present), again[1].created) == (70, 176, [])
        load(db, TESTS / "data" / "synthea")  # a re-run over the same data
        _update_and_delete_paths(db, tmp_path, transaction_bundle)
    finally:
        db.close()
        drop_schema(schema)


@pytest.mark.postgres
def test_official_non_deferrable_keys_break_an_update_until_made_deferrable(tmp_path, drop_schema, fresh_db, postgres_or_skip, transaction_bundle):
    """The official script's keys (not deferrable) fail the update of a referenced Encounter;
    `ctcl-map constraints` turns keys already present into deferrable ones, and the update commits."""
    url, schema = postgres_or_skip("ctcl_fk_official")
    db = fresh_db(url, cdm_schema=schema)
    try:
        _load(db, transaction_bundle(tmp_path / "day1.json", PATIENT, ENCOUNTER, CONDITION))
        with db.transaction():
            for _, statement in foreign_key_statements(schema, deferrable=False):
                db.execute(statement)
        moved = dict(ENCOUNTER, period={"start": "2020-03-03T09:00:00Z", "end": "2020-03-03T10:00:00Z"})
        with pytest.raises(Exception, match="foreign key"):
            _load(db, transaction_bundle(tmp_path / "day2.json", moved))
        keys = apply_foreign_keys(db)
        assert (len(keys.present), keys.created) == (176, [])
        report = _load(db, transaction_bundle(tmp_path / "day2.json", moved))
        assert report.outcome.resources_loaded["Encounter"] == 1
    finally:
        db.close()
        drop_schema(schema)


def test_duckdb_with_the_official_indices_loads_updates_and_deletes(tmp_path, fresh_db, load, transaction_bundle):
    db = fresh_db()
    load(db, TESTS / "data" / "synthea")
    indices, keys = apply_indices(db), apply_foreign_keys(db)
    assert len(indices.created) == 70 and keys.created == [] and "DuckDB cannot add a foreign key" in keys.skipped[0]
    assert db.query("SELECT COUNT(*) FROM duckdb_indexes() WHERE index_name LIKE 'idx_%'") == [(70,)]
    load(db, TESTS / "data" / "synthea")
    _update_and_delete_paths(db, tmp_path, transaction_bundle)
