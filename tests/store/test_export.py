"""`ctcl-map export`: every CDM table to Parquet or CSV, the same rows as in the database."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ctcl_map.cdm.schema import cdm_fields
from ctcl_map.store.database import connect
from ctcl_map.store.export import export_cdm

TESTS = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

INPUTS = [TESTS / "data" / "synthea", FIXTURES / "golden" / "medication_request_days_supply_end_date.json"]


def _rows(db, table: str) -> list[tuple]:
    columns = ", ".join(f'"{f.name.strip(chr(34))}"' for f in cdm_fields()[table])
    return sorted(db.query(f"SELECT {columns} FROM {db.table(table)}"), key=repr)


def _csv_rows(path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return header, list(reader)


def _check(db, out_dir, file_format: str) -> None:
    tables = cdm_fields()
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(f"{t}.{file_format}" for t in tables)
    for table in tables:
        path = out_dir / f"{table}.{file_format}"
        expected = _rows(db, table)
        names = [f.name.strip('"') for f in tables[table]]
        if file_format == "parquet":
            exported = pq.read_table(path)
            assert exported.column_names == names
            assert sorted((tuple(r.values()) for r in exported.to_pylist()), key=repr) == expected, table
        else:
            header, rows = _csv_rows(path)
            assert header == names
            assert len(rows) == len(expected), table
    # one table checked value by value in CSV too (text form)
    header, rows = _csv_rows(out_dir / "person.csv") if file_format == "csv" else (None, None)
    if rows is not None:
        ids = sorted(int(r[header.index("person_id")]) for r in rows)
        assert ids == sorted(r[0] for r in _rows(db, "person"))


def test_export_duckdb_to_parquet_and_csv_through_the_cli(tmp_path, fresh_db, load, run_cli):
    db_path = tmp_path / "cdm.duckdb"
    db = fresh_db(str(db_path))
    load(db, *INPUTS)
    db.close()
    for file_format in ("parquet", "csv"):
        out_dir = tmp_path / file_format
        result = run_cli("export", str(out_dir), "--db", str(db_path), "--format", file_format)
        assert result.returncode == 0, result.stderr
        assert "39 tables" in result.stdout
        db = connect(db_path, read_only=True)
        try:
            assert db.query(f"SELECT COUNT(*) FROM {db.table('drug_exposure')}")[0][0] > 0
            _check(db, out_dir, file_format)
        finally:
            db.close()


def test_export_refuses_an_unknown_format_and_a_database_without_a_cdm(tmp_path, run_cli):
    result = run_cli("export", str(tmp_path / "out"), "--db", str(tmp_path / "x.duckdb"), "--format", "xlsx")
    assert result.returncode == 2 and "parquet" in result.stderr
    connect(tmp_path / "empty.duckdb").close()
    result = run_cli("export", str(tmp_path / "out"), "--db", str(tmp_path / "empty.duckdb"))
    assert result.returncode == 1
    assert "no CDM table" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.postgres
def test_export_postgresql_to_parquet_and_csv(tmp_path, drop_schema, fresh_db, load, postgres_or_skip):
    url, schema = postgres_or_skip("ctcl_export")
    db = fresh_db(url, cdm_schema=schema)
    try:
        load(db, *INPUTS)
        for file_format in ("parquet", "csv"):
            out_dir = tmp_path / file_format
            export_cdm(db, out_dir, file_format)
            _check(db, out_dir, file_format)
    finally:
        db.close()
        drop_schema(schema)


@pytest.mark.postgres
def test_parquet_from_both_backends_has_the_spec_schema_and_concatenates(tmp_path, drop_schema, fresh_db, load, postgres_or_skip):
    """One Arrow schema per table from the spec: int32 for integer, non-nullable exactly where the
    spec requires a value; the same from DuckDB and PostgreSQL, so the files concatenate."""
    import pyarrow as pa

    from ctcl_map.store.export import arrow_schema

    url, schema = postgres_or_skip("ctcl_export_schema")
    postgres, duck = fresh_db(url, cdm_schema=schema), fresh_db()
    try:
        for db, name in ((postgres, "pg"), (duck, "duck")):
            load(db, *INPUTS)
            export_cdm(db, tmp_path / name, "parquet")
        for table, _fields in cdm_fields().items():
            expected = arrow_schema(table)
            from_pg, from_duck = (pq.read_table(tmp_path / name / f"{table}.parquet") for name in ("pg", "duck"))
            assert from_pg.schema.equals(expected) and from_duck.schema.equals(expected), table
            assert pa.concat_tables([from_pg, from_duck]).num_rows == from_pg.num_rows + from_duck.num_rows
        person = arrow_schema("person")
        assert person.field("person_id").type == pa.int32() and not person.field("person_id").nullable
        assert person.field("birth_datetime").nullable
    finally:
        postgres.close()
        duck.close()
        drop_schema(schema)


def test_a_new_duckdb_file_is_written_in_the_storage_format_duckdb_1_1_reads(tmp_path, fresh_db, load):
    """Files we create carry DuckDB's v1.0.0+ storage format (header version 64, what DuckDB 1.0 and
    1.1 read), whatever newer duckdb writes them; DuckDB 1.1.3 then opens them (checked by hand,
    see README: Portable files)."""
    import duckdb

    from ctcl_map.store.database import DUCKDB_STORAGE_VERSION, _duckdb_at_least

    path = tmp_path / "cdm.duckdb"
    db = fresh_db(str(path))
    load(db, INPUTS[1])
    tags = db.query("SELECT tags FROM duckdb_databases() WHERE database_name = 'cdm'")[0][0]
    db.close()
    if not _duckdb_at_least(duckdb, 1, 2):
        pytest.skip(f"duckdb {duckdb.__version__} writes the 1.1 format itself")
    assert DUCKDB_STORAGE_VERSION == "v1.1.0" and tags["storage_version"] == "v1.0.0+"
    header = path.read_bytes()[:20]
    assert header[8:12] == b"DUCK" and int.from_bytes(header[12:20], "little") == 64
