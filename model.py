"""The records that travel between the stages: read -> convert -> load.

The reader yields a SourceItem for each resource (an InputProblem for what it cannot read); a
converter turns a SourceItem into a Conversion of OmopRows; the converting processes hand the
writer ConvertedItems, each with the content hash that tells a changed resource from an unchanged
one; the writer sums what a batch did in a BatchOutcome. Nothing here reads a file or a database.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(slots=True)
class BundleIndex:
    """What one Bundle knows about its own entries: fullUrl -> 'Type/id', and Medications by key."""

    full_urls: dict[str, str] = field(default_factory=dict)
    medications: dict[str, dict] = field(default_factory=dict)
    # Context FHIR puts in other entries: result key -> the DiagnosticReport listing it in `result`
    # (its date and subject fill a result's missing ones), Encounter key -> its period.
    reports: dict[str, dict] = field(default_factory=dict)
    encounter_periods: dict[str, dict] = field(default_factory=dict)
    # Observation key -> the Condition it stages, where another entry names the link:
    # Condition.stage.assessment, or the hasMember of a stage-group Observation about a Condition
    staging_links: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class SourceItem:
    resource: dict | None  # None for a transaction DELETE entry
    resource_type: str
    resource_id: str
    file: str
    position: str  # "entry[3]", "line 17", "resource"
    method: str | None = None  # request.method of a transaction/batch entry (POST, PUT, DELETE ...)
    bundle: BundleIndex | None = None
    repaired: bool = False  # invalid UTF-8, a lone surrogate or a NUL in its text was replaced (U+FFFD)
    # 'Type/id', made once: the writer asks for it about nine times per resource.
    _key: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def key(self) -> str:
        key = self._key
        if key is None:
            key = self._key = f"{self.resource_type}/{self.resource_id}"
        return key


@dataclass(slots=True)
class InputProblem:
    file: str
    position: str
    reason: str  # machine-readable reason code
    message: str
    resource_type: str | None = None
    resource_id: str | None = None


@dataclass(slots=True)
class OmopRow:
    table: str
    key: str  # stable identity of this row: owner resource key, plus '#suffix' when one resource makes several
    values: dict[str, Any]


@dataclass(slots=True)
class Unmapped:
    """A code that ended as concept_id 0, and why (f2o-063: never silently)."""

    table: str
    column: str
    vocabulary: str  # OMOP vocabulary_id, or the raw system URI when the system is unknown
    code: str
    reason: str


@dataclass(slots=True)
class Conversion:
    rows: list[OmopRow] = field(default_factory=list)
    excluded: str | None = None  # reason code when the resource is deliberately not loaded (f2o-060/062)
    quarantined: tuple[str, str] | None = None  # (reason code, message) when the resource is invalid
    unmapped: list[Unmapped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # counted in the run report, e.g. 'date_imputed'
    # The key of a resource this one needs but that was not read yet ('Medication/x'; for a result
    # without date or subject 'DiagnosticReport?result=Observation/y'): the writer records the wait
    # (ctcl_reference_wait) and the end of a run that knows the awaited resource completes it.
    awaits: str | None = None


@dataclass
class ConvertedItem:
    item: SourceItem
    conversion: Conversion | None  # None: resource type not mapped to OMOP, or not converted
    content_hash: str
    # False: not converted, being what its file last applied (see CdmWriter.applied_hashes); if the
    # writer must write it all the same, the batch raises NotConverted before writing anything.
    converted: bool = True


class NotConverted(Exception):
    """A batch holds entries left unconverted that it must write (their resource changed since it
    was read): nothing was written; convert them and write the batch again. A signal between the
    load stage and the orchestrator, not a user-facing error."""

    def __init__(self, entries: list[ConvertedItem]):
        super().__init__(f"{len(entries)} entries to convert")
        self.entries = entries


@dataclass
class BatchOutcome:
    rows_by_table: Counter = field(default_factory=Counter)
    rows_by_source: Counter = field(default_factory=Counter)  # (resource type, table) -> rows
    resources_loaded: Counter = field(default_factory=Counter)  # by resource type
    skipped_unchanged: int = 0
    superseded: int = 0
    duplicates: int = 0  # further occurrences of a resource already read in this run (same file or another)
    deleted: int = 0
    excluded: Counter = field(default_factory=Counter)  # reason -> count
    quarantined: Counter = field(default_factory=Counter)  # reason -> count
    not_mapped_types: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    unmapped: Counter = field(default_factory=Counter)  # (table, column, vocabulary, code, reason) -> rows
    truncated_values: int = 0
    person_ids: set[int] = field(default_factory=set)  # persons whose rows changed: re-derive their eras
    persons_by_table: defaultdict = field(default_factory=lambda: defaultdict(set))  # table -> persons whose rows there changed


DELETED = "deleted"  # the content hash of a DELETE entry


def content_hash(resource: dict | None) -> str:
    """Raises one of UNSERIALISABLE for a resource nested deeper than orjson writes (255 levels)."""
    if resource is None:
        return DELETED
    return hashlib.blake2b(orjson.dumps(resource, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


UNSERIALISABLE = (TypeError, orjson.JSONEncodeError)


def unserialisable(error: Exception) -> tuple[str, str]:
    """The quarantine verdict for a resource content_hash refused."""
    return "too_deeply_nested", f"the resource cannot be serialised (nested over 255 levels?): {error}"
