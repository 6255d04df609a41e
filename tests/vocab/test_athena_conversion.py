"""After `vocab load`, conversion resolves codes through the loaded Athena vocabulary.

The Athena folders are written by the test from verified concept ids only. SNOMED 118600007
(Malignant lymphoma, 432571) is in no CTCL mapping table, so only the vocabulary can resolve it.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from ctcl_map.cdm.schema import cdm_ddl
from ctcl_map.mappings.tables import load_mappings
from ctcl_map.pipeline import RunOptions, run_fhir2omop
from ctcl_map.store.database import connect
from ctcl_map.store.prepare import prepare_database
from ctcl_map.store.settings import recorded_setting
from ctcl_map.vocab import prepare
from ctcl_map.vocab import snapshot as snapshot_module
from ctcl_map.vocab.athena import load_athena
from ctcl_map.vocab.loader import load_shipped_vocabulary
from ctcl_map.vocab.lookup import ConceptResolver
from ctcl_map.vocab.prepare import prepare_vocabulary
from ctcl_map.vocab.snapshot import SnapshotVocabulary

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

LYMPHOMA = "432571\tMalignant lymphoma\tCondition\tSNOMED\tDisorder\tS\t118600007\t20020131\t20991231\t"


def _bundle(tmp_path, code_system: str, code: str):
    condition = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
                 "code": {"coding": [{"system": code_system, "code": code}]}, "onsetDateTime": "2019-02-01"}
    patient = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-04-12"}
    path = tmp_path / f"{code}.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": patient}, {"resource": condition}]}))
    return path


def _athena_db(write_athena, tmp_path, concept_rows):
    db = connect(tmp_path / "cdm.duckdb")
    for statement in cdm_ddl(db.dialect, db.cdm_schema):
        db.execute(statement)
    load_athena(db, write_athena(tmp_path / "athena", concept_rows))
    prepare_database(db, load_shipped_vocabulary)  # keeps the loaded vocabulary: the shipped subset goes only into an empty CDM
    return db


def test_loaded_vocabulary_resolves_codes_and_its_version_is_recorded(tmp_path, load, athena_concept_rows, athena_version, write_athena):
    db = _athena_db(write_athena, tmp_path, [*athena_concept_rows, LYMPHOMA])
    report = load(db, _bundle(tmp_path, "http://snomed.info/sct", "118600007"))
    assert db.query(f"SELECT condition_concept_id, condition_source_concept_id FROM {db.table('condition_occurrence')}") == [(432571, 432571)]
    assert report.vocabulary_version == athena_version
    db.close()


def test_the_loaded_vocabulary_replaces_the_shipped_subset(tmp_path, load, athena_concept_rows, write_athena):
    """432571 is in the shipped subset; an Athena download without it no longer resolves the code."""
    db = _athena_db(write_athena, tmp_path, athena_concept_rows)
    report = load(db, _bundle(tmp_path, "http://snomed.info/sct", "118600007"))
    assert db.query(f"SELECT condition_concept_id FROM {db.table('condition_occurrence')}") == [(0,)]
    assert ("condition_occurrence", "concept_id", "SNOMED", "118600007", "code_not_in_vocabulary") in report.outcome.unmapped
    db.close()


def test_ctcl_tables_keep_precedence_over_the_loaded_vocabulary(tmp_path, load, athena_concept_rows, write_athena):
    db = _athena_db(write_athena, tmp_path, athena_concept_rows)
    load(db, FIXTURES / "golden" / "condition_icd10_mf_maps_to_snomed.json")
    assert db.query(f"SELECT condition_concept_id, condition_source_value FROM {db.table('condition_occurrence')}") == [(4040380, "C84.0")]
    db.close()


def test_a_full_vocabulary_is_read_from_its_snapshot_and_two_workers_write_what_one_writes(
        tmp_path, monkeypatch, write_athena, athena_concept_rows, database_snapshot):
    """A vocabulary over the in-memory limit (every Athena download) is copied once into a
    read-only snapshot file that each converting process opens: workers are not reduced to one."""
    monkeypatch.setattr(prepare, "IN_MEMORY_LIMIT", 0)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for code in ("118600007", "C84.0"):
        system = "http://snomed.info/sct" if code[0].isdigit() else "http://hl7.org/fhir/sid/icd-10"
        _bundle(inputs, system, code).rename(inputs / f"{code}.json")
        bundle = json.loads((inputs / f"{code}.json").read_text())
        for entry in bundle["entry"]:  # a patient of each file
            entry["resource"]["id"] += f"-{code}"
            if "subject" in entry["resource"]:
                entry["resource"]["subject"]["reference"] += f"-{code}"
        (inputs / f"{code}.json").write_text(json.dumps(bundle))
    snapshots = []
    for workers in (1, 2):
        (tmp_path / str(workers)).mkdir()
        db = _athena_db(write_athena, tmp_path / str(workers), [*athena_concept_rows, LYMPHOMA])
        assert isinstance(prepare_vocabulary(db), SnapshotVocabulary)
        report = run_fhir2omop(db, RunOptions(inputs=[inputs], workers=workers))
        assert report.workers == workers and not report.outcome.notes
        snapshots.append(database_snapshot(db))
        assert sorted(db.query(f"SELECT condition_concept_id FROM {db.table('condition_occurrence')}")) == [(432571,), (4040380,)]
        db.close()
    assert snapshots[1] == snapshots[0]
    assert len(list((tmp_path / "2").glob(f"{prepare.SNAPSHOT_PREFIX}*.duckdb"))) == 1  # next to the CDM file


def test_the_snapshot_answers_every_code_and_concept_as_the_in_memory_index(tmp_path, monkeypatch):
    db = connect(tmp_path / "cdm.duckdb")
    prepare_database(db, load_shipped_vocabulary)  # the shipped subset, several 'Maps to' per code included
    in_memory = prepare_vocabulary(db)
    monkeypatch.setattr(prepare, "IN_MEMORY_LIMIT", 0)
    snapshot = prepare_vocabulary(db)
    assert isinstance(snapshot, SnapshotVocabulary)
    concepts = db.query(f"SELECT vocabulary_id, concept_code, concept_id FROM {db.table('concept')}")
    for vocabulary_id, code, concept_id in concepts:
        assert snapshot.lookup(vocabulary_id, code) == in_memory.lookup(vocabulary_id, code)
        assert pickle.loads(pickle.dumps(snapshot)).concept(concept_id) == in_memory.concept(concept_id)
    assert snapshot.lookup("SNOMED", "no such code") is None and snapshot.concept(1) is None
    db.close()


def _snapshot_answers_like_the_index(db, tmp_path) -> None:
    """Copied through a CSV file the database writes (never a frame in memory), it answers as the
    in-memory index and leaves no file behind but itself."""
    prepare_database(db, load_shipped_vocabulary)
    in_memory = prepare_vocabulary(db)
    folder = tmp_path / "snapshots"
    folder.mkdir()
    path = folder / "snapshot.duckdb"
    prepare._build(db, path)
    assert [p.name for p in folder.iterdir()] == ["snapshot.duckdb"]
    snapshot = SnapshotVocabulary(path)
    for vocabulary_id, code, concept_id in db.query(f"SELECT vocabulary_id, concept_code, concept_id FROM {db.table('concept')}"):
        assert snapshot.lookup(vocabulary_id, code) == in_memory.lookup(vocabulary_id, code)
        assert snapshot.concept(concept_id) == in_memory.concept(concept_id)


def test_the_snapshot_is_built_through_csv_from_duckdb(tmp_path):
    with connect(tmp_path / "cdm.duckdb") as db:
        _snapshot_answers_like_the_index(db, tmp_path)


@pytest.mark.postgres
def test_the_snapshot_is_built_through_csv_from_postgres(tmp_path, postgres_or_skip):
    url, schema = postgres_or_skip("snap")
    db = connect(url, cdm_schema=schema)
    try:
        _snapshot_answers_like_the_index(db, tmp_path)
    finally:
        db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        db.close()


def test_a_run_reuses_the_recorded_digest_and_a_new_vocab_load_makes_a_new_snapshot(
        tmp_path, monkeypatch, write_athena, athena_concept_rows):
    """Summing every 'Maps to' row names the vocabulary once; the next runs read that name from
    ctcl_settings, until a `vocab load` forgets it."""
    monkeypatch.setattr(prepare, "IN_MEMORY_LIMIT", 0)
    db = _athena_db(write_athena, tmp_path, [*athena_concept_rows, LYMPHOMA])
    first = prepare_vocabulary(db, record_digest=True)
    assert isinstance(first, SnapshotVocabulary) and first.lookup("SNOMED", "118600007") is not None
    full_digest = prepare._digest
    monkeypatch.setattr(prepare, "_digest", lambda *query_results: pytest.fail("the recorded digest was not reused"))
    again = prepare_vocabulary(db, record_digest=True)
    assert isinstance(again, SnapshotVocabulary) and again.path == first.path
    assert recorded_setting(db, prepare.DIGEST_SETTING) is not None
    load_athena(db, write_athena(tmp_path / "athena-2", athena_concept_rows))  # without LYMPHOMA
    assert recorded_setting(db, prepare.DIGEST_SETTING) is None  # even were its cheap key the same
    monkeypatch.setattr(prepare, "_digest", full_digest)
    reloaded = prepare_vocabulary(db, record_digest=True)
    assert isinstance(reloaded, SnapshotVocabulary) and reloaded.path != first.path
    assert reloaded.lookup("SNOMED", "118600007") is None
    assert [p.name for p in tmp_path.glob(f"{prepare.SNAPSHOT_PREFIX}*.duckdb")] == [reloaded.path.name]
    db.close()


def test_prefetched_codes_are_answered_as_the_in_memory_index_without_a_query_each(tmp_path, monkeypatch):
    db = connect(tmp_path / "cdm.duckdb")
    prepare_database(db, load_shipped_vocabulary)  # the shipped subset, several 'Maps to' per code included
    in_memory = prepare_vocabulary(db)
    monkeypatch.setattr(prepare, "IN_MEMORY_LIMIT", 0)
    monkeypatch.setattr(snapshot_module, "PREFETCH_CODES", 7)  # several chunks
    snapshot = prepare_vocabulary(db)
    assert isinstance(snapshot, SnapshotVocabulary)
    concepts = db.query(f"SELECT vocabulary_id, concept_code, concept_id FROM {db.table('concept')}")
    asked = {(vocabulary_id, code) for vocabulary_id, code, _ in concepts} | {("SNOMED", "no such code"), ("LOINC", "4040380")}
    snapshot.prefetch(asked)
    monkeypatch.setattr(snapshot, "_query", lambda sql, params: pytest.fail(f"queried after the prefetch: {params}"))
    for vocabulary_id, code in asked:
        assert snapshot.lookup(vocabulary_id, code) == in_memory.lookup(vocabulary_id, code)
    for _, _, concept_id in concepts:
        assert snapshot.concept(concept_id) == in_memory.concept(concept_id)
    db.close()


def test_the_resolver_prefetches_the_main_codes_of_resources_and_ignores_malformed_ones():
    class Recorder:
        def __init__(self):
            self.pairs = set()

        def prefetch(self, pairs):
            self.pairs |= set(pairs)

    vocab = Recorder()
    resolver = ConceptResolver({"http://snomed.info/sct": "SNOMED", "http://loinc.org": "LOINC"}, load_mappings(()), vocab)
    resolver.prefetch([
        {"resourceType": "Condition", "code": {"coding": [{"system": "http://snomed.info/sct", "code": " 118600007 "}]}},
        {"resourceType": "Observation", "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}, "odd", {"code": 5}]},
         "valueCodeableConcept": {"coding": [{"system": "urn:unknown", "code": "x"}]}},
        {"resourceType": "Observation", "code": {"coding": 7}}, {"code": "not a concept"}, "not a resource", None,
    ])
    assert vocab.pairs == {("SNOMED", "118600007"), ("LOINC", "8480-6")}
