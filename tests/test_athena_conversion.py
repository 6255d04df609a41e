"""After `vocab load`, conversion resolves codes through the loaded Athena vocabulary.

The Athena folders are written by the test from verified concept ids only. SNOMED 118600007
(Malignant lymphoma, 432571) is in no CTCL mapping table, so only the vocabulary can resolve it.
"""

from __future__ import annotations

import json

from conftest import FIXTURES, load
from test_athena_loader import CONCEPT_ROWS, VERSION, write_athena

from ctcl_map.cdm.schema import cdm_ddl
from ctcl_map.store.prepare import prepare_database
from ctcl_map.vocab.loader import load_athena, load_shipped_vocabulary
from ctcl_map.store.database import connect

LYMPHOMA = "432571\tMalignant lymphoma\tCondition\tSNOMED\tDisorder\tS\t118600007\t20020131\t20991231\t"


def _bundle(tmp_path, code_system: str, code: str):
    condition = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
                 "code": {"coding": [{"system": code_system, "code": code}]}, "onsetDateTime": "2019-02-01"}
    patient = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-04-12"}
    path = tmp_path / f"{code}.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": patient}, {"resource": condition}]}))
    return path


def _athena_db(tmp_path, concept_rows):
    db = connect(tmp_path / "cdm.duckdb")
    for statement in cdm_ddl(db.dialect, db.cdm_schema):
        db.execute(statement)
    load_athena(db, write_athena(tmp_path / "athena", concept_rows))
    prepare_database(db, load_shipped_vocabulary)  # keeps the loaded vocabulary: the shipped subset goes only into an empty CDM
    return db


def test_loaded_vocabulary_resolves_codes_and_its_version_is_recorded(tmp_path):
    db = _athena_db(tmp_path, [*CONCEPT_ROWS, LYMPHOMA])
    report = load(db, _bundle(tmp_path, "http://snomed.info/sct", "118600007"))
    assert db.query(f"SELECT condition_concept_id, condition_source_concept_id FROM {db.table('condition_occurrence')}") == [(432571, 432571)]
    assert report.vocabulary_version == VERSION
    db.close()


def test_the_loaded_vocabulary_replaces_the_shipped_subset(tmp_path):
    """432571 is in the shipped subset; an Athena download without it no longer resolves the code."""
    db = _athena_db(tmp_path, CONCEPT_ROWS)
    report = load(db, _bundle(tmp_path, "http://snomed.info/sct", "118600007"))
    assert db.query(f"SELECT condition_concept_id FROM {db.table('condition_occurrence')}") == [(0,)]
    assert ("condition_occurrence", "concept_id", "SNOMED", "118600007", "code_not_in_vocabulary") in report.outcome.unmapped
    db.close()


def test_ctcl_tables_keep_precedence_over_the_loaded_vocabulary(tmp_path):
    db = _athena_db(tmp_path, CONCEPT_ROWS)
    load(db, FIXTURES / "golden" / "condition_icd10_mf_maps_to_snomed.json")
    assert db.query(f"SELECT condition_concept_id, condition_source_value FROM {db.table('condition_occurrence')}") == [(4040380, "C84.0")]
    db.close()
