"""`fhir2omop` as a function: read -> convert -> write, batch by batch, then derive.

The CLI only parses options and prints; everything a run does is here, so tests and other
programs drive exactly what users run.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from ctcl_map import CDM_VERSION, __version__
from ctcl_map.cdm.ctcl_tables import ctcl_ddl
from ctcl_map.cdm.derive import derive_for_persons
from ctcl_map.cdm.schema import cdm_ddl, columns
from ctcl_map.converters import CONVERTERS, ConvertContext, convert
from ctcl_map.converters.concepts import ConceptResolver, VocabIndex
from ctcl_map.readers.fhir_input import InputProblem, SourceItem, discover, read_file
from ctcl_map.writers.cdm_writer import BatchOutcome, CdmWriter, ConvertedItem, content_hash
from ctcl_map.writers.db import Database

EVENT_TABLES = ("visit_occurrence", "condition_occurrence", "drug_exposure", "procedure_occurrence",
                "device_exposure", "measurement", "observation", "death")


@dataclass
class RunOptions:
    inputs: Sequence[Path]
    mapping_dirs: Sequence[Path] = ()
    batch_size: int = 5000
    validate: bool = False  # full fhir.resources model validation of every mapped resource (slow)
    oncology: bool = True  # derive staging links, stage groups, B categories, CLIPI and episodes
    b_rules: str = "2007"  # ISCL/EORTC B-category criteria for counts: '2007' or '2022'
    source_name: str = "ctcl-map FHIR load"


@dataclass
class RunReport:
    run_id: int
    files: int = 0
    unreadable_files: int = 0
    resources_read: int = 0
    outcome: BatchOutcome = field(default_factory=BatchOutcome)
    dangling_removed: int = 0
    visit_links_cleared: int = 0
    derived: dict[str, int] = field(default_factory=dict)
    oncology: object = None  # staging.derive.OncologyReport when the oncology step ran
    vocabulary_version: str = ""
    started_at: datetime = field(default_factory=datetime.now)
    finished_at: datetime | None = None

    @property
    def loaded_resources(self) -> int:
        return sum(self.outcome.resources_loaded.values())

    @property
    def quarantined(self) -> int:
        return sum(self.outcome.quarantined.values())

    def to_dict(self) -> dict:
        o = self.outcome
        unmapped_by_system = Counter()
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
            "unreadable_files": self.unreadable_files,
            "resources_read": self.resources_read,
            "resources_loaded": dict(sorted(o.resources_loaded.items())),
            "rows_written": dict(sorted(o.rows_by_table.items())),
            "derived_rows": self.derived,
            "unchanged_skipped": o.skipped_unchanged,
            "superseded_skipped": o.superseded,
            "deleted": o.deleted,
            "excluded": dict(sorted(o.excluded.items())),
            "quarantined": dict(sorted(o.quarantined.items())),
            "not_mapped_resource_types": dict(sorted(o.not_mapped_types.items())),
            "notes": dict(sorted(o.notes.items())),
            "unmapped_rows_by_vocabulary": dict(sorted(unmapped_by_system.items())),
            "top_unmapped_codes": top_unmapped,
            "truncated_values": o.truncated_values,
            "dangling_subject_removed": self.dangling_removed,
            "visit_links_cleared": self.visit_links_cleared,
        }


class RunFailed(RuntimeError):
    """Configuration that makes a run impossible (bad mapping file, unusable vocabulary)."""


def prepare_database(db: Database) -> None:
    """Create the CDM and our tables if absent, and load the shipped vocabulary into an empty CDM."""
    from ctcl_map.vocab.loader import load_shipped_vocabulary

    for statement in cdm_ddl(db.dialect, db.cdm_schema) + ctcl_ddl(db.table):
        db.execute(statement)
    if db.query(f"SELECT COUNT(*) FROM {db.table('concept')}")[0][0] == 0:
        with db.transaction():
            load_shipped_vocabulary(db)


def run_fhir2omop(db: Database, options: RunOptions, progress: Callable[[str, int, int], None] | None = None) -> RunReport:
    from ctcl_map.mappings.tables import (
        MappingError, load_code_systems, load_fhir_valuesets, load_mappings, source_to_concept_map_rows,
    )
    from ctcl_map.vocab.loader import vocabulary_version

    try:
        mappings = load_mappings(options.mapping_dirs)
        code_systems = load_code_systems(options.mapping_dirs)
        valuesets = load_fhir_valuesets(options.mapping_dirs)
    except MappingError as problem:
        raise RunFailed(str(problem)) from None
    prepare_database(db)
    with db.transaction():
        db.execute(f"DELETE FROM {db.table('source_to_concept_map')}")
        db.insert_rows("source_to_concept_map", columns("source_to_concept_map"), source_to_concept_map_rows(mappings))

    resolver = ConceptResolver(code_systems, mappings, VocabIndex(db))
    ctx = ConvertContext(resolver=resolver, valuesets=valuesets, pseudonym_salt=_pseudonym_salt(db))
    vocab_version = vocabulary_version(db)
    fingerprint = _config_fingerprint(vocab_version, mappings, code_systems, valuesets)
    run_id = (db.query(f"SELECT COALESCE(MAX(run_id), 0) FROM {db.table('ctcl_run')}")[0][0] or 0) + 1
    report = RunReport(run_id=run_id, vocabulary_version=vocab_version)
    files, missing = discover(options.inputs)
    db.insert_rows("ctcl_run", ("run_id", "started_at", "status", "software_version", "cdm_version", "vocabulary_version",
                                "config_fingerprint", "inputs"),
                   [(run_id, report.started_at, "running", __version__, CDM_VERSION, vocab_version, fingerprint,
                     json.dumps([str(p) for p in options.inputs]))])
    writer = CdmWriter(db, run_id)
    outcome = report.outcome
    if missing:
        writer.write_batch([], missing, outcome)
        report.unreadable_files += len(missing)

    validator = _structure_validator() if options.validate else None
    known_types = _fhir_resource_types()
    batch: list[ConvertedItem] = []
    problems: list[InputProblem] = []
    for number, path in enumerate(files, start=1):
        report.files += 1
        if progress:
            progress(str(path), number, len(files))
        for item in read_file(path):
            if isinstance(item, InputProblem):
                problems.append(item)
                if item.position == "-":
                    report.unreadable_files += 1
                continue
            report.resources_read += 1
            entry = _convert_item(item, ctx, fingerprint, known_types, validator, outcome)
            if entry is not None:
                batch.append(entry)
            # Batches span files: one transaction per few thousand resources, not per small Bundle.
            if len(batch) >= options.batch_size:
                writer.write_batch(batch, problems, outcome)
                batch, problems = [], []
    if batch or problems:
        writer.write_batch(batch, problems, outcome)

    report.dangling_removed = _remove_dangling_subjects(db, run_id, outcome)
    report.visit_links_cleared = _clear_missing_visits(db)
    if options.oncology and outcome.person_ids:
        from ctcl_map.staging.derive import derive_oncology

        # Oncology rows get their ids from the same registry, so re-runs keep them stable.
        report.oncology = derive_oncology(db, sorted(outcome.person_ids), b_rules=options.b_rules,
                                          mapping_dirs=options.mapping_dirs, allocate_id=writer.ids.get)
        with db.transaction():
            writer.ids.flush()
    report.derived = derive_for_persons(db, outcome.person_ids)
    _write_cdm_source(db, options.source_name, vocab_version)
    report.finished_at = datetime.now()
    unmapped_rows = [(run_id, t, c, v[:300], code[:300], r, n) for (t, c, v, code, r), n in outcome.unmapped.items()]
    with db.transaction():
        db.insert_rows("ctcl_unmapped", ("run_id", "omop_table", "omop_column", "vocabulary", "code", "reason", "row_count"), unmapped_rows)
        db.execute(f"UPDATE {db.table('ctcl_run')} SET finished_at = ?, status = ?, report = ? WHERE run_id = ?",
                   [report.finished_at, "completed", json.dumps(report.to_dict()), run_id])
    return report


def _convert_item(item: SourceItem, ctx: ConvertContext, fingerprint: str, known_types: frozenset[str],
                  validator, outcome: BatchOutcome) -> ConvertedItem | None:
    if item.method == "DELETE":
        return ConvertedItem(item, None, content_hash(None))
    if item.resource_type == "Medication":
        ctx.medications[item.key] = item.resource
    if item.resource_type not in CONVERTERS:
        if item.resource_type not in known_types:
            from ctcl_map.converters.base import quarantined

            return ConvertedItem(item, quarantined("unknown_resource_type", f"{item.resource_type[:60]!r} is not a FHIR R4 resource type"),
                                 _hash(fingerprint, item.resource))
        outcome.not_mapped_types[item.resource_type] += 1
        return None
    if validator is not None:
        problem = validator(item.resource)
        if problem:
            from ctcl_map.converters.base import quarantined

            return ConvertedItem(item, quarantined("fhir_structure", problem), _hash(fingerprint, item.resource))
    return ConvertedItem(item, convert(item, ctx), _hash(fingerprint, item.resource))


def _hash(fingerprint: str, resource: dict | None) -> str:
    """Content hash salted with the configuration: new mappings or vocabulary reload everything."""
    return hashlib.blake2b((fingerprint + content_hash(resource)).encode(), digest_size=16).hexdigest()


def _config_fingerprint(vocab_version: str, mappings, code_systems, valuesets) -> str:
    parts = [__version__, vocab_version,
             json.dumps(sorted((e.source_vocabulary_id, e.source_code, e.target_concept_id, e.origin) for e in mappings.entries)),
             json.dumps(sorted(code_systems.items())),
             json.dumps(sorted((list(k), v) for k, v in valuesets.items()))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _pseudonym_salt(db: Database) -> bytes:
    rows = db.query(f"SELECT value FROM {db.table('ctcl_settings')} WHERE name = 'pseudonym_salt'")
    if rows:
        return bytes.fromhex(rows[0][0])
    salt = secrets.token_hex(32)
    db.insert_rows("ctcl_settings", ("name", "value"), [("pseudonym_salt", salt)])
    return bytes.fromhex(salt)


def _fhir_resource_types() -> frozenset[str]:
    """Every FHIR R4 resource type name (extracted from the official FHIR R4 JSON schema's discriminator)."""
    from importlib import resources

    schema = json.loads(resources.files("ctcl_map.readers").joinpath("fhir_resource_types.json").read_text())
    return frozenset(schema)


def _structure_validator():
    from fhir.resources.R4B import get_fhir_model_class

    def validate(resource: dict) -> str | None:
        try:
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        except Exception as error:  # pydantic ValidationError and model lookup errors alike
            errors = getattr(error, "errors", None)
            if callable(errors):
                first = errors()[0]
                location = ".".join(str(part) for part in first.get("loc", ()))
                return f"{location}: {first.get('msg', 'invalid')}"[:1000]
            return str(error).splitlines()[0][:1000]
        return None

    return validate


def _remove_dangling_subjects(db: Database, run_id: int, outcome: BatchOutcome) -> int:
    """Rows whose person never arrived: remove them, quarantine their resource, forget its state
    (so a later run that brings the Patient loads them)."""
    t = db.table
    dangling: set[str] = set()
    for table in EVENT_TABLES:
        rows = db.query(
            f"SELECT DISTINCT l.resource_key, l.source_file, l.source_position FROM {t(table)} e "
            f"JOIN {t('ctcl_lineage')} l ON l.omop_table = '{table}' AND l.omop_id = "
            f"{'e.person_id' if table == 'death' else 'e.' + table + '_id'} "
            f"WHERE e.person_id NOT IN (SELECT person_id FROM {t('person')})"
        )
        dangling.update(rows)
    if not dangling:
        return 0
    keys = sorted({key for key, _, _ in dangling})
    with db.transaction():
        CdmWriter(db, run_id).forget_resources(keys)
        db.insert_rows("ctcl_quarantine", ("run_id", "source_file", "source_position", "resource_type", "resource_id", "reason", "message"),
                       [(run_id, f, p, key.split("/", 1)[0], key.split("/", 1)[1], "dangling_subject",
                         "subject references a Patient that is not in the input or the database") for key, f, p in sorted(dangling)])
    outcome.quarantined["dangling_subject"] += len(keys)
    for key in keys:
        outcome.resources_loaded[key.split("/", 1)[0]] -= 1
    return len(keys)


def _clear_missing_visits(db: Database) -> int:
    """visit_occurrence_id values pointing at an Encounter that never arrived become NULL."""
    t = db.table
    cleared = 0
    for table in ("condition_occurrence", "drug_exposure", "procedure_occurrence", "device_exposure", "measurement", "observation"):
        where = (f"visit_occurrence_id IS NOT NULL AND visit_occurrence_id NOT IN "
                 f"(SELECT visit_occurrence_id FROM {t('visit_occurrence')})")
        cleared += db.query(f"SELECT COUNT(*) FROM {t(table)} WHERE {where}")[0][0]
        db.execute(f"UPDATE {t(table)} SET visit_occurrence_id = NULL WHERE {where}")
    return cleared


def _write_cdm_source(db: Database, name: str, vocab_version: str) -> None:
    with db.transaction():
        db.execute(f"DELETE FROM {db.table('cdm_source')}")
        db.insert_rows("cdm_source", columns("cdm_source"), [(
            name[:255], "ctcl-map", "ctcl-map user", "FHIR R4 resources converted by ctcl-map",
            None, f"ctcl-map {__version__}", date.today(), date.today(), CDM_VERSION, 0, (vocab_version or "unknown")[:20],
        )])
