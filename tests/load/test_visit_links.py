"""visit_occurrence_id never points at a visit that is not there: an Encounter that never arrived,
or one deleted later (explicitly or by vanishing from its file), leaves NULL in the rows that named it."""

from __future__ import annotations

import json
from pathlib import Path

from ctcl_map.pipeline import RunOptions, run_fhir2omop

PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "1961-09-30"}
ENCOUNTER = {"resourceType": "Encounter", "id": "e1", "status": "finished", "subject": {"reference": "Patient/p1"},
             "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
             "period": {"start": "2020-03-02T09:00:00Z", "end": "2020-03-02T10:00:00Z"}}
CONDITION = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"}, "encounter": {"reference": "Encounter/e1"},
             "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "C84.0"}]}, "onsetDateTime": "2020-03-02"}


def _write(path: Path, *entries: dict) -> Path:
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}))
    return path


def _put(resource: dict) -> dict:
    return {"resource": resource, "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}}


def _load(db, path: Path):
    return run_fhir2omop(db, RunOptions(inputs=[path], workers=1, oncology=False, incremental=True))


def _condition_visit(db):
    return db.query(f"SELECT visit_occurrence_id FROM {db.table('condition_occurrence')}")


def test_encounter_that_never_arrives_leaves_no_visit_link(tmp_path, fresh_db):
    db = fresh_db()
    report = _load(db, _write(tmp_path / "b.json", _put(PATIENT), _put(CONDITION)))
    assert report.visit_links_cleared == 1
    assert _condition_visit(db) == [(None,)]


def test_encounter_in_the_input_keeps_the_link(tmp_path, fresh_db):
    db = fresh_db()
    report = _load(db, _write(tmp_path / "b.json", _put(PATIENT), _put(ENCOUNTER), _put(CONDITION)))
    visit_ids = db.query(f"SELECT visit_occurrence_id FROM {db.table('visit_occurrence')}")
    assert report.visit_links_cleared == 0
    assert _condition_visit(db) == visit_ids and visit_ids[0][0] is not None


def test_encounter_deleted_later_clears_the_link_of_rows_left_unchanged(tmp_path, fresh_db):
    db = fresh_db()
    _load(db, _write(tmp_path / "day1.json", _put(PATIENT), _put(ENCOUNTER), _put(CONDITION)))
    report = _load(db, _write(tmp_path / "day2.json", {"request": {"method": "DELETE", "url": "Encounter/e1"}}))
    assert report.outcome.deleted == 1 and report.visit_links_cleared == 1
    assert _condition_visit(db) == [(None,)]


def test_encounter_gone_from_a_reexported_bundle_clears_the_link(tmp_path, fresh_db):
    db = fresh_db()
    bundle = _write(tmp_path / "p1.json", _put(PATIENT), _put(ENCOUNTER), _put(CONDITION))
    _load(db, bundle)
    report = _load(db, _write(bundle, _put(PATIENT), _put(CONDITION)))
    assert report.vanished_deleted == 1 and report.visit_links_cleared == 1
    assert _condition_visit(db) == [(None,)]


def test_a_link_cleared_because_the_encounter_had_not_arrived_is_restored_when_it_arrives(tmp_path, fresh_db):
    """Bulk exports come in pieces: the Condition first, its Encounter in a later run. The
    Condition's file is unchanged (not even read again), yet its row gets its visit back."""
    db = fresh_db()
    first = _load(db, _write(tmp_path / "day1.json", _put(PATIENT), _put(CONDITION)))
    assert first.visit_links_cleared == 1 and _condition_visit(db) == [(None,)]
    report = run_fhir2omop(db, RunOptions(inputs=[tmp_path / "day1.json", _write(tmp_path / "day2.json", _put(ENCOUNTER))],
                                          workers=1, oncology=False, incremental=True))
    assert report.files_skipped == 1 and report.visit_links_restored == 1
    visit_ids = db.query(f"SELECT visit_occurrence_id FROM {db.table('visit_occurrence')}")
    assert _condition_visit(db) == visit_ids and visit_ids[0][0] is not None
    assert db.query(f"SELECT COUNT(*) FROM {db.table('ctcl_cleared_link')}") == [(0,)]


def test_a_cleared_link_is_not_restored_over_a_newer_version_of_the_resource(tmp_path, fresh_db):
    db = fresh_db()
    _load(db, _write(tmp_path / "day1.json", _put(PATIENT), _put(CONDITION)))
    without_encounter = {key: value for key, value in CONDITION.items() if key != "encounter"}
    _load(db, _write(tmp_path / "day1.json", _put(PATIENT), _put(without_encounter)))  # the source dropped the link
    report = _load(db, _write(tmp_path / "day2.json", _put(ENCOUNTER)))
    assert report.visit_links_restored == 0
    assert _condition_visit(db) == [(None,)]
    assert db.query(f"SELECT COUNT(*) FROM {db.table('ctcl_cleared_link')}") == [(0,)]
