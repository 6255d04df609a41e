"""Benchmark: end-to-end fhir2omop into a fresh DuckDB vs plain orjson parse of the same files.

    python tools/bench/bench_load.py                       # the 113 Synthea bundles in ../shared/testdata
    python tools/bench/bench_load.py path/to/input --repeat 3

Each repetition times, in the same process and run: (1) reading + orjson-parsing every file and
counting its resources (the parse-only ceiling), and (2) a complete load into a new DuckDB file
(schema creation, shipped vocabulary, conversion, writes, derived tables). Reported: resources/s
for both, their ratio, and the machine. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import orjson

from ctcl_map.pipeline import RunOptions, run_fhir2omop
from ctcl_map.readers.fhir_input import discover, is_ndjson, open_bytes
from ctcl_map.store.database import connect

DEFAULT_INPUT = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "synthea-r4-bundles"


def count_resources(document: object) -> int:
    if isinstance(document, dict) and document.get("resourceType") == "Bundle":
        return sum(count_resources(entry.get("resource")) for entry in document.get("entry") or () if isinstance(entry, dict))
    return 1 if isinstance(document, dict) else 0


def parse_only(files: list[Path]) -> tuple[int, float]:
    started = time.perf_counter()
    resources = 0
    for path in files:
        with open_bytes(path) as handle:
            if is_ndjson(path):
                resources += sum(count_resources(orjson.loads(line)) for line in handle if line.strip())
            else:
                resources += count_resources(orjson.loads(handle.read()))
    return resources, time.perf_counter() - started


def full_load(inputs: list[Path]) -> tuple[int, float]:
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        db = connect(Path(folder) / "bench.duckdb")
        report = run_fhir2omop(db, RunOptions(inputs=inputs))
        db.close()
        return report.resources_read, time.perf_counter() - started


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory_gb = round(pages / 1024**3, 1)
    except (ValueError, OSError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": memory_gb, "python": platform.python_version(),
            "platform": platform.platform()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="*", type=Path, default=[DEFAULT_INPUT])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions; the median is reported")
    args = parser.parse_args()
    files, missing = discover(args.inputs)
    if missing or not files:
        raise SystemExit(f"no input files under {', '.join(map(str, args.inputs))}")
    size_mb = sum(p.stat().st_size for p in files) / 1e6
    parse_rates, load_rates, load_seconds = [], [], []
    for _ in range(args.repeat):
        parsed, parse_seconds = parse_only(files)
        loaded, seconds = full_load(list(args.inputs))
        parse_rates.append(parsed / parse_seconds)
        load_rates.append(loaded / seconds)
        load_seconds.append(seconds)
    result = {
        "input": [str(p) for p in args.inputs],
        "files": len(files),
        "megabytes": round(size_mb, 1),
        "resources": loaded,
        "parse_only_resources_per_s": round(statistics.median(parse_rates)),
        "end_to_end_resources_per_s": round(statistics.median(load_rates)),
        "end_to_end_seconds": round(statistics.median(load_seconds), 2),
        "ratio_to_parse_only": round(statistics.median(load_rates) / statistics.median(parse_rates), 3),
        "repeat": args.repeat,
        "machine": machine(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
