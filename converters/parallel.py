"""The convert stage of a run: input files -> units -> converted entries, in input order, in one
process or in worker processes.

Converters are pure, so any process can convert any piece of input; only the writer must see the
results in input order (batches, ids and "a later entry is a later version" depend on it). A unit
is a whole JSON file or a chunk of NDJSON lines. Workers parse and convert units; the main process
commits their results strictly in unit order, so `--workers N` writes exactly what `--workers 1`
writes.

The one run-wide thing a converter consults is ConvertContext.medications: every Medication read
so far, for references from medication requests. A worker sees the index as it was when its unit
was handed out plus its unit's own Medications, and records every answer it took from outside
its unit; the main process compares those answers with its complete index when the unit's turn
comes and re-converts the unit itself in the rare case they differ.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ctcl_map.converters import CONVERTERS, ConvertContext, convert
from ctcl_map.converters.base import quarantined
from ctcl_map.converters.context import outside_its_bundle
from ctcl_map.model import UNSERIALISABLE, BatchOutcome, ConvertedItem, InputProblem, SourceItem, content_hash, unserialisable
from ctcl_map.readers.fhir_input import (
    DEFAULT_LIMITS,
    READ_ERRORS,
    ReadLimits,
    display_name,
    file_digest,
    file_size,
    is_ndjson,
    items_from_ndjson_lines,
    ndjson_chunks,
    read_file,
    read_problem,
)

if TYPE_CHECKING:
    from concurrent.futures import Future

NDJSON_LINES_PER_UNIT = 2000


@dataclass(frozen=True)
class ConverterSetup:
    """What every converting process needs; sent to each worker once."""

    ctx: ConvertContext  # with an empty medications index
    fingerprint: str
    known_types: frozenset[str]
    validate: bool
    limits: ReadLimits = DEFAULT_LIMITS


@dataclass
class Unit:
    number: int
    path: Path
    lines: list[tuple[int, bytes | int]] | None = None  # an NDJSON chunk (an int: a line over the size limit); None: the whole (JSON) file
    problem: InputProblem | None = None  # the file broke off while being read
    closes_file: bool = True
    size: int = 0  # input bytes this unit covers, for progress
    # A whole (JSON) file's resource key -> content hash of the entry last applied from it (the
    # load stage's record): a resource read with that hash again is not converted.
    applied: dict[str, str] = field(default_factory=dict)


@dataclass
class UnitResult:
    unit: Unit
    entries: list[ConvertedItem | InputProblem] | Iterator[ConvertedItem | InputProblem] = field(default_factory=list)
    problems: int = 0  # entries that are InputProblems
    resources_read: int = 0
    unreadable_files: int = 0
    not_mapped_types: Counter = field(default_factory=Counter)
    medications: dict[str, dict] = field(default_factory=dict)  # this unit's Medications, last version wins
    outside_answers: dict[str, dict | None] = field(default_factory=dict)  # medication lookups answered from outside
    file_digest: tuple[str, int, int] | None = None  # a whole JSON file's (hash, size, mtime), taken just before parsing it
    reconverted: bool = False  # converted again in the loader: a worker's Medication index was stale


class MedicationIndex(dict):
    """ctx.medications for one unit: its own Medications, over the index of everything before it."""

    def __init__(self, earlier: dict[str, dict]):
        super().__init__()
        self.earlier = earlier
        self.outside_answers: dict[str, dict | None] = {}

    def get(self, key, default=None):
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        value = self.earlier.get(key)
        self.outside_answers[key] = value
        return default if value is None else value


# -- units -------------------------------------------------------------------------------------
def units_of(files: list[Path], limits: ReadLimits = DEFAULT_LIMITS) -> Iterator[Unit]:
    """The input split into units, in input order."""
    number = 0
    for path in files:
        if not is_ndjson(path):
            number += 1
            yield Unit(number, path, size=file_size(path))
            continue
        compressed = path.name.lower().endswith(".gz")
        previous: Unit | None = None
        try:
            for chunk in ndjson_chunks(path, NDJSON_LINES_PER_UNIT, limits):
                if previous is not None:
                    yield previous
                number += 1
                previous = Unit(number, path, lines=chunk, closes_file=False,
                                size=0 if compressed else sum(len(line) if isinstance(line, bytes) else line for _, line in chunk))
        except READ_ERRORS as exc:
            if previous is not None:
                yield previous
            number += 1
            yield Unit(number, path, problem=read_problem(display_name(path), exc))
            continue
        if previous is None:  # an empty file
            number += 1
            previous = Unit(number, path, lines=[])
        previous.closes_file = True
        yield previous


# -- converting one unit -----------------------------------------------------------------------
# Not mapped to rows of their own, but other records need what they say (ctcl_result_context):
# the writer records them as it does every resource, so a changed or deleted one updates that.
CONTEXT_TYPES = frozenset({"DiagnosticReport"})
# Their conversion reads ctx.medications, which changes as the input is read: always converted
# when read, never left for later (see convert_item).
NEEDS_MEDICATION_INDEX = frozenset({"MedicationRequest", "MedicationAdministration", "MedicationDispense", "MedicationStatement"})


def convert_unit(setup: ConverterSetup, unit: Unit, earlier_medications: dict[str, dict], lazy: bool = False) -> UnitResult:
    """Read and convert one unit. `lazy`: the entries are converted as the caller iterates them (a
    200 MB Bundle is never held whole); the result's counters, Medications and digest are
    complete only once they have been."""
    result = UnitResult(unit)
    entries = _unit_entries(setup, unit, earlier_medications, result)
    result.entries = entries if lazy else list(entries)
    return result


def _unit_entries(setup: ConverterSetup, unit: Unit, earlier_medications: dict[str, dict],
                  result: UnitResult) -> Iterator[ConvertedItem | InputProblem]:
    index = MedicationIndex(earlier_medications)
    ctx = dataclasses.replace(setup.ctx, medications=index)
    validator = _validator() if setup.validate else None
    outcome = BatchOutcome()
    if unit.problem is not None:
        items: Iterable = [unit.problem]
    elif unit.lines is None:
        try:
            result.file_digest = file_digest(unit.path, setup.fingerprint)
        except OSError:
            pass  # read_file reports it
        items = read_file(unit.path, None, setup.limits)
    else:
        items = items_from_ndjson_lines(unit.lines, display_name(unit.path), setup.limits)
    if unit.problem is None and not _streamed_here(setup, unit):
        # Held whole anyway (a parsed file, a chunk of lines): the unit's codes are looked up at
        # once, not one vocabulary query per code as the converters come to them.
        items = list(items)
        ctx.resolver.prefetch(item.resource for item in items if isinstance(item, SourceItem))
    for item in items:
        if isinstance(item, InputProblem):
            result.problems += 1
            if item.position == "-":
                result.unreadable_files += 1
            yield item
            continue
        result.resources_read += 1
        entry = convert_item(item, ctx, setup.fingerprint, setup.known_types, validator, outcome, unit.applied)
        if entry is not None:
            yield entry
    result.not_mapped_types = outcome.not_mapped_types
    result.medications = dict(index)
    result.outside_answers = index.outside_answers


def convert_item(item: SourceItem, ctx: ConvertContext, fingerprint: str, known_types: frozenset[str],
                 validator, outcome: BatchOutcome, applied: dict[str, str]) -> ConvertedItem | None:
    """The one place a resource is converted (in this process or a worker); nothing a resource
    holds can make it raise: converters are guarded by `convert`, the rest here. A resource its
    file last applied with the same hash (`applied`) is left unconverted: the writer skips it, or
    asks for its conversion (NotConverted) if it changed meanwhile."""
    if item.method == "DELETE":
        return ConvertedItem(item, None, content_hash(None))
    try:
        digest = salted_hash(fingerprint, item.resource)
    except UNSERIALISABLE as error:
        return ConvertedItem(item, quarantined(*unserialisable(error)),
                             salted_hash(fingerprint, {"unserialisable": item.key}))
    if item.resource_type == "Medication" and item.resource is not None:  # None only for a DELETE
        ctx.medications[item.key] = item.resource
    if item.resource_type not in CONVERTERS:
        if item.resource_type not in known_types:
            return ConvertedItem(item, quarantined("unknown_resource_type", f"{item.resource_type[:60]!r} is not a FHIR R4 resource type"),
                                 digest)
        outcome.not_mapped_types[item.resource_type] += 1
        if item.resource_type in CONTEXT_TYPES:  # no rows, but the writer records what it gives others
            return ConvertedItem(item, None, digest)
        return None
    if validator is not None:
        try:
            problem = validator(item.resource)
        except Exception as error:  # noqa: BLE001 - the model library tripping over a hostile resource
            problem = f"the FHIR model cannot read this resource: {error.__class__.__name__}"
        if problem:
            return ConvertedItem(item, quarantined("fhir_structure", problem), digest)
    if applied.get(item.key) == digest and item.resource_type not in NEEDS_MEDICATION_INDEX:
        return ConvertedItem(item, None, digest, converted=False)
    return ConvertedItem(item, convert(item, ctx), digest)


def salted_hash(fingerprint: str, resource: dict | None) -> str:
    """Content hash salted with the configuration: new mappings or vocabulary reload everything."""
    return hashlib.blake2b((fingerprint + content_hash(resource)).encode(), digest_size=16).hexdigest()


def fhir_resource_types() -> frozenset[str]:
    """Every FHIR R4 resource type name (extracted from the official FHIR R4 JSON schema's discriminator)."""
    from importlib import resources

    schema = json.loads(resources.files("ctcl_map.readers").joinpath("fhir_resource_types.json").read_text())
    return frozenset(schema)


_VALIDATOR = None


def _validator():
    global _VALIDATOR
    if _VALIDATOR is None:
        _VALIDATOR = structure_validator()
    return _VALIDATOR


def structure_validator():
    """The first R4B model error of a resource as 'location: message', or None (`fhir2omop --validate`).

    The same check as `ctcl-map validate` (readers.fhir_structure.model_errors), which also
    avoids the reference cycle a kept pydantic error would create.
    """
    from ctcl_map.readers.fhir_structure import model_errors, resource_path

    def validate(resource: dict) -> str | None:
        problems = model_errors(resource)
        if not problems:
            return None
        location, message = problems[0]
        path = resource_path("resource", location)
        return (f"{path}: {message}" if path else message)[:1000]

    return validate


# -- in order, in one or more processes --------------------------------------------------------
def converted_units(setup: ConverterSetup, units: Iterable[Unit], workers: int) -> Iterator[UnitResult]:
    """Each unit's result, in unit order. The caller consumes them one by one (the writer)."""
    medications: dict[str, dict] = {}
    if workers <= 1:
        for unit in units:
            result = convert_unit(setup, unit, medications, lazy=True)
            yield result  # the caller consumes its entries before asking for the next one
            medications.update(result.medications)
        return
    # Imported here: a one-process run (every small input) does not pay for them at start-up.
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    window = InFlightWindow(workers)
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_start_worker,
                             initargs=(setup, os.getpid())) as pool:
        pending: deque[tuple[Unit, Future]] = deque()

        def settle_first() -> UnitResult:
            unit, future = pending.popleft()
            window.left(unit)
            result = _settle(setup, unit, future, medications)
            if result.reconverted:
                window.shrink()
            return result

        for unit in units:
            if _streamed_here(setup, unit):
                # A worker would send a large Bundle's rows back whole: convert it here, lazily,
                # after the units before it, so memory follows one resource as with one process.
                while pending:
                    yield settle_first()
                result = convert_unit(setup, unit, medications, lazy=True)
                yield result  # consumed by the caller before the next unit is asked for
                medications.update(result.medications)
                continue
            # A copy: the pool pickles its arguments later, in another thread, while settling
            # goes on adding to the index; the unit's worker sees the index as it is now.
            pending.append((unit, pool.submit(_convert_in_worker, unit, dict(medications) if medications else None)))
            window.entered(unit)
            while window.full():
                yield settle_first()
        while pending:
            yield settle_first()


