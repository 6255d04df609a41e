"""`fhir2omop` as a function: read -> convert -> load, batch by batch, then derive; `run_fhir2omop`
reads as the table of contents of the ETL, one step a line.

The CLI only parses options and prints; everything a run does is here, so tests and other
programs drive exactly what users run.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ctcl_map import CDM_VERSION, __version__
from ctcl_map.cdm.schema import columns
from ctcl_map.converters import ConvertContext, convert
from ctcl_map.converters.parallel import ConverterSetup, converted_units, fhir_resource_types, units_of
from ctcl_map.derive.eras import cap_drug_ends_at_death, derive_for_persons
from ctcl_map.derive.mapping_rows import rows_by_kind
from ctcl_map.derive.oncology import derive_oncology
from ctcl_map.errors import KeyProblem, MappingError, RunFailed
from ctcl_map.load.cdm_writer import CdmWriter
from ctcl_map.load.incremental import FileStates
from ctcl_map.load.run_steps import (
    PERSON_MISSING_REASONS,
    delete_vanished,
    events_before_birth,
    remove_dangling_subjects,
    write_cdm_source,
)
from ctcl_map.load.waiting import complete_waiting
from ctcl_map.mappings.tables import (
    MappingSet,
    configuration_fingerprint,
    load_mapping_tables,
    source_to_concept_map_rows,
)
from ctcl_map.model import BatchOutcome, ConvertedItem, InputProblem, NotConverted
from ctcl_map.readers.fhir_input import (
    DEFAULT_LIMITS,
    ReadLimits,
    discover,
    display_name,
    file_size,
    is_ndjson,
)
from ctcl_map.store.database import Database
from ctcl_map.store.prepare import prepare_database
from ctcl_map.store.runs import files_quarantined_for_missing_persons, finish_run, start_run
from ctcl_map.store.settings import forget_setting, record_setting, recorded_setting
from ctcl_map.store.visit_links import clear_missing_visits, restore_visit_links
from ctcl_map.vocab.loader import load_shipped_vocabulary, shipped_vocabulary_key, vocabulary_version
from ctcl_map.vocab.lookup import ConceptResolver
from ctcl_map.vocab.prepare import prepare_vocabulary

PARALLEL_MIN_BYTES = 16_000_000
@dataclass
class RunOptions:
    inputs: Sequence[Path]
    mapping_dirs: Sequence[Path] = ()
    batch_size: int = 5000
    validate: bool = False  # full fhir.resources model validation of every mapped resource (slow)
    oncology: bool = True  # derive staging links, stage groups, B categories, CLIPI and episodes
    b_rules: str = "2007"  # ISCL/EORTC B-category criteria for counts: '2007' or '2022'
    # provisional / differential / unconfirmed CTCL diagnoses enter the oncology derivation too
    include_unconfirmed: bool = False
    source_name: str = "ctcl-map FHIR load"
    # Processes converting in parallel; the output is the same for any number. None: default_workers.
    workers: int | None = 1
    incremental: bool = False  # skip files whose content is unchanged since a completed run, unread
    # A resource gone from every file that held it (a file read again, cleanly, without it) is
    # deleted: a re-exported Bundle is the source's current state. False for delta feeds written
    # over the same file names, where absence means "unchanged", not "deleted".
    delete_vanished: bool = True
    key_file: Path | None = None  # the pseudonym key's file (None: see pseudonym_key.configured_key)
    # One resource (Bundle entry, NDJSON line, single-resource file) over this many bytes is
    # quarantined unread ('resource_too_large'); a .gz expanding past max_decompressed_bytes
    # (None: no limit) stops there ('decompressed_too_large'). Memory follows the first, not the
    # file size (README, 'Bounded resources').
    max_resource_bytes: int = DEFAULT_LIMITS.max_resource_bytes
    max_decompressed_bytes: int | None = DEFAULT_LIMITS.max_decompressed_bytes


@dataclass
class RunReport:
    run_id: int
    files: int = 0
    files_skipped: int = 0  # unchanged since a completed run: not even parsed (incremental)
    workers: int = 1  # converting processes used (1: this process)
    unreadable_files: int = 0
    resources_read: int = 0
    outcome: BatchOutcome = field(default_factory=BatchOutcome)
    dangling_removed: int = 0
    vanished_deleted: int = 0  # resources no longer in any file that held them (see RunOptions.delete_vanished)
    visit_links_cleared: int = 0
    visit_links_restored: int = 0  # cleared by an earlier run, their Encounter arrived since
    events_before_birth: int = 0  # rows of the persons this run changed dated before their birth (flagged, kept)
    derived: dict[str, int] = field(default_factory=dict)
    oncology: object = None  # staging.derive.OncologyReport when the oncology step ran
    drug_ends_capped: int = 0  # drug exposures whose end date was capped at the death date
    medications_filled_late: int = 0  # drug resources whose Medication was read after them (this run or later)
    results_completed: int = 0  # results dated (or given a subject) by a DiagnosticReport or Encounter read elsewhere
    vocabulary_version: str = ""
    started_at: datetime = field(default_factory=datetime.now)
    finished_at: datetime | None = None
    recovered_runs: list[int] = field(default_factory=list)  # killed runs whose derivations this run finished
    notices: list[str] = field(default_factory=list)  # for the operator, once (e.g. a new pseudonym key file)
    non_fhir_files_skipped: Counter = field(default_factory=Counter)  # 'log.ndjson (bulk export log)' -> files

    @property
    def loaded_resources(self) -> int:
        return sum(self.outcome.resources_loaded.values())

    @property
    def quarantined(self) -> int:
        return sum(self.outcome.quarantined.values())

    def to_dict(self) -> dict:
        o = self.outcome
        unmapped_by_system: Counter[str] = Counter()  # vocabulary -> rows
        for (_, _, vocabulary, _, _), rows in o.unmapped.items():
            unmapped_by_system[vocabulary] += rows
        top_unmapped = [
            {"table": t, "column": c, "vocabulary": v, "code": code, "reason": r, "rows": n}
            for (t, c, v, code, r), n in o.unmapped.most_common(25)
        ]
        return {
            "run_id": self.run_id,
            "software_version": __version__,
            "cdm_version": CDM_VERSION,
            "vocabulary_version": self.vocabulary_version,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "finished_at": self.finished_at.isoformat(timespec="seconds") if self.finished_at else None,
            "seconds": round((self.finished_at - self.started_at).total_seconds(), 3) if self.finished_at else None,
            "files": self.files,
            "files_skipped_unchanged": self.files_skipped,
            "workers": self.workers,
            "unreadable_files": self.unreadable_files,
            "non_fhir_files_skipped": dict(sorted(self.non_fhir_files_skipped.items())),
            "resources_read": self.resources_read,
            "resources_loaded": dict(sorted(o.resources_loaded.items())),
            "rows_written": dict(sorted(o.rows_by_table.items())),
            "rows_by_resource_type": _nested(o.rows_by_source),
            "oncology": _oncology_summary(self.oncology),
            "derived_rows": self.derived,
            "unchanged_skipped": o.skipped_unchanged,
            "superseded_skipped": o.superseded,
            "duplicates_in_run": o.duplicates,
            "deleted": o.deleted,
            "deleted_as_vanished": self.vanished_deleted,
            "excluded": dict(sorted(o.excluded.items())),
            "quarantined": dict(sorted(o.quarantined.items())),
            "not_mapped_resource_types": dict(sorted(o.not_mapped_types.items())),
            "notes": dict(sorted(o.notes.items())),
            "unmapped_rows_by_vocabulary": dict(sorted(unmapped_by_system.items())),
            "top_unmapped_codes": top_unmapped,
            "truncated_values": o.truncated_values,
            "dangling_subject_removed": self.dangling_removed,
            "visit_links_cleared": self.visit_links_cleared,
            "visit_links_restored": self.visit_links_restored,
            "events_before_birth": self.events_before_birth,
            "drug_ends_capped_at_death": self.drug_ends_capped,
            "drugs_filled_from_a_later_medication": self.medications_filled_late,
            "results_completed_from_another_file": self.results_completed,
            "recovered_runs": self.recovered_runs,
        }


def _nested(counts: Counter) -> dict[str, dict[str, int]]:
    """{(resource type, table): n} -> {resource type: {table: n}} (f2o-062: what went where)."""
    nested: dict[str, dict[str, int]] = {}
    for (resource_type, table), count in sorted(counts.items()):
        nested.setdefault(resource_type, {})[table] = count
    return nested


def _oncology_summary(oncology) -> dict | None:
    """The oncology step's counts; its per-person lists are summarised as their lengths."""
    if oncology is None:
        return None
    return {name: (len(value) if isinstance(value, list) else value) for name, value in oncology.to_dict().items()}


