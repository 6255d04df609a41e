"""`fhir2omop --engine spark`: the same conversion on Apache Spark, into a Parquet CDM folder.

  read + convert   each input file is one task: the executors run the readers and `convert_item`
                   (spark/executor.py), with the converter setup (mapping tables, vocabulary,
                   value sets, pseudonym key) broadcast once
  latest version   entries grouped by resource key (a shuffle): the version that stands after
                   the run, by the single-machine writer's rule
  run-level steps  rows whose Patient is absent, quarantined or excluded are removed and their
                   resource quarantined; links to absent visits cleared (joins)
  ids              every key (space, row key) joined with the id map of the previous run
                   (CDM_DIR/ctcl_id_map); new keys numbered after the largest id of their space in
                   key order: the same input always gets the same ids, a grown one keeps them
  write            every CDM table typed as the spec says, into a new version directory, then
                   published (store/parquet_cdm.py): a reader never sees a half-written CDM

Nothing here decides how a resource maps: that is the converters', run unchanged on executors.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ctcl_map import CDM_VERSION, __version__
from ctcl_map.cdm.schema import cdm_fields, columns, primary_key
from ctcl_map.converters import ConvertContext
from ctcl_map.converters.parallel import ConverterSetup, fhir_resource_types
from ctcl_map.errors import KeyProblem, MappingError, RunFailed, UsageError
from ctcl_map.load.run_steps import EVENT_TABLES, write_cdm_source
from ctcl_map.mappings.tables import (
    configuration_fingerprint,
    load_mapping_tables,
    source_to_concept_map_rows,
)
from ctcl_map.readers.fhir_input import DEFAULT_LIMITS, JSON_SUFFIXES, NDJSON_SUFFIXES, NON_FHIR_FILES, ReadLimits, discover
from ctcl_map.spark import executor
from ctcl_map.store.database import Database, connect
from ctcl_map.store.export import arrow_schema, export_cdm
from ctcl_map.store.parquet_cdm import new_version_dir, publish
from ctcl_map.store.prepare import prepare_database
from ctcl_map.vocab.loader import load_shipped_vocabulary, vocabulary_version
from ctcl_map.vocab.lookup import ConceptResolver
from ctcl_map.vocab.prepare import prepare_vocabulary
from ctcl_map.vocab.snapshot import SnapshotVocabulary

ID_MAP = "ctcl_id_map"
QUARANTINE = "ctcl_quarantine"
LINEAGE = "ctcl_lineage"
SETTINGS = "ctcl_settings"
REPORT_FILE = "ctcl_run_report.json"
VOCABULARY_FOR_DERIVE = ("concept", "concept_relationship", "concept_ancestor")


@dataclass
class SparkOptions:
    inputs: Sequence[str]
    out: Path
    mapping_dirs: Sequence[Path] = ()
    vocab_db: str | None = None  # a CDM holding a loaded Athena vocabulary (else the shipped subset)
    key_file: Path | None = None
    source_name: str = "ctcl-map FHIR load"
    limits: ReadLimits = DEFAULT_LIMITS
    b_rules: str = "2007"  # ISCL/EORTC criteria for blood counts as a B category (fhir2omop --b-rules)
    oncology: bool = True  # derive staging, CLIPI, episodes and lines (fhir2omop --oncology/--no-oncology)
    include_unconfirmed: bool = False


@dataclass
class SparkReport:
    files: int = 0
    resources_read: int = 0
    unreadable_files: int = 0
    rows_written: dict[str, int] = field(default_factory=dict)
    resources_loaded: Counter = field(default_factory=Counter)
    quarantined: Counter = field(default_factory=Counter)
    excluded: Counter = field(default_factory=Counter)
    not_mapped_types: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    unmapped: Counter = field(default_factory=Counter)  # vocabulary -> rows
    duplicates: int = 0
    superseded: int = 0
    deleted: int = 0
    truncated_values: int = 0
    dangling_removed: int = 0
    visit_links_cleared: int = 0
    drugs_filled_from_a_later_medication: int = 0
    results_completed_from_another_file: int = 0
    new_ids: int = 0
    kept_ids: int = 0
    derived: str = ""  # the tables the derive step replaced or added
    notices: list[str] = field(default_factory=list)
    started_at: datetime = field(default_factory=datetime.now)
    finished_at: datetime | None = None

    def to_dict(self) -> dict:
        return {
            "engine": "spark", "software_version": __version__, "cdm_version": CDM_VERSION,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "finished_at": self.finished_at.isoformat(timespec="seconds") if self.finished_at else None,
            "files": self.files, "resources_read": self.resources_read, "unreadable_files": self.unreadable_files,
            "resources_loaded": dict(sorted(self.resources_loaded.items())),
            "rows_written": dict(sorted(self.rows_written.items())),
            "quarantined": dict(sorted(self.quarantined.items())),
            "excluded": dict(sorted(self.excluded.items())),
            "not_mapped_resource_types": dict(sorted(self.not_mapped_types.items())),
            "notes": dict(sorted(self.notes.items())),
            "unmapped_rows_by_vocabulary": dict(sorted(self.unmapped.items())),
            "duplicates_in_run": self.duplicates, "superseded_skipped": self.superseded, "deleted": self.deleted,
            "truncated_values": self.truncated_values, "dangling_subject_removed": self.dangling_removed,
            "visit_links_cleared": self.visit_links_cleared,
            "drugs_filled_from_a_later_medication": self.drugs_filled_from_a_later_medication,
            "results_completed_from_another_file": self.results_completed_from_another_file,
            "ids_kept": self.kept_ids, "ids_new": self.new_ids, "derived": self.derived,
        }


# -- configuration (driver) --------------------------------------------------------------------
@dataclass
class _Configuration:
    setup: ConverterSetup
    side_db: Database  # in memory: the shipped vocabulary, source_to_concept_map and cdm_source to export
    vocab_db: Database  # where the vocabulary tables are exported from (side_db unless --vocab-db)
    vocabulary_version: str
    key_check: str


def _configure(options: SparkOptions, notices: list[str]) -> _Configuration:
    try:
        tables = load_mapping_tables(options.mapping_dirs)
    except MappingError as problem:
        raise RunFailed(str(problem)) from None
    mappings, code_systems, valuesets = tables.mappings, tables.code_systems, tables.valuesets
    side_db = connect(":memory:")
    prepare_database(side_db, load_shipped_vocabulary)
    vocab_db = connect(options.vocab_db, read_only=True) if options.vocab_db else side_db
    version = vocabulary_version(vocab_db)
    vocabulary = prepare_vocabulary(vocab_db)
    side_db.insert_rows("source_to_concept_map", columns("source_to_concept_map"), source_to_concept_map_rows(mappings))
    write_cdm_source(side_db, options.source_name, version)
    key, check = _pseudonym_key(options, notices)
    ctx = ConvertContext(resolver=ConceptResolver(code_systems, mappings, vocabulary), valuesets=valuesets, pseudonym_salt=key)
    fingerprint = configuration_fingerprint(version, mappings, code_systems, valuesets)
    setup = ConverterSetup(ctx, fingerprint, fhir_resource_types(), False, options.limits)
    return _Configuration(setup, side_db, vocab_db, version, check)


def _pseudonym_key(options: SparkOptions, notices: list[str]) -> tuple[bytes, str]:
    """The site's key (pseudonym_key), checked against the one this Parquet CDM was made with."""
    from ctcl_map.pseudonym_key import configured_key, key_check, new_key, write_key_file

    recorded = _recorded_settings(options.out).get("pseudonym_key_check")
    try:
        key, new_file = configured_key(options.key_file)
    except KeyProblem as problem:
        raise RunFailed(str(problem)) from None
    if key is None:
        if recorded is not None:
            raise RunFailed(f"this CDM's pseudonyms were made with a key that is not configured here ({new_file} does not exist): "
                            "give it with --key-file or $CTCL_MAP_PSEUDONYM_KEY")
        key = write_key_file(new_file, new_key())
        notices.append(f"a new pseudonym key was written to {key.origin}: keep it (and a copy in a safe place)")
    check = key_check(key.key)
    if recorded is not None and recorded != check:
        raise RunFailed(f"the pseudonym key in {key.origin} is not the one this CDM was made with: "
                        "give the right one with --key-file or $CTCL_MAP_PSEUDONYM_KEY")
    return key.key, check


