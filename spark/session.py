"""Starting Spark for `fhir2omop --engine spark`: what is missing is said plainly (exit 2), never
as a Py4J traceback. pyspark is imported here, inside functions: never at CLI start-up."""

from __future__ import annotations

import importlib.util
import os
import shutil

from ctcl_map.errors import UsageError

INSTALL_HINT = 'pip install "ctcl-map[spark]" (PySpark) and a Java 17 or 21 runtime'


def missing_requirement() -> str | None:
    """Why Spark cannot start here (no PySpark, no Java), or None."""
    if importlib.util.find_spec("pyspark") is None:
        return f"--engine spark needs PySpark, which is not installed: {INSTALL_HINT}"
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and os.path.exists(os.path.join(java_home, "bin", "java"))) and shutil.which("java") is None:
        return f"--engine spark needs Java (no java on PATH and no $JAVA_HOME): {INSTALL_HINT}"
    return None


def spark_session(master: str | None, app_name: str = "ctcl-map fhir2omop"):
    """A SparkSession on `master` (None: what spark-submit or the environment configured)."""
    problem = missing_requirement()
    if problem is not None:
        raise UsageError(problem)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    if master and master.startswith("local") and "spark.driver.memory" not in os.environ.get("PYSPARK_SUBMIT_ARGS", ""):
        # Locally the driver JVM is also the executor: Spark's default 1 GB heap runs out on the
        # oncology step's per-person rows (seen with 500 patients). Set before the JVM starts.
        builder = builder.config("spark.driver.memory", os.environ.get("CTCL_MAP_SPARK_DRIVER_MEMORY", "4g"))
    # Timestamps are the naive FHIR-local times the converters write: no session time zone shift.
    builder = (builder.config("spark.sql.session.timeZone", "UTC")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.adaptive.enabled", "true"))
    try:
        spark = builder.getOrCreate()
    except Exception as problem:  # noqa: BLE001 - the JVM failing to start: said, not a traceback
        raise UsageError(f"Spark could not start on {master or 'the configured master'}: {str(problem).splitlines()[0][:300]}") from None
    if "spark.sql.shuffle.partitions" not in os.environ.get("PYSPARK_SUBMIT_ARGS", "") and master and master.startswith("local"):
        # Locally, one shuffle partition per core: Spark's default of 200 is for clusters.
        spark.conf.set("spark.sql.shuffle.partitions", str(spark.sparkContext.defaultParallelism))
    return spark
