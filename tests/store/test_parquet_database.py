"""A Parquet CDM opened as a Database: typed views over the table folders, the shipped vocabulary
when the CDM has none, and the cohort tables published back (or kept in memory, said so)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ctcl_map.errors import DatabaseError
from ctcl_map.store.database import connect
from ctcl_map.store.export import export_cdm
from ctcl_map.store.parquet_cdm import current_version, new_version_dir, publish
from ctcl_map.store.parquet_database import open_parquet_cdm
from ctcl_map.vocab.loader import load_shipped_vocabulary

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
PERSON = pa.table({  # as another engine may write it: 64-bit integers, upper-case names, columns missing
    "PERSON_ID": pa.array([1, 2], pa.int64()),
    "GENDER_CONCEPT_ID": pa.array([8507, 8532], pa.int64()),
    "YEAR_OF_BIRTH": pa.array([1950, 1960], pa.int64()),
    "RACE_CONCEPT_ID": pa.array([0, 0], pa.int64()),
    "ETHNICITY_CONCEPT_ID": pa.array([0, 0], pa.int64()),
})


def _plain_cdm(folder: Path, person: pa.Table = PERSON) -> Path:
    (folder / "person").mkdir(parents=True)
    pq.write_table(person, folder / "person" / "part-00000.parquet")
    return folder


def test_views_have_the_declared_types_and_absent_optional_columns_read_as_null(tmp_path):
    with open_parquet_cdm(_plain_cdm(tmp_path / "cdm")) as db:
        assert db.query("SELECT person_id, year_of_birth, birth_datetime, person_source_value FROM person ORDER BY 1") == [
            (1, 1950, None, None), (2, 1960, None, None)]
        types = dict(db.query("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'person'"))
        assert types["person_id"] == "INTEGER" and types["birth_datetime"] == "TIMESTAMP"
        assert db.query("SELECT COUNT(*) FROM condition_occurrence") == [(0,)]  # no folder: an empty table


def test_timestamps_with_a_time_zone_read_as_utc_wall_clock_time(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")  # whatever zone the machine is in
    instant = datetime(2020, 1, 1, 0, 30, tzinfo=UTC)
    with_birth = PERSON.append_column("birth_datetime", pa.array([instant, None], pa.timestamp("us", tz="Europe/Vienna")))
    with open_parquet_cdm(_plain_cdm(tmp_path / "cdm", with_birth)) as db:
        assert db.query("SELECT birth_datetime FROM person WHERE person_id = 1") == [(datetime(2020, 1, 1, 0, 30),)]


def test_a_cdm_without_vocabulary_gets_the_shipped_subset(tmp_path):
    with open_parquet_cdm(_plain_cdm(tmp_path / "cdm"), load_vocabulary=load_shipped_vocabulary) as db:
        assert db.query("SELECT concept_name FROM concept WHERE concept_id = 8507") == [("MALE",)]


def test_a_folder_missing_a_required_column_is_refused_with_its_name(tmp_path):
    with pytest.raises(DatabaseError, match="no column year_of_birth, which CDM v5.4 requires in person"):
        open_parquet_cdm(_plain_cdm(tmp_path / "cdm", PERSON.drop(["YEAR_OF_BIRTH"])))


def _published_cdm(tmp_path: Path, fresh_db, load) -> Path:
    db = fresh_db()
    load(db, SAMPLES / "ss_mogamulizumab_died.json")
    export_cdm(db, tmp_path / "cdm", "parquet-cdm")
    db.close()
    return tmp_path / "cdm"


def _write_cohort(db) -> None:
    db.execute("INSERT INTO cohort VALUES (7, 1, DATE '2020-01-01', DATE '2021-01-01')")


def test_cohort_rows_are_published_as_a_new_version_sharing_the_other_files(tmp_path, fresh_db, load):
    cdm = _published_cdm(tmp_path, fresh_db, load)
    before = current_version(cdm)
    with open_parquet_cdm(cdm, read_only=False) as db:
        _write_cohort(db)
        assert db.persist() == [f"cohort published to {cdm} (version {current_version(cdm).name})"]
    after = current_version(cdm)
    assert after != before
    assert pq.read_table(after / "cohort").to_pylist() == [
        {"cohort_definition_id": 7, "subject_id": 1, "cohort_start_date": date(2020, 1, 1), "cohort_end_date": date(2021, 1, 1)}]
    assert (after / "person" / "part-00000.parquet").stat().st_ino == (before / "person" / "part-00000.parquet").stat().st_ino
    with open_parquet_cdm(cdm, read_only=False) as db:
        assert db.persist() == []  # nothing changed: nothing published


def test_cohort_rows_stay_in_memory_when_another_version_was_published_meanwhile(tmp_path, fresh_db, load):
    cdm = _published_cdm(tmp_path, fresh_db, load)
    with open_parquet_cdm(cdm, read_only=False) as db:
        _write_cohort(db)
        with connect(":memory:") as other:  # another writer publishes a new conversion
            version = new_version_dir(cdm)
            (version / "person").mkdir()
            other.execute(f"COPY (SELECT * FROM read_parquet('{cdm}/person/*.parquet')) TO '{version}/person/part-00000.parquet'")
            publish(cdm, version)
        notes = db.persist()
    assert len(notes) == 1 and "kept in memory only" in notes[0] and "published anew" in notes[0]
    assert current_version(cdm) == version.resolve() and not (cdm / "cohort").exists()


def test_cohort_rows_stay_in_memory_for_a_plain_folder(tmp_path):
    with open_parquet_cdm(_plain_cdm(tmp_path / "cdm"), read_only=False) as db:
        _write_cohort(db)
        notes = db.persist()
    assert len(notes) == 1 and "kept in memory only" in notes[0] and "plain folder" in notes[0]
    assert not (tmp_path / "cdm" / "cohort").exists()