def _recorded_settings(cdm_dir: Path) -> dict[str, str]:
    folder = cdm_dir / SETTINGS
    if not folder.exists():
        return {}
    import pyarrow.parquet as pq

    table = pq.read_table(folder)
    return dict(zip(table.column("name").to_pylist(), table.column("value").to_pylist()))


# -- the job -----------------------------------------------------------------------------------
def run_spark_fhir2omop(spark, options: SparkOptions) -> SparkReport:
    """Convert `options.inputs` into a Parquet CDM at `options.out` (published atomically)."""
    report = SparkReport()
    out = Path(options.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    config = _configure(options, report.notices)
    sc = spark.sparkContext
    setup = _shipped_setup(sc, config.setup)
    entries = _read_and_convert(spark, options, setup, report).persist()
    entries = _with_late_medications(sc, entries, setup, report).persist()
    version = new_version_dir(out)
    try:
        problems = entries.filter(lambda r: r["kind"] == "problem").map(_problem_row)
        _count_files(entries, report)
        latest = entries.filter(lambda r: r["kind"] == "entry").map(lambda r: (r["key"], r)).groupByKey() \
            .map(lambda pair: executor.latest_occurrence(list(pair[1]))).persist()
        winners = _with_result_contexts(latest.map(lambda t: t[0]), setup).persist()
        report.results_completed_from_another_file = winners.filter(lambda r: r.get("completed", False)).count()
        rows = _rows_frame(spark, winners).persist()
        rows, dangling = _remove_rows_without_person(spark, rows, winners)
        rows = _clear_missing_visits(rows)
        id_map = _ids(spark, rows, out / ID_MAP)
        resolved = _resolve_ids(rows, id_map).persist()
        counts, report.visit_links_cleared = _table_counts(resolved)
        tables = {table: _typed_table(spark, resolved, table) for table in counts}
        report.rows_written.update(_write_fixed_tables(config, version))
        vocabulary = {name: spark.read.parquet(str(version / name)) for name in VOCABULARY_FOR_DERIVE}
        everything = {table: tables[table] if table in tables else _empty_frame(spark, table) for table in cdm_fields()}
        derived = _derived(spark, everything, vocabulary, options, report)
        tables.update(derived)
        for table, frame in tables.items():
            frame.write.parquet(str(version / table))
        report.rows_written.update({table: parquet_rows(version / table) for table in tables})
        for table in cdm_fields():
            if not (version / table).exists():
                _write_empty(version / table, table)
                report.rows_written[table] = 0
        id_map.write.parquet(str(version / ID_MAP))
        report.kept_ids = parquet_rows(out / ID_MAP) if (out / ID_MAP).exists() else 0
        report.new_ids = parquet_rows(version / ID_MAP) - report.kept_ids
        _lineage(resolved).write.parquet(str(version / LINEAGE))
        dangling_keys = _quarantine(spark, problems, winners, dangling, version / QUARANTINE, report)
        _summarise(latest, winners, dangling_keys, report)
        spark.createDataFrame([("pseudonym_key_check", config.key_check), ("vocabulary_version", config.vocabulary_version)],
                              "name string, value string").coalesce(1).write.parquet(str(version / SETTINGS))
        report.finished_at = datetime.now()
        (version / REPORT_FILE).write_text(json.dumps(report.to_dict(), indent=2))
        publish(out, version)
        _publish_report(out, version)
    except BaseException:
        shutil.rmtree(version, ignore_errors=True)
        raise
    finally:
        entries.unpersist()
    return report


def _publish_report(out: Path, version: Path) -> None:
    """The run report beside the tables (a copy: the version directory is the published truth)."""
    staged = out / f".{REPORT_FILE}.partial"
    shutil.copyfile(version / REPORT_FILE, staged)
    staged.replace(out / REPORT_FILE)


def _shipped_setup(sc, setup: ConverterSetup):
    """The converter setup, broadcast; a vocabulary snapshot file travels with the job (addFile)."""
    resolver = setup.ctx.resolver
    if isinstance(resolver.vocab, SnapshotVocabulary):
        sc.addFile(str(resolver.vocab.path))
    return sc.broadcast(setup)


def _executor_setup(broadcast) -> ConverterSetup:
    """The setup on an executor: a snapshot vocabulary opened from the file shipped with the job."""
    setup = broadcast.value
    vocab = setup.ctx.resolver.vocab
    if isinstance(vocab, SnapshotVocabulary) and not vocab.path.exists():
        from pyspark import SparkFiles

        vocab.__setstate__({"path": Path(SparkFiles.get(vocab.path.name))})
    return setup


def _read_and_convert(spark, options: SparkOptions, setup, report: SparkReport):
    """Entry records of every input, one task per file, in input order (file number, position)."""
    sc = spark.sparkContext
    # Paths are read by the executors themselves; URIs (file:// too) through Spark's Hadoop filesystems.
    local = [path for path in options.inputs if "://" not in str(path)]
    remote = [str(path) for path in options.inputs if "://" in str(path)]
    discovered = discover(local)
    for path, kind in discovered.skipped:
        report.notes[f"non_fhir_file_skipped: {path.name} ({kind})"] += 1
    units = [executor.Unit(number, str(path), _display(path)) for number, path in enumerate(discovered.files, start=1)]
    problems = [executor.problem_record(0, seq, problem) for seq, problem in enumerate(discovered.problems)]
    report.unreadable_files += len(discovered.problems)
    parts = [sc.parallelize(problems, 1)]
    if units:
        # Files in contiguous groups, a few per core: a task per small Bundle costs more than it converts.
        parts.append(sc.parallelize(units, min(len(units), 4 * sc.defaultParallelism)).flatMap(lambda unit: executor.unit_records(_executor_setup(setup), unit)))
    if remote:
        uris = _listed(spark, remote)
        numbers = {uri: len(units) + number for number, uri in enumerate(uris, start=1)}
        parts.append(sc.binaryFiles(",".join(uris), max(len(uris), 1)).flatMap(
            lambda pair: executor.spooled_unit_records(_executor_setup(setup), numbers[pair[0]], pair[0], pair[1])))
    return sc.union(parts)


def _display(path: Path) -> str:
    from ctcl_map.readers.fhir_input import display_name

    return display_name(path)


def _listed(spark, uris: list[str]) -> list[str]:
    """The FHIR files under these Hadoop-filesystem URIs (folders listed recursively), sorted."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    found: list[str] = []
    for uri in uris:
        path = jvm.org.apache.hadoop.fs.Path(uri)
        listing = path.getFileSystem(conf).listFiles(path, True)
        while listing.hasNext():
            name = listing.next().getPath().toString()
            base = name.rsplit("/", 1)[-1].lower()
            if base.endswith(JSON_SUFFIXES + NDJSON_SUFFIXES) and base not in NON_FHIR_FILES:
                found.append(name)
    return sorted(set(found))


def _with_late_medications(sc, entries, setup, report: SparkReport):
    """Drug records converted before their Medication was read (another file) are converted again
    with every Medication of the run, the last read of each (as the single-machine end of run)."""
    if entries.filter(executor.awaits_medication).isEmpty():
        return entries
    medications = entries.filter(lambda r: r["kind"] == "medication") \
        .map(lambda r: (r["key"], (r["order"], r["resource"]))) \
        .reduceByKey(lambda a, b: a if a[0] > b[0] else b).mapValues(lambda v: v[1]).collectAsMap()
    shared = sc.broadcast(dict(medications))
    redone = entries.map(lambda r: executor.reconverted(_executor_setup(setup), r, shared.value)
                         if executor.awaits_medication(r) and "item" in r else r)
    report.drugs_filled_from_a_later_medication = entries.filter(executor.awaits_medication) \
        .map(lambda r: r["key"]).distinct().count() - redone.filter(executor.awaits_medication).map(lambda r: r["key"]).distinct().count()
    return redone


def _with_result_contexts(winners, setup):
    """Results waiting for the DiagnosticReport that dates them (another file): converted again
    with the last such report's context, else with their Encounter's start (two joins by key)."""
    waiting = winners.filter(executor.awaits_report).map(lambda r: (r["key"], r))
    contexts = winners.filter(lambda r: bool(r.get("contexts"))) \
        .flatMap(lambda r: [(result, (r["order"], context)) for result, context in r["contexts"]]) \
        .reduceByKey(lambda a, b: a if a[0] > b[0] else b).mapValues(lambda v: v[1])
    starts = winners.filter(lambda r: r["resource_type"] == "Encounter" and r["verdict"] == "loaded") \
        .map(executor.visit_start).filter(lambda pair: pair is not None)
    with_context = waiting.leftOuterJoin(contexts) \
        .map(lambda pair: (executor.result_encounter(pair[1][0]), pair[1])) \
        .leftOuterJoin(starts) \
        .map(lambda pair: executor.with_result_context(_executor_setup(setup), pair[1][0][0], pair[1][0][1],
                                                       (pair[0], pair[1][1]) if pair[1][1] else None))
    return winners.filter(lambda r: not executor.awaits_report(r)).union(with_context)


def _count_files(entries, report: SparkReport) -> None:
    for counts in entries.filter(lambda r: r["kind"] == "counts").collect():
        report.files += 1
        report.resources_read += counts["resources_read"]
        report.unreadable_files += counts["unreadable_files"]
        report.not_mapped_types.update(counts["not_mapped_types"])


ROW_SCHEMA = ("owner string, resource_type string, file string, position string, tbl string, row_key string, "
              "person_key string, visit_key string, preceding_visit_key string, event_key string, event_space string, values string")


def _rows_frame(spark, winners):
    """Every row of the resources that stand, with its owner (lineage) and its keys."""
    def rows_of(record: dict):
        for row in record["rows"]:
            yield (record["key"], record["resource_type"], record["file"], record["position"], row["table"], row["row_key"],
                   row["person_key"], row["visit_key"], row["preceding_visit_key"], row["event_key"], row["event_space"], row["values"])

    return spark.createDataFrame(winners.filter(lambda r: r["verdict"] == "loaded").flatMap(rows_of), ROW_SCHEMA)


def _remove_rows_without_person(spark, rows, winners):
    """Rows whose Patient is absent, quarantined or excluded leave with every row of their
    resource (load/run_steps.remove_dangling_subjects); returns the rows kept and the removed
    resources (owner, file, position, resource type, person key)."""
    from pyspark.sql import functions as F

    persons = rows.filter(F.col("tbl") == "person").select(F.col("row_key").alias("person_key")).distinct()
    dangling = rows.filter(F.col("tbl").isin(*EVENT_TABLES) & F.col("person_key").isNotNull()) \
        .join(persons, "person_key", "left_anti") \
        .select("owner", "file", "position", "resource_type", "person_key").distinct().persist()
    kept = rows.join(dangling.select("owner").distinct(), "owner", "left_anti")
    return kept, dangling


def _clear_missing_visits(rows):
    """A link to a visit that is not in the CDM is cleared, as on one machine (counted in
    _table_counts through the `cleared` column)."""
    from pyspark.sql import functions as F

    visits = rows.filter(F.col("tbl") == "visit_occurrence").select(F.col("row_key").alias("_visit")).distinct()
    rows = rows.withColumn("cleared", F.lit(0))
    for column in ("visit_key", "preceding_visit_key"):
        joined = rows.join(visits, rows[column] == visits["_visit"], "left")
        missing = F.col(column).isNotNull() & F.col("_visit").isNull()
        rows = joined.withColumn("cleared", F.col("cleared") + missing.cast("int")) \
            .withColumn(column, F.when(missing, F.lit(None)).otherwise(F.col(column))).drop("_visit")
    return rows


def _table_counts(resolved) -> tuple[dict[str, int], int]:
    """Rows per table and visit links cleared, in one job."""
    from pyspark.sql import functions as F

    counts = resolved.groupBy("tbl").agg(F.count(F.lit(1)).alias("n"), F.sum("cleared").alias("cleared")).collect()
    return {row.tbl: row.n for row in counts}, sum(row.cleared or 0 for row in counts)


def parquet_rows(folder: Path) -> int:
    """Rows of a Parquet table folder, from its files' footers (no Spark job)."""
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(part).metadata.num_rows for part in sorted(Path(folder).glob("*.parquet")))


