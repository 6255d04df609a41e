"""Read FHIR R4 JSON from files: Bundles of any type, single resources, NDJSON, .gz, directories.

The reader only turns bytes into resources; it never interprets clinical content. Every resource
comes out as a `SourceItem` that knows where it was found (file and position) so that a problem
can be reported precisely, and every unreadable piece comes out as an `InputProblem` instead of an
exception: one bad line never stops the rest of the file.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from ctcl_map.model import BundleIndex, InputProblem, SourceItem
from ctcl_map.readers.json_stream import (
    UTF8_BOM,
    BundleScanner,
    InputLimitExceeded,
    JsonShapeError,
    LimitedReader,
    encoding_problem,
    lines,
    parse_json,
)

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
    Symbolic links to folders are followed; a folder reached a second time (a link loop, or a
    second link to it) is read once and reported, a link to nothing is reported.
    """
    found = Discovered([], [], [])
    for raw in paths:
        path = Path(os.path.abspath(raw))
        if path.is_dir():
            candidates = sorted(_files_under(path, found.problems), key=_input_order)
        elif path.is_file():
            candidates = [path]
        elif path.is_symlink():
            found.problems.append(InputProblem(str(path), "-", "broken_link", "symbolic link to something that does not exist"))
            continue
        else:
            found.problems.append(InputProblem(display_name(path), "-", "file_not_found", "no such file or directory"))
            continue
        for candidate in candidates:
            kind = NON_FHIR_FILES.get(candidate.name.lower())
            if kind is None:
                found.files.append(candidate)
            else:
                found.skipped.append((candidate, kind))
    return found


def _files_under(root: Path, problems: list[InputProblem]) -> list[Path]:
    """The FHIR files in a folder tree, following symbolic links to folders (Path.rglob does not)."""
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        try:
            status = os.stat(folder)
        except OSError:
            continue
        if (status.st_dev, status.st_ino) in seen:
            problems.append(InputProblem(folder, "-", "folder_read_twice",
                                         f"a symbolic link leads to {os.path.realpath(folder)}, a folder already read: not read again"))
            subfolders[:] = []
            continue
        seen.add((status.st_dev, status.st_ino))
        subfolders.sort()
        for name in names:
            path = Path(folder) / name
            if not _is_fhir_file(path):
                continue
            if path.is_file():
                found.append(path)
            elif path.is_symlink():
                problems.append(InputProblem(str(path), "-", "broken_link", "symbolic link to something that does not exist"))
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


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """What one input may cost (RunOptions / --max-resource-mb / --max-decompressed-mb).

    A JSON file up to `whole_file_bytes` is parsed in one piece (fastest); a larger one is read a
    Bundle entry at a time, so memory follows the largest resource, never the file.
    """

    max_resource_bytes: int = 64 << 20  # one resource (a Bundle entry, an NDJSON line, a single-resource file)
    max_decompressed_bytes: int | None = 4 << 30  # what one .gz file may expand to; None: no limit
    whole_file_bytes: int = 16 << 20


DEFAULT_LIMITS = ReadLimits()


