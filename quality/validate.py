"""`ctcl-map validate INPUT...`: is a FHIR export fit to load, before anything is written?

One pass over every file of the run (the reader of `fhir2omop`, so the same files, positions and
Bundle handling), then the checks that need the whole run (references, per-patient plausibility):

- structure: FHIR R4 (fhir.resources R4B models; with json_schema=True also HL7's JSON schema),
- references: resolve within the input, or are counted as external (validate_references.py),
- conversion: what the converters would quarantine (missing dates, impossible values ...),
- CTCL plausibility per patient across files (validate_ctcl.py),
- mapping coverage per code system and resource type (validate_coverage.py).

Nothing is written anywhere: without a database the vocabulary is the shipped subset loaded into
an in-memory DuckDB; with `db` (a CDM with an Athena vocabulary) it is only read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from time import perf_counter

from ctcl_map.converters import CONVERTERS, ConvertContext, convert
from ctcl_map.converters.context import subject_key
from ctcl_map.errors import MappingError, ValidationFailed
from ctcl_map.model import UNSERIALISABLE, InputProblem, SourceItem, content_hash, unserialisable
from ctcl_map.quality.validate_coverage import CoverageCounter
from ctcl_map.quality.validate_ctcl import CtclChecker, load_ctcl_concepts
from ctcl_map.quality.validate_references import ReferenceChecker
from ctcl_map.quality.validate_report import Finding, ValidationReport
from ctcl_map.quality.validate_structure import MAX_ERRORS_PER_RESOURCE, structure_checkers
from ctcl_map.readers.fhir_input import discover, read_file
from ctcl_map.readers.fhir_structure import resource_path
from ctcl_map.store.database import Database
from ctcl_map.vocab.lookup import ConceptResolver
from ctcl_map.vocab.prepare import prepare_vocabulary

# Converter quarantine reasons another rule already reports with a precise path.
REPORTED_ELSEWHERE = frozenset({"unresolvable_subject", "death_before_birth"})


def validate_inputs(
    paths: Sequence[Path],
    mapping_dirs: Sequence[Path] = (),
    db: Database | None = None,
    json_schema: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    include_unconfirmed: bool = False,
) -> ValidationReport:
    """Validate FHIR R4 inputs (files or folders); see the module docstring for what is checked."""
    from ctcl_map.mappings.tables import load_code_systems, load_fhir_valuesets, load_mappings

    started = perf_counter()
    try:
        mappings = load_mappings(mapping_dirs)
        code_systems = load_code_systems(mapping_dirs)
        valuesets = load_fhir_valuesets(mapping_dirs)
    except MappingError as problem:
        raise ValidationFailed(str(problem)) from None
    vocab_db = db if db is not None else _shipped_vocabulary()
    try:
        resolver = ConceptResolver(code_systems, mappings, prepare_vocabulary(vocab_db))
        # The salt only feeds person_source_value, which validate never shows or keeps.
        ctx = ConvertContext(resolver=resolver, valuesets=valuesets, pseudonym_salt=b"ctcl-map validate")
        ctcl = CtclChecker(load_ctcl_concepts(vocab_db, mapping_dirs), resolver, include_unconfirmed)
        report = ValidationReport(json_schema=json_schema,
                                  vocabulary=db.label if db is not None else "shipped vocabulary subset")
        _run(paths, report, ctx, ctcl, structure_checkers(json_schema), progress)
    finally:
        if vocab_db is not db:
            vocab_db.close()
    report.seconds = perf_counter() - started
    return report


def _run(paths: Sequence[Path], report: ValidationReport, ctx: ConvertContext, ctcl: CtclChecker,
         checkers, progress: Callable[[str, int, int], None] | None) -> None:
    """Read every file once, check item by item, then the whole-run checks; fills `report`."""
    references = ReferenceChecker(frozenset(CONVERTERS))
    coverage = CoverageCounter(ctx.resolver)

    discovered = discover(paths)
    files, missing = discovered.files, discovered.problems
    seen: dict[str, str] = {}  # key -> content hash of what was read so far: repeats are reported as fhir2omop counts them
    cascade = PatientCascade()
    for path, kind in discovered.skipped:
        report.non_fhir_files_skipped[f"{path.name} ({kind})"] += 1
    for problem in missing:
        report.findings.append(_input_finding(problem))
    for number, path in enumerate(files, start=1):
        report.files += 1
        if progress:
            progress(str(path), number, len(files))
        for item in read_file(path):
            if isinstance(item, InputProblem):
                report.findings.append(_input_finding(item))
                continue
            report.resources += 1
            report.resources_by_type[item.resource_type] += 1
            if item.method == "DELETE" or item.resource is None:
                references.keys.add(item.key)
                continue
            try:
                digest = content_hash(item.resource)
            except UNSERIALISABLE as error:  # fhir2omop quarantines it before any check
                reason, message = unserialisable(error)
                report.findings.append(Finding("error", f"conversion.{reason}", item.file, resource_path(item.position),
                                               f"would be quarantined: {message}", item.key))
                continue
            if item.key in seen:
                report.findings.append(Finding("warning", "input.duplicate_resource", item.file, resource_path(item.position),
                                               "the same resource was read earlier in this run: loaded once", item.key))
                if seen[item.key] == digest:
                    continue  # an identical copy: its findings are those of the first
            seen[item.key] = digest
            try:
                _check_item(item, report, checkers, references, coverage, ctcl, ctx, cascade)
            except Exception as error:  # noqa: BLE001 - a resource shaped as no rule foresaw costs only itself
                report.findings.append(Finding("error", "conversion.conversion_error", item.file, resource_path(item.position),
                                               f"the resource cannot be checked: {error.__class__.__name__}", item.key))

    report.findings.extend(references.finish())
    report.findings.extend(cascade.finish())
    report.findings.extend(ctcl.finish())
    report.references = references.outcomes
    report.patients = report.resources_by_type.get("Patient", 0)
    report.ctcl_patients = ctcl.ctcl_patients
    report.coverage = coverage.summary()


class PatientCascade:
    """Records lost with their Patient: fhir2omop loads them, then removes them at the end of the
    run because their person is not there ('patient_quarantined' / 'patient_excluded')."""

    def __init__(self) -> None:
        self.lost_patients: dict[str, tuple[str, str]] = {}  # Patient key -> (rule, message)
        self.events: list[tuple[str, str, str, str]] = []  # (file, position, resource key, Patient key)

    def add(self, item: SourceItem, conversion) -> None:
        if item.resource_type == "Patient":
            if conversion.quarantined is not None:
                self.lost_patients[item.key] = ("patient_quarantined", f"its Patient was quarantined: {conversion.quarantined[0]}")
            elif conversion.excluded is not None:
                self.lost_patients[item.key] = ("patient_excluded", "its Patient was excluded: it is not loaded as a person")
            else:
                self.lost_patients.pop(item.key, None)  # a later version of it loads
            return
        if conversion.quarantined is None and conversion.excluded is None and conversion.rows:
            person_key, _ = subject_key(item)
            if person_key is not None:
                self.events.append((item.file, item.position, item.key, person_key))

    def finish(self) -> list[Finding]:
        found = []
        for file, position, key, person_key in self.events:
            lost = self.lost_patients.get(person_key)
            if lost is not None:
                found.append(Finding("error", f"conversion.{lost[0]}", file, resource_path(position), f"would be quarantined: {lost[1]}", key))
        return found


def _check_item(item: SourceItem, report: ValidationReport, checkers, references: ReferenceChecker,
                coverage: CoverageCounter, ctcl: CtclChecker, ctx: ConvertContext, cascade: PatientCascade) -> None:
    for rule, checker in checkers:
        errors = checker(item.resource)
        for location, message in errors[:MAX_ERRORS_PER_RESOURCE]:
            report.findings.append(Finding("error", rule, item.file, resource_path(item.position, location), message, item.key))
        if len(errors) > MAX_ERRORS_PER_RESOURCE:
            report.findings.append(Finding("error", rule, item.file, resource_path(item.position),
                                           f"... and {len(errors) - MAX_ERRORS_PER_RESOURCE} more errors in this resource",
                                           item.key))
    references.add(item)
    coverage.add(item)
    if item.resource_type == "Medication" and item.resource is not None:  # not None: the caller skips DELETEs
        ctx.medications[item.key] = item.resource
    if item.resource_type == "Patient":
        ctcl.add_patient(item)
    if item.resource_type not in CONVERTERS:
        return
    conversion = convert(item, ctx)
    if conversion is None:
        return
    cascade.add(item, conversion)
    if conversion.quarantined is not None:
        reason, message = conversion.quarantined
        if reason not in REPORTED_ELSEWHERE:
            report.findings.append(Finding("error", f"conversion.{reason}", item.file, resource_path(item.position),
                                           f"would be quarantined: {message}", item.key))
        return
    ctcl.add_conversion(item, conversion)


def _input_finding(problem: InputProblem) -> Finding:
    path = "" if problem.position in ("-", "resource") else problem.position
    return Finding("error", f"input.{problem.reason}", problem.file, path, problem.message)


def _shipped_vocabulary() -> Database:
    """The shipped vocabulary subset in a fresh in-memory DuckDB (about 0.6 s); closed by the caller."""
    from ctcl_map.store.database import connect
    from ctcl_map.store.prepare import prepare_database
    from ctcl_map.vocab.loader import load_shipped_vocabulary

    database = connect(":memory:")
    prepare_database(database, load_shipped_vocabulary)
    return database