def _ids(spark, rows, previous_map: Path):
    """The id map after this run: every key of the previous map keeps its id; each new key gets
    the next id of its space, new keys numbered in key order."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    own = rows.filter(F.col("row_key").isNotNull()).select(F.col("tbl").alias("id_space"), F.col("row_key"))
    references = [rows.select(F.lit(space).alias("id_space"), F.col(column).alias("row_key"))
                  for column, space in (("person_key", "person"), ("visit_key", "visit_occurrence"),
                                        ("preceding_visit_key", "visit_occurrence"))]
    events = rows.filter(F.col("event_space").isNotNull()).select(F.col("event_space").alias("id_space"), F.col("event_key").alias("row_key"))
    keys = own
    for frame in (*references, events):
        keys = keys.unionByName(frame)
    keys = keys.filter(F.col("row_key").isNotNull()).distinct()
    if previous_map.exists():
        old = spark.read.parquet(str(previous_map)).select("id_space", "row_key", F.col("omop_id").cast("int"))
    else:
        old = spark.createDataFrame([], "id_space string, row_key string, omop_id int")
    largest = old.groupBy("id_space").agg(F.max("omop_id").alias("_largest"))
    new = keys.join(old, ["id_space", "row_key"], "left_anti") \
        .withColumn("_n", F.row_number().over(Window.partitionBy("id_space").orderBy("row_key"))) \
        .join(largest, "id_space", "left") \
        .select("id_space", "row_key", (F.coalesce(F.col("_largest"), F.lit(0)) + F.col("_n")).cast("int").alias("omop_id"))
    return old.unionByName(new)


def _resolve_ids(rows, id_map):
    """Keys -> ids: the row's own id, its person, visits and event link."""
    from pyspark.sql import functions as F

    def ids_of(space: str | None, name: str):
        frame = id_map if space is None else id_map.filter(F.col("id_space") == space)
        return frame.select(F.col("id_space").alias(f"_{name}_space"), F.col("row_key").alias(f"_{name}_key"),
                            F.col("omop_id").alias(name))

    resolved = rows
    for name, space, key in (("own_id", None, "row_key"), ("person_id", "person", "person_key"),
                             ("visit_occurrence_id", "visit_occurrence", "visit_key"),
                             ("preceding_visit_occurrence_id", "visit_occurrence", "preceding_visit_key"),
                             ("event_id", None, "event_key")):
        frame = ids_of(space, name)
        space_of_row = F.col("tbl") if name == "own_id" else F.col("event_space") if name == "event_id" else F.lit(space)
        resolved = resolved.join(frame, (frame[f"_{name}_space"] == space_of_row) & (frame[f"_{name}_key"] == F.col(key)), "left") \
            .drop(f"_{name}_space", f"_{name}_key")
    return resolved


