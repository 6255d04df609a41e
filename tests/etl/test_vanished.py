"""A resource gone from every file that held it is deleted, once such a file is read again cleanly.

A re-exported Bundle is the source's current state of what it holds: a Condition missing from it
was removed (or entered in error) at the source. A resource that moved to another file, or that
another (unchanged) file still holds, stays; so does everything with --keep-vanished (delta feeds
written over the same file names) and everything of a file that did not read cleanly.
"""

from __future__ import annotations

import json
from pathlib import Path

from ctcl_map.pipeline import RunOptions, run_fhir2omop

PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-04-12"}


def _condition(condition_id: str, icd10: str, onset: str) -> dict:
    return {"resourceType": "Condition", "id": condition_id, "subject": {"reference": "Patient/p1"},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": icd10}]}, "onsetDateTime": onset}


MF = _condition("c-mf", "C84.0", "2019-02-01")  # mycosis fungoides
SS = _condition("c-ss", "C84.1", "2021-06-01")  # Sezary syndrome, later


def _bundle(path: Path, *resources: dict | str) -> Path:
    """A collection Bundle file; a str stands for an entry that is not a resource."""
    entries = [{"resource": r} if isinstance(r, dict) else {"resource": {"no": r}} for r in resources]
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}))
    return path


def _load(db, *inputs: Path, incremental: bool = True, delete_vanished: bool = True):
    return run_fhir2omop(db, RunOptions(inputs=list(inputs), incremental=incremental, workers=1, oncology=False,
                                        delete_vanished=delete_vanished))


def _loaded(fresh_db, tmp_path: Path, file_name: str, *resources: dict) -> tuple:
    """A fresh CDM with one Bundle file loaded from folder tmp_path/in: (db, folder)."""
    folder = tmp_path / "in"
    folder.mkdir()
    _bundle(folder / file_name, *resources)
    db = fresh_db()
    _load(db, folder)
    return db, folder


def _condition_codes(db) -> list[str]:
    return sorted(v for (v,) in db.query(f"SELECT condition_source_value FROM {db.table('condition_occurrence')}"))


def test_condition_missing_from_a_reexported_bundle_is_deleted_as_if_never_loaded(tmp_path, cdm_snapshot, fresh_db):
    folder = tmp_path / "in"
    folder.mkdir()
    bundle = _bundle(folder / "patient-p1.json", PATIENT, MF, SS)
    db = fresh_db(str(tmp_path / "cdm.duckdb"))
    _load(db, folder)
    assert _condition_codes(db) == ["C84.0", "C84.1"]

    _bundle(bundle, PATIENT, MF)  # the source removed the Sezary syndrome diagnosis
    report = _load(db, folder)
    assert report.vanished_deleted == 1 and report.outcome.deleted == 1
    assert report.to_dict()["deleted_as_vanished"] == 1
    state = db.query(f"SELECT status, source_file FROM {db.table('ctcl_resource_state')} WHERE resource_key = 'Condition/c-ss'")
    assert state == [("deleted", str(bundle))]

    # Exactly the rows (eras and observation period re-derived) of loading the new export alone.
    alone = fresh_db(str(tmp_path / "alone.duckdb"))
    _load(alone, _bundle(tmp_path / "patient-p1.json", PATIENT, MF))
    assert cdm_snapshot(db) == cdm_snapshot(alone)
    assert _condition_codes(db) == ["C84.0"]

    report = _load(db, folder, incremental=False)  # read again: nothing more to delete
    assert report.vanished_deleted == 0 and report.outcome.deleted == 0


def test_a_resource_moved_to_another_file_is_kept_whichever_file_is_read_first(tmp_path, fresh_db):
    for gains, loses in (("a.json", "b.json"), ("b.json", "a.json")):
        folder = tmp_path / gains.replace(".json", "-first")
        folder.mkdir()
        _bundle(folder / loses, PATIENT, MF, SS)
        _bundle(folder / gains, PATIENT)
        db = fresh_db()
        _load(db, folder)
        _bundle(folder / loses, PATIENT, MF)
        _bundle(folder / gains, PATIENT, SS)
        report = _load(db, folder)
        assert report.vanished_deleted == 0, gains
        assert _condition_codes(db) == ["C84.0", "C84.1"], gains
        db.close()


def test_a_resource_still_in_an_unchanged_file_is_kept(tmp_path, fresh_db):
    folder = tmp_path / "in"
    folder.mkdir()
    _bundle(folder / "a.json", PATIENT, MF, SS)
    _bundle(folder / "b.json", PATIENT, SS)  # the same Condition in a second export
    db = fresh_db()
    _load(db, folder)
    _bundle(folder / "a.json", PATIENT, MF)  # a.json no longer holds it; b.json (unchanged, skipped) does
    report = _load(db, folder)
    assert report.files_skipped == 1
    assert report.vanished_deleted == 0
    assert _condition_codes(db) == ["C84.0", "C84.1"]

    _bundle(folder / "b.json", PATIENT)  # now no file holds it
    report = _load(db, folder)
    assert report.vanished_deleted == 1
    assert _condition_codes(db) == ["C84.0"]


def test_keep_vanished_leaves_resources_missing_from_a_delta_file(tmp_path, fresh_db):
    db, folder = _loaded(fresh_db, tmp_path, "delta.json", PATIENT, MF, SS)
    _bundle(folder / "delta.json", {**MF, "onsetDateTime": "2019-03-01"})  # tonight's delta: one changed resource
    report = _load(db, folder, delete_vanished=False)
    assert report.vanished_deleted == 0 and report.outcome.deleted == 0
    assert _condition_codes(db) == ["C84.0", "C84.1"]
    assert db.query(f"SELECT COUNT(*) FROM {db.table('person')}")[0][0] == 1


def test_a_file_with_an_unreadable_entry_deletes_nothing(tmp_path, fresh_db):
    """The entry that cannot be read may be the resource that seems gone."""
    db, folder = _loaded(fresh_db, tmp_path, "p1.json", PATIENT, MF, SS)
    _bundle(folder / "p1.json", PATIENT, MF, "garbled")
    report = _load(db, folder)
    assert report.quarantined == 1 and report.vanished_deleted == 0
    assert _condition_codes(db) == ["C84.0", "C84.1"]


def test_resources_without_an_id_are_not_duplicated_when_entries_shift(tmp_path, fresh_db):
    """An id-less resource is keyed by its position; after a re-export moves it, the old key is
    gone from the file, so its rows go with it instead of staying beside the new ones."""
    anonymous = {key: value for key, value in SS.items() if key != "id"}
    db, folder = _loaded(fresh_db, tmp_path, "p1.json", PATIENT, anonymous)
    _bundle(folder / "p1.json", PATIENT, MF, anonymous)  # a new entry before it
    report = _load(db, folder)
    assert report.vanished_deleted == 1
    assert _condition_codes(db) == ["C84.0", "C84.1"]


def test_a_cdm_loaded_before_file_occurrences_were_kept_learns_them_from_resource_state(tmp_path, fresh_db):
    """Upgrading: each resource is taken to stand in the file that last loaded it."""
    db, folder = _loaded(fresh_db, tmp_path, "p1.json", PATIENT, MF, SS)
    db.execute(f"DELETE FROM {db.table('ctcl_resource_file')}")  # as a CDM of the earlier version
    db.execute(f"DELETE FROM {db.table('ctcl_settings')} WHERE name = 'ddl_digest'")
    _bundle(folder / "p1.json", PATIENT, MF)
    report = _load(db, folder)
    assert report.vanished_deleted == 1
    assert _condition_codes(db) == ["C84.0"]
