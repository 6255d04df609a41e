"""The writer's bookkeeping rows: exact on a first load, and a replaced resource leaves nothing
behind even when its recorded state was removed by hand (the writer judges what a resource owns
by its rows, not by its state)."""

from __future__ import annotations

import json
from pathlib import Path

from ctcl_map.load.cdm_writer import CdmWriter
from ctcl_map.readers.fhir_input import display_name

PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "1961-09-30"}
CONDITION = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
             "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "C84.0"}]},
             "onsetDateTime": "2018-05-01", "meta": {"versionId": "1", "lastUpdated": "2024-01-02T03:04:05Z"}}
OBSERVATION = {"resourceType": "Observation", "id": "o1", "status": "final", "subject": {"reference": "Patient/p1"},
               "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}, "effectiveDateTime": "2020-05-06",
               "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}, "valueQuantity": {"value": 120}},
                             {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]}, "valueQuantity": {"value": 80}}]}


def _bundle(path: Path, *resources: dict) -> Path:
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}))
    return path


def _rows(db, table: str, columns: str) -> list[tuple]:
    return db.query(f"SELECT {columns} FROM {db.table(table)} ORDER BY 1, 2, 3")


def test_a_first_load_records_exactly_these_bookkeeping_rows(db, tmp_path, load):
    path = _bundle(tmp_path / "b.json", PATIENT, CONDITION, OBSERVATION)
    report = load(db, path)
    run, name = report.run_id, display_name(path)
    assert _rows(db, "ctcl_lineage", "omop_table, omop_id, resource_key, source_file, source_position, run_id") == [
        ("condition_occurrence", 1, "Condition/c1", name, "entry[1]", run),
        ("measurement", 1, "Observation/o1", name, "entry[2]", run),
        ("measurement", 2, "Observation/o1", name, "entry[2]", run),
        ("person", 1, "Patient/p1", name, "entry[0]", run),
    ]
    assert _rows(db, "ctcl_id_map", "id_space, row_key, omop_id") == [
        ("condition_occurrence", "Condition/c1", 1),
        ("measurement", "Observation/o1#component0", 1),
        ("measurement", "Observation/o1#component1", 2),
        ("person", "Patient/p1", 1),
    ]
    states = _rows(db, "ctcl_resource_state", "resource_key, version_id, last_updated, status, source_file, run_id, content_hash")
    assert [row[:-1] for row in states] == [
        ("Condition/c1", "1", "2024-01-02T03:04:05Z", "loaded", name, run),
        ("Observation/o1", None, None, "loaded", name, run),
        ("Patient/p1", None, None, "loaded", name, run),
    ]
    occurrences = _rows(db, "ctcl_resource_file", "source_file, resource_key, seen_run, content_hash")
    assert [row[:-1] for row in occurrences] == [(name, key, run) for key, *_ in states]
    # The file's record of each entry is the hash its state was recorded with.
    assert [row[-1] for row in occurrences] == [row[-1] for row in states]
    assert len({row[-1] for row in states}) == 3


def test_a_resource_whose_state_was_removed_by_hand_is_replaced_without_leaving_rows(db, tmp_path, load):
    path = _bundle(tmp_path / "b.json", PATIENT, CONDITION)
    name = display_name(path)
    load(db, path)
    for table in ("ctcl_resource_state", "ctcl_resource_file"):
        db.execute(f"DELETE FROM {db.table(table)}")
    changed = {**CONDITION, "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "C84.1"}]}}
    load(db, _bundle(path, PATIENT, changed))
    assert db.query(f"SELECT condition_occurrence_id, condition_source_value FROM {db.table('condition_occurrence')}") == [(1, "C84.1")]
    assert db.query(f"SELECT person_id FROM {db.table('person')}") == [(1,)]
    assert _rows(db, "ctcl_lineage", "omop_table, omop_id, resource_key") == [
        ("condition_occurrence", 1, "Condition/c1"), ("person", 1, "Patient/p1")]
    assert _rows(db, "ctcl_resource_state", "resource_key, status, source_file") == [
        ("Condition/c1", "loaded", name), ("Patient/p1", "loaded", name)]
    assert _rows(db, "ctcl_resource_file", "source_file, resource_key, seen_run") == [
        (name, "Condition/c1", 2), (name, "Patient/p1", 2)]


def test_a_file_re_read_in_a_later_run_keeps_one_occurrence_row_per_resource(db, tmp_path, load):
    path = _bundle(tmp_path / "b.json", PATIENT, CONDITION)
    name = display_name(path)
    load(db, path)
    _bundle(path, PATIENT, {**CONDITION, "meta": {"versionId": "2"}})
    report = load(db, path)
    assert report.outcome.skipped_unchanged == 1  # the Patient
    assert _rows(db, "ctcl_resource_file", "source_file, resource_key, seen_run") == [
        (name, "Condition/c1", 2), (name, "Patient/p1", 2)]
    assert _rows(db, "ctcl_resource_state", "resource_key, version_id, run_id") == [("Condition/c1", "2", 2), ("Patient/p1", None, 1)]


def test_applied_hashes_are_those_of_the_entries_an_earlier_run_applied(db, tmp_path, load):
    path = _bundle(tmp_path / "b.json", PATIENT, CONDITION)
    name = display_name(path)
    assert CdmWriter(db, run_id=1).applied_hashes(name) == {}  # nothing recorded yet
    load(db, path)
    recorded = dict(db.query(f"SELECT resource_key, content_hash FROM {db.table('ctcl_resource_file')}"))
    assert CdmWriter(db, run_id=2).applied_hashes(name) == recorded
    assert set(recorded) == {"Condition/c1", "Patient/p1"}
    assert CdmWriter(db, run_id=2).applied_hashes("other.json") == {}