def spark_type(datatype: str) -> str:
    """The Spark SQL type of a spec datatype, as store/export.arrow_schema types it for Arrow."""
    return {"integer": "int", "float": "double", "date": "date", "datetime": "timestamp_ntz"}.get(datatype, "string")


def _typed_table(spark, resolved, table: str):
    """One CDM table, its columns in spec order and typed as the spec says."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    fields = cdm_fields()[table]
    pk = primary_key(table)
    ids = {"person_id": "person_id", "visit_occurrence_id": "visit_occurrence_id",
           "preceding_visit_occurrence_id": "preceding_visit_occurrence_id",
           "measurement_event_id": "event_id", "observation_event_id": "event_id"}
    parsed_names = [f.name.strip('"') for f in fields if f.name != pk and f.name not in ids]
    # Read as text, then cast: numbers and ISO dates/times cast exactly; a JSON number read as text keeps its digits.
    schema = StructType([StructField(name, StringType()) for name in parsed_names])
    rows = resolved.filter(F.col("tbl") == table)
    rows = rows.withColumn("_v", F.from_json("values", schema, {"allowNonNumericNumbers": "false"}))
    selected = []
    for f in fields:
        name = f.name.strip('"')
        if f.name == pk:
            column = F.col("own_id")
        elif f.name in ids:
            column = F.col(ids[f.name])
        else:
            column = F.col("_v").getField(name)
        selected.append(column.cast(spark_type(f.datatype)).alias(name))
    return rows.select(*selected)


def _empty_frame(spark, table: str):
    """A table without rows, typed, for the derive step."""
    return spark.createDataFrame([], ", ".join(f"`{f.name.strip(chr(34))}` {spark_type(f.datatype)}" for f in cdm_fields()[table]))


def _write_empty(folder: Path, table: str) -> None:
    """A table without rows: one Parquet file holding its schema (no Spark job for it)."""
    import pyarrow.parquet as pq

    folder.mkdir()
    pq.write_table(arrow_schema(table).empty_table(), folder / "part-0.parquet")


def _write_fixed_tables(config: _Configuration, version: Path) -> dict[str, int]:
    """The vocabulary tables, source_to_concept_map and cdm_source, through the CDM export
    (one Arrow schema per table from the spec), each as <table>/part-0.parquet."""
    from ctcl_map.cdm.schema import VOCABULARY_TABLES

    with tempfile.TemporaryDirectory(dir=version) as scratch:
        vocabulary = [t for t in VOCABULARY_TABLES if t != "source_to_concept_map"]
        exported = export_cdm(config.vocab_db, Path(scratch) / "v", "parquet", vocabulary)
        exported += export_cdm(config.side_db, Path(scratch) / "s", "parquet", ["source_to_concept_map", "cdm_source"])
        for table in exported:
            (version / table.table).mkdir()
            table.path.replace(version / table.table / "part-0.parquet")
    return {table.table: table.rows for table in exported}


def _derived(spark, tables: dict, vocabulary: dict, options: SparkOptions, report: SparkReport) -> dict:
    """The derived tables (drug ends capped at death, observation_period, eras, oncology rows:
    spark/derive.py) from the site's mapping rows, as the single-machine derive step makes them."""
    from ctcl_map.derive.mapping_rows import load_mapping_rows
    from ctcl_map.spark.derive import derive_all

    derived = derive_all(spark, dict(tables), vocabulary, mappings=load_mapping_rows(options.mapping_dirs),
                         b_rules=options.b_rules, oncology=options.oncology, include_unconfirmed=options.include_unconfirmed)
    report.derived = "derived: " + ", ".join(sorted(derived.tables))
    return derived.tables


