"""visit_occurrence_id never points at a visit that is not there: an Encounter that never arrived,
or one deleted later (explicitly or by vanishing from its file), leaves NULL in the rows that named it."""

from __future__ import annotations

import json
from pathlib import Path

from ctcl_map.pipeline import RunOptions, run_fhir2omop

# A patient, an encounter and a condition in it (tests/fixtures: shared with other tests).
PATIENT, ENCOUNTER, CONDITION = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "patient_encounter_condition.json").read_text())



def _load(db, path: Path):
    return run_fhir2omop(db, RunOptions(inputs=[path], workers=1, oncology=False, incremental=True))


def _condition_visit(db):
    return db.query(f"SELECT visit_occurrence_id FROM {db.table('condition_occurrence')}")


def test_encounter_that_never_arrives_leaves_no_visit_link(tmp_path, fresh_db, transaction_bundle):
    db = fresh_db()
    report = _load(db, transaction_bundle(tmp_path / "b.json", PATIENT, CONDITION))
    assert report.visit_links_cleared == 1
    assert _condition_visit(db) == [(None,)]


def test_encounter_in_the_input_keeps_the_link(tmp_path, fresh_db, transaction_bundle):
    db = fresh_db()
    report = _load(db, transaction_bundle(tmp_path / "b.json", PATIENT, ENCOUNTER, CONDITION))
    visit_ids = db.query(f"SELECT visit_occurrence_id FROM {db.table('visit_occurrence')}")
    assert report.visit_links_cleared == 0
    assert _condition_visit(db) == visit_ids and visit_ids[0][0] is not None


def test_encounter_deleted_later_clears_the_link_of_rows_left_unchanged(tmp_path, fresh_db, transaction_bundle):
    db = fresh_db()
    _load(db, transaction_bundle(tmp_path / "day1.json", PATIENT, ENCOUNTER, CONDITION))
    report = _load(db, transaction_bundle(tmp_path / "day2.json", {"request": {"method": "DELETE", "url": "Encounter/e1"}}))
    assert report.outcome.deleted == 1 and report.visit_links_cleared == 1
    assert _condition_visit(db) == [(None,)]


def test_encounter_gone_from_a_reexported_bundle_clears_the_link(tmp_path, fresh_db, transaction_bundle):
    db = fresh_db()
    bundle = transaction_bundle(tmp_path / "p1.json", PATIENT, ENCOUNTER, CONDITION)
    _load(db, bundle)
    report = _load(db, transaction_bundle(bundle, PATIENT, CONDITION))
    assert report.vanished_deleted == 1 and report.visit_links_cleared == 1
    assert _condition_visit(db) == [(None,)]


def test_a_link_cleared_because_the_encounter_had_not_arrived_is_restored_when_it_arrives(tmp_path, fresh_db, transaction_bundle):
    """Bulk exports come in pieces: the Condition first, its Encounter in a later run. The
    Condition's file is unchanged (not even read again), yet its row gets its visit back."""
    db = fresh_db()
    first = _load(db, transaction_bundle(tmp_path / "day1.json", PATIENT, CONDITION))
    assert first.visit_links_cleared == 1 and _condition_visit(db) == [(None,)]
    report = run_fhir2omop(db, RunOptions(inputs=[tmp_path / "day1.json", transaction_bundle(tmp_path / "day2.json", ENCOUNTER)],
                                          workers=1, oncology=False, incremental=True))
    assert report.files_skipped == 1 and report.visit_links_restored == 1
    visit_ids = db.query(f"SELECT visit_occurrence_id FROM {db.table('visit_occurrence')}")
    assert _condition_visit(db) == visit_ids and visit_ids[0][0] is not None
    assert db.query(f"SELECT COUNT(*) FROM {db.table('ctcl_cleared_link')}") == [(0,)]


def test_a_cleared_link_is_not_restored_over_a_newer_version_of_the_resource(tmp_path, fresh_db, transaction_bundle):
    db = fresh_db()
    _load(db, transaction_bundle(tmp_path / "day1.json", PATIENT, CONDITION))
    without_encounter = {key: value for key, value in CONDITION.items() if key != "encounter"}
    _load(db, transaction_bundle(tmp_path / "day1.json", PATIENT, without_encounter))  # the source dropped the link
    report = _load(db, transaction_bundle(tmp_path / "day2.json", ENCOUNTER))
    assert report.visit_links_restored == 0
    assert _condition_visit(db) == [(None,)]
    assert db.query(f"SELECT COUNT(*) FROM {db.table('ctcl_cleared_link')}") == [(0,)]
