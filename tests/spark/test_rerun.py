"""A second Spark run over grown input keeps every id of the first and numbers the new keys after them;
the second reads its input through a URI (Spark's Hadoop filesystem), the first through a path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq

from ctcl_map.spark.engine import SparkOptions, run_spark_fhir2omop

SYNTHEA = Path(__file__).resolve().parents[1] / "data" / "synthea"


def _id_map(cdm: Path) -> dict[tuple[str, str], int]:
    return {(row["id_space"], row["row_key"]): row["omop_id"] for row in pq.read_table(cdm / "ctcl_id_map").to_pylist()}


def test_rerun_over_grown_input_keeps_every_id_and_adds_new_ones(spark, tmp_path):
    inputs = tmp_path / "fhir"
    inputs.mkdir()
    shutil.copy(SYNTHEA / "living_patient.json.gz", inputs)
    cdm = tmp_path / "cdm"
    run_spark_fhir2omop(spark, SparkOptions(inputs=[str(inputs)], out=cdm))
    first = _id_map(cdm)
    shutil.copy(SYNTHEA / "deceased_patient.json.gz", inputs)
    # Read the second time as a URI, through Spark's Hadoop filesystem (binaryFiles), as hdfs:// or s3a:// inputs are.
    report = run_spark_fhir2omop(spark, SparkOptions(inputs=[inputs.as_uri()], out=cdm))
    second = _id_map(cdm)

    assert first and all(second[key] == omop_id for key, omop_id in first.items())
    new = {key: omop_id for key, omop_id in second.items() if key not in first}
    assert new and report.new_ids == len(new) and report.kept_ids == len(first)
    for (space, _), omop_id in new.items():
        assert omop_id > max((i for (s, _), i in first.items() if s == space), default=0)
    assert len(set(second.items())) == len({(space, omop_id) for (space, _), omop_id in second.items()})  # no id twice in a space
    persons = pq.read_table(cdm / "person").column("person_id").to_pylist()
    assert sorted(persons) == sorted(omop_id for (space, _), omop_id in second.items() if space == "person")
