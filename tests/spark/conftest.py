"""One SparkSession for every Spark test (starting the JVM costs seconds); the tests skip with the
reason when PySpark or Java is missing."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def spark():
    from ctcl_map.spark.session import missing_requirement, spark_session

    problem = missing_requirement()
    if problem is not None:
        pytest.skip(problem)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = spark_session("local[2]")
    yield session
    session.stop()
