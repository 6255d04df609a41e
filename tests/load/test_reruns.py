"""Re-runs: loading twice changes nothing; newer versions replace; DELETE removes; older is ignored."""

from __future__ import annotations

import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
GOLDEN = FIXTURES / "golden"
ALL_TABLES_WITH_BOOKKEEPING = ("ctcl_id_map", "ctcl_lineage", "ctcl_resource_state")


def _bundle(tmp_path: Path, name: str, *resources: dict, deletes: tuple[str, ...] = ()) -> Path:
    entries = [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
               for r in resources]
    entries += [{"request": {"method": "DELETE", "url": url}} for url in deletes]
    path = tmp_path / name
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}))
    return path


PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "1961-09-30"}
CONDITION = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
             "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "C84.0"}]},
             "onsetDateTime": "2018-05-01", "meta": {"versionId": "1"}}


def test_loading_twice_leaves_the_database_exactly_as_one_load(db, cdm_snapshot, load):
    inputs = sorted(p for p in GOLDEN.glob("*.json") if not p.name.endswith(".expected.json"))
    load(db, *inputs)
    first = cdm_snapshot(db)
    first_books = {t: db.query(f"SELECT * FROM {db.table(t)} ORDER BY 1, 2, 3") for t in ALL_TABLES_WITH_BOOKKEEPING}
    report = load(db, *inputs)
    assert cdm_snapshot(db) == first
    assert {t: db.query(f"SELECT * FROM {db.table(t)} ORDER BY 1, 2, 3") for t in ALL_TABLES_WITH_BOOKKEEPING} == first_books
    assert report.outcome.skipped_unchanged > 0
    assert sum(report.outcome.rows_by_table.values()) == 0


def test_newer_version_replaces_rows_and_keeps_ids(db, tmp_path, load):
    load(db, _bundle(tmp_path, "v1.json", PATIENT, CONDITION))
    newer = {**CONDITION, "meta": {"versionId": "2"}, "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "C84.1"}]}}
    load(db, _bundle(tmp_path, "v2.json", PATIENT, newer))
    rows = db.query(f"SELECT condition_occurrence_id, condition_concept_id, condition_source_value FROM {db.table('condition_occurrence')}")
    assert rows == [(1, 4041799, "C84.1")]


def test_older_version_does_not_replace_newer(db, tmp_path, load):
    newer = {**CONDITION, "meta": {"versionId": "2"}, "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "C84.1"}]}}
    load(db, _bundle(tmp_path, "v2.json", PATIENT, newer))
    report = load(db, _bundle(tmp_path, "v1.json", PATIENT, CONDITION))
    assert report.outcome.superseded == 1
    assert db.query(f"SELECT condition_source_value FROM {db.table('condition_occurrence')}") == [("C84.1",)]


def test_transaction_delete_removes_rows_and_derived_eras(db, tmp_path, load):
    load(db, _bundle(tmp_path, "load.json", PATIENT, CONDITION))
    assert db.query(f"SELECT COUNT(*) FROM {db.table('condition_era')}") == [(1,)]
    report = load(db, _bundle(tmp_path, "delete.json", deletes=("Condition/c1",)))
    assert report.outcome.deleted == 1
    assert db.query(f"SELECT COUNT(*) FROM {db.table('condition_occurrence')}") == [(0,)]
    assert db.query(f"SELECT COUNT(*) FROM {db.table('condition_era')}") == [(0,)]
    assert db.query(f"SELECT COUNT(*) FROM {db.table('ctcl_lineage')} WHERE resource_key = 'Condition/c1'") == [(0,)]


def test_same_input_in_another_order_of_runs_gives_same_ids(tmp_path, cdm_snapshot, fresh_db, load):
    """Ids come from the lineage table: a fresh database given the same files gives the same rows."""

    inputs = sorted(p for p in GOLDEN.glob("*.json") if not p.name.endswith(".expected.json"))
    snapshots = []
    for _ in range(2):
        database = fresh_db()
        load(database, *inputs)
        snapshots.append(cdm_snapshot(database))
        database.close()
    assert snapshots[0] == snapshots[1]


def test_an_entry_left_unconverted_as_unchanged_is_converted_when_it_must_be_written(db, tmp_path, load):
    """A resource its file applied before with the same content is not converted when read; if an
    earlier batch of the run changed it meanwhile (here: an earlier entry of the same file), the
    writer asks for its conversion and the later entry wins, as always."""
    from ctcl_map.pipeline import RunOptions, run_fhir2omop

    load(db, _bundle(tmp_path, "c.json", PATIENT, CONDITION))
    changed = {**CONDITION, "meta": {}, "onsetDateTime": "2019-01-01"}
    unchanged = {**CONDITION, "meta": {}}
    load(db, _bundle(tmp_path, "c.json", PATIENT, unchanged))
    path = tmp_path / "c.json"
    bundle = json.loads(_bundle(tmp_path, "c.json", PATIENT, changed, unchanged).read_text())
    path.write_text(json.dumps(bundle))
    report = run_fhir2omop(db, RunOptions(inputs=[path], workers=1, batch_size=1))
    assert report.outcome.duplicates == 1
    assert db.query(f"SELECT condition_start_date FROM {db.table('condition_occurrence')}")[0][0].isoformat() == "2018-05-01"