def display_name(path: Path | str) -> str:
    """The file name as stored in the CDM's bookkeeping and shown in messages: a name that is not
    UTF-8 keeps its odd bytes as \\xNN escapes (a database text column cannot hold them raw), and a
    name longer than the column keeps its head, a digest and its tail."""
    name = str(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        name = os.fsencode(path).decode("utf-8", "backslashreplace")
    return fit(name, 1000)


def fit(text: str, limit: int) -> str:
    """`text` within `limit` characters; a longer one stays distinct (head, digest, tail)."""
    if len(text) <= limit:
        return text
    digest = hashlib.blake2b(text.encode("utf-8", "backslashreplace"), digest_size=6).hexdigest()
    keep = (limit - len(digest) - 2) // 2
    return f"{text[:keep]}~{digest}~{text[len(text) - keep:]}"


def open_bytes(path: Path, limits: ReadLimits = DEFAULT_LIMITS):
    """The file's bytes; a .gz decompressed, and refused past the decompressed-size limit."""
    if path.name.lower().endswith(".gz"):
        return LimitedReader(gzip.open(path, "rb"), limits.max_decompressed_bytes)
    return open(path, "rb")


READ_ERRORS = (OSError, EOFError, gzip.BadGzipFile, zlib.error)


def read_problem(name: str, error: Exception) -> InputProblem:
    if isinstance(error, InputLimitExceeded):
        return InputProblem(name, "-", error.reason, str(error))
    return InputProblem(name, "-", "unreadable_file", f"cannot read file: {error.__class__.__name__}: {error}")


def read_file(path: Path, display: str | None = None, limits: ReadLimits = DEFAULT_LIMITS) -> Iterator[Item]:
    """Yield every resource (and every problem) in one file, in file order."""
    name = display or display_name(path)
    if is_ndjson(path):
        yield from _read_ndjson(path, name, limits)
        return
    try:
        with open_bytes(path, limits) as handle:
            # Parsed at once only if that cannot hold more than the resource limit allows.
            whole_limit = min(limits.whole_file_bytes, limits.max_resource_bytes)
            head = handle.read(whole_limit + 1)
            whole = len(head) <= whole_limit
            problem = encoding_problem(head[:4])
            if problem is not None:
                yield InputProblem(name, "-", "not_utf8", problem)
                return
            head = head.removeprefix(UTF8_BOM)
            if whole:
                yield from _whole_document(head, name, limits)
                return
    except READ_ERRORS as exc:
        yield read_problem(name, exc)
        return
    yield from _streamed_bundle(path, name, limits)


def _whole_document(payload: bytes, name: str, limits: ReadLimits) -> Iterator[Item]:
    """A file small enough to parse at once; if it is not JSON as a whole, entry by entry."""
    try:
        document, repaired = parse_json(payload)
    except orjson.JSONDecodeError as exc:
        if payload.lstrip().startswith(b"{"):
            yield from _scanned_bundle(lambda: io.BytesIO(payload), name, limits, first_error=exc)
        else:
            yield InputProblem(name, "-", "not_json", f"not valid JSON: {exc}")
        return
    if repaired and isinstance(document, dict) and document.get("resourceType") == "Bundle":
        # Text was replaced somewhere: entry by entry, so only the entries that held it say so.
        del document
        yield from _scanned_bundle(lambda: io.BytesIO(payload), name, limits)
        return
    yield from _items_from_document(document, name, "resource", repaired)


def _streamed_bundle(path: Path, name: str, limits: ReadLimits) -> Iterator[Item]:
    def reopen():
        handle = open_bytes(path, limits)
        head = handle.read(4).removeprefix(UTF8_BOM)
        return _Prefixed(head, handle)

    yield from _scanned_bundle(reopen, name, limits)


class _Prefixed:
    """A stream with some of its bytes already read (the BOM check) put back in front."""

    def __init__(self, head: bytes, handle):
        self.head, self.handle = head, handle

    def read(self, size: int) -> bytes:
        if self.head:
            data, self.head = self.head, b""
            return data
        return self.handle.read(size)

    def close(self) -> None:
        self.handle.close()


def _scanned_bundle(open_stream, name: str, limits: ReadLimits, first_error: Exception | None = None) -> Iterator[Item]:
    """A Bundle read an entry at a time, twice: first every entry's identity (references between
    entries resolve in any order), then the entries themselves. Only the entry being read is held."""
    index = BundleIndex()
    resource_type = None
    entries = 0  # read before the first pass stopped
    failure: Exception | None = None  # why it stopped early
    entry_not_list = False
    diagnostic_reports: list[dict] = []
    staging: list[dict] = []
    stream = open_stream()
    try:
        for piece in BundleScanner(stream.read, limits.max_resource_bytes).pieces():
            entries += piece.key is None
            if piece.raw is None:
                continue
            try:
                value, _ = parse_json(piece.raw)
            except orjson.JSONDecodeError:
                continue
            if piece.key == "resourceType":
                resource_type = value
            elif piece.key == "entry":
                entry_not_list = True
            elif piece.key is None and isinstance(value, dict):
                _index_entry(index, value, diagnostic_reports, staging)
    except (JsonShapeError, *READ_ERRORS) as exc:
        failure = exc
    finally:
        stream.close()
    _finish_index(index, diagnostic_reports, staging)
    if resource_type != "Bundle" and (failure is None or first_error is not None):
        if first_error is not None:
            yield InputProblem(name, "-", "not_json", f"not valid JSON: {first_error}")
        elif resource_type is None:
            yield InputProblem(name, "-", "not_fhir", "object has no resourceType")
        else:
            yield from _single_resource(open_stream, name, limits)
        return
    if entry_not_list:
        yield InputProblem(name, "resource", "invalid_bundle", "Bundle.entry is not a list")
    if entries:
        yield from _scanned_entries(open_stream, name, limits, index, entries if failure is not None else None)
    if failure is not None:
        yield InputProblem(name, "-", "not_json", f"not valid JSON: {failure}") if isinstance(failure, JsonShapeError) \
            else read_problem(name, failure)


def _scanned_entries(open_stream, name: str, limits: ReadLimits, index: BundleIndex, stop_after: int | None) -> Iterator[Item]:
    """The second pass: the entries as items, up to `stop_after` (where the first pass stopped)."""
    stream = open_stream()
    try:
        for piece in BundleScanner(stream.read, limits.max_resource_bytes).pieces():
            if piece.key is not None:
                continue
            position = f"entry[{piece.index}]"
            if piece.raw is None:
                yield InputProblem(name, position, "resource_too_large",
                                   f"the entry is {piece.size:,} bytes, over the limit of {limits.max_resource_bytes:,} "
                                   "(--max-resource-mb)")
            else:
                try:
                    entry, repaired = parse_json(piece.raw)
                except orjson.JSONDecodeError as exc:
                    yield InputProblem(name, position, "not_json", f"not valid JSON: {exc}")
                else:
                    yield from _entry_items(entry, name, position, index, repaired)
            if stop_after is not None and piece.index + 1 >= stop_after:
                return
    finally:
        stream.close()


def _single_resource(open_stream, name: str, limits: ReadLimits) -> Iterator[Item]:
    """A file over the whole-file size that holds one resource, not a Bundle: parsed whole when
    within the resource limit."""
    stream = open_stream()
    try:
        parts, size = [], 0
        while size <= limits.max_resource_bytes and (block := stream.read(1 << 20)):
            parts.append(block)
            size += len(block)
    except READ_ERRORS as exc:
        yield read_problem(name, exc)
        return
    finally:
        stream.close()
    if size > limits.max_resource_bytes:
        yield InputProblem(name, "-", "resource_too_large", f"the file holds one resource of more than "
                           f"{limits.max_resource_bytes:,} bytes, the limit (--max-resource-mb)")
        return
    yield from _whole_document(b"".join(parts), name, limits)


def _read_ndjson(path: Path, name: str, limits: ReadLimits) -> Iterator[Item]:
    """Stream line by line: memory stays bounded whatever the file size."""
    try:
        for chunk in ndjson_chunks(path, 1000, limits):
            yield from items_from_ndjson_lines(chunk, name, limits)
    except READ_ERRORS as exc:
        yield read_problem(name, exc)


def ndjson_chunks(path: Path, lines_per_chunk: int, limits: ReadLimits = DEFAULT_LIMITS,
                  bytes_per_chunk: int = 32 << 20) -> Iterator[list[tuple[int, bytes | int]]]:
    """The non-blank lines of an NDJSON file with their line numbers, a chunk at a time, unparsed
    (so parallel conversion can hand chunks to worker processes); a line over the resource limit
    comes as its size instead of its bytes. A read error (a truncated .gz, the decompressed-size
    limit, a UTF-16 file) propagates after the lines read before it."""
    chunk: list[tuple[int, bytes | int]] = []
    size = 0
    try:
        with open_bytes(path, limits) as handle:
            for line_number, line in lines(_checked_start(handle), limits.max_resource_bytes):
                chunk.append((line_number, line))
                size += len(line) if isinstance(line, bytes) else 0
                if len(chunk) >= lines_per_chunk or size >= bytes_per_chunk:
                    yield chunk
                    chunk, size = [], 0
    except READ_ERRORS:
        if chunk:
            yield chunk
        raise
    if chunk:
        yield chunk


def _checked_start(handle):
    """handle.read, refusing a file whose first bytes show UTF-16/32."""
    first = True

    def read(size: int) -> bytes:
        nonlocal first
        data = handle.read(size)
        if first:
            first = False
            problem = encoding_problem(data[:4])
            if problem is not None:
                raise InputLimitExceeded("not_utf8", problem)
        return data

    return read


def items_from_ndjson_lines(lines_: Iterable[tuple[int, bytes | int]], name: str,
                            limits: ReadLimits = DEFAULT_LIMITS) -> Iterator[Item]:
    for line_number, line in lines_:
        position = f"line {line_number}"
        if isinstance(line, int):
            yield InputProblem(name, position, "resource_too_large",
                               f"the line is {line:,} bytes, over the limit of {limits.max_resource_bytes:,} (--max-resource-mb)")
            continue
        try:
            document, repaired = parse_json(line)
        except orjson.JSONDecodeError as exc:
            yield InputProblem(name, position, "not_json", f"not valid JSON: {exc}")
            continue
        yield from _items_from_document(document, name, position, repaired)


def _items_from_document(document: object, name: str, position: str, repaired: bool = False) -> Iterator[Item]:
    if not isinstance(document, dict):
        yield InputProblem(name, position, "not_fhir", "JSON value is not an object")
        return
    resource_type = document.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        yield InputProblem(name, position, "not_fhir", "object has no resourceType")
        return
    if resource_type == "Bundle":
        yield from _bundle_items(document, name, position, repaired)
        return
    yield _make_item(document, name, position, None, None, None, repaired)


def _bundle_items(bundle: dict, name: str, position: str, repaired: bool = False) -> Iterator[Item]:
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        yield InputProblem(name, position, "invalid_bundle", "Bundle.entry is not a list")
        return
    prefix = "" if position == "resource" else f"{position}."
    index = BundleIndex()
    # First pass: learn every entry's identity so references between entries resolve in any order.
    diagnostic_reports: list[dict] = []
    staging: list[dict] = []
    for entry in entries:
        if isinstance(entry, dict):
            _index_entry(index, entry, diagnostic_reports, staging)
    _finish_index(index, diagnostic_reports, staging)
    for number, entry in enumerate(entries):
        yield from _entry_items(entry, name, fit(f"{prefix}entry[{number}]", 200), index, repaired)


def _index_entry(index: BundleIndex, entry: dict, diagnostic_reports: list[dict], staging: list[dict]) -> None:
    resource = entry.get("resource")
    if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str) and len(resource["resourceType"]) <= MAX_TYPE_LENGTH:
        rid = _resource_id(resource, entry.get("fullUrl"))
        if rid is None or len(rid) > MAX_ID_LENGTH:
            return
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
        if resource["resourceType"] in ("Condition", "Observation"):
            # Only what _index_staging_links reads: a streamed Bundle keeps these, not the resources.
            staging.append({"fullUrl": full_url, "resource": {name: resource.get(name) for name in STAGING_LINK_FIELDS}})