# Units converted or waiting in workers while the loader writes: enough for the workers to go on
# converting through a whole batch's write (5000 resources, about 16 Synthea bundles), bounded in
# input bytes so memory stays flat however large the input.
IN_FLIGHT_UNITS_PER_WORKER = 12
IN_FLIGHT_BYTES = 48_000_000


class InFlightWindow:
    """How many units may be handed out ahead of the one the writer waits for.

    Wide, so the workers convert while the loader writes (with two units in flight they sat idle
    through each batch's write). A unit converted against a Medication index that a unit still in
    flight completes is converted again in the loader (see _settle); after the first such unit
    the window narrows to two per worker for the rest of the run, so a Medication file followed by
    its requests (bulk NDJSON) costs at most one wide window of re-conversion.
    """

    def __init__(self, workers: int):
        self.narrow = 2 * workers
        self.limit = IN_FLIGHT_UNITS_PER_WORKER * workers
        self.units = 0
        self.bytes = 0

    def entered(self, unit: Unit) -> None:
        self.units += 1
        self.bytes += unit.size

    def left(self, unit: Unit) -> None:
        self.units -= 1
        self.bytes -= unit.size

    def shrink(self) -> None:
        self.limit = self.narrow

    def full(self) -> bool:
        return self.units >= self.limit or (self.units >= self.narrow and self.bytes >= IN_FLIGHT_BYTES)