def _lineage(resolved):
    """Which resource (file, position) made each CDM row; the death row by its person."""
    from pyspark.sql import functions as F

    return resolved.select(F.col("tbl").alias("omop_table"), F.coalesce("own_id", "person_id").alias("omop_id"),
                           F.col("owner").alias("resource_key"), F.col("file").alias("source_file"),
                           F.col("position").alias("source_position"))


QUARANTINE_SCHEMA = "source_file string, source_position string, resource_type string, resource_id string, reason string, message string"


def _problem_row(record: dict) -> tuple:
    return (record["file"], record["position"], record["resource_type"], record["resource_id"], record["reason"], record["message"])


def _quarantine(spark, problems, winners, dangling, path: Path, report: SparkReport) -> set[str]:
    """ctcl_quarantine: what could not be read, the resources quarantined by their converter, and
    those whose Patient is missing (with why); returns the keys of the latter."""
    from pyspark.sql import functions as F

    quarantined = winners.filter(lambda r: r["verdict"] == "quarantined").map(
        lambda r: (r["file"], r["position"], r["resource_type"], r["resource_id"], r["reason"], r["message"]))
    patients = spark.createDataFrame(
        winners.filter(lambda r: r["resource_type"] == "Patient" and r["verdict"] in ("quarantined", "excluded"))
        .map(lambda r: (r["key"], r["verdict"], r["reason"])), "person_key string, verdict string, patient_reason string")
    missing = dangling.join(patients, "person_key", "left").select(
        "file", "position", "resource_type", F.substring_index("owner", "/", -1).alias("resource_id"),
        F.when(F.col("verdict") == "quarantined", "patient_quarantined").when(F.col("verdict") == "excluded", "patient_excluded")
        .otherwise("dangling_subject").alias("reason"),
        F.when(F.col("verdict") == "quarantined", F.concat(F.lit("its Patient was quarantined: "), F.coalesce("patient_reason", F.lit("see its entry"))))
        .when(F.col("verdict") == "excluded", F.lit("its Patient was excluded: it is not loaded as a person"))
        .otherwise(F.lit("subject references a Patient that is not in the input or the database")).alias("message"))
    frame = spark.createDataFrame(problems.union(quarantined), QUARANTINE_SCHEMA).unionByName(
        missing.toDF(*[c.split()[0] for c in QUARANTINE_SCHEMA.split(", ")]))
    frame.write.parquet(str(path))
    import pyarrow.parquet as pq

    report.quarantined = Counter(pq.read_table(path, columns=["reason"]).column("reason").to_pylist())
    return {row.owner for row in dangling.select("owner").distinct().collect()}