def default_workers(bytes_to_read: int) -> int:
    """One converting process per core available to this process; one (this process) for inputs
    under PARALLEL_MIN_BYTES, where starting workers costs more than they save."""
    if bytes_to_read < PARALLEL_MIN_BYTES:
        return 1
    try:
        return max(len(os.sched_getaffinity(0)), 1)  # the cores this process may use (containers, taskset)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1




@dataclass
class LoadProgress:
    """Where a run is, for a progress display (bytes drive the ETA: files differ widely in size)."""

    files_total: int
    bytes_total: int
    files_done: int = 0
    bytes_done: int = 0
    completed_bytes: int = 0  # of whole files
    resources: int = 0
    files_skipped: int = 0  # unchanged since the last run (incremental)
    batches_committed: int = 0
    quarantined: int = 0  # records quarantined so far


def run_fhir2omop(db: Database, options: RunOptions, progress: Callable[[LoadProgress], None] | None = None) -> RunReport:
    """Load FHIR files into the CDM: the ETL's table of contents, one step a line."""
    config = _configuration(db, options)  # mapping tables, the prepared CDM, its vocabulary
    notices: list[str] = []
    ctx = ConvertContext(resolver=ConceptResolver(config.code_systems, config.mappings, prepare_vocabulary(db, record_digest=True)),
                         valuesets=config.valuesets, pseudonym_salt=_pseudonym_key(db, options.key_file, notices))
    _mirror_mappings(db, config)  # SOURCE_TO_CONCEPT_MAP
    report, run = _start_run(db, options, config, notices)  # run id, killed runs to finish, concurrent loaders, files
    with _no_full_collections():
        _read_convert_load(options, config, ctx, report, run, progress)  # batch by batch, each one transaction
    # Run-level steps, in one transaction: a run killed anywhere in here leaves them undone as a
    # whole, and the next run completes them (this run's persons stay in ctcl_run_person until
    # the end). One transaction, not one per step: a commit costs as much as a small step.
    with db.exclusive():
        dangling_files = _complete_the_load(db, options, ctx, report, run)  # vanished, waiting, dangling, visit links
        _derive(db, options, config, report, run)  # observation periods, eras, capped drug ends, oncology rows
        _finish_run(db, options, config, report, run, dangling_files)  # cdm_source, the run's record, file states
    for claimed in run.own_runs:
        db.release_run(claimed)
    return report


