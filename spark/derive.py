"""The derived tables on Spark, from the same definitions the database path runs.

    derived = derive_tables(spark, tables, vocabulary)

`tables`: the base CDM tables as Spark DataFrames with their final integer ids (every table the
derivation reads: person, visit_occurrence, condition_occurrence, drug_exposure,
procedure_occurrence, device_exposure, measurement, observation, death, episode, episode_event,
and the era / observation_period tables, whose rows are replaced). `vocabulary`: at least concept
and concept_ancestor.

Contract (what comes back): a full replacement DataFrame for every table this step changes, with
the columns, column order and types of the frame it replaces; the caller writes each one instead
of its input. Nothing else in `tables` changes.
- drug_exposure: ends capped at the death date (derive.eras.cap_drug_ends_at_death's rule).
- measurement: the base rows, staging rows linked to their CTCL diagnosis (or a link to a gone
  condition cleared), plus the derived rows (B category, stage group, CLIPI score and risk).
- episode, episode_event: the base rows plus the disease and treatment-line episodes and links.
- observation_period, condition_era, drug_era: whole tables (the derivation's rows only).
- ctcl_first_advanced, ctcl_derived: our bookkeeping tables, as the database path fills them.

One definition per rule (issue 17): observation_period and the eras are the SELECTs of
derive/eras.py, run here as Spark SQL over temp views; the cap is its SQL condition. The oncology
rows come from derive.oncology.derive_rows, the pure step the database path runs per chunk of
persons, called here once per person on the executors (mapInArrow) with that person's rows from
the same SELECTs (derive/oncology_inputs.py).

Ids: observation_period_id = person_id, as on a database. Era ids are numbered 1, 2, ... in the
eras' key order (person, concept, start): the ids a database gives a fresh CDM. Derived
measurement and episode ids are numbered after the base table's largest id in (person_id, row
key) order, the row key being the database path's ('derived:stage_group:12:2020-06-10'): the same
input gives the same ids, and no id comes from a random or unchecked hash. They differ from a
database's by design (it numbers in chunk order); compare through the row keys.

Where the work happens: the oncology inputs are grouped by person (one shuffle) and derived in
Python on the executors; the result is kept with localCheckpoint (it feeds every oncology table).
To the driver come the concept ids (resolve_concepts' few queries), each person's report, and the
count of derived rows per person with any (the id offsets). The eras' and the derived rows'
numbering passes only one row per person through a single partition (number_rows).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from functools import partial, reduce
from typing import Any

from ctcl_map.derive.concept_sets import FIELD_CONDITION, OncologyConcepts, resolve_concepts
from ctcl_map.derive.eras import (
    ERA_COLUMNS,
    ERA_ORDER,
    OBSERVATION_PERIOD_COLUMNS,
    condition_era_select,
    drug_era_select,
    observation_period_select,
    outlasts_death,
)
from ctcl_map.derive.mapping_rows import MappingRows, load_mapping_rows
from ctcl_map.derive.oncology import derive_rows, new_report, oncology_options
from ctcl_map.derive.oncology_inputs import INPUT_COLUMNS, input_queries, sorted_inputs
from ctcl_map.derive.oncology_report import OncologyReport
from ctcl_map.derive.oncology_run import (
    DERIVED_COLUMNS,
    EPISODE_COLUMNS,
    EPISODE_EVENT_COLUMNS,
    FIRST_ADVANCED_COLUMNS,
    MEASUREMENT_COLUMNS,
    DerivedRows,
    Run,
)

VIEW_PREFIX = "ctcl_derive_"  # temp view names: the derivation's own, beside any view of the caller
# Ids a person's derived rows get on the executor, before the numbering: far above any real id.
PLACEHOLDER = 1 << 62
# What the executors return per person: each kind of DerivedRows as an array of rows.
OUT_KINDS = {
    "measurements": MEASUREMENT_COLUMNS, "episodes": EPISODE_COLUMNS, "episode_events": EPISODE_EVENT_COLUMNS,
    "first_advanced": FIRST_ADVANCED_COLUMNS, "derived": DERIVED_COLUMNS,
    "links": ("measurement_id", "condition_occurrence_id"), "ids": ("id_table", "row_key", "placeholder"),
}
FIRST_ADVANCED_TYPES = {"person_id": "bigint", "first_advanced_date": "date", "stage_group": "string", "measurement_id": "bigint"}
DERIVED_TYPES = {"table_name": "string", "row_id": "bigint", "person_id": "bigint", "kind": "string", "note": "string"}


@dataclass
class SparkDerived:
    tables: dict[str, Any]  # table name -> DataFrame (the contract above)
    report: OncologyReport


def derive_tables(spark, tables: dict, vocabulary: dict, **options) -> dict:
    """The replaced and new tables (module docstring). `options`: those of derive_all."""
    return derive_all(spark, tables, vocabulary, **options).tables


def derive_all(spark, tables: dict, vocabulary: dict, *, mappings: MappingRows | None = None, b_rules: str = "2007",
               oncology: bool = True, include_unconfirmed: bool = False) -> SparkDerived:
    """derive_tables, and the oncology report the database path's derive_oncology returns (its
    lists in person order). `mappings`: the mapping rows (default: the shipped tables)."""
    if b_rules not in ("2007", "2022"):
        raise ValueError(f"unknown B rule set {b_rules!r}: expected '2007' or '2022'")
    views = _Views({**tables, **vocabulary})
    out = {"drug_exposure": _capped_drug_exposure(spark, views, tables["drug_exposure"])}
    views.register("drug_exposure", out["drug_exposure"])
    concepts = resolve_concepts(_SparkConcepts(spark, views), mappings if mappings is not None else load_mapping_rows())
    report = new_report(b_rules, concepts)
    report.persons = tables["person"].count()
    if oncology:
        options = oncology_options(include_unconfirmed=include_unconfirmed)
        # Computed once (Python on the executors) and kept: every oncology table is read from it.
        per_person = _oncology_per_person(spark, views, concepts, b_rules, options).localCheckpoint()
        report = _merged_report(report, [row.report for row in per_person.select("report").orderBy("person_id").collect()])
        out.update(_oncology_tables(tables, _with_final_ids(spark, tables, per_person).localCheckpoint()))
        for name in ("measurement", "episode"):
            views.register(name, out[name])
    out.update(_era_tables(spark, views, tables))
    return SparkDerived(out, report)


class _Views:
    """Temp views named VIEW_PREFIX + table, as the shared SQL's table names."""

    def __init__(self, frames: dict):
        self.tables: set[str] = set()
        for name, frame in frames.items():
            self.register(name, frame)

    def register(self, name: str, frame) -> None:
        frame.createOrReplaceTempView(self.name(name))
        self.tables.add(name)

    def names(self) -> dict[str, str]:
        """{table: view name}, the table names the shared SQL formats in."""
        return {name: self.name(name) for name in self.tables}

    @staticmethod
    def name(table: str) -> str:
        return VIEW_PREFIX + table


