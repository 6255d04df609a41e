"""The Athena bulk loader on small Athena-format folders written by the tests (well-formed and malformed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctcl_map.cdm.schema import cdm_ddl
from ctcl_map.vocab.loader import AthenaError, load_athena, vocabulary_version
from ctcl_map.store.database import connect
from conftest import postgres_or_skip

# Real, verified concept ids only (shared/reference/vocab-concepts.csv): no invented ids even in fixtures.
CONCEPT_HEADER = "concept_id\tconcept_name\tdomain_id\tvocabulary_id\tconcept_class_id\tstandard_concept\tconcept_code\tvalid_start_date\tvalid_end_date\tinvalid_reason"
CONCEPT_ROWS = [
    "4040380\tMycosis fungoides (clinical)\tCondition\tSNOMED\tDisorder\tS\t118618005\t20020131\t20991231\t",
    "135204\tMycosis fungoides of extranodal AND/OR solid organ site\tCondition\tSNOMED\tDisorder\t\t94715001\t19700101\t20991231\t",
    '35200202\tmogamulizumab "Poteligeo" test name with quotes\tDrug\tRxNorm\tIngredient\tS\t2054068\t20180731\t20991231\t',
    "44818977\tNon-standard to Standard map (OMOP)\tMetadata\tRelationship\tRelationship\t\tOMOP generated\t19700101\t20991231\t",
]
RELATIONSHIP_HEADER = "concept_id_1\tconcept_id_2\trelationship_id\tvalid_start_date\tvalid_end_date\tinvalid_reason"
RELATIONSHIP_ROWS = [
    "135204\t4040380\tMaps to\t19700101\t20991231\t",
    "4040380\t4040380\tMaps to\t19700101\t20991231\t",
    "35200202\t35200202\tMaps to\t19700101\t20991231\t",
]
VOCABULARY_HEADER = "vocabulary_id\tvocabulary_name\tvocabulary_reference\tvocabulary_version\tvocabulary_concept_id"
VOCABULARY_ROWS = [
    "None\tOMOP Standardized Vocabularies\tOMOP generated\tv5.0 30-AUG-24\t44819096",
    "SNOMED\tSystematic Nomenclature of Medicine - Clinical Terms (IHTSDO)\thttp://www.snomed.org/\t2024-03-01 SNOMED CT International Edition\t44819097",
]
VERSION = "v5.0 30-AUG-24"


def write_athena(folder: Path, concept_rows: list[str] | None = None, delimiter: str = "\t") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "CONCEPT.csv": [CONCEPT_HEADER, *(CONCEPT_ROWS if concept_rows is None else concept_rows)],
        "CONCEPT_RELATIONSHIP.csv": [RELATIONSHIP_HEADER, *RELATIONSHIP_ROWS],
        "VOCABULARY.csv": [VOCABULARY_HEADER, *VOCABULARY_ROWS],
    }
    for name, lines in files.items():
        text = "\n".join(line.replace("\t", delimiter) if name == "CONCEPT.csv" else line for line in lines) + "\n"
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def duck(tmp_path):
    db = connect(tmp_path / "cdm.duckdb")
    for statement in cdm_ddl(db.dialect, db.cdm_schema):
        db.execute(statement)
    yield db
    db.close()


def test_wellformed_folder_loads_records_version_and_readds_our_concepts(duck, tmp_path):
    report = load_athena(duck, write_athena(tmp_path / "athena"))
    assert report.vocabulary_version == VERSION
    assert vocabulary_version(duck) == VERSION
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


def test_reload_replaces_previous_contents(duck, tmp_path):
    load_athena(duck, write_athena(tmp_path / "first"))
    load_athena(duck, write_athena(tmp_path / "second", concept_rows=CONCEPT_ROWS[:1]))
    assert duck.query("SELECT count(*) FROM concept WHERE concept_id < 2000000000") == [(1,)]


def test_missing_concept_file_is_named(duck, tmp_path):
    folder = write_athena(tmp_path / "athena")
    (folder / "CONCEPT.csv").unlink()
    with pytest.raises(AthenaError, match=r"required file\(s\) missing: CONCEPT\.csv"):
        load_athena(duck, folder)


def test_comma_delimited_file_is_named_with_line_1(duck, tmp_path):
    folder = write_athena(tmp_path / "athena", delimiter=",")
    with pytest.raises(AthenaError, match=r"^CONCEPT\.csv, line 1: comma-delimited"):
        load_athena(duck, folder)


def test_row_with_wrong_column_count_names_file_and_line(duck, tmp_path):
    rows = CONCEPT_ROWS[:2] + ["35200202\tmogamulizumab\tDrug\tRxNorm"]  # line 4 of the file
    with pytest.raises(AthenaError, match=r"^CONCEPT\.csv, line 4: Expected Number of Columns: 10 Found: 4"):
        load_athena(duck, write_athena(tmp_path / "athena", concept_rows=rows))


def test_non_integer_concept_id_names_file_and_line(duck, tmp_path):
    rows = CONCEPT_ROWS[:1] + [CONCEPT_ROWS[1].replace("135204", "13520x", 1)]  # line 3
    with pytest.raises(AthenaError, match=r"^CONCEPT\.csv, line 3: .*concept_id"):
        load_athena(duck, write_athena(tmp_path / "athena", concept_rows=rows))


def test_bad_date_names_file_and_line(duck, tmp_path):
    rows = CONCEPT_ROWS[:1] + [CONCEPT_ROWS[1].replace("19700101", "1970-01-01", 1)]  # line 3
    with pytest.raises(AthenaError, match=r"^CONCEPT\.csv, line 3: .*valid_start_date"):
        load_athena(duck, write_athena(tmp_path / "athena", concept_rows=rows))


def test_failed_load_leaves_previous_vocabulary_untouched(duck, tmp_path):
    load_athena(duck, write_athena(tmp_path / "good"))
    bad = CONCEPT_ROWS[:1] + ["x\ty"]
    with pytest.raises(AthenaError):
        load_athena(duck, write_athena(tmp_path / "bad", concept_rows=bad))
    assert duck.query("SELECT count(*) FROM concept WHERE concept_id < 2000000000") == [(4,)]
    assert vocabulary_version(duck) == VERSION


@pytest.mark.postgres
def test_postgres_bulk_copy_and_error_line(tmp_path):
    url, schema = postgres_or_skip("athena")
    db = connect(url, cdm_schema=schema)
    try:
        for statement in cdm_ddl(db.dialect, db.cdm_schema):
            db.execute(statement)
        report = load_athena(db, write_athena(tmp_path / "athena"))
        assert report.vocabulary_version == VERSION
        assert db.query(f"SELECT concept_id_2 FROM {schema}.concept_relationship WHERE concept_id_1 = 135204") == [(4040380,)]
        assert db.query(f"SELECT count(*) FROM {schema}.concept WHERE vocabulary_id = 'CTCL-map'")[0][0] == report.own_concepts_added
        rows = CONCEPT_ROWS[:1] + [CONCEPT_ROWS[1].replace("135204", "13520x", 1)]
        with pytest.raises(AthenaError, match=r"^CONCEPT\.csv, line 3: "):
            load_athena(db, write_athena(tmp_path / "bad", concept_rows=rows))
        assert vocabulary_version(db) == VERSION  # rolled back
    finally:
        db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        db.close()
