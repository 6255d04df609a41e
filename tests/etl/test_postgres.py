"""The PostgreSQL path for real: the same input into DuckDB and PostgreSQL gives the same tables."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


pytestmark = pytest.mark.postgres

INPUTS = sorted(p for p in (FIXTURES / "golden").glob("*.json") if not p.name.endswith(".expected.json")) + [TESTS / "data" / "synthea"]
BOOKKEEPING = ("ctcl_id_map", "ctcl_lineage", "ctcl_resource_state")


def _books(db) -> dict:
    return {t: sorted(db.query(f"SELECT * FROM {db.table(t)}"), key=repr) for t in BOOKKEEPING}


def test_duckdb_and_postgresql_give_identical_tables(cdm_snapshot, clinical_tables, drop_schema, fresh_db, load, postgres_or_skip):
    url, schema = postgres_or_skip("ctcl_eq")
    duck = fresh_db()
    pg = fresh_db(url, cdm_schema=schema)
    try:
        load(duck, *INPUTS)
        load(pg, *INPUTS)
        tables = clinical_tables + ("source_to_concept_map",)
        assert cdm_snapshot(pg, tables) == cdm_snapshot(duck, tables)
        assert _books(pg) == _books(duck)
        # and a re-load is a no-op on PostgreSQL too
        before = cdm_snapshot(pg)
        load(pg, *INPUTS)
        assert cdm_snapshot(pg) == before
    finally:
        duck.close()
        pg.close()
        drop_schema(schema)
