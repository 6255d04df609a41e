"""Benchmark: a full-size vocabulary against the shipped subset, whole process, fresh database.

    python tools/bench/bench_fullvocab.py                          # 6 M concepts on DuckDB, 1 M on PostgreSQL
    python tools/bench/bench_fullvocab.py --concepts 1000000 --runs 3 --no-postgres

Steps (each a `ctcl-map` process, timed from outside; median and spread of --runs):
- the Athena-shaped vocabulary of tools/bench/athena_like.py, written once into --work;
- `vocab load` of it into a new DuckDB file (wall seconds, peak RSS);
- `fhir2omop` of the Synthea bundles into a fresh CDM with the shipped subset only, and into a
  fresh copy of the CDM holding the full vocabulary (its vocabulary snapshot not yet built, so
  the first run after a `vocab load` is measured, snapshot included), --workers 1 and 2;
- on PostgreSQL (--pg-concepts, smaller: a vocab load there takes longer), into a new schema each
  run: `vocab load`, then `fhir2omop` of one small bundle and of all bundles;
- orjson's parse of the same files, the yardstick of the issue's ratios.
Peak RSS is that of the ctcl-map process (worker processes are not added).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parents[1]
DEFAULT_BUNDLES = ROOT.parent / "shared" / "testdata" / "synthea-r4-bundles"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PARSE_ONLY = "import orjson, sys, pathlib; [orjson.loads(p.read_bytes()) for p in sorted(pathlib.Path(sys.argv[1]).glob('*.json'))]"


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one process; a failure stops the benchmark."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert process.stderr is not None
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0, 1):  # 1: the run finished with findings (quarantine, notes)
        sys.exit(f"failed ({process.returncode}): {' '.join(command)}\n{errors.decode(errors='replace')[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def ctcl(*args: str) -> list[str]:
    return [sys.executable, "-m", "ctcl_map.cli", *args]


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, list[tuple[float, float]]]] = []

    def add(self, label: str, runs: list[tuple[float, float]]) -> None:
        self.rows.append((label, runs))
        print(self.line(label, runs), flush=True)

    @staticmethod
    def line(label: str, runs: list[tuple[float, float]]) -> str:
        seconds = sorted(s for s, _ in runs)
        peak = statistics.median(m for _, m in runs)
        return (f"| {label} | {statistics.median(seconds):.2f} | {seconds[0]:.2f}-{seconds[-1]:.2f} | {peak:.0f} |")

    def print(self) -> None:
        print("\n| measurement | median s | min-max s | peak RSS MiB |\n| --- | --- | --- | --- |")
        for label, runs in self.rows:
            print(self.line(label, runs))


def generate(work: Path, concepts: int, bundles: Path) -> Path:
    folder = work / f"athena-{concepts}"
    if not (folder / "RELATIONSHIP.csv").exists():  # written last
        subprocess.run([sys.executable, str(BENCH / "athena_like.py"), str(folder), "--concepts", str(concepts),
                        "--bundles", str(bundles)], check=True)
    return folder


def duckdb_runs(args: argparse.Namespace, table: Table) -> None:
    athena = generate(args.work, args.concepts, args.bundles)
    loaded = args.work / "loaded" / "cdm.duckdb"
    runs = []
    for _ in range(args.runs):
        shutil.rmtree(loaded.parent, ignore_errors=True)
        loaded.parent.mkdir(parents=True)
        runs.append(timed(ctcl("vocab", "load", str(athena), "--db", str(loaded))))
    table.add(f"DuckDB vocab load, {args.concepts:,} concepts", runs)
    for workers in args.workers:
        for label in ("subset", "full"):
            runs = []
            for _ in range(args.runs):
                run = args.work / "run"
                shutil.rmtree(run, ignore_errors=True)
                run.mkdir()
                if label == "full":
                    shutil.copy(loaded, run / "cdm.duckdb")  # fresh: no snapshot beside it yet
                runs.append(timed(ctcl("fhir2omop", str(args.bundles), "--db", str(run / "cdm.duckdb"),
                                       "--workers", str(workers))))
            vocabulary = "shipped subset" if label == "subset" else f"{args.concepts:,} concepts"
            table.add(f"DuckDB fhir2omop {args.bundle_count} bundles, {vocabulary}, --workers {workers}", runs)


def postgres_runs(args: argparse.Namespace, table: Table, small: Path) -> None:
    athena = generate(args.work, args.pg_concepts, args.bundles)
    env = {**os.environ, "CTCL_MAP_CACHE_DIR": str(args.work / "cache")}  # each run builds its snapshot
    results: dict[str, list[tuple[float, float]]] = {"load": [], "small": [], "all": []}
    for _ in range(args.runs):
        for label, inputs in (("small", small), ("all", args.bundles)):
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            shutil.rmtree(args.work / "cache", ignore_errors=True)
            try:
                load = timed(ctcl("vocab", "load", str(athena), "--db", args.postgres, "--cdm-schema", schema), env)
                if label == "small":
                    results["load"].append(load)
                results[label].append(timed(ctcl("fhir2omop", str(inputs), "--db", args.postgres, "--cdm-schema", schema,
                                                 "--workers", "1"), env))
            finally:
                _drop_schema(args.postgres, schema)
    table.add(f"PostgreSQL vocab load, {args.pg_concepts:,} concepts", results["load"])
    table.add(f"PostgreSQL fhir2omop 1 small bundle, {args.pg_concepts:,} concepts", results["small"])
    table.add(f"PostgreSQL fhir2omop {args.bundle_count} bundles, {args.pg_concepts:,} concepts", results["all"])
    for label, inputs in (("1 small bundle", small), (f"{args.bundle_count} bundles", args.bundles)):
        runs = []
        for _ in range(args.runs):
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            try:
                runs.append(timed(ctcl("fhir2omop", str(inputs), "--db", args.postgres, "--cdm-schema", schema, "--workers", "1")))
            finally:
                _drop_schema(args.postgres, schema)
        table.add(f"PostgreSQL fhir2omop {label}, shipped subset", runs)


def _drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("bench-fullvocab"), help="folder for vocabularies and CDMs")
    parser.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES)
    parser.add_argument("--concepts", type=int, default=6_000_000, help="DuckDB vocabulary size")
    parser.add_argument("--pg-concepts", type=int, default=1_000_000, help="PostgreSQL vocabulary size")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="server URL")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-duckdb", action="store_true")
    args = parser.parse_args()
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    bundles = sorted(args.bundles.glob("*.json"))
    args.bundle_count = len(bundles)
    # The smallest patient bundle (the hospital and practitioner files hold no patient).
    small_file = min((p for p in bundles if "Information" not in p.name), key=lambda p: p.stat().st_size)
    small = args.work / "small"
    shutil.rmtree(small, ignore_errors=True)
    small.mkdir()
    shutil.copy(small_file, small)

    table = Table()
    table.add(f"orjson parse only, {args.bundle_count} bundles",
              [timed([sys.executable, "-c", PARSE_ONLY, str(args.bundles)]) for _ in range(args.runs)])
    if not args.no_duckdb:
        duckdb_runs(args, table)
    if not args.no_postgres:
        postgres_runs(args, table, small)
    table.print()


if __name__ == "__main__":
    main()
