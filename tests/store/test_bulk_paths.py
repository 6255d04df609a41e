"""The bulk paths of store/ (DuckDB and PostgreSQL backends), on both backends: what goes in comes out, value for value."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from ctcl_map.store.database import connect
from ctcl_map.store.duckdb_backend import COLUMN_WISE_ROWS

ROWS = [
    (1, "plain", date(2020, 1, 31), datetime(2020, 1, 31, 8, 30), 1.25),
    (2, 'quote " , comma\nnewline \\ backslash', None, None, None),
    (3, "", date(1899, 12, 31), datetime(2099, 12, 31, 23, 59, 59), -0.1),
    (4, None, None, None, 1e-12),
]
COLUMNS = ("id", "text", "day", "moment", "number")


@pytest.fixture(params=["duckdb", "postgresql"])
def db(request, drop_schema, postgres_or_skip):
    if request.param == "duckdb":
        database = connect(":memory:")
        schema = None
    else:
        url, schema = postgres_or_skip("bulk")
        database = connect(url, cdm_schema=schema)
    database.execute(f"CREATE TABLE {database.table('sample')} (id INTEGER PRIMARY KEY, text VARCHAR(200), day DATE, "
                     "moment TIMESTAMP, number DOUBLE PRECISION)")
    yield database
    database.close()
    if schema:
        drop_schema(schema)


def _all(db) -> list[tuple]:
    return db.query(f"SELECT {', '.join(COLUMNS)} FROM {db.table('sample')} ORDER BY id")


@pytest.mark.parametrize("copies", [1, COLUMN_WISE_ROWS])  # DuckDB hands small batches over row-wise, large ones column-wise
def test_insert_rows_round_trips_every_value(db, copies):
    rows = [(row[0] + 10 * n, *row[1:]) for n in range(copies) for row in ROWS]
    db.insert_rows("sample", COLUMNS, rows)
    assert _all(db) == sorted(rows)


def test_upsert_inserts_new_rows_and_replaces_the_rest_of_matching_ones(db):
    db.insert_rows("sample", COLUMNS, ROWS[:2])
    replacement = (2, "second, replaced", date(2021, 2, 3), None, 7.5)
    db.upsert_rows("sample", COLUMNS, [replacement, ROWS[2]], key=("id",))
    assert _all(db) == [ROWS[0], replacement, ROWS[2]]


def test_temp_relation_joins_on_its_keys(db):
    db.insert_rows("sample", COLUMNS, ROWS)
    with db.temp_relation("ctcl_probe", ("id", "label"), [(3, "c"), (1, "a"), (9, "none")]) as relation:
        rows = db.query(f"SELECT s.id, r.label FROM {db.table('sample')} s JOIN {relation} r ON r.id = s.id ORDER BY s.id")
    assert rows == [(1, "a"), (3, "c")]
    with db.temp_relation("ctcl_probe", ("id",), []) as relation:
        assert db.query(f"SELECT COUNT(*) FROM {relation} r") == [(0,)]
