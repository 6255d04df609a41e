"""ETL-job benchmark: resources/s and peak RSS for DuckDB and PostgreSQL, 1 and 2 workers, a full
load and incremental re-loads after 1 of the bundles changed (repeated, median reported), each
beside orjson's parse-only rate for the same files measured in the same run.

    python tools/bench/bench_etl.py                              # 100 Synthea bundles from ../shared/testdata
    python tools/bench/bench_etl.py --bundles 100 --backends duckdb --workers 1 2

Every configuration runs in its own child process (so peak RSS is its own), sampled every 50 ms
over the child and any worker processes it starts (peak of the sum). Three timings per load:
"seconds", of run_fhir2omop with the package imported (interpreter start-up and code loading
excluded; database preparation and the shipped vocabulary load included); "with_close", also
closing the database (DuckDB's checkpoint); "process", the child process from start to exit, as
a CLI invocation would take. Figures are printed as JSON, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from bench_load import DEFAULT_INPUT, machine, parse_only  # noqa: E402

PG_URL = os.environ.get("CTCL_MAP_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


# -- measuring a process tree ------------------------------------------------------------------
def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                found.append(int(child))
                found.extend(_descendants(int(child)))
    except OSError:
        pass
    return found


def run_measured(command: list[str]) -> tuple[dict, int]:
    """Run `command`; its JSON stdout and the peak RSS (kB) of it plus its descendants together."""
    # As an installed package runs: with its compiled bytecode (this sandbox sets
    # PYTHONDONTWRITEBYTECODE, which would recompile every module imported during a run).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, sum(_rss_kb(p) for p in [process.pid, *_descendants(process.pid)]))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"benchmark step failed: {' '.join(command)}")
    result = json.loads(output.strip().splitlines()[-1])
    result["process_seconds"] = wall  # interpreter start-up, imports, connecting and closing included
    return result, peak


# -- one configuration, in a child process -----------------------------------------------------
def one_load(db_target: str, schema: str | None, inputs: Path, workers: int, incremental: bool) -> None:
    # Code loading is start-up, like the interpreter's: the modules a run imports lazily are
    # imported first, so "seconds" is the load itself; the whole process is timed by the parent.
    import ctcl_map.derive.oncology  # noqa: F401
    import ctcl_map.mappings.tables  # noqa: F401
    import ctcl_map.vocab.loader  # noqa: F401
    from ctcl_map.pipeline import RunOptions, run_fhir2omop
    from ctcl_map.store.database import connect

    db = connect(db_target, cdm_schema=schema)
    started = time.perf_counter()
    report = run_fhir2omop(db, RunOptions(inputs=[inputs], workers=workers, incremental=incremental))
    seconds = time.perf_counter() - started
    db.close()  # DuckDB checkpoints the file here
    print(json.dumps({"seconds": seconds, "with_close_seconds": time.perf_counter() - started,
                      "resources_read": report.resources_read, "files": report.files,
                      "files_skipped": report.files_skipped, "rows": sum(report.outcome.rows_by_table.values())}))


def change_bundles(folder: Path, count: int = 1) -> list[Path]:
    """A new value for one Observation in each of the first `count` bundles: those are 'changed'."""
    paths = sorted(folder.glob("*.json"))[:count]
    for path in paths:
        bundle = json.loads(path.read_text())
        for entry in bundle["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] == "Observation" and "valueQuantity" in resource:
                resource["valueQuantity"]["value"] = float(resource["valueQuantity"].get("value", 0)) + 1.5
                break
        path.write_text(json.dumps(bundle))
    return paths


def _drop_pg_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test", autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _pg_reachable() -> str | None:
    try:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test", connect_timeout=3):
            return None
    except Exception as problem:  # any failure: no server for this benchmark
        return str(problem).strip().splitlines()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_INPUT, help="folder of FHIR Bundles (.json)")
    parser.add_argument("--bundles", type=int, default=100)
    parser.add_argument("--backends", nargs="+", default=["duckdb", "postgresql"])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeat", type=int, default=5, help="incremental runs after the full load (median reported)")
    parser.add_argument("--one", nargs=5, metavar=("DB", "SCHEMA", "INPUTS", "WORKERS", "INCREMENTAL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        db_target, schema, inputs, workers, incremental = args.one
        one_load(db_target, None if schema == "-" else schema, Path(inputs), int(workers), incremental == "1")
        return

    results = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch_dir = Path(scratch)
        sources = sorted(args.source.glob("*.json"))[: args.bundles]
        for backend in args.backends:
            if backend == "postgresql" and (problem := _pg_reachable()):
                results.append({"backend": backend, "skipped": f"PostgreSQL not reachable: {problem}"})
                continue
            for workers in args.workers:
                inputs = scratch_dir / f"in-{backend}-{workers}"
                inputs.mkdir()
                for source in sources:
                    shutil.copy(source, inputs / source.name)
                parsed, parse_seconds = parse_only(sorted(inputs.glob("*.json")))
                schema = f"bench_{uuid.uuid4().hex[:8]}" if backend == "postgresql" else "-"
                target = PG_URL if backend == "postgresql" else str(scratch_dir / f"{backend}-{workers}.duckdb")
                try:
                    step = [sys.executable, str(Path(__file__).resolve()), "--one", target, schema, str(inputs), str(workers)]
                    full, full_peak = run_measured(step + ["0"])
                    incremental_runs = []
                    for _ in range(args.repeat):  # a new change each time: one bundle to re-load
                        change_bundles(inputs, 1)
                        incremental_runs.append(run_measured(step + ["1"]))
                    # The same with 10 changed bundles: the slope is the cost of one more bundle.
                    ten_changed = []
                    for _ in range(3):
                        change_bundles(inputs, 10)
                        ten_changed.append(run_measured(step + ["1"])[0]["seconds"])
                    ten_seconds = sorted(ten_changed)[1]
                    one_changed = sorted(inputs.glob("*.json"))[:1]
                    changed_parsed, changed_parse_seconds = parse_only(one_changed)
                    def median(key: str, incremental_runs=incremental_runs) -> float:
                        values = sorted(run[key] for run, _ in incremental_runs)
                        return values[len(values) // 2]

                    incremental_seconds = sorted(run["seconds"] for run, _ in incremental_runs)
                    incremental, incremental_peak = incremental_runs[0][0], max(peak for _, peak in incremental_runs)
                    incremental.update({key: median(key) for key in ("seconds", "with_close_seconds", "process_seconds")})
                finally:
                    if backend == "postgresql":
                        _drop_pg_schema(schema)
                results.append({
                    "backend": backend,
                    "workers": workers,
                    "files": len(sources),
                    "megabytes": round(sum(p.stat().st_size for p in sources) / 1e6, 1),
                    "resources": full["resources_read"],
                    "parse_only_resources_per_s": round(parsed / parse_seconds),
                    "full_seconds": round(full["seconds"], 2),
                    "full_resources_per_s": round(full["resources_read"] / full["seconds"]),
                    "full_ratio_to_parse_only": round(full["resources_read"] / full["seconds"] / (parsed / parse_seconds), 3),
                    "full_peak_rss_mb": round(full_peak / 1024),
                    "incremental_seconds": round(incremental["seconds"], 3),  # median of the repeats
                    "incremental_seconds_all": [round(x, 3) for x in incremental_seconds],
                    "incremental_files_read": incremental["files"],
                    "incremental_files_skipped": incremental["files_skipped"],
                    "incremental_resources_read": incremental["resources_read"],
                    "incremental_parse_only_seconds": round(changed_parse_seconds, 3),
                    "incremental_share_of_full_load": round(incremental["seconds"] / full["seconds"], 3),
                    "full_with_close_seconds": round(full["with_close_seconds"], 2),
                    "incremental_with_close_seconds": round(incremental["with_close_seconds"], 3),
                    "incremental_share_with_close": round(incremental["with_close_seconds"] / full["with_close_seconds"], 3),
                    "full_process_seconds": round(full["process_seconds"], 2),
                    "incremental_process_seconds": round(incremental["process_seconds"], 3),
                    "incremental_share_of_process": round(incremental["process_seconds"] / full["process_seconds"], 3),
                    "incremental_10_changed_seconds": round(ten_seconds, 3),  # median of 3
                    "seconds_per_further_changed_bundle": round((ten_seconds - incremental["seconds"]) / 9, 4),
                    "incremental_peak_rss_mb": round(incremental_peak / 1024),
                })
                print(json.dumps(results[-1]), file=sys.stderr)
    print(json.dumps({"results": results, "load_average": os.getloadavg(), "machine": machine()}, indent=2))


if __name__ == "__main__":
    main()
