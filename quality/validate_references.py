"""References: every Reference in every resource resolves within the input, or is reported as external.

Keys of all resources of the run are collected first (any file may hold the target, as in a bulk
export), references are checked at the end. Outcomes:

| outcome | meaning | finding |
|---|---|---|
| resolved | the target is a resource of the input (same Bundle fullUrl, Type/id, absolute URL whose Type/id is in the input) | none |
| contained | '#id' found among the resource's contained resources ('#' = the resource itself) | none |
| external | absolute URL to another server, not in the input | none (counted) |
| conditional | 'Patient?identifier=...' search-style reference, resolved only by a server | none (counted) |
| broken_contained | '#id' with no such contained resource | error |
| broken_urn | 'urn:uuid:' / 'urn:oid:' that is no fullUrl of the Bundle (only meaningful within it) | error |
| missing_patient | subject/patient of a resource converted to OMOP points at a Patient not in the input: its rows would be removed as dangling | error |
| unresolved | relative Type/id not in the input (may exist on the sender's server) | warning |

Messages show the target as Type/id only: never the server, and never the query of a conditional
reference (it usually carries an MRN).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ctcl_map.converters.base import as_list
from ctcl_map.model import SourceItem
from ctcl_map.quality.validate_report import Finding
from ctcl_map.readers.fhir_input import reference_key
from ctcl_map.readers.fhir_structure import resource_path

SUBJECT_FIELDS = ("subject", "patient")


@dataclass(slots=True)
class _Pending:
    file: str
    path: str
    resource: str
    target: str  # Type/id
    subject: bool  # a converted resource's subject/patient
    external: bool  # written as an absolute URL that is no fullUrl of the Bundle


@dataclass
class ReferenceChecker:
    mapped_types: frozenset[str]  # resource types converted to OMOP (their subject matters)
    keys: set[str] = field(default_factory=set)
    pending: list[_Pending] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)

    def add(self, item: SourceItem) -> None:
        """Record the item's key and check what can be checked now (contained, urn); queue the rest."""
        self.keys.add(item.key)
        resource = item.resource
        if not isinstance(resource, dict):
            return
        contained_ids = {c.get("id") for c in as_list(resource.get("contained")) if isinstance(c, dict)}
        for location, reference in _references(resource, ()):
            self._check(item, location, reference, contained_ids)

    def _check(self, item: SourceItem, location: tuple, reference: str, contained_ids: set) -> None:
        path = resource_path(item.position, location)
        if reference.startswith("#"):
            if reference == "#" or reference[1:] in contained_ids:
                self.outcomes["contained"] += 1
            else:
                self.outcomes["broken_contained"] += 1
                self._finding("error", "reference.broken_contained", item, path,
                              f"contained reference {reference[:40]!r} matches no contained resource")
            return
        key = reference_key(reference, item.bundle)
        if reference.startswith("urn:"):
            if key is None:
                self.outcomes["broken_urn"] += 1
                self._finding("error", "reference.broken_urn", item, path,
                              "urn reference is not the fullUrl of any entry of its Bundle")
            else:
                self._queue(item, path, location, key)
            return
        if "?" in reference:
            self.outcomes["conditional"] += 1
            return
        if key is None:
            self.outcomes["unresolved"] += 1
            self._finding("warning", "reference.unresolved", item, path, "reference is neither Type/id nor a URL ending in Type/id")
            return
        if "://" in reference and (item.bundle is None or reference not in item.bundle.full_urls):
            self._queue(item, path, location, key, external=True)
            return
        self._queue(item, path, location, key)

    def _queue(self, item: SourceItem, path: str, location: tuple, key: str, external: bool = False) -> None:
        subject = (len(location) == 1 and location[0] in SUBJECT_FIELDS and item.resource_type in self.mapped_types
                   and key.startswith("Patient/"))
        self.pending.append(_Pending(item.file, path, item.key, key, subject, external))

    def finish(self) -> list[Finding]:
        """Check the queued references against every key of the run; return all findings."""
        for ref in self.pending:
            target = ref.target
            if target in self.keys:
                self.outcomes["resolved"] += 1
            elif ref.subject:
                self.outcomes["missing_patient"] += 1
                self.findings.append(Finding("error", "reference.missing_patient", ref.file, ref.path,
                                             f"{target} is not in the input: the records of this resource would be "
                                             "removed as dangling unless that Patient is already loaded", ref.resource))
            elif ref.external:
                self.outcomes["external"] += 1
            else:
                self.outcomes["unresolved"] += 1
                self.findings.append(Finding("warning", "reference.unresolved", ref.file, ref.path,
                                             f"{target} is not in the input", ref.resource))
        self.pending.clear()
        return self.findings

    def _finding(self, severity: str, rule: str, item: SourceItem, path: str, message: str) -> None:
        self.findings.append(Finding(severity, rule, item.file, path, message, item.key))


def _references(value: object, location: tuple):
    """(location, reference string) of every Reference-shaped object (a dict with a string `reference`)."""
    if isinstance(value, dict):
        reference = value.get("reference")
        if isinstance(reference, str) and reference:
            yield location, reference
        for name, child in value.items():
            if name in ("reference", "contained") or not isinstance(child, (dict, list)):
                continue
            yield from _references(child, location + (name,))
        for number, contained in enumerate(as_list(value.get("contained"))):
            if isinstance(contained, dict):
                yield from _references(contained, location + ("contained", number))
    elif isinstance(value, list):
        for number, child in enumerate(value):
            if isinstance(child, (dict, list)):
                yield from _references(child, location + (number,))
