"""A result (Observation) without its own date or subject takes them from the DiagnosticReport that
lists it, else from its Encounter's period, wherever that resource is: another NDJSON file of a
bulk export (read before or after it), or a later run. Until then the result is quarantined
('missing_date' / 'missing_subject') and waits (ctcl_reference_wait); nothing is lost or
duplicated, re-runs write nothing, and the report equals the CDM. DuckDB and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctcl_map.pipeline import RunOptions, run_fhir2omop

SHARED = Path(__file__).resolve().parents[3] / "shared"

PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-04-12"}
ENCOUNTER = {"resourceType": "Encounter", "id": "e1", "status": "finished", "subject": {"reference": "Patient/p1"},
             "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
             "period": {"start": "2020-05-03T08:00:00+00:00", "end": "2020-05-03T09:00:00+00:00"}}
# Bulk NDJSON shapes (Synthea / US Core): references are Type/id, one resource a line.
UNDATED = {"resourceType": "Observation", "id": "o1", "status": "final",
           "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
           "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
           "subject": {"reference": "Patient/p1"}, "valueQuantity": {"value": 13.1, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL"}}
NO_SUBJECT = {**{k: v for k, v in UNDATED.items() if k != "subject"}, "id": "o2", "effectiveDateTime": "2020-06-01"}
REPORT = {"resourceType": "DiagnosticReport", "id": "r1", "status": "final", "subject": {"reference": "Patient/p1"},
          "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2"}]}, "effectiveDateTime": "2020-04-01T10:00:00+00:00",
          "issued": "2020-04-02T10:00:00+00:00", "result": [{"reference": "Observation/o1"}, {"reference": "Observation/o2"}]}


@pytest.fixture(params=["duckdb", "postgresql"])
def database(request, tmp_path, drop_schema, fresh_db, postgres_or_skip):
    if request.param == "duckdb":
        db = fresh_db(str(tmp_path / "cdm.duckdb"))
        yield db
        db.close()
        return
    url, schema = postgres_or_skip("ctx")
    db = fresh_db(url, cdm_schema=schema)
    try:
        yield db
    finally:
        db.close()
        drop_schema(schema)


def _write(path, *resources):
    path.write_text("".join(json.dumps(r) + "\n" for r in resources))
    return path


def _export(folder):
    """A bulk export split by resource type, as $export writes it."""
    return {name: _write(folder / f"{name}.ndjson", *resources) for name, resources in {
        "Patient": [PATIENT], "Observation": [UNDATED, NO_SUBJECT], "DiagnosticReport": [REPORT]}.items()}


def _run(db, *paths, workers=1):
    return run_fhir2omop(db, RunOptions(inputs=list(paths), workers=workers, batch_size=1)).to_dict()


def _measurements(db):
    rows = db.query(f"SELECT m.measurement_date, m.value_as_number, p.person_source_value IS NOT NULL FROM {db.table('measurement')} m "
                    f"JOIN {db.table('person')} p ON p.person_id = m.person_id ORDER BY m.value_as_number, m.measurement_date")
    return [(str(day), value, has_person) for day, value, has_person in rows]


def _quarantine(db):
    return sorted(db.query(f"SELECT resource_id, reason FROM {db.table('ctcl_quarantine')}"))


def _waiting(db):
    return sorted(db.query(f"SELECT resource_key, awaited_key FROM {db.table('ctcl_reference_wait')}"))


def _assert_report_equals_cdm(db, data):
    count = db.query(f"SELECT COUNT(*) FROM {db.table('measurement')}")[0][0]
    assert data["rows_written"].get("measurement", 0) == count


LOADED = [("2020-04-01", 13.1, True), ("2020-06-01", 13.1, True)]  # o1 dated by the report; o2 its own date, the report's subject


@pytest.mark.parametrize("report_first", [False, True], ids=["observations-first", "report-first"])
def test_one_run_any_file_order(database, tmp_path, report_first):
    files = _export(tmp_path)
    order = ["Patient", "DiagnosticReport", "Observation"] if report_first else ["Patient", "Observation", "DiagnosticReport"]
    data = _run(database, *(files[name] for name in order))
    assert _measurements(database) == LOADED
    assert data["quarantined"] == {} and _quarantine(database) == [] and _waiting(database) == []
    assert data["results_completed_from_another_file"] == 2
    assert data["notes"]["date_from_diagnostic_report"] == 1 and data["notes"]["subject_from_diagnostic_report"] == 1
    assert data["resources_loaded"]["Observation"] == 2
    _assert_report_equals_cdm(database, data)
    again = _run(database, *(files[name] for name in order))
    assert sum(again["rows_written"].values()) == 0 and again["results_completed_from_another_file"] == 0
    assert _measurements(database) == LOADED


def test_report_in_a_later_run_restores_the_quarantined_results(database, tmp_path):
    files = _export(tmp_path)
    first = _run(database, files["Patient"], files["Observation"])
    assert first["quarantined"] == {"missing_date": 1, "missing_subject": 1}
    assert _quarantine(database) == [("o1", "missing_date"), ("o2", "missing_subject")]
    assert _waiting(database) == [("Observation/o1", "DiagnosticReport?result=Observation/o1"),
                                  ("Observation/o2", "DiagnosticReport?result=Observation/o2")]
    assert _measurements(database) == []
    # Unchanged re-run: nothing written, the same quarantine, still waiting.
    same = _run(database, files["Patient"], files["Observation"])
    assert sum(same["rows_written"].values()) == 0 and same["quarantined"] == {}
    assert len(_quarantine(database)) == 2 and len(_waiting(database)) == 2
    # The report arrives: both results load, their quarantine entries go, nothing waits any more.
    later = _run(database, files["Patient"], files["Observation"], files["DiagnosticReport"])
    assert _measurements(database) == LOADED
    assert _quarantine(database) == [] and _waiting(database) == []
    assert later["quarantined"] == {} and later["results_completed_from_another_file"] == 2
    assert later["rows_written"] == {"measurement": 2}
    _assert_report_equals_cdm(database, later)
    last = _run(database, files["Patient"], files["Observation"], files["DiagnosticReport"])
    assert sum(last["rows_written"].values()) == 0 and _measurements(database) == LOADED


def test_results_in_a_later_run_than_their_report(database, tmp_path):
    files = _export(tmp_path)
    _run(database, files["Patient"], files["DiagnosticReport"])
    data = _run(database, files["Patient"], files["DiagnosticReport"], files["Observation"])
    assert _measurements(database) == LOADED and _quarantine(database) == [] and data["quarantined"] == {}
    _assert_report_equals_cdm(database, data)


def test_a_changed_report_is_what_later_results_see(database, tmp_path):
    """The context is the report's current version: a re-exported report with another date, or
    deleted, is not used from its earlier version."""
    files = _export(tmp_path)
    _write(files["DiagnosticReport"], {**REPORT, "effectiveDateTime": "2020-03-15"})
    _run(database, files["Patient"], files["DiagnosticReport"])
    _run(database, files["Patient"], files["DiagnosticReport"], files["Observation"])
    assert _measurements(database)[0][0] == "2020-03-15"


def test_encounter_in_another_file_dates_a_result_without_report(database, tmp_path):
    patients = _write(tmp_path / "Patient.ndjson", PATIENT)
    encounters = _write(tmp_path / "Encounter.ndjson", ENCOUNTER)
    observations = _write(tmp_path / "Observation.ndjson", {**UNDATED, "encounter": {"reference": "Encounter/e1"}})
    first = _run(database, patients, observations)
    assert first["quarantined"] == {"missing_date": 1}
    data = _run(database, patients, encounters, observations)
    assert _measurements(database) == [("2020-05-03", 13.1, True)]
    assert data["notes"]["date_from_encounter"] == 1 and _quarantine(database) == []
    _assert_report_equals_cdm(database, data)
    # It still waits for a report (first in the rules); an unchanged re-run writes nothing.
    assert _waiting(database) == [("Observation/o1", "DiagnosticReport?result=Observation/o1")]
    same = _run(database, patients, encounters, observations)
    assert sum(same["rows_written"].values()) == 0 and same["results_completed_from_another_file"] == 0
    reports = _write(tmp_path / "DiagnosticReport.ndjson", REPORT)
    dated = _run(database, patients, encounters, observations, reports)
    assert _measurements(database) == [("2020-04-01", 13.1, True)] and _waiting(database) == []
    assert dated["notes"]["date_from_diagnostic_report"] == 1 and dated["rows_written"] == {"measurement": 1}


def test_no_date_anywhere_stays_quarantined_and_waiting(database, tmp_path):
    """A report without any date gives none: the result stays quarantined (one entry), re-runs
    write nothing, and a later report with a date still restores it."""
    patients = _write(tmp_path / "Patient.ndjson", PATIENT)
    observations = _write(tmp_path / "Observation.ndjson", UNDATED)
    undated_report = {k: v for k, v in REPORT.items() if k not in ("effectiveDateTime", "issued")}
    reports = _write(tmp_path / "DiagnosticReport.ndjson", undated_report)
    first = _run(database, patients, observations, reports)
    assert first["quarantined"] == {"missing_date": 1} and first["results_completed_from_another_file"] == 0
    for _ in range(2):
        again = _run(database, patients, observations, reports)
        assert sum(again["rows_written"].values()) == 0 and _quarantine(database) == [("o1", "missing_date")]
    _write(reports, REPORT)
    dated = _run(database, patients, observations, reports)
    assert _measurements(database) == [("2020-04-01", 13.1, True)] and _quarantine(database) == []
    _assert_report_equals_cdm(database, dated)


def test_two_workers_complete_results_as_one_does(tmp_path, fresh_db):
    files = _export(tmp_path)
    snapshots = []
    for workers in (1, 2):
        db = fresh_db(str(tmp_path / f"w{workers}.duckdb"))
        data = _run(db, files["Patient"], files["Observation"], files["DiagnosticReport"], workers=workers)
        assert data["workers"] == workers
        snapshots.append((_measurements(db), data["quarantined"], data["results_completed_from_another_file"]))
        db.close()
    assert snapshots[0] == snapshots[1] == (LOADED, {}, 2)


TESTDATA = next((p for p in (SHARED / "testdata", SHARED.parent.parent / "shared" / "testdata") if p.is_dir()), None)


def _bulk_export_of(bundle_path, folder, strip_listed_dates: bool) -> int:
    """A Synthea Bundle as the bulk export of the same data: one NDJSON file per resource type,
    urn:uuid references as Type/id. With `strip_listed_dates`, results listed by a report lose
    their own effective[x] and issued; returns how many did."""
    entries = json.loads(bundle_path.read_text())["entry"]
    keys = {e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in entries}
    text = json.dumps([e["resource"] for e in entries])
    for full_url, key in keys.items():
        text = text.replace(json.dumps(full_url), json.dumps(key))
    resources = json.loads(text)
    listed = {r["reference"] for res in resources if res["resourceType"] == "DiagnosticReport" for r in res.get("result", [])}
    stripped = 0
    by_type: dict[str, list] = {}
    for resource in resources:
        if strip_listed_dates and resource["resourceType"] == "Observation" and f"Observation/{resource['id']}" in listed:
            resource.pop("effectiveDateTime", None), resource.pop("issued", None)
            stripped += 1
        by_type.setdefault(resource["resourceType"], []).append(resource)
    folder.mkdir()
    for name, items in by_type.items():
        _write(folder / f"{name}.000.ndjson", *items)
    return stripped


@pytest.mark.skipif(TESTDATA is None, reason="../shared/testdata (third-party FHIR) is not present")
def test_synthea_export_with_undated_results_loads_them_from_their_reports(tmp_path, fresh_db):
    """A Synthea patient's export with the own date of every result a report lists removed: run 1
    without DiagnosticReport.ndjson quarantines them, run 2 with it loads every one, with the
    report's date: the CDM equals the load of the untouched export."""
    bundle = min((TESTDATA / "synthea-r4-bundles").glob("*_*.json"), key=lambda p: p.stat().st_size)  # a patient
    _bulk_export_of(bundle, tmp_path / "intact", strip_listed_dates=False)
    stripped = _bulk_export_of(bundle, tmp_path / "split", strip_listed_dates=True)
    assert stripped > 0
    full = fresh_db(str(tmp_path / "full.duckdb"))
    run_fhir2omop(full, RunOptions(inputs=[tmp_path / "intact"]))
    db = fresh_db(str(tmp_path / "split.duckdb"))
    first = run_fhir2omop(db, RunOptions(inputs=[p for p in sorted((tmp_path / "split").glob("*.ndjson"))
                                                 if not p.name.startswith("DiagnosticReport")])).to_dict()
    # Synthea's results name their Encounter, read from Encounter.000.ndjson: dated by it meanwhile.
    assert first["quarantined"] == {} and first["notes"]["date_from_encounter"] == stripped
    assert first["results_completed_from_another_file"] == stripped
    same = run_fhir2omop(db, RunOptions(inputs=[p for p in sorted((tmp_path / "split").glob("*.ndjson"))
                                                if not p.name.startswith("DiagnosticReport")])).to_dict()
    assert sum(same["rows_written"].values()) == 0 and same["results_completed_from_another_file"] == 0
    # The report, first in the rules, arrives: each result takes its date from it.
    second = run_fhir2omop(db, RunOptions(inputs=[tmp_path / "split"])).to_dict()
    assert second["results_completed_from_another_file"] == stripped and second["quarantined"] == {}
    assert second["notes"]["date_from_diagnostic_report"] == stripped
    third = run_fhir2omop(db, RunOptions(inputs=[tmp_path / "split"])).to_dict()
    assert sum(third["rows_written"].values()) == 0 and third["results_completed_from_another_file"] == 0
    assert db.query(f"SELECT COUNT(*) FROM {db.table('ctcl_quarantine')}")[0][0] == 0
    query = "SELECT measurement_source_value, measurement_date, value_as_number FROM {} ORDER BY 1, 2, 3"
    assert db.query(query.format(db.table("measurement"))) == full.query(query.format(full.table("measurement")))
    full.close()
    db.close()
