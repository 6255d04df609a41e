"""`vocab load` leaves OHDSI's vocabulary indices on the tables it loaded, on DuckDB and PostgreSQL."""

from __future__ import annotations

import pytest

from ctcl_map.cdm.schema import cdm_ddl
from ctcl_map.store.constraints import table_index_statements
from ctcl_map.store.database import connect
from ctcl_map.vocab.athena import REPLACED_TABLES, load_athena

# The official script's indices on the tables an Athena load replaces (cdm/ddl/OMOPCDM_5.4_indices.sql).
VOCABULARY_INDICES = {
    "idx_concept_concept_id", "idx_concept_code", "idx_concept_vocabluary_id", "idx_concept_domain_id",
    "idx_concept_class_id", "idx_vocabulary_vocabulary_id", "idx_domain_domain_id", "idx_concept_class_class_id",
    "idx_concept_relationship_id_1", "idx_concept_relationship_id_2", "idx_concept_relationship_id_3",
    "idx_relationship_rel_id", "idx_concept_synonym_id", "idx_concept_ancestor_id_1", "idx_concept_ancestor_id_2",
    "idx_drug_strength_id_1", "idx_drug_strength_id_2",
}


def test_the_vocabulary_tables_indices_of_the_official_script():
    statements = table_index_statements(REPLACED_TABLES, "cdm")
    assert {name for name, _ in statements} == VOCABULARY_INDICES
    assert all("CLUSTER" not in statement and " ON cdm." in statement for _, statement in statements)


def _load_twice_and_check(db, folder) -> None:
    for statement in cdm_ddl(db.dialect, db.cdm_schema):
        db.execute(statement)
    report = load_athena(db, folder)
    assert set(report.indices_created) == VOCABULARY_INDICES
    assert VOCABULARY_INDICES <= db.index_names()
    again = load_athena(db, folder)  # a reload drops them before its bulk load and creates them again
    assert set(again.indices_created) == VOCABULARY_INDICES
    assert VOCABULARY_INDICES <= db.index_names()
    assert db.query(f"SELECT concept_id_2 FROM {db.table('concept_relationship')} WHERE concept_id_1 = 135204") == [(4040380,)]


def test_duckdb_load_creates_the_vocabulary_indices(tmp_path, write_athena):
    with connect(tmp_path / "cdm.duckdb") as db:
        _load_twice_and_check(db, write_athena(tmp_path / "athena"))


@pytest.mark.postgres
def test_postgres_load_creates_the_vocabulary_indices(tmp_path, postgres_or_skip, write_athena):
    url, schema = postgres_or_skip("athidx")
    db = connect(url, cdm_schema=schema)
    try:
        _load_twice_and_check(db, write_athena(tmp_path / "athena"))
    finally:
        db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        db.close()