@dataclass
class _Configuration:
    mappings: MappingSet
    code_systems: dict[str, str]
    valuesets: dict
    vocabulary_version: str
    fingerprint: str  # of everything that decides the output besides the input (software, vocabulary, mappings)


@dataclass
class _Run:
    """What the steps of one run share beyond the report."""

    writer: CdmWriter
    files: list[Path]  # the input files found
    file_states: FileStates  # what completed runs loaded of them (incremental)
    recovered_persons: set[int]  # persons of killed runs this run finishes
    concurrent_runs: set[int]  # runs loading while this one does (PostgreSQL)
    recovered_runs: list[int]  # killed runs whose derivations this run finishes
    medications: dict[str, dict] = field(default_factory=dict)  # every Medication this run read

    @property
    def own_runs(self) -> list[int]:
        """This run and the killed ones it finishes: their persons and claims are this run's."""
        return [self.writer.run_id, *self.recovered_runs]


def _configuration(db: Database, options: RunOptions) -> _Configuration:
    """The mapping tables (a bad file fails the run), the CDM and our tables created if absent
    (with the shipped vocabulary in an empty CDM), and the fingerprint of the configuration."""
    try:
        tables = load_mapping_tables(options.mapping_dirs)
    except MappingError as problem:
        raise RunFailed(str(problem)) from None
    mappings, code_systems, valuesets = tables.mappings, tables.code_systems, tables.valuesets
    prepare_database(db, load_shipped_vocabulary, shipped_vocabulary_key())  # a new DuckDB file: from a template
    vocab_version = vocabulary_version(db)
    fingerprint = configuration_fingerprint(vocab_version, mappings, code_systems, valuesets)
    return _Configuration(mappings, code_systems, valuesets, vocab_version, fingerprint)


