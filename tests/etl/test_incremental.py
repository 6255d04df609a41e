"""Incremental runs: unchanged files are skipped unparsed; the result equals reading everything."""

from __future__ import annotations

import json
from pathlib import Path

import ctcl_map.converters.parallel as parallel
from ctcl_map.pipeline import RunOptions, run_fhir2omop

TESTS = Path(__file__).resolve().parents[1]


def _change_one_observation(path: Path) -> str:
    """A new value for the first Observation with a valueQuantity; returns its id."""
    bundle = json.loads(path.read_text())
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Observation" and "valueQuantity" in resource:
            resource["valueQuantity"]["value"] = 12345.5
            path.write_text(json.dumps(bundle))
            return resource["id"]
    raise AssertionError("no Observation with a valueQuantity")


def _without_derived_ids(snapshot: dict) -> dict:
    derived = ("condition_era", "drug_era")  # observation_period_id is the person's: stable
    return {table: sorted((row[1:] if table in derived else row for row in rows), key=repr) for table, rows in snapshot.items()}


def _run(db, inputs: Path, incremental: bool):
    return run_fhir2omop(db, RunOptions(inputs=[inputs], incremental=incremental, workers=1, batch_size=200))


def test_incremental_run_parses_only_new_and_changed_files_and_equals_a_full_run(tmp_path, monkeypatch, database_snapshot, fresh_db, make_inputs, replicate):
    inputs = make_inputs(tmp_path / "in", copies=3)
    files_total = len(list(inputs.iterdir()))
    incremental_db = fresh_db(str(tmp_path / "incremental.duckdb"))
    full_db = fresh_db(str(tmp_path / "full.duckdb"))
    _run(incremental_db, inputs, incremental=True)
    _run(full_db, inputs, incremental=False)

    changed = inputs / "c0001-deceased_patient.json"
    observation_id = _change_one_observation(changed)
    added = replicate(sorted((TESTS / "data" / "synthea").glob("*.json.gz")), inputs, copies=1, first_copy=7)

    parsed: list[str] = []
    real_read_file, real_lines = parallel.read_file, parallel.items_from_ndjson_lines
    monkeypatch.setattr(parallel, "read_file", lambda path, *a: parsed.append(Path(path).name) or real_read_file(path, *a))
    monkeypatch.setattr(parallel, "items_from_ndjson_lines", lambda lines, name, *a: parsed.append(Path(name).name) or real_lines(lines, name, *a))
    report = _run(incremental_db, inputs, incremental=True)
    monkeypatch.undo()

    # problems.ndjson holds a Condition whose Patient never arrives: its file is read every run,
    # so the Patient is picked up when it finally comes.
    assert sorted(set(parsed)) == sorted([changed.name, *(p.name for p in added), "problems.ndjson"])
    assert report.files_skipped == files_total - 2
    assert report.files == 4
    # Only the changed Observation's person, the two new patients and the orphan Condition's
    # never-arriving person (its file is re-read) are re-derived, not the other 4 + golden persons.
    person_ids = incremental_db.query(f"SELECT COUNT(*) FROM {incremental_db.table('person')}")[0][0]
    assert person_ids > 8
    assert len(report.outcome.person_ids) == 4
    values = incremental_db.query(
        f"SELECT m.value_as_number FROM {incremental_db.table('measurement')} m JOIN {incremental_db.table('ctcl_lineage')} l "
        f"ON l.omop_table = 'measurement' AND l.omop_id = m.measurement_id WHERE l.resource_key = ?", [f"Observation/{observation_id}"])
    assert values and all(v == 12345.5 for (v,) in values)

    full_report = _run(full_db, inputs, incremental=False)
    assert full_report.files_skipped == 0 and full_report.files == files_total + 2
    # The golden fixtures share keys (Observation/o1 ...): a full re-run reads every version again,
    # and a result dated from another file's Encounter is completed again at its end, so its
    # person is re-derived; era rows get new ids then. Compared without those ids.
    assert _without_derived_ids(database_snapshot(incremental_db)) == _without_derived_ids(database_snapshot(full_db))
    incremental_db.close()
    full_db.close()


def test_files_holding_medications_are_always_read(tmp_path, fresh_db):
    """A changed request file may reference a Medication in an unchanged file: it must resolve."""
    folder = tmp_path / "bulk"
    folder.mkdir()
    (folder / "Patient.000.ndjson").write_text(json.dumps({"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "1950-01-01"}) + "\n")
    (folder / "Medication.000.ndjson").write_text(json.dumps(
        {"resourceType": "Medication", "id": "m1", "code": {"coding": [{"system": "http://www.whocc.no/atc", "code": "L01XF03"}]}}) + "\n")
    request = {"resourceType": "MedicationRequest", "id": "r1", "status": "active", "intent": "order", "subject": {"reference": "Patient/p1"},
               "medicationReference": {"reference": "Medication/m1"}, "authoredOn": "2020-01-01"}
    (folder / "MedicationRequest.000.ndjson").write_text(json.dumps(request) + "\n")
    db = fresh_db(str(tmp_path / "cdm.duckdb"))
    _run(db, folder, incremental=True)
    (folder / "MedicationRequest.000.ndjson").write_text(json.dumps({**request, "authoredOn": "2021-01-01"}) + "\n")
    report = _run(db, folder, incremental=True)
    assert report.files_skipped == 1  # Patient only; the Medication file is read for the index
    assert db.query(f"SELECT drug_source_value, drug_exposure_start_date FROM {db.table('drug_exposure')}")[0][0] == "L01XF03"
    db.close()


def test_only_the_changed_resources_of_a_changed_file_are_converted(tmp_path, monkeypatch, fresh_db, make_inputs):
    """A resource its file applied before with the same content is not converted again: the
    unchanged rest of a re-read file is parsed and hashed, never converted (the output is the
    same either way). Medication requests are converted when read whatever they hold."""
    import ctcl_map.converters.parallel as parallel

    inputs = make_inputs(tmp_path / "in", copies=1, golden=False)
    db = fresh_db(str(tmp_path / "cdm.duckdb"))
    _run(db, inputs, incremental=True)
    changed = inputs / "c0000-deceased_patient.json"
    _change_one_observation(changed)
    converted: list[str] = []
    real_convert = parallel.convert
    monkeypatch.setattr(parallel, "convert", lambda item, ctx: converted.append(item.key) or real_convert(item, ctx))
    report = _run(db, inputs, incremental=True)
    assert report.files == 1 and report.resources_read > 100
    converted = [key for key in converted if key.split("/")[0] not in parallel.NEEDS_MEDICATION_INDEX]
    assert len(converted) == 1 and converted[0].startswith("Observation/")
    db.close()