def _streamed_here(setup: ConverterSetup, unit: Unit) -> bool:
    """A JSON file the reader streams (over the whole-file size; a gzipped one judged at an 8x
    expansion): converted in the loader's process even when workers run."""
    if unit.lines is not None or unit.problem is not None:
        return False
    expansion = 8 if unit.path.name.lower().endswith(".gz") else 1
    return unit.size * expansion > setup.limits.whole_file_bytes


def _settle(setup: ConverterSetup, unit: Unit, future: Future, medications: dict[str, dict]) -> UnitResult:
    result = future.result()
    result.unit = unit
    if any(medications.get(key) != answer for key, answer in result.outside_answers.items()):
        # The worker's view of earlier Medications was incomplete for a lookup it made: redo it here.
        result = convert_unit(setup, unit, medications)
        result.reconverted = True
    medications.update(result.medications)
    return result


_SETUP: ConverterSetup | None = None


def _start_worker(setup: ConverterSetup, parent_pid: int) -> None:
    global _SETUP
    _SETUP = setup
    _young_collections_only()
    # The loader's pid comes from the loader: if it died while this worker was starting, getppid()
    # here would already name the new parent.
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def _young_collections_only() -> None:
    """A worker holds one unit's resources and rows at a time (trees of dicts, no cycles), which
    survive the young collections until the unit is sent: the collector's rule then scans the
    whole heap again and again for nothing (about 15 % of a worker's time on Synthea bundles).
    The modules and the setup, loaded once, leave the collector's view; full collections stop;
    young ones, rarer, still free the few short-lived cycles."""
    gc.freeze()
    gc.set_threshold(10_000, 50, 1 << 30)