def _mirror_mappings(db: Database, config: _Configuration) -> None:
    """SOURCE_TO_CONCEPT_MAP mirrors the mapping tables: rewritten only when the configuration
    (which includes them) changed since it was last written."""
    with db.exclusive():
        if recorded_setting(db, "source_to_concept_map_config") != config.fingerprint:
            db.execute(f"DELETE FROM {db.table('source_to_concept_map')}")
            db.insert_rows("source_to_concept_map", columns("source_to_concept_map"), source_to_concept_map_rows(config.mappings))
            record_setting(db, "source_to_concept_map_config", config.fingerprint)


def _start_run(db: Database, options: RunOptions, config: _Configuration, notices: list[str]) -> tuple[RunReport, _Run]:
    started_at = datetime.now()
    with db.exclusive():
        # Under the lock, the run id and the runs 'running' now and held by a live process, which
        # load concurrently with this one (see CdmWriter.vanished_resources).
        start = start_run(db, started_at, config.vocabulary_version, config.fingerprint, [str(p) for p in options.inputs])
    report = RunReport(run_id=start.run_id, vocabulary_version=config.vocabulary_version, started_at=started_at,
                       notices=notices, recovered_runs=start.recovered_runs)
    writer = CdmWriter(db, start.run_id, concurrent_runs=start.concurrent_runs)
    discovered = discover(options.inputs)
    for path, kind in discovered.skipped:
        report.non_fhir_files_skipped[f"{path.name} ({kind})"] += 1
    if discovered.problems:  # paths that do not exist or cannot be listed: quarantined, the rest loads
        writer.write_batch([], discovered.problems, report.outcome)
        report.unreadable_files += len(discovered.problems)
    run = _Run(writer, discovered.files, FileStates(db, config.fingerprint, discovered.files), start.recovered_persons,
               start.concurrent_runs, start.recovered_runs)
    return report, run


def _read_convert_load(options: RunOptions, config: _Configuration, ctx: ConvertContext, report: RunReport, run: _Run,
                       progress: Callable[[LoadProgress], None] | None) -> None:
    """Read the inputs, convert them (in worker processes for large inputs) and write them in
    batches; files unchanged since a completed run are skipped unread (incremental)."""
    files, file_states, writer, outcome = run.files, run.file_states, run.writer, report.outcome
    load_progress = LoadProgress(files_total=len(files), bytes_total=sum(file_size(p) for p in files))

    def skip(path: Path) -> bool:
        if not options.incremental or not file_states.unchanged(path):
            file_states.will_read(path)
            return False
        report.files_skipped += 1
        load_progress.files_skipped += 1
        load_progress.files_done += 1
        load_progress.completed_bytes += file_size(path)
        load_progress.bytes_done = load_progress.completed_bytes
        return True

    # Decided before anything is read, so the number of workers fits what is left to read (an
    # incremental run of one changed bundle does not start a pool).
    files_to_read = [path for path in files if not skip(path)]
    workers = options.workers or default_workers(sum(file_size(p) for p in files_to_read))
    if not any(is_ndjson(path) for path in files_to_read):
        workers = min(workers, max(len(files_to_read), 1))  # a JSON file is one unit: more would idle
    report.workers = workers
    limits = ReadLimits(max_resource_bytes=options.max_resource_bytes, max_decompressed_bytes=options.max_decompressed_bytes)
    setup = ConverterSetup(_portable(ctx) if workers > 1 else ctx, config.fingerprint, fhir_resource_types(), options.validate, limits)

    if progress:
        progress(load_progress)
    batch: list[ConvertedItem] = []
    problems: list[InputProblem] = []
    # Resources are converted before the batch takes the load lock, so concurrent loaders convert
    # in parallel; a resource its file applied before with the same content is not converted.
    units = (dataclasses.replace(unit, applied=writer.applied_hashes(display_name(unit.path))) if unit.lines is None else unit
             for unit in units_of(files_to_read, limits))
    for result in converted_units(setup, units, workers):
        for entry in result.entries:  # converted as they are read (one process): a large Bundle is never held whole
            if isinstance(entry, InputProblem):
                problems.append(entry)
                continue
            batch.append(entry)
            # Batches span files: one transaction per few thousand resources, not per small Bundle.
            if len(batch) >= options.batch_size:
                _write_batch(writer, batch, problems, outcome, ctx)
                batch, problems = [], []
                load_progress.batches_committed += 1
        # Only now, its entries consumed, is a unit's result complete (counters, Medications).
        file_states.saw(result)
        run.medications.update(result.medications)  # files holding Medications are always read
        report.resources_read += result.resources_read
        report.unreadable_files += result.unreadable_files
        outcome.not_mapped_types.update(result.not_mapped_types)
        load_progress.resources += result.resources_read
        load_progress.quarantined = sum(outcome.quarantined.values())
        if result.unit.closes_file:
            report.files += 1
            load_progress.files_done += 1
            load_progress.completed_bytes += file_size(result.unit.path)
            load_progress.bytes_done = load_progress.completed_bytes
        else:
            load_progress.bytes_done += result.unit.size
        if progress:
            progress(load_progress)
    if batch or problems:
        _write_batch(writer, batch, problems, outcome, ctx)
        load_progress.batches_committed += 1
        load_progress.quarantined = sum(outcome.quarantined.values())
        if progress:
            progress(load_progress)


