"""Crash safety: `kill -9` at any moment, then a re-run, gives the database an uninterrupted run gives."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from ctcl_map.store.database import connect

BATCH = "40"  # small batches: many commits, so a kill lands between and inside them


@pytest.fixture(scope="module")
def crash_setup(tmp_path_factory, database_snapshot, empty_cdm, make_inputs, run_cli):
    folder = tmp_path_factory.mktemp("crash")
    inputs = make_inputs(folder / "inputs", copies=10)
    template = empty_cdm(folder / "empty.duckdb")
    reference = folder / "reference.duckdb"
    shutil.copy(template, reference)
    started = time.perf_counter()
    result = run_cli("fhir2omop", str(inputs), "--db", str(reference), "--batch-size", BATCH, "--quiet")
    duration = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    db = connect(reference)
    snapshot = database_snapshot(db)
    db.close()
    return folder, inputs, template, snapshot, duration


def _killed_run(start_cli, db_path: Path, inputs: Path, after_seconds: float, workers: str = "1") -> str:
    """Start a load, SIGKILL it after `after_seconds`; the ctcl_run status it left ('' = none yet)."""
    process = start_cli("fhir2omop", str(inputs), "--db", str(db_path), "--batch-size", BATCH, "--quiet", "--workers", workers)
    time.sleep(after_seconds)
    process.send_signal(signal.SIGKILL)
    process.wait()
    db = connect(db_path)
    try:
        statuses = db.query(f"SELECT status FROM {db.table('ctcl_run')} ORDER BY run_id DESC")
        loaded = db.query(f"SELECT COUNT(*) FROM {db.table('ctcl_resource_state')}")[0][0]
    finally:
        db.close()
    return f"{statuses[0][0] if statuses else ''}:{loaded}"


def test_kill_9_at_many_moments_then_rerun_gives_the_uninterrupted_database(crash_setup, tmp_path, database_snapshot, run_cli, start_cli):
    folder, inputs, template, reference, duration = crash_setup
    mid_run_kills = 0
    # Fractions of an uninterrupted run's time (which includes ~1.5 s of interpreter start-up):
    # early ones land in the batches, late ones in the run-level steps after them.
    # Odd kill points kill a run converting with 2 worker processes (they die with their parent).
    for number, fraction in enumerate((0.45, 0.6, 0.75, 0.9, 0.97)):
        db_path = tmp_path / f"killed-{number}.duckdb"
        shutil.copy(template, db_path)
        state = _killed_run(start_cli, db_path, inputs, duration * fraction, workers="2" if number % 2 else "1")
        status, loaded = state.split(":")
        if status == "running" and int(loaded) > 0:
            mid_run_kills += 1
        result = run_cli("fhir2omop", str(inputs), "--db", str(db_path), "--batch-size", BATCH, "--quiet")
        assert result.returncode == 0, result.stderr
        db = connect(db_path)
        try:
            assert database_snapshot(db) == reference, f"kill at {fraction:.0%} of the run ({state}) then re-run differs"
            assert db.query(f"SELECT COUNT(*) FROM {db.table('ctcl_run_person')}") == [(0,)]
            assert db.query(f"SELECT COUNT(*) FROM {db.table('ctcl_run')} WHERE status = 'running'") == [(0,)]
        finally:
            db.close()
    # The test means something only if kills landed after some batches committed, before the end.
    assert mid_run_kills >= 2, f"only {mid_run_kills} kill(s) landed mid-run: the machine is too slow or fast for the kill points"
    # Worker processes of the killed loaders did not outlive them.
    time.sleep(1.5)
    assert _orphaned_workers() == []


def _orphaned_workers() -> list[int]:
    """Worker processes started under this test (its id is in their environment) still alive."""
    marker = os.environ["PYTEST_CURRENT_TEST"].split(" ")[0].encode()
    orphans = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if b"spawn_main" in (proc / "cmdline").read_bytes() and marker in (proc / "environ").read_bytes():
                orphans.append(int(proc.name))
        except OSError:
            continue
    return orphans


def test_two_kills_in_a_row_then_rerun_gives_the_uninterrupted_database(crash_setup, tmp_path, database_snapshot, run_cli, start_cli):
    folder, inputs, template, reference, duration = crash_setup
    db_path = tmp_path / "twice.duckdb"
    shutil.copy(template, db_path)
    _killed_run(start_cli, db_path, inputs, duration * 0.55)
    _killed_run(start_cli, db_path, inputs, duration * 0.8)
    result = run_cli("fhir2omop", str(inputs), "--db", str(db_path), "--batch-size", BATCH, "--quiet")
    assert result.returncode == 0, result.stderr
    db = connect(db_path)
    try:
        assert database_snapshot(db) == reference
    finally:
        db.close()


def test_derivations_of_a_killed_run_are_finished_by_the_next_run(tmp_path, fresh_db, golden_inputs, load):
    """The known gap, deterministically: batches committed, the process died before deriving.

    Simulated without timing: persons recorded in ctcl_run_person by a run still 'running', their
    derived rows absent. The next run (nothing new to load) must derive them.
    """
    db = fresh_db(str(tmp_path / "cdm.duckdb"))
    load(db, *golden_inputs)
    periods = db.query(f"SELECT person_id, observation_period_start_date, observation_period_end_date FROM {db.table('observation_period')} ORDER BY 1")
    eras = db.query(f"SELECT COUNT(*) FROM {db.table('condition_era')}")[0][0]
    assert periods and eras > 0
    # What a kill after the last batch and before the derivations leaves behind:
    persons = [p for (p,) in db.query(f"SELECT person_id FROM {db.table('person')}")]
    for table in ("observation_period", "condition_era", "drug_era"):
        db.execute(f"DELETE FROM {db.table(table)}")
    db.execute(f"UPDATE {db.table('ctcl_run')} SET status = 'running'")
    db.insert_rows("ctcl_run_person", ("run_id", "person_id"), [(1, p) for p in persons])
    report = load(db, *golden_inputs)
    assert report.outcome.person_ids == set()  # nothing changed in this run itself
    assert report.recovered_runs == [1]
    assert db.query(f"SELECT person_id, observation_period_start_date, observation_period_end_date FROM {db.table('observation_period')} ORDER BY 1") == periods
    assert db.query(f"SELECT COUNT(*) FROM {db.table('condition_era')}")[0][0] == eras
    assert db.query(f"SELECT status FROM {db.table('ctcl_run')} ORDER BY run_id") == [("interrupted",), ("completed",)]
    db.close()
