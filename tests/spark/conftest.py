"""One SparkSession for every Spark test (starting the JVM costs seconds); the tests skip with the
reason when PySpark or Java is missing."""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest


def _missing_requirement() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return 'PySpark is not installed (pip install "pyspark>=4,<5")'
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and os.path.exists(os.path.join(java_home, "bin", "java"))) and shutil.which("java") is None:
        return "no Java runtime (no java on PATH and no $JAVA_HOME): Spark needs Java 17 or 21"
    return None


@pytest.fixture(scope="session")
def spark():
    problem = _missing_requirement()
    if problem is not None:
        pytest.skip(problem)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    # local[2]: CI has two cores; two shuffle partitions keep the small test tables from being
    # scattered over 200 tasks. UTC: the converters' naive local times are not shifted.
    session = (SparkSession.builder.master("local[2]").appName("ctcl-map tests")
               .config("spark.sql.shuffle.partitions", "2").config("spark.sql.session.timeZone", "UTC")
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false").getOrCreate())
    yield session
    session.stop()