def _complete_the_load(db: Database, options: RunOptions, ctx: ConvertContext, report: RunReport, run: _Run) -> set[str]:
    """What only the whole run can decide: resources gone from their files, records that waited
    for a resource read later, rows whose person never arrived, visit links. Returns the files
    that must be read again next time (they lost resources to the dangling sweep).
    Run-level step: call inside db.exclusive()."""
    writer, outcome = run.writer, report.outcome
    if options.delete_vanished:
        report.vanished_deleted = delete_vanished(writer, run.file_states.clean_completed(), outcome)
    report.medications_filled_late, report.results_completed = complete_waiting(writer, run.medications, ctx, outcome)
    report.dangling_removed, dangling_files = remove_dangling_subjects(writer, run.own_runs, outcome)
    dangling_files |= files_quarantined_for_missing_persons(db, writer.run_id, run.concurrent_runs, PERSON_MISSING_REASONS)
    # What this process wrote and deleted is known; a killed run's, or the sweep's, is not.
    visit_candidates = None if report.recovered_runs or report.dangling_removed else writer.visit_ids
    report.visit_links_restored = restore_visit_links(db)
    report.visit_links_cleared = clear_missing_visits(db, run.own_runs, visit_candidates)
    report.events_before_birth = events_before_birth(db, run.own_runs) if outcome.person_ids | run.recovered_persons else 0
    return dangling_files


def _derive(db: Database, options: RunOptions, config: _Configuration, report: RunReport, run: _Run) -> None:
    """The derived tables, for the persons whose rows changed (a killed run's persons count for
    every table: what it changed is not known). Run-level step: call inside db.exclusive()."""
    outcome, writer = report.outcome, run.writer
    persons = sorted(outcome.person_ids | run.recovered_persons)

    def changed_in(*tables: str) -> set[int]:
        """Persons whose rows in `tables` (or whose person row) changed."""
        return set().union(*(outcome.persons_by_table[t] for t in (*tables, "person"))) | run.recovered_persons

    # Eras and capped drug ends depend on conditions, drugs and deaths only.
    drug_persons = changed_in("drug_exposure", "death")
    report.drug_ends_capped = cap_drug_ends_at_death(db, drug_persons)
    if options.oncology and persons:
        # Oncology rows get their ids from the same registry, so re-runs keep them stable.
        writer.ids.start_batch()
        writer.ids.preload("derived:")
        report.oncology = derive_oncology(db, persons, b_rules=options.b_rules,
                                          mappings=rows_by_kind(config.mappings), allocate_id=writer.ids.get,
                                          include_unconfirmed=options.include_unconfirmed)
        writer.ids.flush()
    report.derived = derive_for_persons(db, persons, condition_persons=changed_in("condition_occurrence"),
                                        drug_persons=drug_persons)


