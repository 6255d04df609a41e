"""The run report tells the truth (issue: real hospital FHIR), FHIR context found where FHIR puts
it, and the labels of standard non-FHIR files, conditional DELETEs and mistyped paths.

Each test loads what a site would send and compares the report with the CDM it left, and
`validate` with `fhir2omop` on the same input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ctcl_map.cli import app
from ctcl_map.quality.validate import validate_inputs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SHARED = Path(__file__).resolve().parents[3] / "shared"

GOLDEN = FIXTURES / "golden"
EVENT_TABLES = ("person", "visit_occurrence", "condition_occurrence", "drug_exposure", "procedure_occurrence",
                "measurement", "observation", "death")
PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-04-12"}
CONDITION = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"}, "onsetDateTime": "2019-01-01",
             "code": {"coding": [{"system": "http://snomed.info/sct", "code": "999999991"}]}}


def _count(db, table: str) -> int:
    return db.query(f"SELECT COUNT(*) FROM {db.table(table)}")[0][0]


def _quarantine(db) -> list[tuple]:
    return db.query(f"SELECT resource_id, reason, message FROM {db.table('ctcl_quarantine')} ORDER BY resource_id, reason")


def _write_ndjson(path, *resources) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in resources))


def test_rows_removed_at_the_end_of_the_run_leave_the_report(db, tmp_path, load):
    """A Condition whose Patient never arrives is written, then removed by the end-of-run check:
    'rows written' and the unmapped counts must equal what stays in the CDM (nothing)."""
    orphans = tmp_path / "Condition.ndjson"
    _write_ndjson(orphans, {**CONDITION, "subject": {"reference": "Patient/nobody"}})
    _write_ndjson(tmp_path / "Patient.ndjson", PATIENT)
    _write_ndjson(tmp_path / "Observation.ndjson", {"resourceType": "Observation", "id": "o1", "status": "final",
                                                    "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2019-01-01",
                                                    "code": {"coding": [{"system": "http://loinc.org", "code": "99999-9"}]}})
    data = load(db, tmp_path).to_dict()
    assert data["dangling_subject_removed"] == 1
    for table in EVENT_TABLES:
        assert data["rows_written"].get(table, 0) == _count(db, table), table
    stored = db.query(f"SELECT vocabulary, SUM(row_count) FROM {db.table('ctcl_unmapped')} GROUP BY vocabulary")
    assert data["unmapped_rows_by_vocabulary"] == {"LOINC": 1} == {v: n for v, n in stored if v == "LOINC"}
    assert "SNOMED" not in data["unmapped_rows_by_vocabulary"]
    assert data["resources_loaded"] == {"Observation": 1, "Patient": 1}
    assert data["rows_by_resource_type"] == {"Observation": {"observation": 1}, "Patient": {"person": 1}}


def test_rerun_of_unchanged_input_writes_and_quarantines_nothing(db, tmp_path, load):
    """Orphans, a Patient's cascade and a bad line, re-run twice in both modes: nothing written,
    nothing newly quarantined, and the quarantine table does not grow."""
    _write_ndjson(tmp_path / "Patient.ndjson", {**PATIENT, "id": "nobirth", "birthDate": None})
    path = tmp_path / "Condition.ndjson"
    path.write_text(json.dumps({**CONDITION, "subject": {"reference": "Patient/nobody"}}) + "\n{not json\n"
                    + json.dumps({**CONDITION, "id": "c2", "subject": {"reference": "Patient/nobirth"}}) + "\n")
    first = load(db, tmp_path).to_dict()
    assert first["quarantined"] == {"dangling_subject": 1, "missing_birth_date": 1, "not_json": 1, "patient_quarantined": 1}
    entries = _quarantine(db)
    for incremental in (True, False, True):
        again = load_with(db, tmp_path, incremental).to_dict()
        assert sum(again["rows_written"].values()) == 0
        assert again["quarantined"] in ({}, {"not_json": 1})  # --full re-reads the bad line and says so again
        assert again["notes"].get("still_waiting_for_their_patient") == 2
        assert _quarantine(db) == entries
    # The Patient arrives: the Condition waiting for it loads, and only it.
    _write_ndjson(tmp_path / "Patient2.ndjson", {**PATIENT, "id": "nobody"})
    last = load(db, tmp_path).to_dict()
    assert last["rows_written"]["condition_occurrence"] == 1 == _count(db, "condition_occurrence")


def load_with(db, path, incremental: bool):
    from ctcl_map.pipeline import RunOptions, run_fhir2omop

    return run_fhir2omop(db, RunOptions(inputs=[path], oncology=False, incremental=incremental))


def test_record_lost_with_its_patient_says_why_and_validate_predicts_it(db, load):
    fixture = GOLDEN / "patient_quarantined_cascade_named.json"
    load(db, fixture)
    assert _quarantine(db) == [("c1", "patient_quarantined", "its Patient was quarantined: missing_birth_date"),
                               ("p1", "missing_birth_date", "Patient has no birthDate; OMOP requires year_of_birth")]
    rules = sorted(f.rule for f in validate_inputs([fixture]).findings)
    assert rules == ["conversion.missing_birth_date", "conversion.patient_quarantined"]


def test_animal_patient_is_not_a_person_and_its_records_say_so(db, load):
    fixture = GOLDEN / "patient_animal_not_a_person.json"
    load(db, fixture)
    assert _count(db, "person") == 0
    assert _quarantine(db) == [("c1", "patient_excluded", "its Patient was excluded: it is not loaded as a person")]
    assert [f.rule for f in validate_inputs([fixture]).findings] == ["conversion.patient_excluded"]


def test_duplicates_within_a_run_are_counted_once_by_both_commands(db, tmp_path, load):
    """The same Condition twice in one file, once more in another file, and an older version after
    a newer one: loaded once; two repeats and one older version counted; validate agrees."""
    newer = {**CONDITION, "meta": {"versionId": "2"}}
    older = {**CONDITION, "meta": {"versionId": "1"}, "onsetDateTime": "2018-01-01"}
    _write_ndjson(tmp_path / "Patient.ndjson", PATIENT)
    _write_ndjson(tmp_path / "a.ndjson", newer, newer, older)
    _write_ndjson(tmp_path / "b.ndjson", newer)
    data = load(db, tmp_path).to_dict()
    assert data["resources_loaded"] == {"Condition": 1, "Patient": 1}
    assert (data["duplicates_in_run"], data["superseded_skipped"]) == (2, 1)
    assert db.query(f"SELECT condition_start_date FROM {db.table('condition_occurrence')}")[0][0].isoformat() == "2019-01-01"
    report = validate_inputs([tmp_path])
    assert [f.rule for f in report.findings] == ["input.duplicate_resource"] * 3
    # A missing date repeated twice is one quarantine entry for both commands.
    _write_ndjson(tmp_path / "a.ndjson", {**CONDITION, "onsetDateTime": None}, {**CONDITION, "onsetDateTime": None})
    (tmp_path / "b.ndjson").unlink()
    data = load(db, tmp_path).to_dict()
    assert data["quarantined"] == {"missing_date": 1}
    rules = [f.rule for f in validate_inputs([tmp_path]).findings]
    assert sorted(rules) == ["conversion.missing_date", "input.duplicate_resource"]


def test_contained_patient_subject_resolves(db, tmp_path, load):
    observation = {"resourceType": "Observation", "id": "o1", "status": "final", "effectiveDateTime": "2020-05-06",
                   "contained": [{"resourceType": "Patient", "id": "pat", "gender": "male", "birthDate": "1961"}],
                   "subject": {"reference": "#pat"}, "valueQuantity": {"value": 3},
                   "code": {"coding": [{"system": "http://loinc.org", "code": "54218-3"}]}}
    path = tmp_path / "contained.json"
    path.write_text(json.dumps(observation))
    report = load(db, path)
    assert report.quarantined == 0 and report.dangling_removed == 0
    assert db.query(f"SELECT gender_concept_id, year_of_birth FROM {db.table('person')}") == [(8507, 1961)]
    assert db.query(f"SELECT m.person_id = p.person_id FROM {db.table('measurement')} m, {db.table('person')} p") == [(True,)]
    assert validate_inputs([path]).findings == []
    # The contained Patient without a birth date: the record says why it is lost.
    observation["contained"][0].pop("birthDate")
    path.write_text(json.dumps(observation))
    load(db, path)
    assert _count(db, "measurement") == 0
    assert ("o1", "patient_quarantined", "its Patient was quarantined: missing_birth_date") in _quarantine(db)


# -- labels --------------------------------------------------------------------------------------
def test_untouched_bulk_export_and_package_files_pass_strict(tmp_path):
    """package.json, .index.json and the export's log.ndjson are skipped with a note."""
    _write_ndjson(tmp_path / "Patient.000.ndjson", PATIENT)
    (tmp_path / "log.ndjson").write_text('{"exportId": "x", "eventId": "kickoff"}\n')
    (tmp_path / "package.json").write_text('{"name": "example.fhir.package", "version": "1.0.0"}')
    (tmp_path / ".index.json").write_text('{"index-version": 1, "files": []}')
    runner = CliRunner()
    result = runner.invoke(app, ["fhir2omop", str(tmp_path), "--db", str(tmp_path / "o.duckdb"), "--strict", "-q"])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "log.ndjson (bulk export log) 1" in output and "package.json (FHIR package manifest) 1" in output
    result = runner.invoke(app, ["validate", str(tmp_path), "--json"])
    data = json.loads(result.output)
    assert result.exit_code == 0 and data["files"] == 1
    assert data["non_fhir_files_skipped"] == {".index.json (FHIR package index)": 1, "log.ndjson (bulk export log)": 1,
                                              "package.json (FHIR package manifest)": 1}