STAGING_LINK_FIELDS = ("resourceType", "id", "stage", "focus", "hasMember")


def _finish_index(index: BundleIndex, diagnostic_reports: list[dict], staging: list[dict]) -> None:
    """The links that need every fullUrl of the Bundle known: results to their reports, staging
    Observations to their Conditions."""
    _index_reports(index, diagnostic_reports)
    _index_staging_links(staging, index)


def _index_reports(index: BundleIndex, diagnostic_reports: list[dict]) -> None:
    """Each DiagnosticReport under the key of each result it lists (once every fullUrl is known)."""
    for report in diagnostic_reports:
        for result in _list(report.get("result")):
            target = reference_key(result, index)
            if target is not None:
                index.reports.setdefault(target, report)


def _entry_items(entry: object, name: str, entry_position: str, index: BundleIndex, repaired: bool) -> Iterator[Item]:
    if not isinstance(entry, dict):
        yield InputProblem(name, entry_position, "invalid_bundle", "Bundle entry is not an object")
        return
    request = entry.get("request")
    if not isinstance(request, dict):
        request = {}
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
        return
    if resource is None:
        return  # a transaction-response or search entry without a resource carries nothing to load
    if isinstance(resource, dict) and resource.get("resourceType") == "Bundle":
        yield from _bundle_items(resource, name, f"{entry_position}.resource", repaired)
        return
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        yield InputProblem(name, entry_position, "not_fhir", "entry.resource has no resourceType")
        return
    yield _make_item(resource, name, entry_position, entry.get("fullUrl"), method, index, repaired)


