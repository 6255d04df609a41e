"""The Spark job as a spark-submit script (README, "Spark"):

    spark-submit --master yarn "$(python -c 'import ctcl_map.spark.submit as s; print(s.__file__)')" \\
        hdfs://nn:8020/exports/fhir/ --out /shared/cdm [--mappings DIR] [--vocab-db DB] [--key-file FILE]

The master, executors and memory come from spark-submit; ctcl-map (with its dependencies) must be
installed on every node, as for `ctcl-map fhir2omop --engine spark --master ...`.
Exit codes as the CLI's: 0 done, 1 nothing loaded or the job failed, 2 usage or configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from ctcl_map.errors import CtclMapError
    from ctcl_map.spark.engine import SparkOptions, input_uri, run_spark_fhir2omop
    from ctcl_map.spark.session import spark_session

    parser = argparse.ArgumentParser(prog="ctcl_map.spark.submit", description="FHIR R4 -> a Parquet OMOP CDM v5.4 on Spark")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders or Hadoop-filesystem URIs")
    parser.add_argument("--out", required=True, type=Path, metavar="CDM_DIR", help="the Parquet CDM folder (a path every node sees)")
    parser.add_argument("--mappings", action="append", default=[], type=Path, metavar="DIR")
    parser.add_argument("--vocab-db", metavar="DB", help="a CDM holding a loaded Athena vocabulary")
    parser.add_argument("--key-file", type=Path, metavar="FILE")
    args = parser.parse_args(argv)
    try:
        spark = spark_session(None)
        try:
            report = run_spark_fhir2omop(spark, SparkOptions(inputs=[input_uri(p) for p in args.inputs], out=args.out,
                                                             mapping_dirs=args.mappings, vocab_db=args.vocab_db, key_file=args.key_file))
        finally:
            spark.stop()
    except CtclMapError as problem:
        print(f"error: {problem}", file=sys.stderr)
        return problem.exit_code
    print(json.dumps(report.to_dict(), indent=2))
    return 0 if sum(report.resources_loaded.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
