"""The CTCL mapping tables (mappings/*.csv): load, validate against their JSON Schemas, merge site overrides.

The tables are data; this module only reads them. Every row is validated with its table's JSON
Schema after CSV parsing (once per file content: see _validated_digests), and a malformed file stops the run with a MappingError naming the file,
line and column, rather than mapping anything wrongly. Precedence for one
(source_vocabulary_id, source_code): the last override folder given > earlier override folders >
the shipped table; each replacement is recorded in MappingSet.conflicts.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path

from ctcl_map.errors import MappingError
from ctcl_map.store.cache import cache_folder

MAPPING_KINDS = ("therapies", "diagnoses", "staging", "procedures", "labs", "answers")
COMMON_COLUMNS = (
    "source_vocabulary_id", "source_code", "source_code_description", "target_concept_id", "target_domain_id", "reference",
)
# Free-text vocabularies: matched case-insensitively (hospitals write 'POTELIGEO' or 'Poteligeo').
CASE_INSENSITIVE_VOCABULARIES = frozenset({"BRAND", "TEXT"})  # TEXT: a CodeableConcept with text only
STCM_VALID_START, STCM_VALID_END = date(1970, 1, 1), date(2099, 12, 31)


@dataclass(frozen=True)
class MappingEntry:
    kind: str
    source_vocabulary_id: str
    source_code: str
    source_code_description: str
    target_concept_id: int
    target_domain_id: str
    attributes: Mapping[str, str]
    origin: str  # 'shipped:therapies.csv' or the override file path


def lookup_key(vocabulary_id: str, code: str) -> tuple[str, str]:
    """How a (vocabulary, code) pair is compared: trimmed, verbatim except for free-text vocabularies."""
    vocabulary_id, code = vocabulary_id.strip(), code.strip()
    return (vocabulary_id, code.casefold() if vocabulary_id in CASE_INSENSITIVE_VOCABULARIES else code)


@dataclass
class MappingSet:
    entries: list[MappingEntry]
    conflicts: list[str] = field(default_factory=list)
    _index: dict[tuple[str, str], MappingEntry] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = {lookup_key(e.source_vocabulary_id, e.source_code): e for e in self.entries}

    def lookup(self, vocabulary_id: str, code: str) -> MappingEntry | None:
        return self._index.get(lookup_key(vocabulary_id, code))

    def by_kind(self, kind: str) -> list[MappingEntry]:
        return [e for e in self.entries if e.kind == kind]


# -- reading and validating one file ------------------------------------------------------------

def shipped_dir() -> Path:
    return Path(str(resources.files("ctcl_map.mappings")))


@cache
def _schema_text(table: str) -> str:
    return (shipped_dir() / "schemas" / f"{table}.schema.json").read_text(encoding="utf-8")


@cache
def _validator(table: str):
    from jsonschema import Draft202012Validator  # imported only when a file must be validated

    return Draft202012Validator(json.loads(_schema_text(table)))


@cache
def column_order(table: str) -> list[str]:
    return list(json.loads(_schema_text(table))["x-column-order"])


# -- files already validated --------------------------------------------------------------------
# Validating every row with jsonschema (and importing it) takes 0.14 s, most of a small
# incremental run. A file whose exact bytes were validated against the exact same schema needs
# no second check: digests of such files are kept in a small cache file. Only passing files are
# recorded, so a malformed file is checked (and reported) every time.
VALIDATED_CACHE_SIZE = 256


def _validated_cache_path() -> Path:
    return cache_folder() / "validated-mapping-files.json"


def _validated_digests() -> list[str]:
    try:
        digests = json.loads(_validated_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [d for d in digests if isinstance(d, str)] if isinstance(digests, list) else []


def _remember_validated(digest: str) -> None:
    """Add `digest` to the cache; a cache that cannot be written only costs the next run time."""
    digests = [d for d in _validated_digests() if d != digest][-(VALIDATED_CACHE_SIZE - 1):] + [digest]
    path = _validated_cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        scratch.write_text(json.dumps(digests), encoding="utf-8")
        os.replace(scratch, path)  # atomic: concurrent runs never read half a file
    except OSError:
        pass


def _validation_digest(table: str, content: bytes) -> str:
    from ctcl_map import __version__

    hasher = hashlib.blake2b(f"{__version__}\n{table}\n{_schema_text(table)}\n".encode(), digest_size=16)
    hasher.update(content)
    return hasher.hexdigest()


def _describe(error) -> tuple[str, str]:
    """(column, message) for one jsonschema error on a row object."""
    if error.path:
        column = str(error.path[-1])
        value = error.instance
        if error.validator == "enum":
            return column, f"{value!r} is not one of {', '.join(map(str, error.validator_value))}"
        if error.validator == "pattern":
            return column, f"{value!r} does not have the expected form ({_validator_hint(column)})"
        return column, error.message
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        return missing, "missing value"
    return "?", error.message


def _column_rank(error, expected: list[str]) -> int:
    """Report the leftmost bad column first (missing columns before everything)."""
    if error.path and error.path[-1] in expected:
        return expected.index(error.path[-1])
    return -1


def _validator_hint(column: str) -> str:
    if column.endswith("concept_id"):
        return "an integer concept id"
    if column == "source_code" or column == "fhir_code":
        return "non-empty, no white space around it"
    return "see mappings/schemas"


def read_table(path: Path, table: str, label: str) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) of one mapping CSV after checking its header and every row's schema
    (unless these exact bytes already passed against this schema)."""
    expected = column_order(table)
    try:
        content = path.read_bytes()
        text = content.decode("utf-8-sig")
    except OSError as exc:
        raise MappingError(f"{label}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise MappingError(f"{label}: not UTF-8 text (byte {exc.start})") from None
    digest = _validation_digest(table, content)
    validator = None if digest in _validated_digests() else _validator(table)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise MappingError(f"{label}, line 1: empty file (expected header {','.join(expected)})")
    header = [h.strip() for h in header]
    for column in expected:
        if column not in header:
            raise MappingError(f"{label}, line 1, column {column}: missing from the header")
    for column in header:
        if column not in expected:
            raise MappingError(f"{label}, line 1, column {column or '(empty)'}: unknown column (expected {','.join(expected)})")
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue  # blank lines are allowed
        if len(values) != len(header):
            raise MappingError(f"{label}, line {line}: {len(values)} fields, the header has {len(header)}")
        row = dict(zip(header, values))
        if validator is not None:
            errors = sorted(validator.iter_errors(row), key=lambda e: _column_rank(e, expected))
            if errors:
                column, message = _describe(errors[0])
                raise MappingError(f"{label}, line {line}, column {column}: {message}")
        yield line, row
    if validator is not None:
        _remember_validated(digest)


def _table_files(table: str, override_dirs: Sequence[Path]) -> Iterator[tuple[Path, str]]:
    """The shipped file, then each override folder's file of the same name when it exists."""
    yield shipped_dir() / f"{table}.csv", f"shipped:{table}.csv"
    for folder in override_dirs:
        folder = Path(folder)
        if not folder.is_dir():
            raise MappingError(f"{folder}: override mapping folder does not exist")
        candidate = folder / f"{table}.csv"
        if candidate.is_file():
            yield candidate, str(candidate)


# -- public loaders -----------------------------------------------------------------------------

_LOADED: dict[tuple, MappingSet] = {}


def load_mappings(override_dirs: Sequence[Path] = ()) -> MappingSet:
    """All mapping kinds, shipped then overrides; raises MappingError on the first malformed row.

    Validating every row against its JSON Schema takes a noticeable fraction of a small run, and
    several steps of one run need the tables: the result is kept per process, keyed by each file's
    path, size and modification time, so an edited file is read again. Treat it as read-only.
    """
    identity = tuple(
        (kind, tuple((str(path), path.stat().st_mtime_ns, path.stat().st_size) for path, _ in _table_files(kind, override_dirs)))
        for kind in MAPPING_KINDS
    )
    if identity not in _LOADED:
        _LOADED[identity] = _read_mappings(override_dirs)
    return _LOADED[identity]


def _read_mappings(override_dirs: Sequence[Path]) -> MappingSet:
    chosen: dict[tuple[str, str], MappingEntry] = {}
    conflicts: list[str] = []
    for kind in MAPPING_KINDS:
        for path, label in _table_files(kind, override_dirs):
            seen_here: set[tuple[str, str]] = set()
            for line, row in read_table(path, kind, label):
                entry = MappingEntry(
                    kind=kind,
                    source_vocabulary_id=row["source_vocabulary_id"].strip(),
                    source_code=row["source_code"].strip(),
                    source_code_description=row["source_code_description"],
                    target_concept_id=int(row["target_concept_id"]),
                    target_domain_id=row["target_domain_id"],
                    attributes={k: v for k, v in row.items() if k not in COMMON_COLUMNS},
                    origin=label,
                )
                key = lookup_key(entry.source_vocabulary_id, entry.source_code)
                previous = chosen.get(key)
                if previous is not None and key in seen_here:
                    if previous.target_concept_id != entry.target_concept_id or previous.attributes != entry.attributes:
                        conflicts.append(
                            f"{label}, line {line}: {entry.source_vocabulary_id} {entry.source_code!r} repeats an earlier row "
                            f"of the same file with a different mapping; the earlier row is kept"
                        )
                    continue
                if previous is not None:
                    same = previous.target_concept_id == entry.target_concept_id and previous.kind == entry.kind
                    conflicts.append(
                        f"{label}, line {line}: {entry.source_vocabulary_id} {entry.source_code!r} -> {entry.target_concept_id} "
                        f"replaces {previous.origin} ({previous.kind}) -> {previous.target_concept_id}"
                        + (" (same target)" if same else "")
                    )
                chosen[key] = entry
                seen_here.add(key)
    return MappingSet(entries=list(chosen.values()), conflicts=conflicts)


def _simple_table(table: str, override_dirs: Sequence[Path]) -> Iterator[dict[str, str]]:
    for path, label in _table_files(table, override_dirs):
        for _line, row in read_table(path, table, label):
            yield row


def load_code_systems(override_dirs: Sequence[Path] = ()) -> dict[str, str]:
    """FHIR system URI -> OMOP vocabulary_id (override rows replace shipped ones)."""
    return {row["system_uri"].strip(): row["vocabulary_id"].strip() for row in _simple_table("code_systems", override_dirs)}


def load_fhir_valuesets(override_dirs: Sequence[Path] = ()) -> dict[tuple[str, str, str], int]:
    """(omop_field, FHIR system, FHIR code) -> concept_id; 0 means 'No matching concept' on purpose."""
    return {
        (row["omop_field"], row["fhir_system"].strip(), row["fhir_code"].strip()): int(row["target_concept_id"])
        for row in _simple_table("fhir_valuesets", override_dirs)
    }


def source_to_concept_map_rows(mappings: MappingSet, concept_vocabularies: Mapping[int, str] | None = None) -> list[tuple]:
    """Rows for SOURCE_TO_CONCEPT_MAP in CDM column order, so OHDSI tools see our mappings.

    target_vocabulary_id comes from the shipped vocabulary subset unless `concept_vocabularies`
    (concept_id -> vocabulary_id, e.g. read from a loaded Athena CONCEPT table) is given.
    """
    from ctcl_map.cdm.schema import columns
    from ctcl_map.vocab.loader import read_shipped

    if concept_vocabularies is None:
        concept_vocabularies = {int(row["concept_id"]): row["vocabulary_id"] for row in read_shipped("CONCEPT.csv")}
    rows = []
    for entry in mappings.entries:
        values = {
            "source_code": entry.source_code,
            "source_concept_id": 0,
            "source_vocabulary_id": entry.source_vocabulary_id,
            "source_code_description": entry.source_code_description[:255],
            "target_concept_id": entry.target_concept_id,
            "target_vocabulary_id": concept_vocabularies.get(entry.target_concept_id, ""),
            "valid_start_date": STCM_VALID_START,
            "valid_end_date": STCM_VALID_END,
            "invalid_reason": None,
        }
        rows.append(tuple(values[c] for c in columns("source_to_concept_map")))
    return rows

__all__ = [
    "MappingEntry", "MappingError", "MappingSet", "MappingTables", "configuration_fingerprint", "load_code_systems",
    "load_fhir_valuesets", "load_mapping_tables", "load_mappings", "lookup_key", "source_to_concept_map_rows",
]


def configuration_fingerprint(vocab_version: str, mappings: MappingSet, code_systems: Mapping[str, str],
                              valuesets: Mapping[tuple[str, str, str], int]) -> str:
    """Everything that decides a conversion besides the input (software, vocabulary, mappings):
    it salts the content hashes, so new mappings or a new vocabulary convert everything again."""
    from ctcl_map import __version__

    parts = [__version__, vocab_version,
             json.dumps(sorted((e.source_vocabulary_id, e.source_code, e.target_concept_id, e.origin) for e in mappings.entries)),
             json.dumps(sorted(code_systems.items())),
             json.dumps(sorted((list(k), v) for k, v in valuesets.items()))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class MappingTables:
    """What a conversion reads from the mapping folder(s): the mapping entries, code systems, value sets."""

    mappings: MappingSet
    code_systems: dict[str, str]
    valuesets: dict[tuple[str, str, str], int]


def load_mapping_tables(override_dirs: Sequence[Path] = ()) -> MappingTables:
    """The shipped tables merged with the site's; a malformed file raises MappingError."""
    return MappingTables(load_mappings(override_dirs), load_code_systems(override_dirs), load_fhir_valuesets(override_dirs))
