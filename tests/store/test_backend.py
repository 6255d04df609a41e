"""The store's backends agree: the same operations give the same results on DuckDB and on
PostgreSQL, and every driver error leaves the store as a DatabaseError."""

from __future__ import annotations

from datetime import date

import pytest

from ctcl_map.errors import DatabaseError
from ctcl_map.store.database import connect
from ctcl_map.store.settings import forget_setting, record_setting, recorded_setting

COLUMNS = ("id", "label", "day")
ROWS = [(1, "one", date(2020, 1, 1)), (2, "two", None), (3, "three", date(2021, 12, 31))]


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request, postgres_or_skip, drop_schema):
    if request.param == "duckdb":
        database, schema = connect(":memory:"), None
    else:
        url, schema = postgres_or_skip("store")
        database = connect(url, cdm_schema=schema)
    database.execute(f"CREATE TABLE {database.table('sample')} (id BIGINT PRIMARY KEY, label VARCHAR(20), day DATE)")
    yield database
    database.close()
    if schema:
        drop_schema(schema)


def _all(db) -> list[tuple]:
    return db.query(f"SELECT id, label, day FROM {db.table('sample')} ORDER BY id")


def test_insert_then_query_returns_the_rows(db):
    db.insert_rows("sample", COLUMNS, ROWS)
    assert _all(db) == ROWS
    assert db.execute_count(f"UPDATE {db.table('sample')} SET label = ? WHERE id > ?", ["many", 1]) == 2


def test_upsert_replaces_matching_rows_and_adds_the_others(db):
    db.insert_rows("sample", COLUMNS, ROWS[:2])
    db.upsert_rows("sample", COLUMNS, [(2, "TWO", date(2022, 2, 2)), ROWS[2]], key=("id",))
    assert _all(db) == [ROWS[0], (2, "TWO", date(2022, 2, 2)), ROWS[2]]


def test_temp_relation_holds_its_rows_for_a_join(db):
    db.insert_rows("sample", COLUMNS, ROWS)
    with db.temp_relation("ctcl_probe", ("id", "tag"), [(3, "c"), (1, "a"), (7, "absent")]) as relation:
        joined = db.query(f"SELECT s.label, r.tag FROM {db.table('sample')} s JOIN {relation} r ON r.id = s.id ORDER BY s.id")
    assert joined == [("one", "a"), ("three", "c")]


def test_a_failed_transaction_leaves_nothing_behind(db):
    db.insert_rows("sample", COLUMNS, ROWS[:1])
    with pytest.raises(DatabaseError), db.transaction():
        db.insert_rows("sample", COLUMNS, ROWS[1:])
        db.execute(f"INSERT INTO {db.table('sample')} (id, label) VALUES (1, 'duplicate key')")
    assert _all(db) == ROWS[:1]
    with db.exclusive():  # the load lock: taken and released with its transaction
        db.insert_rows("sample", COLUMNS, ROWS[1:2])
    assert _all(db) == ROWS[:2]


def test_driver_errors_become_database_errors_with_their_cause(db):
    driver_error = db.backend.driver_error
    for failing in (lambda: db.query("SELECT * FROM no_such_table"),
                    lambda: db.execute("THIS IS NOT SQL"),
                    lambda: db.insert_rows("no_such_table", COLUMNS, ROWS)):
        with pytest.raises(DatabaseError) as caught:
            failing()
        assert isinstance(caught.value.__cause__, driver_error)
    db.query("SELECT 1")  # the connection is still usable


def test_engine_specific_fragments_mean_the_same(db):
    db.insert_rows("sample", COLUMNS, ROWS)
    db.execute(f"CREATE TABLE {db.table('grouped')} (g VARCHAR(5), v BIGINT)")
    db.insert_rows("grouped", ("g", "v"), [("a", 1), ("a", 5), ("b", 2)])
    assert sorted(db.group_maxima("grouped", "g", "v")) == [("a", 5), ("b", 2)]
    matching = f"SELECT id FROM {db.table('sample')} WHERE {db.regex_full_match('label', 't[a-z]+')} ORDER BY id"
    assert db.query(matching) == [(2,), (3,)]
    with db.transaction():
        db.empty_table("sample")
    assert _all(db) == []
    assert db.tables_exist(["sample", "grouped"]) and not db.tables_exist(["sample", "absent"])
    assert db.claim_run(1) is True
    db.release_run(1)


def test_settings_are_recorded_replaced_and_forgotten(db):
    db.execute(f"CREATE TABLE {db.table('ctcl_settings')} (name VARCHAR(100) PRIMARY KEY, value TEXT)")
    assert recorded_setting(db, "x") is None
    record_setting(db, "x", "1")
    record_setting(db, "x", "2")
    assert recorded_setting(db, "x") == "2"
    forget_setting(db, "x")
    assert recorded_setting(db, "x") is None


def test_a_postgresql_connection_error_names_no_password():
    with pytest.raises(DatabaseError) as caught:
        connect("postgresql+psycopg://nobody:s3cret-pw@127.0.0.1:1/none")
    assert "s3cret-pw" not in str(caught.value)
    assert caught.value.__cause__ is not None
