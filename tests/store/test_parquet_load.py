"""`cdm load` into PostgreSQL: the CDM tables by COPY in one transaction, the same rows as the DuckDB
CDM the Parquet CDM was exported from; a second load changes nothing, a load into filled tables is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctcl_map.cdm.schema import cdm_fields
from ctcl_map.errors import DatabaseUsageError
from ctcl_map.store.database import connect
from ctcl_map.store.export import export_cdm
from ctcl_map.store.parquet_load import load_parquet_cdm

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
TABLES = [*cdm_fields(), "ctcl_first_advanced"]


def _rows(db, table: str) -> list[tuple]:
    names = [name for (name,) in db.query(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [db.cdm_schema or db.default_schema, table])]
    return sorted(db.query(f"SELECT {', '.join(chr(34) + n + chr(34) for n in names)} FROM {db.table(table)}"), key=repr)


def test_a_parquet_cdm_loads_into_postgresql_with_the_rows_of_its_source(tmp_path, fresh_db, load, postgres_or_skip, drop_schema):
    url, schema = postgres_or_skip("pq")
    source = fresh_db()
    load(source, *sorted(SAMPLES.glob("*.json")), mapping_dirs=[SAMPLES / "site-mappings"], oncology=True)
    export_cdm(source, tmp_path / "cdm", "parquet-cdm")
    try:
        with connect(url, cdm_schema=schema) as db:
            result = load_parquet_cdm(db, tmp_path / "cdm")
            assert set(result.rows) == set(TABLES) and result.rows["person"] == 3
            for table in TABLES:
                assert _rows(db, table) == _rows(source, table), table
            db.execute(f"DELETE FROM {db.table('note')}")
            assert load_parquet_cdm(db, tmp_path / "cdm").already_loaded
            assert db.query(f"SELECT COUNT(*) FROM {db.table('note')}") == [(0,)]  # nothing loaded again
        with connect(url, cdm_schema=schema) as db:
            db.execute(f"DELETE FROM {db.table('ctcl_settings')}")  # forget the load: the rows are still there
            with pytest.raises(DatabaseUsageError, match="already holds rows in .*person"):
                load_parquet_cdm(db, tmp_path / "cdm")
    finally:
        source.close()
        drop_schema(schema)


def test_text_values_keep_quotes_newlines_empty_strings_and_nulls_through_copy(tmp_path, postgres_or_skip, drop_schema):
    url, schema = postgres_or_skip("pq")
    values = [("tricky", 'a "quoted", text\nwith a newline'), ("empty", ""), ("missing", None), ("backslash", "C:\\x\\N")]
    with connect(":memory:") as source:
        source.execute("CREATE TABLE ctcl_settings (name VARCHAR, value VARCHAR)")
        for name, value in values:
            source.execute("INSERT INTO ctcl_settings VALUES (?, ?)", [name, value])
        source.execute("CREATE TABLE person AS SELECT 1::INTEGER AS person_id, 0::INTEGER AS gender_concept_id, "
                       "1950::INTEGER AS year_of_birth, 0::INTEGER AS race_concept_id, 0::INTEGER AS ethnicity_concept_id")
        for table in ("ctcl_settings", "person"):
            (tmp_path / "cdm" / table).mkdir(parents=True)
            source.execute(f"COPY {table} TO '{tmp_path / 'cdm' / table / 'part-00000.parquet'}' (FORMAT parquet)")
    try:
        with connect(url, cdm_schema=schema) as db:
            db.execute(f"CREATE TABLE {schema}.ctcl_settings (name VARCHAR(60) NOT NULL PRIMARY KEY, value VARCHAR(400))")
            load_parquet_cdm(db, tmp_path / "cdm")
            loaded = dict(db.query(f"SELECT name, value FROM {schema}.ctcl_settings WHERE name <> 'parquet_cdm_loaded'"))
            assert loaded == dict(values)
    finally:
        drop_schema(schema)