def test_conditional_delete_is_unsupported_not_invalid(db, tmp_path, load):
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "DELETE", "url": "Condition?identifier=urn:x|1"}},
        {"request": {"method": "DELETE", "url": "not a url"}},
    ]}
    path = tmp_path / "tx.json"
    path.write_text(json.dumps(bundle))
    assert dict(load(db, path).outcome.quarantined) == {"invalid_delete": 1, "unsupported_conditional_delete": 1}
    assert sorted(f.rule for f in validate_inputs([path]).findings) == ["input.invalid_delete", "input.unsupported_conditional_delete"]


@pytest.mark.parametrize("command", ["fhir2omop", "validate"])
def test_mistyped_input_path_is_a_usage_error_and_makes_no_database(tmp_path, command):
    target = tmp_path / "new.duckdb"
    args = [command, str(tmp_path / "exprots"), "--db", str(target)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "exprots" in result.output
    assert not target.exists()


def test_every_nonzero_counter_is_a_terminal_line(tmp_path):
    """Notes (fallbacks, deceased_without_date) and run-level counters print without --json."""
    for number, fixture in enumerate(("patient_deceased_boolean_no_death_row", "condition_asserted_date_extension_start")):
        result = CliRunner().invoke(app, ["fhir2omop", str(GOLDEN / f"{fixture}.json"), "--db", str(tmp_path / f"{number}.duckdb"), "-q"])
        assert result.exit_code == 0, result.output
        assert ("deceased without date: 1", "start from asserted date: 1")[number] in result.output.splitlines()


def test_report_counter_lines_are_generic():
    from ctcl_map.report import counter_lines

    data = {"run_id": 3, "rows_written": {"person": 2}, "notes": {"date_from_encounter": 2, "zero": 0},
            "visit_links_cleared": 4, "events_before_birth": 1, "a_new_counter": {"x": 2, "y": 0},
            "oncology": {"diagnoses": 1, "warnings": ["w"], "measurement_type_concept_id": 32817}}
    assert counter_lines(data) == ["date from encounter: 2", "visit links cleared: 4", "events before birth: 1",
                                   "a new counter: x 2", "oncology warnings: 1"]


# -- the third-party data ------------------------------------------------------------------------
TESTDATA = next((p for p in (SHARED / "testdata", SHARED.parent.parent / "shared" / "testdata") if p.is_dir()), None)


@pytest.mark.skipif(TESTDATA is None, reason="../shared/testdata (third-party FHIR) is not present")
@pytest.mark.parametrize("dataset", ["us-core-examples", "mcode-extraction-fixtures", "synthea-bulk-ndjson/10-patients"])
def test_third_party_report_equals_the_cdm_and_reruns_add_nothing(db, dataset, load):
    folder = TESTDATA / dataset
    data = load(db, folder).to_dict()
    for table in EVENT_TABLES:
        assert data["rows_written"].get(table, 0) == _count(db, table), table
    entries = _quarantine(db)
    again = load(db, folder).to_dict()
    assert sum(again["rows_written"].values()) == 0 and again["quarantined"] == {}
    assert _quarantine(db) == entries
    if dataset.startswith("synthea-bulk"):
        assert data["quarantined"] == {} and data["non_fhir_files_skipped"] == {"log.ndjson (bulk export log)": 1}
    if dataset == "us-core-examples":
        # Only the two Encounters and the two AllergyIntolerances without any date are lost to a missing date.
        assert data["quarantined"] == {"missing_date": 4}
    # validate predicts the same quarantines, reason by reason (those it reports under their own rule).
    predicted = validate_inputs([folder]).findings
    for reason, count in data["quarantined"].items():
        assert sum(f.rule in (f"conversion.{reason}", f"input.{reason}") for f in predicted) in (count, 0), reason


# -- references that resolve whatever the order ----------------------------------------------------
MEDICATION = {"resourceType": "Medication", "id": "m1",
              "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "2054068"}]}}
REQUEST = {"resourceType": "MedicationRequest", "id": "r1", "status": "completed", "intent": "order",
           "subject": {"reference": "Patient/p1"}, "authoredOn": "2021-03-01", "medicationReference": {"reference": "Medication/m1"}}


def _drugs(db) -> list[tuple]:
    return db.query(f"SELECT drug_concept_id, drug_source_value FROM {db.table('drug_exposure')}")


@pytest.mark.parametrize("later_run", [False, True], ids=["later-in-the-run", "in-a-later-run"])
def test_medication_read_after_its_request_fills_the_drug(db, tmp_path, later_run, load):
    _write_ndjson(tmp_path / "patients.ndjson", PATIENT)
    _write_ndjson(tmp_path / "requests.ndjson", REQUEST)
    _write_ndjson(tmp_path / "meds.ndjson", MEDICATION)
    order = [tmp_path / "patients.ndjson", tmp_path / "requests.ndjson"]
    if later_run:
        first = load(db, *order).to_dict()
        assert _drugs(db) == [(0, None)] and first["notes"] == {"medication_reference_unresolved": 1}
        data = load(db, *order, tmp_path / "meds.ndjson").to_dict()
        assert data["notes"] == {} and data["unmapped_rows_by_vocabulary"] == {}
    else:
        data = load(db, *order, tmp_path / "meds.ndjson").to_dict()
        assert data["notes"] == {} and data["unmapped_rows_by_vocabulary"] == {}
    assert data["drugs_filled_from_a_later_medication"] == 1
    assert _drugs(db) == [(35200202, "2054068")]
    assert db.query(f"SELECT drug_concept_id FROM {db.table('drug_era')}") == [(35200202,)]
    again = load(db, *order, tmp_path / "meds.ndjson").to_dict()
    assert again["drugs_filled_from_a_later_medication"] == 0 and _drugs(db) == [(35200202, "2054068")]


# -- validate predicts what fhir2omop quarantines ----------------------------------------------------
GOLDEN_FIXTURES = sorted(p for p in GOLDEN.glob("*.json") if not p.name.endswith(".expected.json"))


@pytest.mark.parametrize("fixture", GOLDEN_FIXTURES, ids=[p.stem for p in GOLDEN_FIXTURES])
def test_validate_and_fhir2omop_count_the_same_quarantines(db, fixture, load):
    from collections import Counter

    from ctcl_map.quality.validate import REPORTED_ELSEWHERE

    quarantined = Counter(load(db, fixture).outcome.quarantined)
    predicted = Counter(f.rule.split(".", 1)[1] for f in validate_inputs([fixture]).findings
                        if f.rule.startswith(("conversion.", "input.")) and f.severity == "error")
    assert predicted == Counter({reason: n for reason, n in quarantined.items() if reason not in REPORTED_ELSEWHERE})