MAX_ID_LENGTH = 64  # FHIR: "Ids can be up to 64 characters long"
MAX_TYPE_LENGTH = 60  # ctcl_quarantine.resource_type; the longest FHIR R4 type name has 33
_TYPE_NAME = re.compile(r"[A-Z][A-Za-z]{0,59}")  # within ctcl_quarantine.resource_type (60)


def _type_name(value: object) -> bool:
    return isinstance(value, str) and _TYPE_NAME.fullmatch(value) is not None


def _make_item(resource: dict, name: str, position: str, full_url, method, index, repaired: bool = False) -> Item:
    resource_type = resource["resourceType"]
    if len(resource_type) > MAX_TYPE_LENGTH:  # any shorter unknown name is quarantined by type, with its state
        return InputProblem(name, position, "not_fhir", f"resourceType {resource_type[:60]!r}... is longer than any FHIR type name")
    rid = _resource_id(resource, full_url)
    if rid is None:
        # No id and no fullUrl: derive one from where it stands so a re-run finds the same rows.
        rid = "anon-" + hashlib.sha256(f"{name}|{position}".encode()).hexdigest()[:16]
    elif len(rid) > MAX_ID_LENGTH:
        return InputProblem(name, position, "invalid_id", f"the id is {len(rid)} characters long; FHIR ids have at most {MAX_ID_LENGTH}",
                            resource_type, rid[:MAX_ID_LENGTH] + "...")
    return SourceItem(resource, resource_type, rid, name, position, method, index, repaired)


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
    if len(parts) >= 2 and _type_name(parts[-2]) and len(parts[-1]) <= MAX_ID_LENGTH:
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
        condition: str | None  # None: a stage group without a focus Condition
        if resource["resourceType"] == "Condition":
            condition, members = f"Condition/{rid}", [
                ref for stage in _list(resource.get("stage")) if isinstance(stage, dict)
                for ref in _list(stage.get("assessment"))]
        else:
            condition = next((k for ref in _list(resource.get("focus"))
                              if (k := reference_key(ref, index)) and k.startswith("Condition/")), None)
            members = _list(resource.get("hasMember"))
        if not condition:
            continue
        for ref in members:
            member = reference_key(ref, index)
            if member and member.startswith("Observation/"):
                index.staging_links.setdefault(member, condition)


def _list(value: object) -> list:
    """A FHIR array, or empty for anything else (converters.base.as_list; not imported: a cycle)."""
    return value if isinstance(value, list) else []


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
