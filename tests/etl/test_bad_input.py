"""Bad input: a clear reason in ctcl_quarantine, never a traceback; the valid rest still loads."""

from __future__ import annotations

import gzip
import json

PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-04-12"}
CONDITION = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
             "code": {"coding": [{"system": "http://snomed.info/sct", "code": "118618005"}]}, "onsetDateTime": "2019-02-01"}


def _quarantine(db) -> list[tuple]:
    return db.query(f"SELECT source_position, resource_type, reason FROM {db.table('ctcl_quarantine')} ORDER BY 1")


def test_ndjson_bad_lines_are_quarantined_and_the_rest_loads(db, tmp_path, load):
    path = tmp_path / "mixed.ndjson"
    path.write_text("\n".join([
        json.dumps(PATIENT),
        "{not json",
        json.dumps({"id": "x", "gender": "male"}),
        json.dumps({"resourceType": "Banana", "id": "b1"}),
        json.dumps({**CONDITION, "id": "c2", "onsetDateTime": "2019-13-45"}),
        json.dumps(CONDITION),
        "",
    ]))
    report = load(db, path)
    assert _quarantine(db) == [
        ("line 2", None, "not_json"),
        ("line 3", None, "not_fhir"),
        ("line 4", "Banana", "unknown_resource_type"),
        ("line 5", "Condition", "invalid_date"),
    ]
    assert db.query(f"SELECT COUNT(*) FROM {db.table('condition_occurrence')}") == [(1,)]
    assert report.loaded_resources == 2


def test_a_file_that_is_not_json_is_reported_and_other_files_load(db, tmp_path, load):
    (tmp_path / "broken.json").write_text("<html>not fhir</html>")
    (tmp_path / "good.json").write_text(json.dumps(PATIENT))
    report = load(db, tmp_path)
    assert report.unreadable_files == 1
    assert _quarantine(db) == [("-", None, "not_json")]
    assert db.query(f"SELECT COUNT(*) FROM {db.table('person')}") == [(1,)]


def test_dangling_subject_is_quarantined_after_the_run(db, tmp_path, load):
    path = tmp_path / "orphans.ndjson"
    path.write_text(json.dumps({**CONDITION, "subject": {"reference": "Patient/nobody"}}) + "\n")
    report = load(db, path)
    assert report.dangling_removed == 1
    assert _quarantine(db) == [("line 1", "Condition", "dangling_subject")]
    assert db.query(f"SELECT COUNT(*) FROM {db.table('condition_occurrence')}") == [(0,)]
    # The Patient arrives later: the same Condition file now loads.
    (tmp_path / "patient.ndjson").write_text(json.dumps({**PATIENT, "id": "nobody"}) + "\n")
    load(db, tmp_path / "patient.ndjson", path)
    assert db.query(f"SELECT COUNT(*) FROM {db.table('condition_occurrence')}") == [(1,)]


def test_missing_input_path_is_reported(db, tmp_path, load):
    report = load(db, tmp_path / "does-not-exist.json")
    assert report.unreadable_files == 1
    assert _quarantine(db) == [("-", None, "file_not_found")]


def test_gzip_ndjson_directory_and_nested_bundles(db, tmp_path, load):
    with gzip.open(tmp_path / "Patient.ndjson.gz", "wt") as handle:
        handle.write(json.dumps(PATIENT) + "\n")
    inner = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": CONDITION}]}
    outer = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": inner}]}
    (tmp_path / "nested.json").write_text(json.dumps(outer))
    report = load(db, tmp_path)
    assert report.files == 2
    assert db.query(f"SELECT condition_concept_id FROM {db.table('condition_occurrence')}") == [(4040380,)]


def test_absolute_and_history_references_resolve(db, tmp_path, load):
    condition = {**CONDITION, "subject": {"reference": "https://fhir.example.org/r4/Patient/p1/_history/3"}}
    (tmp_path / "b.json").write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                                                 "entry": [{"resource": PATIENT}, {"resource": condition}]}))
    load(db, tmp_path / "b.json")
    assert db.query(f"SELECT person_id FROM {db.table('condition_occurrence')}") == [(1,)]


def test_source_values_never_hold_names_or_mrns(db, tmp_path, load):
    patient = {**PATIENT, "name": [{"family": "Doe", "given": ["Jane"]}],
               "identifier": [{"system": "urn:mrn", "value": "MRN123456"}],
               "address": [{"line": ["1 Main Street"], "city": "Lyon"}]}
    (tmp_path / "p.json").write_text(json.dumps(patient))
    load(db, tmp_path / "p.json")
    dump = json.dumps(db.query(f"SELECT * FROM {db.table('person')}"), default=str)
    for secret in ("Doe", "Jane", "MRN123456", "Main Street", "Lyon", "p1"):
        assert secret not in dump


def test_validate_option_quarantines_structural_errors_with_their_path(db, tmp_path):
    from ctcl_map.pipeline import RunOptions, run_fhir2omop

    condition = {**CONDITION, "clinicalStatus": "active"}  # STU3 shape: a string where R4 has a CodeableConcept
    (tmp_path / "b.json").write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                                                 "entry": [{"resource": PATIENT}, {"resource": condition}]}))
    plain = run_fhir2omop(db, RunOptions(inputs=[tmp_path / "b.json"], oncology=False))
    assert plain.quarantined == 0  # the converter itself does not read clinicalStatus
    for table in ("ctcl_resource_state", "ctcl_resource_file"):  # forget, so the second run applies it again
        db.execute(f"DELETE FROM {db.table(table)}")
    checked = run_fhir2omop(db, RunOptions(inputs=[tmp_path / "b.json"], oncology=False, validate=True))
    assert checked.outcome.quarantined == {"fhir_structure": 1}
    assert db.query(f"SELECT message FROM {db.table('ctcl_quarantine')} WHERE reason = 'fhir_structure'") == [
        ("clinicalStatus: should be a JSON object (a FHIR complex type), not a string",)]


def test_symlinked_input_folders_are_followed_and_loops_and_broken_links_reported(db, tmp_path, load):
    """Sites mount exports into an input folder by symbolic links: their files load; a link that
    leads back into the tree is read once and reported; a link to nothing is reported."""
    export = tmp_path / "export-2024"
    export.mkdir()
    (export / "Patient.ndjson").write_text(json.dumps(PATIENT) + "\n")
    (export / "Condition.ndjson").write_text(json.dumps(CONDITION) + "\n")
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "latest").symlink_to(export)
    (inputs / "latest-again").symlink_to(export)  # a second way to the same folder
    (export / "loop").symlink_to(inputs)  # leads back to the top
    (inputs / "gone.json").symlink_to(tmp_path / "deleted.json")
    report = load(db, inputs)
    assert db.query(f"SELECT COUNT(*) FROM {db.table('person')}") == [(1,)]
    assert db.query(f"SELECT COUNT(*) FROM {db.table('condition_occurrence')}") == [(1,)]
    assert report.files == 2  # each file once, though reachable by two paths
    reasons = sorted(reason for _, _, reason in _quarantine(db))
    assert reasons == ["broken_link", "folder_read_twice", "folder_read_twice"]
