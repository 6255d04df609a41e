"""Spark benchmark: resources/s of `fhir2omop --engine spark` on local[1] and local[2], at 1x and
10x the Synthea bundles (copies with fresh ids, replicate.py), each beside orjson's parse-only
rate for the same files measured in the same run. The Spark start-up (JVM, SparkContext, first
job) is measured apart and not in the conversion figures.

    SPARK_LOCAL_IP=127.0.0.1 python tools/bench/bench_spark.py [--source DIR] [--scales 1 10] [--masters local[1] local[2]]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_load import DEFAULT_INPUT, machine, parse_only  # noqa: E402
from replicate import replicate_files  # noqa: E402

from ctcl_map.spark.engine import SparkOptions, run_spark_fhir2omop  # noqa: E402
from ctcl_map.spark.session import spark_session  # noqa: E402


def one_run(master: str, inputs: Path, out: Path) -> dict:
    started = time.perf_counter()
    spark = spark_session(master)
    spark.sparkContext.parallelize([1], 1).count()  # the first job starts the Python workers
    startup = time.perf_counter() - started
    try:
        started = time.perf_counter()
        report = run_spark_fhir2omop(spark, SparkOptions(inputs=[str(inputs)], out=out))
        seconds = time.perf_counter() - started
    finally:
        spark.stop()
    return {"startup_seconds": round(startup, 1), "seconds": round(seconds, 1), "resources": report.resources_read,
            "resources_per_s": round(report.resources_read / seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_INPUT, help="folder of FHIR Bundles (.json)")
    parser.add_argument("--scales", nargs="+", type=int, default=[1, 10])
    parser.add_argument("--masters", nargs="+", default=["local[1]", "local[2]"])
    args = parser.parse_args()
    os.environ.setdefault("CTCL_MAP_PSEUDONYM_KEY", "00" * 32)  # a benchmark key: never a site's
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        sources = sorted(args.source.glob("*.json"))
        for scale in args.scales:
            inputs = Path(scratch) / f"x{scale}"
            replicate_files(sources, inputs, scale)
            files = sorted(inputs.glob("*.json"))
            for master in args.masters:
                parsed, parse_seconds = parse_only(files)
                run = one_run(master, inputs, Path(scratch) / f"cdm-{scale}-{master[6:-1]}")
                run.update({"scale": scale, "master": master, "files": len(files),
                            "megabytes": round(sum(p.stat().st_size for p in files) / 1e6, 1),
                            "parse_only_resources_per_s": round(parsed / parse_seconds),
                            "ratio_to_parse_only": round(run["resources_per_s"] / (parsed / parse_seconds), 4)})
                results.append(run)
                print(json.dumps(run), file=sys.stderr)
    print(json.dumps({"results": results, "load_average": os.getloadavg(), "machine": machine()}, indent=2))


if __name__ == "__main__":
    main()
