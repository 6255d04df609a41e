"""Memory benchmark: a ~1 GB bulk NDJSON input (the 10-patient Synthea export replicated with fresh
ids) loaded into a fresh DuckDB file; prints peak RSS (the loader plus its workers, summed) and time.

    python tools/bench/bench_memory.py                      # 1024 MB, workers 1 and 2
    python tools/bench/bench_memory.py --megabytes 256 --workers 1

The input is built in a temporary folder and removed afterwards. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from bench_etl import run_measured  # noqa: E402
from bench_load import machine  # noqa: E402
from replicate import replicate_ndjson  # noqa: E402

SOURCE = BENCH.parents[2] / "shared" / "testdata" / "synthea-bulk-ndjson" / "10-patients"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--megabytes", type=float, default=1024)
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        inputs = Path(scratch) / "ndjson"
        files = replicate_ndjson(args.source, inputs, args.megabytes)
        size_mb = sum(p.stat().st_size for p in files) / 1e6
        for workers in args.workers:
            db_path = Path(scratch) / f"memory-{workers}.duckdb"
            outcome, peak_kb = run_measured([sys.executable, str(BENCH / "bench_etl.py"), "--one", str(db_path), "-",
                                             str(inputs), str(workers), "0"])
            results.append({
                "workers": workers,
                "input_megabytes": round(size_mb),
                "resources": outcome["resources_read"],
                "seconds": round(outcome["seconds"], 1),
                "resources_per_s": round(outcome["resources_read"] / outcome["seconds"]),
                "peak_rss_mb": round(peak_kb / 1024),
                "database_megabytes": round(db_path.stat().st_size / 1e6),
            })
            print(json.dumps(results[-1]), file=sys.stderr)
            db_path.unlink()
    print(json.dumps({"results": results, "load_average": os.getloadavg(), "machine": machine()}, indent=2))


if __name__ == "__main__":
    main()
