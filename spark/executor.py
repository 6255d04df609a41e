"""What a Spark executor runs: one input file -> flat entry records, through the same readers and
the same `convert_item` as the single-machine path (converters/parallel.py). Pure Python: no
pyspark here, so the records can be tested without a JVM.

An entry record is a plain dict (pickled between Spark's Python workers): one resource occurrence
with its verdict and, for a loaded resource, its rows. A row keeps its references as keys
("Patient/1"): ids are given later, by the driver's id step, never here. Text is cut to its
declared length here, as the single-machine writer does (CdmWriter._materialise).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from ctcl_map.cdm.schema import cdm_fields, primary_key
from ctcl_map.converters import convert
from ctcl_map.converters.context import encounter_key, outside_its_bundle
from ctcl_map.converters.observation import report_awaited_by, report_contexts
from ctcl_map.converters.parallel import CONTEXT_TYPES, NEEDS_MEDICATION_INDEX, ConverterSetup, MedicationIndex, convert_item
from ctcl_map.load.cdm_writer import EVENT_COLUMNS, EVENT_FIELD_SPACES, REFERENCE_SPACES, _compare, _meta, _version_tuple
from ctcl_map.model import BatchOutcome, BundleIndex, ConvertedItem, InputProblem, SourceItem
from ctcl_map.readers.fhir_input import read_file

# The key columns a row may carry, and where they go in a row record (the rest is `values`).
KEY_COLUMNS = (*REFERENCE_SPACES, *EVENT_COLUMNS)


@dataclasses.dataclass(frozen=True)
class Unit:
    """One input file for an executor: its place in the input order, where to read it, its name."""

    number: int
    path: str  # a local path (a file the executor can open)
    display: str  # as recorded in lineage and quarantine


def unit_records(setup: ConverterSetup, unit: Unit, medications: dict[str, dict] | None = None) -> Iterator[dict]:
    """Every entry record of one file, in file order; then one 'counts' record for the file."""
    index = MedicationIndex(medications or {})
    ctx = dataclasses.replace(setup.ctx, medications=index)
    outcome = BatchOutcome()
    resources_read = unreadable = 0
    for seq, item in enumerate(read_file(Path(unit.path), unit.display, setup.limits)):
        if isinstance(item, InputProblem):
            unreadable += item.position == "-"
            yield problem_record(unit.number, seq, item)
            continue
        resources_read += 1
        entry = convert_item(item, ctx, setup.fingerprint, setup.known_types, None, outcome, {})
        if item.resource_type == "Medication" and item.resource is not None:
            yield {"kind": "medication", "order": (unit.number, seq), "key": item.key, "resource": item.resource}
        if entry is not None:
            yield entry_record(unit.number, seq, entry)
    yield {"kind": "counts", "order": (unit.number, -1), "resources_read": resources_read, "unreadable_files": unreadable,
           "not_mapped_types": dict(outcome.not_mapped_types)}


def spooled_unit_records(setup: ConverterSetup, number: int, uri: str, payload: bytes) -> Iterator[dict]:
    """A file Spark read from any Hadoop filesystem (binaryFiles): written to a local temporary
    file with the same suffix, so the very same reader reads it (gzip, Bundle or NDJSON)."""
    suffix = "".join(Path(uri.rsplit("/", 1)[-1]).suffixes[-2:])
    handle, local = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(payload)
        yield from unit_records(setup, Unit(number, local, uri))
    finally:
        os.unlink(local)


def awaits_medication(record: dict) -> bool:
    """A drug record converted before its Medication was known: converted again with every Medication of the run."""
    awaits = record.get("awaits")
    return record["kind"] == "entry" and isinstance(awaits, str) and awaits.startswith("Medication/")


def reconverted(setup: ConverterSetup, record: dict, medications: dict[str, dict]) -> dict:
    """The record converted again, with the run's Medications (what the single-machine end of run does)."""
    item: SourceItem = record["item"]
    ctx = dataclasses.replace(setup.ctx, medications=medications)
    unit, seq = record["order"]
    return entry_record(unit, seq, ConvertedItem(item, convert(item, ctx), record["content_hash"]))


def problem_record(unit: int, seq: int, problem: InputProblem) -> dict:
    return {"kind": "problem", "order": (unit, seq), "file": problem.file, "position": problem.position,
            "resource_type": problem.resource_type, "resource_id": problem.resource_id,
            "reason": problem.reason, "message": problem.message}