def _exit_with_parent(parent_pid: int) -> None:
    """A loader killed with SIGKILL cannot stop its workers, and they would wait for work forever:
    each worker leaves as soon as its parent is gone (it is re-parented then)."""
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(1)


def _convert_in_worker(unit: Unit, medications: dict[str, dict] | None) -> UnitResult:
    assert _SETUP is not None  # the pool's initializer (_start_worker) set it in this worker
    result = convert_unit(_SETUP, unit, medications or {})
    result.unit = dataclasses.replace(unit, lines=None)  # the main process still holds the lines
    result.entries = [_slim(entry) for entry in result.entries]
    return result


def _slim(entry: ConvertedItem | InputProblem) -> ConvertedItem | InputProblem:
    """Only what the writer reads travels back: the resource's meta (version), not the resource."""
    if isinstance(entry, InputProblem):
        return entry
    item = entry.item
    resource = item.resource
    slim_resource = None if resource is None else {"meta": _version_meta(resource["meta"])} if "meta" in resource else {}
    if item.resource_type in CONTEXT_TYPES or (entry.conversion is not None and entry.conversion.awaits is not None):
        slim_resource = outside_its_bundle(item)  # the writer keeps what it says for other records
    slim_item = SourceItem(slim_resource, item.resource_type, item.resource_id, item.file, item.position, item.method, None)
    return ConvertedItem(slim_item, entry.conversion, entry.content_hash)


def _version_meta(meta: object) -> object:
    """Of a resource's meta, what tells its versions apart (the writer's newer-or-older), not its
    tags and profiles: a tenth less to pickle and unpickle on Synthea bundles."""
    if not isinstance(meta, dict):
        return meta
    return {name: meta[name] for name in ("versionId", "lastUpdated") if name in meta}
