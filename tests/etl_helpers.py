"""Helpers for the ETL-job tests: replicated inputs, the CLI as a subprocess, whole-database snapshots."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import FIXTURES, TESTS, fresh_db

sys.path.insert(0, str(TESTS.parent / "bench"))
from replicate import replicate_files  # noqa: E402  (bench/ is a folder of scripts, not a package)

GOLDEN_INPUTS = sorted(p for p in (FIXTURES / "golden").glob("*.json") if not p.name.endswith(".expected.json"))
# Per-run logs: which run did what differs between a killed-and-resumed load and a single one.
RUN_LOG_TABLES = ("ctcl_run", "ctcl_unmapped")
RUN_COLUMNS = ("run_id", "seen_run")


def make_inputs(folder: Path, copies: int, first_copy: int = 0, golden: bool = True) -> Path:
    """`copies` copies (fresh ids) of the two licensed Synthea patients, plus every golden fixture
    (they carry mapped concepts, so eras and oncology rows exist)."""
    replicate_files(sorted((TESTS / "data" / "synthea").glob("*.json.gz")), folder, copies, first_copy)
    for fixture in GOLDEN_INPUTS if golden else ():
        (folder / f"golden-{fixture.name}").write_bytes(fixture.read_bytes())
    if golden:
        (folder / "problems.ndjson").write_text(PROBLEM_LINES)
    return folder


# Quarantine paths in every run: a line that is not JSON, an unknown resource type, and a
# Condition whose Patient never arrives (removed by the end-of-run dangling-subject sweep).
PROBLEM_LINES = "\n".join([
    "{not json",
    '{"resourceType": "NotAResource", "id": "x1"}',
    '{"resourceType": "Condition", "id": "orphan1", "subject": {"reference": "Patient/nobody"}, '
    '"code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "C84.0"}]}, "onsetDateTime": "2019-01-01"}',
]) + "\n"


def empty_cdm(path: Path) -> Path:
    """A DuckDB file with the CDM, vocabulary and the tests' fixed pseudonym salt, ready to load."""
    fresh_db(str(path)).close()
    return path


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ctcl_map.cli", *args]


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cli(*args), capture_output=True, text=True, timeout=timeout, env=_env())


def start_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(cli(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env())


def _env() -> dict:
    return {**os.environ, "COLUMNS": "200"}


def database_snapshot(db) -> dict[str, list[tuple]]:
    """Every table of the CDM schema (CDM and ctcl_ bookkeeping) as sorted rows, without run ids
    and per-run logs: what must be identical however many runs it took to get there."""
    schema = db.cdm_schema or ("main" if db.dialect == "duckdb" else "public")
    tables = [name for (name,) in db.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE' ORDER BY table_name",
        [schema])]
    snapshot = {}
    for table in tables:
        if table in RUN_LOG_TABLES:
            continue
        columns = [name for (name,) in db.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [schema, table]) if name not in RUN_COLUMNS]
        rows = db.query(f"SELECT {', '.join(chr(34) + c + chr(34) for c in columns)} FROM {db.table(table)}")
        snapshot[table] = sorted(rows, key=repr)
    return snapshot
