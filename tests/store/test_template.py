"""A new DuckDB CDM file starts as a copy of a prepared template: the same tables, columns and rows
as one prepared statement by statement, and never a template of other DDL, vocabulary or code."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctcl_map.store.database import Database, connect
from ctcl_map.store.prepare import prepare_database
from ctcl_map.store.template import TEMPLATE_PREFIX
from ctcl_map.vocab.loader import load_shipped_vocabulary, shipped_vocabulary_key


def _content(db: Database) -> dict[str, object]:
    """Every table's columns (name, type, nullability) and rows, sorted."""
    tables = [name for (name,) in db.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1")]
    content: dict[str, object] = {}
    for table in tables:
        columns = db.query("SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                           "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position", [table])
        rows = db.query(f"SELECT * FROM {table}")
        content[table] = (columns, sorted(rows, key=repr))
    return content


def _prepared(path: Path, key: str | None) -> dict[str, object]:
    with connect(path) as db:
        prepare_database(db, load_shipped_vocabulary, key)
        return _content(db)


def _templates(cache: Path) -> list[Path]:
    return sorted(cache.glob(f"{TEMPLATE_PREFIX}*.duckdb"))


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("CTCL_MAP_CACHE_DIR", str(folder))
    return folder


def test_a_cdm_from_the_template_equals_one_prepared_statement_by_statement(tmp_path, cache):
    by_statement = _prepared(tmp_path / "a.duckdb", None)
    assert not _templates(cache)
    built = _prepared(tmp_path / "b.duckdb", shipped_vocabulary_key())  # builds the template, then copies it
    assert len(_templates(cache)) == 1
    copied = _prepared(tmp_path / "c.duckdb", shipped_vocabulary_key())  # copies the template built above
    assert len(by_statement["concept"][1]) > 500  # the shipped vocabulary is there
    assert by_statement == built == copied


def test_another_key_is_another_template(tmp_path, cache):
    _prepared(tmp_path / "a.duckdb", "vocabulary one")
    _prepared(tmp_path / "b.duckdb", "vocabulary two")
    assert len(_templates(cache)) == 2


def test_an_existing_file_is_never_replaced(tmp_path, cache):
    path = tmp_path / "kept.duckdb"
    with connect(path) as db:
        db.execute("CREATE TABLE mine (x INTEGER)")
        db.execute("INSERT INTO mine VALUES (7)")
    with connect(path) as db:
        assert not db.created
        prepare_database(db, load_shipped_vocabulary, shipped_vocabulary_key())
        assert db.query("SELECT x FROM mine") == [(7,)]
    assert not _templates(cache)


def test_a_new_file_given_tables_by_its_connection_is_never_replaced(tmp_path, cache):
    """As `vocab load` does: the connection that created the file loads a vocabulary, then a run prepares it."""
    with connect(tmp_path / "new.duckdb") as db:
        assert db.created
        db.execute("CREATE TABLE mine (x INTEGER)")
        prepare_database(db, load_shipped_vocabulary, shipped_vocabulary_key())
        assert db.query("SELECT COUNT(*) FROM mine") == [(0,)]
    assert not _templates(cache)


def test_an_unwritable_cache_folder_prepares_statement_by_statement(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("CTCL_MAP_CACHE_DIR", str(blocker / "cache"))
    assert _prepared(tmp_path / "a.duckdb", shipped_vocabulary_key())["concept"][1]
