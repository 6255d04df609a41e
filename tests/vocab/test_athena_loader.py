"""The Athena bulk loader on small Athena-format folders written by the tests (well-formed and malformed)."""

from __future__ import annotations

import pytest

from ctcl_map.cdm.schema import cdm_ddl
from ctcl_map.errors import AthenaError
from ctcl_map.store.database import connect
from ctcl_map.vocab.athena import load_athena
from ctcl_map.vocab.loader import vocabulary_version


@pytest.fixture
def duck(tmp_path):
    db = connect(tmp_path / "cdm.duckdb")
    for statement in cdm_ddl(db.dialect, db.cdm_schema):
        db.execute(statement)
    yield db
    db.close()


def test_wellformed_folder_loads_records_version_and_readds_our_concepts(duck, tmp_path, athena_version, write_athena):
    report = load_athena(duck, write_athena(tmp_path / "athena"))
    assert report.vocabulary_version == athena_version
    assert vocabulary_version(duck) == athena_version
    assert report.rows_loaded == {"CONCEPT.csv": 4, "CONCEPT_RELATIONSHIP.csv": 3, "VOCABULARY.csv": 2}
    assert "CONCEPT_ANCESTOR.csv" in report.missing_optional
    # 'Maps to' resolves the non-standard SNOMED code to the standard MF concept
    rows = duck.query(
        "SELECT r.concept_id_2 FROM concept c JOIN concept_relationship r ON r.concept_id_1 = c.concept_id "
        "WHERE c.vocabulary_id = 'SNOMED' AND c.concept_code = '94715001' AND r.relationship_id = 'Maps to'"
    )
    assert rows == [(4040380,)]
    # quotes inside names are data, not CSV quoting
    assert duck.query("SELECT concept_name FROM concept WHERE concept_id = 35200202")[0][0].startswith('mogamulizumab "Poteligeo"')
    # our vocabulary is back on top of the download, found by code
    assert duck.query("SELECT concept_id FROM concept WHERE vocabulary_id = 'CTCL-map' AND concept_code = 'B2'") == [(2000000017,)]
    assert report.own_concepts_added == duck.query("SELECT count(*) FROM concept WHERE vocabulary_id = 'CTCL-map'")[0][0] > 20


def test_reload_replaces_previous_contents(duck, tmp_path, athena_concept_rows, write_athena):
    load_athena(duck, write_athena(tmp_path / "first"))
    load_athena(duck, write_athena(tmp_path / "second", concept_rows=athena_concept_rows[:1]))
    assert duck.query("SELECT count(*) FROM concept WHERE concept_id < 2000000000") == [(1,)]


def test_missing_concept_file_is_named(duck, tmp_path, write_athena):
    folder = write_athena(tmp_path / "athena")
    (folder / "CONCEPT.csv").unlink()
    with pytest.raises(AthenaError, match=r"required file\(s\) missing: CONCEPT\.csv"):
        load_athena(duck, folder)


def test_comma_delimited_file_is_named_with_line_1(duck, tmp_path, write_athena):
    folder = write_athena(tmp_path / "athena", delimiter=",")
    with pytest.raises(AthenaError, match=r"^CONCEPT\.csv, line 1: comma-delimited"):
        load_athena(duck, folder)


def test_row_with_wrong_column_count_names_file_and_line(duck, tmp_path, athena_concept_rows, write_athena):
    rows = athena_concept_rows[:2] + ["35200202\tmogamulizumab\tDrug\tRxNorm"]  # line 4 of the file
    with pytest.raises(AthenaError, match=r"^CONCEPT\.csv, line 4: Expected Number of Columns: 10 Found: 4"):
        load_athena(duck, write_athena(tmp_path / "athena", concept_rows=rows))


def test_non_integer_concept_id_names_file_and_line(duck, tmp_path, athena_concept_rows, write_athena):
    rows = athena_concept_rows[:1] + [athena_concept_rows[1].replace("135204", "13520x", 1)]  # line 3
    with pytest.raises(AthenaError, match=r"^CONCEPT\.csv, line 3: .*concept_id"):
        load_athena(duck, write_athena(tmp_path / "athena", concept_rows=rows))


def test_bad_date_names_file_and_line(duck, tmp_path, athena_concept_rows, write_athena):
    rows = athena_concept_rows[:1] + [athena_concept_rows[1].replace("19700101", "1970-01-01", 1)]  # line 3
    with pytest.raises(AthenaError, match=r"^CONCEPT\.csv, line 3: .*valid_start_date"):
        load_athena(duck, write_athena(tmp_path / "athena", concept_rows=rows))


def test_failed_load_leaves_previous_vocabulary_untouched(duck, tmp_path, athena_concept_rows, athena_version, write_athena):
    load_athena(duck, write_athena(tmp_path / "good"))
    bad = athena_concept_rows[:1] + ["x\ty"]
    with pytest.raises(AthenaError):
        load_athena(duck, write_athena(tmp_path / "bad", concept_rows=bad))
    assert duck.query("SELECT count(*) FROM concept WHERE concept_id < 2000000000") == [(4,)]
    assert vocabulary_version(duck) == athena_version


@pytest.mark.postgres
def test_postgres_bulk_copy_and_error_line(tmp_path, postgres_or_skip, athena_concept_rows, athena_version, write_athena):
    url, schema = postgres_or_skip("athena")
    db = connect(url, cdm_schema=schema)
    try:
        for statement in cdm_ddl(db.dialect, db.cdm_schema):
            db.execute(statement)
        report = load_athena(db, write_athena(tmp_path / "athena"))
        assert report.vocabulary_version == athena_version
        assert db.query(f"SELECT concept_id_2 FROM {schema}.concept_relationship WHERE concept_id_1 = 135204") == [(4040380,)]
        assert db.query(f"SELECT count(*) FROM {schema}.concept WHERE vocabulary_id = 'CTCL-map'")[0][0] == report.own_concepts_added
        rows = athena_concept_rows[:1] + [athena_concept_rows[1].replace("135204", "13520x", 1)]
        with pytest.raises(AthenaError, match=r"^CONCEPT\.csv, line 3: "):
            load_athena(db, write_athena(tmp_path / "bad", concept_rows=rows))
        assert vocabulary_version(db) == athena_version  # rolled back
    finally:
        db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        db.close()
