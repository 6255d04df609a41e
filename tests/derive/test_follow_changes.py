"""Eras and observation periods follow every change, yet are rebuilt only where it can matter:
condition eras when conditions (or the person) changed, drug eras when drugs, deaths (or the
person) changed, observation periods for any change of the person's rows."""

from __future__ import annotations

import json
from pathlib import Path

from ctcl_map.pipeline import RunOptions, run_fhir2omop

PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1948-07-01"}
CONDITION = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
             "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "C84.0"}]}, "onsetDateTime": "2018-05-02"}
LAB = {"resourceType": "Observation", "id": "o1", "status": "final", "subject": {"reference": "Patient/p1"},
       "code": {"coding": [{"system": "http://loinc.org", "code": "26474-7"}]}, "effectiveDateTime": "2019-01-10",
       "valueQuantity": {"value": 1.1, "unit": "10*3/uL", "system": "http://unitsofmeasure.org", "code": "10*3/uL"}}


def _load(db, path: Path, *resources: dict):
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}))
    return run_fhir2omop(db, RunOptions(inputs=[path], workers=1, oncology=False, incremental=True))


def _eras(db) -> list[tuple]:
    return db.query(f"SELECT condition_era_id, condition_era_start_date FROM {db.table('condition_era')}")


def _period(db) -> list[tuple]:
    return db.query(f"SELECT observation_period_start_date, observation_period_end_date FROM {db.table('observation_period')}")


def test_a_lab_change_moves_the_observation_period_and_leaves_the_condition_era(tmp_path, fresh_db):
    db = fresh_db()
    bundle = tmp_path / "p1.json"
    _load(db, bundle, PATIENT, CONDITION, LAB)
    eras = _eras(db)
    assert [str(start) for _, start in eras] == ["2018-05-02"]

    report = _load(db, bundle, PATIENT, CONDITION, {**LAB, "effectiveDateTime": "2021-03-04"})
    assert report.derived == {"observation_period": 1, "condition_era": 0, "drug_era": 0}
    assert [(str(a), str(b)) for a, b in _period(db)] == [("2018-05-02", "2021-03-04")]
    assert _eras(db) == eras  # not rebuilt: same row, same id


def test_a_condition_change_rebuilds_the_condition_era(tmp_path, fresh_db):
    db = fresh_db()
    bundle = tmp_path / "p1.json"
    _load(db, bundle, PATIENT, CONDITION, LAB)
    report = _load(db, bundle, PATIENT, {**CONDITION, "onsetDateTime": "2017-11-20"}, LAB)
    assert report.derived["condition_era"] == 1
    assert [str(start) for _, start in _eras(db)] == ["2017-11-20"]
    assert [(str(a), str(b)) for a, b in _period(db)] == [("2017-11-20", "2019-01-10")]


def test_a_deleted_patient_takes_its_derived_rows_along(tmp_path, fresh_db):
    db = fresh_db()
    _load(db, tmp_path / "p1.json", PATIENT, CONDITION, LAB)
    (tmp_path / "delete.json").write_text(json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "DELETE", "url": f"{kind}/{rid}"}}
        for kind, rid in (("Patient", "p1"), ("Condition", "c1"), ("Observation", "o1"))]}))
    run_fhir2omop(db, RunOptions(inputs=[tmp_path / "delete.json"], workers=1, oncology=False))
    assert _eras(db) == [] and _period(db) == []
