"""`--full` and incremental runs end in the same CDM, transaction DELETEs included: reading an
unchanged file again (what --full does and an incremental run skips) changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctcl_map.pipeline import RunOptions, run_fhir2omop

PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1960-01-01"}
CONDITION = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
             "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "C84.0"}]}, "onsetDateTime": "2020-03-02"}
OTHER = {**CONDITION, "id": "c2", "onsetDateTime": "2021-05-05"}


def _bundle(path: Path, *entries: dict) -> Path:
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}))
    return path


def _put(resource: dict) -> dict:
    return {"resource": resource, "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}}


DELETE_C1 = {"request": {"method": "DELETE", "url": "Condition/c1"}}


def _run(db, folder: Path, incremental: bool):
    return run_fhir2omop(db, RunOptions(inputs=[folder], oncology=False, incremental=incremental))


def _state(db, cdm_snapshot) -> dict:
    return {"cdm": cdm_snapshot(db), "status": db.query(f"SELECT resource_key, status FROM {db.table('ctcl_resource_state')} ORDER BY 1")}


@pytest.mark.parametrize("change", ["nothing", "add_to_the_file_that_held_it", "new_version_after_the_delete"])
def test_full_and_incremental_reruns_agree_after_a_transaction_delete(tmp_path, change, fresh_db, cdm_snapshot):
    """a.json holds c1, b.json (read after it) deletes it. Then a.json changes (or not); the
    incremental run skips the unchanged b.json, --full reads it again: the CDMs must agree."""
    ends = {}
    for mode in ("incremental", "full"):
        folder = tmp_path / mode
        folder.mkdir()
        _bundle(folder / "a.json", _put(PATIENT), _put(CONDITION))
        _bundle(folder / "b.json", DELETE_C1)
        db = fresh_db()
        _run(db, folder, incremental=True)
        assert db.query(f"SELECT COUNT(*) FROM {db.table('condition_occurrence')}") == [(0,)]
        if change == "add_to_the_file_that_held_it":
            _bundle(folder / "a.json", _put(PATIENT), _put(CONDITION), _put(OTHER))
        elif change == "new_version_after_the_delete":
            _bundle(folder / "a.json", _put(PATIENT), _put({**CONDITION, "onsetDateTime": "2020-04-04"}))
        report = _run(db, folder, incremental=mode == "incremental")
        ends[mode] = _state(db, cdm_snapshot)
        if change == "nothing" and mode == "full":
            assert report.loaded_resources == 0 and report.outcome.deleted == 0  # reading unchanged files again is a no-op
        db.close()
    assert ends["full"] == ends["incremental"]
    conditions = [row["condition_start_date"] for row in ends["full"]["cdm"]["condition_occurrence"]]
    # c1 stays deleted unless a new version of it came after the DELETE; c2 is new.
    assert conditions == {"nothing": [], "add_to_the_file_that_held_it": ["2021-05-05"],
                          "new_version_after_the_delete": ["2020-04-04"]}[change]
