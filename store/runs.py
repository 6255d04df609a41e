"""ctcl_run and ctcl_run_person: the runs that loaded this CDM, and the persons a run changed
until its run-level steps are done.

A run is registered 'running' under the load lock and held alive by a session lock
(Database.claim_run). A run still 'running' that nobody holds was killed: the next run completes
its persons' derivations. One held by a live process loads concurrently (PostgreSQL only).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ctcl_map import CDM_VERSION, __version__
from ctcl_map.store.database import Database
from ctcl_map.store.statements import statement

RUN_COLUMNS = ("run_id", "started_at", "status", "software_version", "cdm_version", "vocabulary_version",
               "config_fingerprint", "inputs")
UNMAPPED_COLUMNS = ("run_id", "omop_table", "omop_column", "vocabulary", "code", "reason", "row_count")


@dataclass
class RunStart:
    run_id: int
    recovered_runs: list[int] = field(default_factory=list)  # killed runs this run completes
    recovered_persons: set[int] = field(default_factory=set)  # the persons those runs changed
    concurrent_runs: set[int] = field(default_factory=set)  # runs loading now in live processes


def start_run(db: Database, started_at: datetime, vocabulary_version: str, config_fingerprint: str,
              inputs: Sequence[str]) -> RunStart:
    """Register a new 'running' run and find the killed and the concurrent ones. Run-level step:
    call inside db.exclusive(), so the run id and the others' states are one committed state."""
    run_id = (db.query(statement(db, "runs", "last_run_id"))[0][0] or 0) + 1
    db.claim_run(run_id)  # before the 'running' row commits, so no other run takes us for dead
    db.insert_rows("ctcl_run", RUN_COLUMNS, [(run_id, started_at, "running", __version__, CDM_VERSION, vocabulary_version,
                                              config_fingerprint, json.dumps(list(inputs)))])
    return _interrupted_runs(db, run_id)


def _interrupted_runs(db: Database, run_id: int) -> RunStart:
    """Runs still marked 'running' that no live process holds, the persons they touched, and the
    runs still marked 'running' that a live process holds (concurrent loaders, PostgreSQL only).

    The dead runs' committed batches are skipped as unchanged by this run, so without this their
    persons would never get observation periods, eras and oncology rows.
    """
    start = RunStart(run_id)
    for (candidate,) in db.query(statement(db, "runs", "other_running"), [run_id]):
        (start.recovered_runs.append if db.claim_run(int(candidate)) else start.concurrent_runs.add)(int(candidate))
    if start.recovered_runs:
        rows = db.query(statement(db, "runs", "persons_of_runs", runs=start.recovered_runs))
        start.recovered_persons = {int(p) for (p,) in rows}
    return start


def files_quarantined_for_missing_persons(db: Database, run_id: int, concurrent_runs: set[int],
                                          reasons: Sequence[str]) -> set[str]:
    """Files in which a concurrent loader (one loading when run `run_id` started, or started since)
    quarantined a resource for one of `reasons` (its person is missing). Empty where one process
    writes the CDM. Run-level step: call inside db.exclusive()."""
    if not db.concurrent_writers:
        return set()
    rows = db.query(statement(db, "runs", "files_quarantined_for_missing_persons",
                              reasons=reasons, runs=sorted(concurrent_runs)), [run_id])
    return {name for (name,) in rows}


def finish_run(db: Database, run_id: int, own_runs: Sequence[int], finished_at: datetime, report: dict,
               unmapped: Sequence[tuple]) -> None:
    """Record run `run_id` as completed with its report and its unmapped codes (rows of
    UNMAPPED_COLUMNS), the killed runs it completed as interrupted, and forget their persons.
    Run-level step: call inside db.exclusive()."""
    db.insert_rows("ctcl_unmapped", UNMAPPED_COLUMNS, unmapped)
    db.execute(statement(db, "runs", "complete"), [finished_at, json.dumps(report), run_id])
    db.execute(statement(db, "runs", "mark_interrupted", runs=own_runs), [run_id])
    db.execute(statement(db, "runs", "forget_persons", runs=own_runs))


def persons_missing_from_runs(db: Database, runs: Sequence[int]) -> int:
    """How many persons these runs changed (wrote or removed rows of) are not in PERSON. Every row
    a run wrote or removed has its person in ctcl_run_person: when all exist, nothing dangles."""
    return int(db.query(statement(db, "runs", "missing_persons_of_runs", runs=runs))[0][0])


def record_run_persons(db: Database, run_id: int, persons: Iterable[int]) -> None:
    """Persons run `run_id` changed, kept until its run-level steps are done."""
    db.insert_rows("ctcl_run_person", ("run_id", "person_id"), [(run_id, p) for p in sorted(persons)])