def _finish_run(db: Database, options: RunOptions, config: _Configuration, report: RunReport, run: _Run,
                dangling_files: set[str]) -> None:
    """cdm_source, the run's record (report, unmapped codes), and only now, the run's files as
    loaded (a file that lost resources to the dangling sweep is read again next time: its Patient
    may arrive then). Run-level step: call inside db.exclusive()."""
    run_id = run.writer.run_id
    write_cdm_source(db, options.source_name, config.vocabulary_version)
    report.finished_at = datetime.now()
    unmapped_rows = [(run_id, t, c, v[:300], code[:300], r, n) for (t, c, v, code, r), n in report.outcome.unmapped.items()]
    finish_run(db, run_id, run.own_runs, report.finished_at, report.to_dict(), unmapped_rows)
    run.file_states.record(run_id, exclude=dangling_files)


def _pseudonym_key(db: Database, key_file: Path | None, notices: list[str]) -> bytes:
    """The site's pseudonym key (see pseudonym_key), checked against the one this CDM was made
    with. A CDM of an earlier version keeps its key in ctcl_settings: it is moved out, to the key
    file, on the first run of this version, so its person_source_values stay the same. Under the
    load lock, so two loaders starting on a new CDM agree on one key."""
    from ctcl_map.pseudonym_key import configured_key, key_check, new_key, write_key_file

    try:
        with db.exclusive():
            legacy = recorded_setting(db, "pseudonym_salt")
            recorded_check = recorded_setting(db, "pseudonym_key_check")
            key, new_file = configured_key(key_file)
            if legacy is not None:
                legacy_key = bytes.fromhex(legacy)
                if key is None:
                    key = write_key_file(new_file, legacy_key)
                    notices.append(f"the pseudonym key was moved out of the CDM into {key.origin}: keep that file "
                                   "(and a copy in a safe place); without it new loads cannot reproduce this CDM's person_source_value")
                elif key.key != legacy_key:
                    raise KeyProblem(f"this CDM keeps its own pseudonym key (written by an earlier version) and it differs from the "
                                     f"key in {key.origin}: give a --key-file that does not exist yet, and the CDM's key is moved there")
                else:
                    notices.append(f"the pseudonym key was removed from the CDM: it is the one in {key.origin}")
                forget_setting(db, "pseudonym_salt")
            elif key is None:
                if recorded_check is not None:
                    raise KeyProblem(f"this CDM's pseudonyms were made with a key that is not configured here ({new_file} does not exist): "
                                     "give it with --key-file or $CTCL_MAP_PSEUDONYM_KEY")
                key = write_key_file(new_file, new_key())
                notices.append(f"a new pseudonym key was written to {key.origin}: keep it (and a copy in a safe place); "
                               "person_source_value cannot be reproduced without it")
            if recorded_check is None:
                record_setting(db, "pseudonym_key_check", key_check(key.key))
            elif recorded_check != key_check(key.key):
                raise KeyProblem(f"the pseudonym key in {key.origin} is not the one this CDM was made with: "
                                 "give the right one with --key-file or $CTCL_MAP_PSEUDONYM_KEY")
    except KeyProblem as problem:
        raise RunFailed(str(problem)) from None
    return key.key


@contextmanager
def _no_full_collections() -> Iterator[None]:
    """Only the young generations of the cyclic garbage collector run meanwhile (the full ones
    resume by the usual rule afterwards).

    A batch holds thousands of resources and their rows (trees of dicts, no cycles) until it is
    written; each survives the young collections, so the collector's rule (a full collection when
    survivors reach a quarter of the old generation) scanned the whole heap 17 times in a load of
    the 113 Synthea bundles, finding nothing: 1.1 s of CPU of about 8. The few cycles a load
    makes are young when they die, and the young collections still free them.
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(thresholds[0], thresholds[1], 1 << 30)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def _write_batch(writer: CdmWriter, batch: list[ConvertedItem], problems: list[InputProblem], outcome: BatchOutcome,
                 ctx: ConvertContext) -> None:
    """Write a batch; entries left unconverted (unchanged in their file) that it must write all
    the same are converted here, and the batch is written again (nothing of it was written)."""
    while True:
        try:
            writer.write_batch(batch, problems, outcome)
            return
        except NotConverted as missing:
            for entry in missing.entries:
                entry.conversion, entry.converted = convert(entry.item, ctx), True


def _portable(ctx: ConvertContext) -> ConvertContext:
    """The context as sent to worker processes: without what this process cached or indexed."""
    resolver = copy.copy(ctx.resolver)
    resolver._cache = {}
    return dataclasses.replace(ctx, resolver=resolver, medications={})