class _SparkConcepts:
    """resolve_concepts' reads (derive.concept_sets.ConceptSource) as Spark SQL on the driver."""

    def __init__(self, spark, views: _Views):
        self.spark, self.views = spark, views

    def table(self, name: str) -> str:
        return self.views.name(name)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        return [tuple(row) for row in self.spark.sql(sql, args=list(params or [])).collect()]

    @contextmanager
    def temp_relation(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Iterator[str]:
        types = ["bigint" if any(isinstance(row[i], int) for row in rows) else "string" for i in range(len(columns))]
        schema = ", ".join(f"{column} {kind}" for column, kind in zip(columns, types))
        view = self.views.name(name)
        self.spark.createDataFrame([tuple(row) for row in rows], schema).createOrReplaceTempView(view)
        try:
            yield view
        finally:
            self.spark.catalog.dropTempView(view)


# -- drug ends -----------------------------------------------------------------------------------
def _capped_drug_exposure(spark, views: _Views, drug):
    """drug_exposure with ends capped at death: the database path's UPDATE, as a SELECT."""
    capped = outlasts_death("d", "x")
    replaced = {
        "verbatim_end_date": f"CASE WHEN {capped} THEN COALESCE(d.verbatim_end_date, d.drug_exposure_end_date) ELSE d.verbatim_end_date END",
        "drug_exposure_end_date": f"CASE WHEN {capped} THEN x.death_date ELSE d.drug_exposure_end_date END",
        "drug_exposure_end_datetime": f"CASE WHEN {capped} THEN NULL ELSE d.drug_exposure_end_datetime END",
    }
    select = ", ".join(f"CAST({replaced[c]} AS {drug.schema[c].dataType.simpleString()}) AS {c}" if c in replaced else f"d.{c}"
                       for c in drug.columns)
    return spark.sql(f"SELECT {select} FROM {views.name('drug_exposure')} d LEFT JOIN {views.name('death')} x ON x.person_id = d.person_id")


# -- eras and observation periods -----------------------------------------------------------------
def _era_tables(spark, views: _Views, tables: dict) -> dict:
    t = views.names()
    everyone = f"SELECT person_id FROM {t['person']}"
    periods = _typed(spark.sql(observation_period_select(t, everyone)), tables.get("observation_period"), OBSERVATION_PERIOD_COLUMNS)
    result = {"observation_period": periods}
    for table, select in (("condition_era", condition_era_select), ("drug_era", drug_era_select)):
        id_column, *_ = ERA_COLUMNS[table]
        numbered = number_rows(spark.sql(select(t, everyone)), id_column, ERA_ORDER[table][1:], start=0)
        result[table] = _typed(numbered, tables.get(table), ERA_COLUMNS[table])
    return result


def number_rows(frame, id_column: str, order: Sequence[str], start):
    """`frame` with `id_column` = start + 1, 2, ... in (person_id, *order) order (unique keys).

    Each person's rows are numbered where they lie (a window per person); only the persons' row
    counts (one row per person) pass through one partition, for the running offsets."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    counts = frame.groupBy("person_id").count()
    earlier = Window.orderBy("person_id").rowsBetween(Window.unboundedPreceding, -1)
    offsets = counts.select("person_id", F.coalesce(F.sum("count").over(earlier), F.lit(0)).alias("_offset"))
    within = Window.partitionBy("person_id").orderBy(*order)
    return frame.join(offsets, "person_id").withColumn(
        id_column, (F.lit(start) + F.col("_offset") + F.row_number().over(within)).cast("bigint")).drop("_offset")


def _typed(frame, like, columns: Sequence[str], types: dict[str, str] | None = None):
    """`columns` of `frame` (NULL where absent) in order, typed as the same columns of `like`
    (the frame a result replaces) or as `types`."""
    from pyspark.sql import functions as F

    def kind(column: str):
        return like.schema[column].dataType if like is not None else (types or {})[column]

    return frame.select(*[(F.col(c) if c in frame.columns else F.lit(None)).cast(kind(c)).alias(c) for c in columns])


# -- oncology ------------------------------------------------------------------------------------
def _oncology_per_person(spark, views: _Views, concepts: OncologyConcepts, b_rules: str, options: dict):
    """One row per person with oncology input rows: their DerivedRows as arrays, and the report."""
    from pyspark.sql import functions as F

    queries = input_queries(views.name, concepts, lambda column: "TRUE")
    grouped = {}
    for kind, sql in queries.items():
        rows = spark.sql(sql)
        if kind == "conditions":  # only CTCL diagnoses count; the step filters again, this spares the shuffle
            rows = rows.filter(F.col("condition_concept_id").isin(sorted(concepts.diagnosis_ids)))
        grouped[kind] = rows.groupBy("person_id").agg(F.collect_list(F.struct(*INPUT_COLUMNS[kind])).alias(kind))
    # Persons with something to derive: a diagnosis, a staging or blood row, a systemic therapy.
    driving = [grouped[kind].select("person_id") for kind in ("conditions", "staging", "blood", "exposures")]
    frame = reduce(lambda left, right: left.union(right), driving).distinct()
    for kind in INPUT_COLUMNS:
        frame = frame.join(grouped[kind], "person_id", "left")
    compute = partial(_derive_batches, concepts=concepts, b_rules=b_rules, options=options)
    return frame.mapInArrow(compute, _out_schema())


def _spark_type(column: str) -> str:
    if column.endswith("_date"):
        return "date"
    if column == "value_as_number":
        return "double"
    if column.endswith(("_id", "_number")) or column == "placeholder":
        return "bigint"
    return "string"


def _out_schema() -> str:
    arrays = [f"{kind} array<struct<{', '.join(f'{c}: {_spark_type(c)}' for c in columns)}>>" for kind, columns in OUT_KINDS.items()]
    return ", ".join(["person_id bigint", *arrays, "unlinks array<bigint>", "report string"])


def _derive_batches(batches, *, concepts: OncologyConcepts, b_rules: str, options: dict):
    """mapInArrow: each person's input rows in, their derived rows out (derive.oncology.derive_rows)."""
    yield from _mapped(batches, partial(_derive_person, concepts=concepts, b_rules=b_rules, options=options))


def _mapped(batches, function):
    """Arrow batches of persons -> function(person dict) -> Arrow batches of the output schema."""
    import pyarrow as pa

    schema = _arrow_schema()
    for batch in batches:
        yield pa.RecordBatch.from_pylist([function(person) for person in batch.to_pylist()], schema=schema)


def _arrow_schema():
    import pyarrow as pa

    kinds = {"bigint": pa.int64(), "date": pa.date32(), "double": pa.float64(), "string": pa.string()}
    arrays = [pa.field(kind, pa.list_(pa.struct([pa.field(c, kinds[_spark_type(c)]) for c in columns])))
              for kind, columns in OUT_KINDS.items()]
    return pa.schema([pa.field("person_id", pa.int64()), *arrays, pa.field("unlinks", pa.list_(pa.int64())),
                      pa.field("report", pa.string())])


def _derive_person(person: dict, concepts: OncologyConcepts, b_rules: str, options: dict) -> dict:
    person_id = int(person["person_id"])
    inputs = sorted_inputs({kind: [tuple(row.values()) for row in person.get(kind) or []] for kind in INPUT_COLUMNS})
    placeholders: dict[tuple[str, str], int] = {}

    def take_id(table: str, _column: str, row_key: str) -> int:
        return placeholders.setdefault((table, row_key), PLACEHOLDER + len(placeholders) + 1)

    report = OncologyReport(b_rules=b_rules)
    run = Run(concepts, report, take_id, b_rules, options)
    derive_rows(run, [person_id], inputs)
    out: DerivedRows = run.out
    as_dicts = {kind: [dict(zip(OUT_KINDS[kind], row)) for row in getattr(out, kind)]
                for kind in ("measurements", "episodes", "episode_events", "first_advanced", "derived", "links")}
    ids = [{"id_table": table, "row_key": key, "placeholder": value} for (table, key), value in placeholders.items()]
    return {"person_id": person_id, **as_dicts, "ids": ids, "unlinks": list(out.unlinks),
            "report": json.dumps(report.to_dict(), default=str)}


# Where a placeholder may stand, per output kind: (column, table whose ids it takes).
PLACEHOLDER_COLUMNS = {
    "measurements": (("measurement_id", "measurement"),),
    "episodes": (("episode_id", "episode"), ("episode_parent_id", "episode")),
    "episode_events": (("episode_id", "episode"), ("event_id", "measurement")),
    "first_advanced": (("measurement_id", "measurement"),),
    "derived": (("row_id", "measurement"), ("row_id", "episode")),
}
ID_TABLES = ("measurement", "episode")


def _with_final_ids(spark, tables: dict, per_person):
    """per_person with every placeholder replaced by the row's final id: after the base table's
    largest id, numbered in (person_id, row key) order. Only each person's count of derived rows
    comes to the driver (for the running offsets); the ids are swapped on the executors."""
    from pyspark.sql import functions as F

    base = {table: tables[table].agg(F.max(f"{table}_id")).first()[0] or 0 for table in ID_TABLES}
    counts = per_person.select("person_id", *[F.size(F.filter("ids", _in_table(table))).alias(table) for table in ID_TABLES])
    offsets: dict[int, tuple[int, ...]] = {}
    running = [base[table] for table in ID_TABLES]
    for row in counts.filter(F.greatest(*ID_TABLES) > 0).orderBy("person_id").toLocalIterator():
        offsets[int(row["person_id"])] = tuple(running)
        running = [total + int(row[table]) for total, table in zip(running, ID_TABLES)]
    shared = spark.sparkContext.broadcast(offsets)
    return per_person.mapInArrow(partial(_final_id_batches, offsets=shared), _out_schema())


def _in_table(table: str):
    """Spark filter function: an `ids` element of `table`."""
    return lambda element: element["id_table"] == table


def _final_id_batches(batches, *, offsets):
    yield from _mapped(batches, partial(_final_ids, offsets=offsets.value))


def _final_ids(person: dict, offsets: dict[int, tuple[int, ...]]) -> dict:
    """One person's rows with their placeholders swapped for final ids (unique per person, so a
    value that is not a placeholder of the column's table stays as it is)."""
    final: dict[str, dict[int, int]] = {}
    for table, start in zip(ID_TABLES, offsets.get(person["person_id"], ())):
        keyed = sorted((i["row_key"], i["placeholder"]) for i in person["ids"] if i["id_table"] == table)
        final[table] = {placeholder: start + number for number, (_key, placeholder) in enumerate(keyed, 1)}
    result = dict(person)
    for kind, swaps in PLACEHOLDER_COLUMNS.items():
        rows = [dict(row) for row in person[kind]]
        for column, table in swaps:
            for row in rows:
                row[column] = final.get(table, {}).get(row[column], row[column])
        result[kind] = rows
    return result


def _exploded(per_person, kind: str):
    from pyspark.sql import functions as F

    return per_person.select(F.explode(kind).alias("_row")).select("_row.*")


def _oncology_tables(tables: dict, per_person) -> dict:
    """The per-person rows (final ids) as the replaced and new tables."""
    base, episode, events = tables["measurement"], tables["episode"], tables["episode_event"]
    return {
        "measurement": _linked(base, per_person).unionByName(_typed(_exploded(per_person, "measurements"), base, base.columns)),
        "episode": episode.unionByName(_typed(_exploded(per_person, "episodes"), episode, episode.columns)),
        "episode_event": events.unionByName(_typed(_exploded(per_person, "episode_events"), events, events.columns)),
        "ctcl_first_advanced": _typed(_exploded(per_person, "first_advanced"), None, FIRST_ADVANCED_COLUMNS, FIRST_ADVANCED_TYPES),
        "ctcl_derived": _typed(_exploded(per_person, "derived"), None, DERIVED_COLUMNS, DERIVED_TYPES),
    }


def _linked(measurement, per_person):
    """The base measurement rows with the staging links the step set, and the dangling ones cleared."""
    from pyspark.sql import functions as F

    links = _exploded(per_person, "links").select(F.col("measurement_id").alias("_linked_id"), F.col("condition_occurrence_id").alias("_link"))
    unlinks = per_person.select(F.explode("unlinks").alias("_unlinked_id"))
    joined = measurement.join(links, measurement["measurement_id"] == links["_linked_id"], "left") \
        .join(unlinks, measurement["measurement_id"] == unlinks["_unlinked_id"], "left")
    event_type = measurement.schema["measurement_event_id"].dataType
    field_type = measurement.schema["meas_event_field_concept_id"].dataType
    event = F.when(F.col("_link").isNotNull(), F.col("_link").cast(event_type)) \
        .when(F.col("_unlinked_id").isNotNull(), F.lit(None).cast(event_type)).otherwise(F.col("measurement_event_id"))
    field = F.when(F.col("_link").isNotNull(), F.lit(FIELD_CONDITION).cast(field_type)) \
        .when(F.col("_unlinked_id").isNotNull(), F.lit(None).cast(field_type)).otherwise(F.col("meas_event_field_concept_id"))
    return joined.withColumn("measurement_event_id", event).withColumn("meas_event_field_concept_id", field).select(*measurement.columns)


def _merged_report(report: OncologyReport, person_reports: list[str]) -> OncologyReport:
    """The persons' reports added up into `report` (which carries the concept warnings)."""
    for text in person_reports:
        part = json.loads(text)
        for f in fields(OncologyReport):
            value = getattr(report, f.name)
            if f.name == "warnings":
                report.warnings += [w for w in part["warnings"] if w not in report.warnings]
            elif isinstance(value, list):
                value += part[f.name]
            elif isinstance(value, int) and not f.name.endswith("concept_id"):
                setattr(report, f.name, value + part[f.name])
    return report