def entry_record(unit: int, seq: int, entry: ConvertedItem) -> dict:
    """One resource occurrence: its identity, version, verdict and rows (flat, picklable)."""
    item, conversion = entry.item, entry.conversion
    meta = _meta(item)
    record: dict[str, Any] = {
        "kind": "entry", "order": (unit, seq), "key": item.key, "resource_type": item.resource_type,
        "resource_id": item.resource_id, "file": item.file, "position": item.position, "method": item.method,
        "meta": {"versionId": meta.get("versionId"), "lastUpdated": meta.get("lastUpdated")},
        "content_hash": entry.content_hash, "verdict": "loaded", "reason": None, "message": None,
        "rows": [], "unmapped": [], "notes": [], "awaits": None, "truncated": 0,
    }
    if item.method == "DELETE":
        record["verdict"] = "deleted"
    elif conversion is None:
        record["verdict"] = "not_mapped"
    elif conversion.quarantined:
        record["verdict"] = "quarantined"
        record["reason"], record["message"] = conversion.quarantined
    elif conversion.excluded:
        record["verdict"] = "excluded"
        record["reason"] = conversion.excluded
    else:
        truncated = Counter[str]()
        record["rows"] = [row_record(row.table, row.key, row.values, truncated) for row in conversion.rows]
        record["truncated"] = truncated["values"]
        record["unmapped"] = [(g.table, g.column, g.vocabulary, g.code, g.reason) for g in conversion.unmapped]
        record["notes"] = list(conversion.notes)
    if conversion is not None:
        record["awaits"] = conversion.awaits
        if record["awaits"] is not None and item.resource_type in NEEDS_MEDICATION_INDEX:
            record["item"] = item  # kept whole (with its Bundle index) to be converted again
        elif awaits_report(record):
            record["resource"] = outside_its_bundle(item)  # converted again with a report read elsewhere
    if item.resource_type in CONTEXT_TYPES and item.method != "DELETE":
        record["contexts"] = report_contexts(item)  # what this report gives the results it lists
    return record


def awaits_report(record: dict) -> bool:
    """A result quarantined without date or subject, waiting for a DiagnosticReport read elsewhere."""
    awaits = record.get("awaits")
    return record["kind"] == "entry" and isinstance(awaits, str) and awaits.startswith(report_awaited_by(""))


def visit_start(record: dict) -> tuple[str, dict] | None:
    """(Encounter key, a period starting when its visit does) of a loaded Encounter (load/waiting)."""
    for row in record["rows"]:
        if row["table"] == "visit_occurrence":
            values = orjson.loads(row["values"])
            start = values.get("visit_start_datetime") or values.get("visit_start_date")
            return (record["key"], {"start": start}) if start else None
    return None


def with_result_context(setup: ConverterSetup, record: dict, context: dict | None, period: tuple[str, dict] | None) -> dict:
    """A waiting result converted again with the report listing it (else its Encounter's start),
    as load/waiting does at the end of a single-machine run; unchanged if it still cannot load."""
    key = record["key"]
    index = BundleIndex(reports={key: context} if context else {}, encounter_periods=dict([period]) if period else {})
    item = SourceItem(record["resource"], "Observation", key.split("/", 1)[1], record["file"], record["position"], None, index)
    conversion = convert(item, setup.ctx)
    if conversion is None or conversion.quarantined:
        return record
    unit, seq = record["order"]
    completed = entry_record(unit, seq, ConvertedItem(item, conversion, record["content_hash"]))
    completed["completed"] = True
    return completed


def row_record(table: str, key: str, values: dict[str, Any], truncated: Counter) -> dict:
    """A row with its key columns apart (person, visit, event links as keys) and its other values
    as JSON text typed by the spec later (dates as ISO text)."""
    own = dict(values)
    refs: dict[str, Any] = {}
    for column in KEY_COLUMNS:
        if column in own:
            refs[column] = own.pop(column)
    event_space = None
    for column, field_column in EVENT_COLUMNS.items():
        ref = refs.get(column)
        if isinstance(ref, str):
            concept = own.get(field_column)
            event_space = None if concept is None else EVENT_FIELD_SPACES.get(concept)
    for column, limit in _lengths(table):
        text = own.get(column)
        if isinstance(text, str) and len(text) > limit:
            own[column] = text[:limit]
            truncated["values"] += 1
    person = refs.get("person_id")
    return {
        "table": table,
        "row_key": key if primary_key(table) is not None else None,
        "person_key": person if isinstance(person, str) else None,
        "visit_key": _key(refs.get("visit_occurrence_id")),
        "preceding_visit_key": _key(refs.get("preceding_visit_occurrence_id")),
        "event_key": _key(refs.get("measurement_event_id")) or _key(refs.get("observation_event_id")),
        "event_space": event_space,
        "values": orjson.dumps(own, option=orjson.OPT_NON_STR_KEYS).decode(),
    }


def _key(value: object) -> str | None:
    return value if isinstance(value, str) else None


_LENGTHS: dict[str, tuple[tuple[str, int], ...]] = {}


def _lengths(table: str) -> tuple[tuple[str, int], ...]:
    if table not in _LENGTHS:
        _LENGTHS[table] = tuple((f.name, f.max_length) for f in cdm_fields()[table] if f.max_length)
    return _LENGTHS[table]


def latest_occurrence(records: list[dict]) -> tuple[dict, int, int]:
    """The occurrence of one resource that stands after the whole run, with the repeats and the
    older versions met on the way: in input order, a later entry replaces the current one unless
    it is an older version (versionId, then lastUpdated: CdmWriter's comparison) or the same
    content; a DELETE always applies."""
    ordered = sorted(records, key=lambda record: record["order"])
    current, duplicates, superseded = ordered[0], 0, 0
    for record in ordered[1:]:
        deletes = "DELETE" in (record["method"], current["method"])
        if not deletes:
            duplicates += 1
            if _compare(_version_tuple(record["meta"]), _version_tuple(current["meta"])) < 0:
                duplicates -= 1
                superseded += 1
                continue
        if record["content_hash"] != current["content_hash"]:
            current = record
    return current, duplicates, superseded


def result_encounter(record: dict) -> str | None:
    """The Encounter key a waiting result names."""
    return encounter_key(SourceItem(record["resource"], "Observation", "", "", ""))