def _summarise(latest, winners, dangling_keys: set[str], report: SparkReport) -> None:
    """The report's counters from the resources that stand (a resource removed for its missing
    Patient counts as quarantined, its rows and unmapped codes leave the report)."""
    def counters(items):
        totals: dict[str, Any] = {name: Counter() for name in ("loaded", "excluded", "notes", "unmapped", "plain")}  # as `zero`
        plain = totals["plain"]
        for record in items:
            verdict = record["verdict"]
            if verdict == "deleted":
                plain["deleted"] += 1
            elif verdict == "excluded":
                totals["excluded"][record["reason"]] += 1
            elif verdict == "loaded" and record["key"] not in dangling_keys:
                totals["loaded"][record["resource_type"]] += 1
                totals["notes"].update(record["notes"])
                plain["truncated"] += record["truncated"]
                totals["unmapped"].update(gap[2] for gap in record["unmapped"])
        yield totals

    def merged(a: dict, b: dict) -> dict:
        return {name: a[name] + b[name] for name in a}

    zero: dict[str, Counter] = {name: Counter() for name in ("loaded", "excluded", "notes", "unmapped", "plain")}
    totals = winners.mapPartitions(counters).fold(zero, merged)  # fold, not reduce: an input may hold no resource
    report.duplicates, report.superseded = latest.map(lambda t: (t[1], t[2])).fold((0, 0), lambda a, b: (a[0] + b[0], a[1] + b[1]))
    report.resources_loaded = totals["loaded"]
    report.excluded = totals["excluded"]
    report.notes.update(totals["notes"])
    report.unmapped = totals["unmapped"]
    report.deleted = totals["plain"]["deleted"]
    report.truncated_values = totals["plain"]["truncated"]
    report.dangling_removed = len(dangling_keys)


