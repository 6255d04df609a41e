"""Read FHIR R4 JSON from files: Bundles of any type, single resources, NDJSON, .gz, directories.

The reader only turns bytes into resources; it never interprets clinical content. Every resource
comes out as a `SourceItem` that knows where it was found (file and position) so that a problem
can be reported precisely, and every unreadable piece comes out as an `InputProblem` instead of an
exception: one bad line never stops the rest of the file.
"""

from __future__ import annotations

import gzip
import os
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

JSON_SUFFIXES = (".json", ".json.gz")
NDJSON_SUFFIXES = (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")

# Bulk-export directories hold one file per resource type. Reading the types that others point at
# first lets their references resolve within one run (a Condition.ndjson read before Patient.ndjson
# would otherwise see every subject as dangling until the end-of-run check).
_TYPE_ORDER = {"Patient": 0, "Encounter": 1, "Medication": 2}

# Standard files of a FHIR package or a bulk export that hold no resources: skipped with a note,
# never quarantined (an untouched export passes --strict). File name -> what it is.
NON_FHIR_FILES = {
    "package.json": "FHIR package manifest",
    ".index.json": "FHIR package index",
    "log.ndjson": "bulk export log",
}


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

    @property
    def key(self) -> str:
        return f"{self.resource_type}/{self.resource_id}"


@dataclass(slots=True)
class InputProblem:
    file: str
    position: str
    reason: str  # machine-readable reason code
    message: str
    resource_type: str | None = None
    resource_id: str | None = None


Item = SourceItem | InputProblem


@dataclass(slots=True)
class Discovered:
    files: list[Path]  # to read, in reading order
    problems: list[InputProblem]  # input paths that do not exist
    skipped: list[tuple[Path, str]]  # (file, what it is): standard non-FHIR files of a package or export

    def __iter__(self):  # files, problems = discover(...)
        return iter((self.files, self.problems))


def discover(paths: Iterable[str | Path]) -> Discovered:
    """Expand files and directories into the ordered list of input files.

    Paths become absolute (symbolic links kept), so a file is the same file to the incremental
    state, the lineage and the quarantine however the user spelled it ('in/' or '/data/in/').
    """
    found = Discovered([], [], [])
    for raw in paths:
        path = Path(os.path.abspath(raw))
        if path.is_dir():
            candidates = sorted((p for p in path.rglob("*") if p.is_file() and _is_fhir_file(p)), key=_input_order)
        elif path.is_file():
            candidates = [path]
        else:
            found.problems.append(InputProblem(str(path), "-", "file_not_found", "no such file or directory"))
            continue
        for candidate in candidates:
            kind = NON_FHIR_FILES.get(candidate.name.lower())
            if kind is None:
                found.files.append(candidate)
            else:
                found.skipped.append((candidate, kind))
    return found


def missing_paths(paths: Iterable[str | Path]) -> list[str]:
    """Input paths that name nothing (a mistyped path is a usage error, not a quarantine entry)."""
    return [str(raw) for raw in paths if not os.path.exists(raw)]


def file_size(path: Path) -> int:
    """Bytes in an input file, 0 when it cannot be read (the reader reports why)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _is_fhir_file(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(JSON_SUFFIXES + NDJSON_SUFFIXES)


def _input_order(path: Path) -> tuple:
    type_name = path.name.split(".")[0]
    return (str(path.parent), _TYPE_ORDER.get(type_name, 9), path.name)


def is_ndjson(path: Path) -> bool:
    return path.name.lower().endswith(NDJSON_SUFFIXES)


def file_digest(path: Path, salt: str) -> tuple[str, int, int]:
    """(content hash salted with `salt`, size, modification time) of a file's bytes as stored."""
    modified = path.stat().st_mtime_ns
    hasher = hashlib.blake2b(salt.encode(), digest_size=16)
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            hasher.update(block)
            size += len(block)
    return hasher.hexdigest(), size, modified


def open_bytes(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def read_file(path: Path, display_name: str | None = None) -> Iterator[Item]:
    """Yield every resource (and every problem) in one file, in file order."""
    name = display_name or str(path)
    try:
        if is_ndjson(path):
            yield from _read_ndjson(path, name)
            return
        with open_bytes(path) as handle:
            payload = handle.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        yield InputProblem(name, "-", "unreadable_file", f"cannot read file: {exc.__class__.__name__}: {exc}")
        return
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        yield InputProblem(name, "-", "not_json", f"not valid JSON: {exc}")
        return
    yield from _items_from_document(document, name, "resource")


def _read_ndjson(path: Path, name: str) -> Iterator[Item]:
    """Stream line by line: memory stays bounded whatever the file size."""
    for chunk in ndjson_chunks(path, 1000):
        yield from items_from_ndjson_lines(chunk, name)


def ndjson_chunks(path: Path, lines_per_chunk: int) -> Iterator[list[tuple[int, bytes]]]:
    """The non-blank lines of an NDJSON file with their line numbers, a chunk at a time, unparsed
    (so parallel conversion can hand chunks to worker processes). A read error (a truncated .gz)
    propagates after the lines read before it."""
    chunk: list[tuple[int, bytes]] = []
    try:
        with open_bytes(path) as handle:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                chunk.append((line_number, line))
                if len(chunk) >= lines_per_chunk:
                    yield chunk
                    chunk = []
    except (OSError, EOFError):
        if chunk:
            yield chunk
        raise
    if chunk:
        yield chunk


def items_from_ndjson_lines(lines: Iterable[tuple[int, bytes]], name: str) -> Iterator[Item]:
    for line_number, line in lines:
        position = f"line {line_number}"
        try:
            document = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield InputProblem(name, position, "not_json", f"not valid JSON: {exc}")
            continue
        yield from _items_from_document(document, name, position)


def _items_from_document(document: object, name: str, position: str) -> Iterator[Item]:
    if not isinstance(document, dict):
        yield InputProblem(name, position, "not_fhir", "JSON value is not an object")
        return
    resource_type = document.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        yield InputProblem(name, position, "not_fhir", "object has no resourceType")
        return
    if resource_type == "Bundle":
        yield from _bundle_items(document, name, position)
        return
    yield _make_item(document, name, position, None, None, None)


def _bundle_items(bundle: dict, name: str, position: str) -> Iterator[Item]:
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        yield InputProblem(name, position, "invalid_bundle", "Bundle.entry is not a list")
        return
    prefix = "" if position == "resource" else f"{position}."
    index = BundleIndex()
    # First pass: learn every entry's identity so references between entries resolve in any order.
    diagnostic_reports: list[dict] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        resource = entry.get("resource")
        if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
            rid = _resource_id(resource, entry.get("fullUrl"))
            if rid is None:
                continue
            key = f"{resource['resourceType']}/{rid}"
            full_url = entry.get("fullUrl")
            if isinstance(full_url, str) and full_url:
                index.full_urls[full_url] = key
            if resource["resourceType"] == "Medication":
                index.medications[key] = resource
            elif resource["resourceType"] == "DiagnosticReport":
                diagnostic_reports.append(resource)
            elif resource["resourceType"] == "Encounter" and isinstance(resource.get("period"), dict):
                index.encounter_periods[key] = resource["period"]
    for report in diagnostic_reports:
        for result in report.get("result") if isinstance(report.get("result"), list) else ():
            target = reference_key(result, index)
            if target is not None:
                index.reports.setdefault(target, report)
    _index_staging_links(entries, index)
    for number, entry in enumerate(entries):
        entry_position = f"{prefix}entry[{number}]"
        if not isinstance(entry, dict):
            yield InputProblem(name, entry_position, "invalid_bundle", "Bundle entry is not an object")
            continue
        request = entry.get("request") if isinstance(entry.get("request"), dict) else {}
        method = request.get("method") if isinstance(request.get("method"), str) else None
        resource = entry.get("resource")
        if method == "DELETE":
            url = request.get("url")
            target = _key_from_url(url)
            if target is None and isinstance(url, str) and "?" in url:
                yield InputProblem(name, entry_position, "unsupported_conditional_delete",
                                   "conditional DELETE (Type?search) is not supported: the file does not say which resource it deletes")
            elif target is None:
                yield InputProblem(name, entry_position, "invalid_delete", "DELETE entry without a Type/id request.url")
            else:
                rtype, rid = target.split("/", 1)
                yield SourceItem(None, rtype, rid, name, entry_position, "DELETE", index)
            continue
        if resource is None:
            continue  # a transaction-response or search entry without a resource carries nothing to load
        if isinstance(resource, dict) and resource.get("resourceType") == "Bundle":
            yield from _bundle_items(resource, name, f"{entry_position}.resource")
            continue
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            yield InputProblem(name, entry_position, "not_fhir", "entry.resource has no resourceType")
            continue
        yield _make_item(resource, name, entry_position, entry.get("fullUrl"), method, index)


def _make_item(resource: dict, name: str, position: str, full_url, method, index) -> Item:
    rid = _resource_id(resource, full_url)
    if rid is None:
        # No id and no fullUrl: derive one from where it stands so a re-run finds the same rows.
        rid = "anon-" + hashlib.sha256(f"{name}|{position}".encode()).hexdigest()[:16]
    return SourceItem(resource, resource["resourceType"], rid, name, position, method, index)


def _resource_id(resource: dict, full_url) -> str | None:
    rid = resource.get("id")
    if isinstance(rid, str) and rid:
        return rid
    if isinstance(full_url, str) and full_url:
        tail = full_url.rstrip("/").rsplit("/", 1)[-1]
        return tail.rsplit(":", 1)[-1] or None  # urn:uuid:abc -> abc
    return None


def _key_from_url(url) -> str | None:
    if not isinstance(url, str):
        return None
    path = url.split("?", 1)[0].rstrip("/")
    parts = [p for p in path.split("/") if p]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return f"{parts[-2]}/{parts[-1]}"
    return None


def _index_staging_links(entries: list, index: BundleIndex) -> None:
    """Links a staging Observation cannot see in itself (mCODE: Condition.stage.assessment, and a
    stage group's hasMember T/N/M when the group has a focus Condition)."""
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") not in ("Condition", "Observation"):
            continue
        rid = _resource_id(resource, entry.get("fullUrl"))
        if rid is None:
            continue
        if resource["resourceType"] == "Condition":
            condition, members = f"Condition/{rid}", [
                ref for stage in resource.get("stage") or () if isinstance(stage, dict)
                for ref in stage.get("assessment") or ()]
        else:
            condition = next((k for ref in resource.get("focus") or ()
                              if (k := reference_key(ref, index)) and k.startswith("Condition/")), None)
            members = resource.get("hasMember") or ()
        for ref in members if condition else ():
            member = reference_key(ref, index)
            if member and member.startswith("Observation/"):
                index.staging_links.setdefault(member, condition)


def reference_key(reference: object, bundle: BundleIndex | None) -> str | None:
    """A FHIR Reference (dict or string) -> 'Type/id', or None when it cannot be resolved.

    Handles urn:uuid: fullUrls of the same Bundle, relative 'Patient/123', absolute
    'https://server/fhir/Patient/123/_history/2'. Contained references ('#med1') are resolved by
    the converter that owns the containing resource.
    """
    ref = reference.get("reference") if isinstance(reference, dict) else reference
    if not isinstance(ref, str) or not ref:
        return None
    if bundle is not None:
        key = bundle.full_urls.get(ref)
        if key is not None:
            return key
    if ref.startswith("urn:"):
        return None
    return _key_from_url(ref)
