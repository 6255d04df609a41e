"""The same inputs through the single-machine path (DuckDB) and through Spark local[2] give the
same base tables, row by row. Ids differ by design (each side numbers keys its own way), so every
id column is read back as the key it stands for, through each side's ctcl_id_map."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ctcl_map.cdm.schema import cdm_fields, primary_key
from ctcl_map.load.cdm_writer import EVENT_COLUMNS, EVENT_FIELD_SPACES, REFERENCE_SPACES
from ctcl_map.pipeline import RunOptions, run_fhir2omop
from ctcl_map.spark.engine import SparkOptions, run_spark_fhir2omop
from ctcl_map.store.database import connect
from ctcl_map.store.prepare import prepare_database
from ctcl_map.vocab.loader import load_shipped_vocabulary

ROOT = Path(__file__).resolve().parents[2]
BASE_TABLES = ("person", "death", "visit_occurrence", "condition_occurrence", "drug_exposure", "procedure_occurrence",
               "device_exposure", "measurement", "observation", "specimen", "note")


def single_machine(inputs: list[Path]) -> tuple[dict[str, list[tuple]], Counter]:
    """Base tables (ids as keys) and quarantine (file, position, reason) of a DuckDB load."""
    db = connect(":memory:")
    try:
        prepare_database(db, load_shipped_vocabulary)
        run_fhir2omop(db, RunOptions(inputs=inputs, oncology=False, workers=1))
        id_map = db.query("SELECT id_space, omop_id, row_key FROM ctcl_id_map")
        tables = {table: [dict(zip(_names(table), row)) for row in db.query(f"SELECT {', '.join(_quoted(table))} FROM {table}")]
                  for table in BASE_TABLES}
        quarantine = Counter(db.query("SELECT source_file, source_position, reason FROM ctcl_quarantine"))
    finally:
        db.close()
    return _keyed(tables, id_map), quarantine


def on_spark(spark, inputs: list[Path], out: Path) -> tuple[dict[str, list[tuple]], Counter]:
    run_spark_fhir2omop(spark, SparkOptions(inputs=[str(p) for p in inputs], out=out, oncology=False))  # as on_one_machine
    id_map = [tuple(row.values()) for row in pq.read_table(out / "ctcl_id_map").select(["id_space", "omop_id", "row_key"]).to_pylist()]
    tables = {table: pq.read_table(out / table).to_pylist() for table in BASE_TABLES}
    quarantine = Counter(tuple(row.values()) for row in
                         pq.read_table(out / "ctcl_quarantine").select(["source_file", "source_position", "reason"]).to_pylist())
    return _keyed(tables, id_map), quarantine


def _names(table: str) -> list[str]:
    return [f.name.strip('"') for f in cdm_fields()[table]]


def _quoted(table: str) -> list[str]:
    return [f'"{name}"' for name in _names(table)]


def _keyed(tables: dict[str, list[dict]], id_map: list[tuple]) -> dict[str, list[tuple]]:
    """Each table's rows, sorted, with every id column replaced by its key."""
    key_of = {(space, omop_id): key for space, omop_id, key in id_map}
    keyed = {}
    for table, rows in tables.items():
        pk = primary_key(table)
        out = []
        for row in rows:
            row = dict(row)
            if pk is not None:
                row[pk] = key_of[(table, row[pk])]
            for column, space in REFERENCE_SPACES.items():
                if column in row and column != pk and row[column] is not None:
                    row[column] = key_of[(space, row[column])]
            for column, field_column in EVENT_COLUMNS.items():
                if row.get(column) is not None:
                    row[column] = key_of.get((EVENT_FIELD_SPACES.get(row[field_column]), row[column]), ("unkeyed", row[column]))
            out.append(tuple((name, _plain(value)) for name, value in row.items()))
        keyed[table] = sorted(out, key=repr)
    return keyed


def _plain(value):
    return float(value) if hasattr(value, "as_integer_ratio") and not isinstance(value, int) else value


def assert_same(single: dict[str, list[tuple]], spark_side: dict[str, list[tuple]]) -> None:
    for table in BASE_TABLES:
        only_single = Counter(single[table]) - Counter(spark_side[table])
        only_spark = Counter(spark_side[table]) - Counter(single[table])
        assert not only_single and not only_spark, (table, sorted(only_single), sorted(only_spark))


INPUTS = {
    "synthea_sample": [ROOT / "tests" / "data" / "synthea"],
    "samples_cohort": [ROOT / "samples"],
    "golden_fixtures": [ROOT / "tests" / "fixtures" / "golden"],
}


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_spark_local2_writes_the_single_machine_base_tables(spark, tmp_path, name):
    inputs = INPUTS[name]
    single, single_quarantine = single_machine(inputs)
    spark_side, spark_quarantine = on_spark(spark, inputs, tmp_path / "cdm")
    assert sum(len(rows) for rows in single.values()) > 0
    assert_same(single, spark_side)
    assert spark_quarantine == single_quarantine