def input_uri(path: Path | str) -> str:
    """An input as Spark reads it: a local path as is; a URI given on the command line comes
    through Path with its '//' folded ('hdfs:/nn:8020/x'), restored here ('hdfs://nn:8020/x')."""
    text = str(path)
    match = re.fullmatch(r"([A-Za-z][\w+.-]+):/+(.*)", text)
    if match is None:
        return text
    scheme, rest = match.groups()
    return f"file:///{rest}" if scheme == "file" else f"{scheme}://{rest}"


def print_spark_report(report: SparkReport, out: Path) -> str:
    """The report as text: what went where, what was quarantined, what was derived."""
    lines = [f"Parquet CDM: {out} (Spark)",
             f"files {report.files}, resources read {report.resources_read}, loaded {sum(report.resources_loaded.values())}"]
    lines += [f"  {table:<28} {rows:>10} rows" for table, rows in sorted(report.rows_written.items()) if rows]
    if report.quarantined:
        lines.append("quarantined: " + ", ".join(f"{reason} {count}" for reason, count in sorted(report.quarantined.items())))
    if report.unmapped:
        lines.append("unmapped rows by vocabulary: " + ", ".join(f"{v} {n}" for v, n in sorted(report.unmapped.items())))
    for name, value in (("duplicates in run", report.duplicates), ("superseded", report.superseded),
                        ("visit links cleared", report.visit_links_cleared), ("dangling subjects removed", report.dangling_removed)):
        if value:
            lines.append(f"{name}: {value}")
    lines.append(f"ids: {report.kept_ids} kept, {report.new_ids} new; {report.derived}")
    return "\n".join(lines)
