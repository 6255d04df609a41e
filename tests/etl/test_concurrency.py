"""Concurrency: one writer per DuckDB file (a clear error for the second); concurrent PostgreSQL loaders."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from ctcl_map.cdm.schema import cdm_fields, primary_key
from ctcl_map.store.database import connect


def test_second_loader_on_a_duckdb_file_gets_locked_by_another_run(tmp_path, empty_cdm, make_inputs, run_cli):
    db_path = empty_cdm(tmp_path / "cdm.duckdb")
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, sys, time; c = duckdb.connect({str(db_path)!r}); print('open', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        result = run_cli("fhir2omop", str(make_inputs(tmp_path / "in", copies=1, golden=False)), "--db", str(db_path))
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1
    assert "locked by another run" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def _identity_free(db) -> dict:
    """What two loads must agree on whatever order their batches committed in: each table's rows
    with every *_id column left out, as a multiset."""
    snapshot = {}
    for table in ("person", "death", "visit_occurrence", "condition_occurrence", "drug_exposure", "procedure_occurrence",
                  "measurement", "observation", "observation_period"):
        names = [f.name for f in cdm_fields()[table] if not f.name.endswith("_id") or f.name.endswith("concept_id")]
        snapshot[table] = Counter(db.query(f"SELECT {', '.join(names)} FROM {db.table(table)}"))
    return snapshot


@pytest.mark.postgres
def test_two_concurrent_postgresql_loaders_of_different_inputs_both_succeed_without_duplicates(tmp_path, drop_schema, fresh_db, load, make_inputs, postgres_or_skip, start_cli):
    url, schema = postgres_or_skip("ctcl_conc")
    first = make_inputs(tmp_path / "first", copies=6, first_copy=0, golden=False)
    second = make_inputs(tmp_path / "second", copies=6, first_copy=100, golden=True)
    fresh_db(url, cdm_schema=schema).close()
    try:
        loaders = [start_cli("fhir2omop", str(folder), "--db", url, "--cdm-schema", schema, "--batch-size", "25", "--quiet")
                   for folder in (first, second)]
        errors = [loader.communicate(timeout=600)[1] for loader in loaders]
        assert [loader.returncode for loader in loaders] == [0, 0], errors
        pg = connect(url, cdm_schema=schema)
        try:
            for table in cdm_fields():
                pk = primary_key(table)
                if pk and pg.table_exists(table):
                    duplicates = pg.query(f"SELECT {pk}, COUNT(*) FROM {pg.table(table)} GROUP BY {pk} HAVING COUNT(*) > 1")
                    assert duplicates == [], f"{table}: duplicate {pk}"
            assert pg.query(f"SELECT id_space, omop_id FROM {pg.table('ctcl_id_map')} GROUP BY id_space, omop_id HAVING COUNT(*) > 1") == []
            assert pg.query(f"SELECT omop_table, omop_id FROM {pg.table('ctcl_lineage')} GROUP BY omop_table, omop_id HAVING COUNT(*) > 1 "
                            f"AND omop_table <> 'death'") == []
            assert pg.query(f"SELECT COUNT(*) FROM {pg.table('cdm_source')}") == [(1,)]
            # The same content as one loader loading both inputs after each other (DuckDB).
            sequential = fresh_db()
            load(sequential, first, second, oncology=True)
            assert _identity_free(pg) == _identity_free(sequential)
            assert pg.query(f"SELECT status FROM {pg.table('ctcl_run')} ORDER BY run_id") == [("completed",), ("completed",)]
            sequential.close()
        finally:
            pg.close()
    finally:
        drop_schema(schema)


@pytest.mark.postgres
def test_a_single_postgresql_loader_gets_the_same_ids_as_duckdb(tmp_path, database_snapshot, drop_schema, empty_cdm, fresh_db, make_inputs, postgres_or_skip, run_cli):
    """Refreshing next ids under the lock must not change the ids a lone loader hands out."""
    url, schema = postgres_or_skip("ctcl_ids")
    inputs = make_inputs(tmp_path / "in", copies=3)
    duck_path = empty_cdm(tmp_path / "cdm.duckdb")
    fresh_db(url, cdm_schema=schema).close()
    try:
        for target in (["--db", str(duck_path)], ["--db", url, "--cdm-schema", schema]):
            result = run_cli("fhir2omop", str(inputs), *target, "--batch-size", "30", "--quiet")
            assert result.returncode == 0, result.stderr
        duck, pg = connect(duck_path), connect(url, cdm_schema=schema)
        try:
            tables = ("person", "visit_occurrence", "condition_occurrence", "drug_exposure", "measurement", "observation",
                      "episode", "ctcl_id_map")
            duck_rows = {t: v for t, v in database_snapshot(duck).items() if t in tables}
            pg_rows = {t: v for t, v in database_snapshot(pg).items() if t in tables}
            assert {t: len(v) for t, v in pg_rows.items()} == {t: len(v) for t, v in duck_rows.items()}
            assert pg_rows["ctcl_id_map"] == duck_rows["ctcl_id_map"]
        finally:
            duck.close()
            pg.close()
    finally:
        drop_schema(schema)


@pytest.mark.postgres
def test_a_postgresql_run_still_held_by_a_live_session_is_not_taken_for_killed(drop_schema, fresh_db, golden_inputs, load, postgres_or_skip):
    """'running' + nobody holding its advisory lock = killed (its derivations are finished by the
    next run); 'running' + a live session holding it = a concurrent loader, left alone."""
    url, schema = postgres_or_skip("ctcl_live")
    db = fresh_db(url, cdm_schema=schema)
    other = connect(url, cdm_schema=schema)
    try:
        load(db, *golden_inputs)
        persons = [p for (p,) in db.query(f"SELECT person_id FROM {db.table('person')}")]
        db.execute(f"UPDATE {db.table('ctcl_run')} SET status = 'running'")
        db.insert_rows("ctcl_run_person", ("run_id", "person_id"), [(1, p) for p in persons])
        assert other.claim_run(1)  # a live loader of run 1
        report = load(db, *golden_inputs)
        assert report.recovered_runs == []
        assert db.query(f"SELECT status FROM {db.table('ctcl_run')} WHERE run_id = 1") == [("running",)]
        other.release_run(1)  # the loader is gone without finishing
        report = load(db, *golden_inputs)
        assert report.recovered_runs == [1]
        assert report.outcome.person_ids == set()
        assert db.query(f"SELECT status FROM {db.table('ctcl_run')} ORDER BY run_id") == [("interrupted",), ("completed",), ("completed",)]
        assert db.query(f"SELECT COUNT(*) FROM {db.table('ctcl_run_person')}") == [(0,)]
    finally:
        other.close()
        db.close()
        drop_schema(schema)


def _load_in_one_process(url: str, schema: str, inputs: list, canonical_snapshot, fresh_db) -> dict:
    """The CDM one loader makes of `inputs` (the reference concurrent loaders must end in)."""
    from ctcl_map.pipeline import RunOptions, run_fhir2omop

    db = fresh_db(url, cdm_schema=schema)
    try:
        run_fhir2omop(db, RunOptions(inputs=inputs, batch_size=10))
        return canonical_snapshot(db)
    finally:
        db.close()


def _differences(got: dict, expected: dict) -> dict:
    """Per table, the rows only one side has (as multisets)."""
    differences = {}
    for table in sorted(set(got) | set(expected)):
        mine, theirs = Counter(got.get(table, [])), Counter(expected.get(table, []))
        if mine != theirs:
            differences[table] = {"unexpected": sorted(mine - theirs, key=repr)[:5], "missing": sorted(theirs - mine, key=repr)[:5]}
    return differences


def _split(files: list, how: str) -> tuple[list, list]:
    third = len(files) // 3
    return {
        "same": (files, files),
        "overlapping": (files[: 2 * third], files[third:]),
        "different": (files[::2], files[1::2]),
    }[how]


@pytest.mark.postgres
@pytest.mark.parametrize("how, workers", [("same", (1, 1)), ("same", (2, 1)), ("overlapping", (1, 2)), ("different", (1, 1))])
def test_concurrent_postgresql_loaders_end_in_the_cdm_one_loader_makes(tmp_path, how, workers, canonical_snapshot, drop_schema, fresh_db, make_inputs, postgres_or_skip, run_cli, start_cli):
    """Two loaders started together into one schema, on the same, overlapping or different files,
    with and without worker processes: every table (CDM and bookkeeping, ids compared by the key
    they stand for) equals what one loader of all the files makes; a re-run then changes nothing.
    (Each Synthea Bundle holds one patient with everything of theirs: no loader's input refers to
    a resource only the other loader's input holds.)"""
    url, schema = postgres_or_skip("ctcl_same")
    _, reference_schema = postgres_or_skip("ctcl_ref")
    # Same files: read in the same order by both, the golden fixtures may keep their shared ids.
    folder = make_inputs(tmp_path / "in", copies=2, distinct_golden_ids=how != "same")
    files = sorted(folder.iterdir())
    first, second = _split(files, how)
    fresh_db(url, cdm_schema=schema).close()
    try:
        loaders = [start_cli("fhir2omop", *map(str, part), "--db", url, "--cdm-schema", schema, "--batch-size", "10",
                             "--workers", str(n), "--quiet") for part, n in zip((first, second), workers)]
        errors = [loader.communicate(timeout=600)[1] for loader in loaders]
        assert [loader.returncode for loader in loaders] == [0, 0], errors
        expected = _load_in_one_process(url, reference_schema, files, canonical_snapshot, fresh_db)
        pg = connect(url, cdm_schema=schema)
        try:
            assert _differences(canonical_snapshot(pg), expected) == {}
            assert pg.query(f"SELECT status FROM {pg.table('ctcl_run')} ORDER BY run_id") == [("completed",), ("completed",)]
        finally:
            pg.close()
        rerun = run_cli("fhir2omop", str(folder), "--db", url, "--cdm-schema", schema, "--quiet", "--json")
        assert rerun.returncode == 0, rerun.stderr
        pg = connect(url, cdm_schema=schema)
        try:
            assert _differences(canonical_snapshot(pg), expected) == {}
        finally:
            pg.close()
    finally:
        drop_schema(schema)
        drop_schema(reference_schema)


def test_the_first_run_of_this_version_repairs_resources_concurrent_loaders_deleted_as_vanished(tmp_path, canonical_snapshot, empty_cdm, make_inputs, run_cli):
    """Earlier versions' concurrent PostgreSQL loaders deleted each other's resources as vanished
    from files that still held them, and recorded those files as loaded, so an incremental re-run
    skipped them. Here that damage is made by hand (the backend does not matter for the repair):
    the first run of this version reads such files again and the CDM is whole."""
    from ctcl_map.load.cdm_writer import CdmWriter
    from ctcl_map.model import BatchOutcome, ConvertedItem, SourceItem, content_hash

    inputs = make_inputs(tmp_path / "in", copies=1)
    db_path = empty_cdm(tmp_path / "cdm.duckdb")
    assert run_cli("fhir2omop", str(inputs), "--db", str(db_path), "--quiet").returncode == 0
    db = connect(db_path)
    intact = canonical_snapshot(db)
    damaged = str(sorted(inputs.glob("c0000-*"))[0])
    keys = [key for (key,) in db.query("SELECT resource_key FROM ctcl_resource_file WHERE source_file = ?", [damaged])]
    assert any(key.startswith("Patient/") for key in keys)
    writer = CdmWriter(db, 99)
    writer.write_batch([ConvertedItem(SourceItem(None, *key.split("/", 1), damaged, "absent", "DELETE"), None, content_hash(None))
                        for key in keys], [], BatchOutcome())
    db.execute("DELETE FROM ctcl_resource_file WHERE source_file = ?", [damaged])
    db.execute("DELETE FROM ctcl_run_person")
    persons = db.query("SELECT COUNT(*) FROM person")[0][0]
    db.close()

    assert run_cli("fhir2omop", str(inputs), "--db", str(db_path), "--quiet").returncode == 0
    db = connect(db_path)
    assert db.query("SELECT COUNT(*) FROM person")[0][0] == persons  # same version: the file is skipped as unchanged
    db.execute("UPDATE ctcl_settings SET value = 'the DDL digest of an earlier version' WHERE name = 'ddl_digest'")
    db.close()

    assert run_cli("fhir2omop", str(inputs), "--db", str(db_path), "--quiet").returncode == 0
    db = connect(db_path)
    try:
        assert _differences(canonical_snapshot(db), intact) == {}
    finally:
        db.close()
