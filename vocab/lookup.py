"""Concept resolution: FHIR codings -> OMOP source and standard concepts.

Precedence (documented in README, issue 3): site override -> CTCL mapping table -> vocabulary
('Maps to' of the shipped subset or of a loaded Athena download) -> concept 0 with a reason.
Among several codings of one CodeableConcept: a coding marked `userSelected` first, then the
vocabulary order preferred for the target field (e.g. SNOMED before ICD-10-CM for conditions),
then the order the source wrote them; the first coding that reaches a standard concept wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

# Preferred source vocabularies per kind of field (f2o-034/035). Unlisted vocabularies come after.
PREFERENCE: dict[str, tuple[str, ...]] = {
    "condition": ("SNOMED", "ICDO3", "ICD10CM", "ICD10", "ICD9CM"),
    "drug": ("RxNorm", "RxNorm Extension", "ATC", "NDC", "CVX", "BRAND"),
    "procedure": ("SNOMED", "CPT4", "HCPCS", "ICD10PCS", "LOINC"),
    "measurement": ("LOINC", "SNOMED", "CTCL-map"),
    "value": ("LOINC", "SNOMED", "CTCL-map", "Cancer Modifier"),
    "visit": (),
    "route": ("SNOMED",),
}

TEXT_VOCABULARY = "TEXT"  # mapping-table rows that match a CodeableConcept's text (lower-cased)
TEXT_VOCABULARIES = (TEXT_VOCABULARY, "BRAND")  # a text is tried as a written term, then as a brand name


@dataclass(frozen=True, slots=True)
class Resolved:
    concept_id: int
    source_value: str | None
    source_concept_id: int
    domain_id: str | None  # domain of concept_id when mapped, of the source concept otherwise
    vocabulary_id: str | None  # vocabulary of the chosen coding
    code: str | None
    reason: str | None  # why concept_id is 0; None when mapped
    mapping: Any = None  # the MappingEntry that decided it (CTCL tables), for its attributes
    # further standard targets when the code has several 'Maps to' (e.g. a combination code):
    # ((concept_id, domain_id), ...); each becomes a row of its own (events.with_more_targets)
    more_targets: tuple[tuple[int, str | None], ...] = ()


# The CodeableConcepts that carry most of a run's distinct codes (code, vaccine, medication, value).
PREFETCHED_FIELDS = ("code", "vaccineCode", "medicationCodeableConcept", "valueCodeableConcept")

UNCODED = Resolved(0, None, 0, None, None, None, "no_code")


class MappingLookup(Protocol):
    def lookup(self, vocabulary_id: str, code: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class VocabHit:
    source_concept_id: int
    standard_concept_id: int  # 0 when the source concept has no valid standard mapping
    standard_domain_id: str | None
    source_domain_id: str | None
    more_targets: tuple[tuple[int, str | None], ...] = ()  # further standard 'Maps to' targets


class Vocabulary(Protocol):
    """What the resolver asks of a vocabulary; handed to converters ready, so they never query
    a database (an in-memory VocabIndex, or a vocab.snapshot.SnapshotVocabulary for a full Athena load)."""

    def lookup(self, vocabulary_id: str, code: str) -> VocabHit | None: ...

    def concept(self, concept_id: int) -> tuple[str, str | None, str] | None:
        """(domain_id, standard_concept, vocabulary_id) of a concept id."""
        ...

    def prefetch(self, pairs: Iterable[tuple[str, str]]) -> None:
        """(vocabulary_id, code) pairs about to be looked up: fetched together where that is cheaper."""
        ...


# The columns of a vocabulary row, as vocab.prepare selects them and VocabIndex reads them:
# a concept and one of its 'Maps to' targets (NULLs when it has none).
VOCABULARY_ROW_COLUMNS = ("vocabulary_id", "concept_code", "concept_id", "standard_concept", "domain_id",
                          "target_concept_id", "target_domain_id", "target_standard_concept")


class VocabIndex:
    """(vocabulary_id, concept_code) -> source concept and its standard target, from vocabulary
    rows (VOCABULARY_ROW_COLUMNS) held in memory: the shipped subset whole, or the rows of the
    codes a SnapshotVocabulary was asked for."""

    def __init__(self, rows: Iterable[tuple] = ()):
        self._codes: dict[tuple[str, str], VocabHit | None] = {}
        self._concepts: dict[int, tuple[str, str | None, str]] = {}  # id -> (domain, standard, vocabulary)
        self.add(rows)

    def add(self, rows: Iterable[tuple]) -> None:
        """Rows ordered by concept id, then target id (the first standard target is the concept)."""
        for vocabulary_id, code, concept_id, standard, domain, target_id, target_domain, target_standard in rows:
            self._concepts[concept_id] = (domain, standard or None, vocabulary_id)
            key = (vocabulary_id, code)
            if standard == "S":
                hit = VocabHit(concept_id, concept_id, domain, domain)
            elif target_id is not None and target_standard == "S":
                hit = VocabHit(concept_id, target_id, target_domain, domain)
            else:
                hit = VocabHit(concept_id, 0, None, domain)
            previous = self._codes.get(key)
            # Several rows per code (several 'Maps to'): the first standard target (lowest id) is
            # the concept, the others are kept as more_targets (one OMOP row each).
            if previous is None or (previous.standard_concept_id == 0 and hit.standard_concept_id != 0):
                self._codes[key] = hit
            elif (hit.standard_concept_id and hit.standard_concept_id != previous.standard_concept_id
                  and hit.standard_concept_id not in {t for t, _ in previous.more_targets}):
                self._codes[key] = VocabHit(previous.source_concept_id, previous.standard_concept_id,
                                            previous.standard_domain_id, previous.source_domain_id,
                                            previous.more_targets + ((hit.standard_concept_id, hit.standard_domain_id),))

    def lookup(self, vocabulary_id: str, code: str) -> VocabHit | None:
        return self._codes.get((vocabulary_id, code))

    def prefetch(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Nothing to fetch: every row is in memory."""

    def concept(self, concept_id: int) -> tuple[str, str | None, str] | None:
        """(domain_id, standard_concept, vocabulary_id) of a concept id."""
        return self._concepts.get(concept_id)


class ConceptResolver:
    """Resolves codings with the mapping tables first, then the vocabulary."""

    def __init__(self, code_systems: Mapping[str, str], mappings: MappingLookup, vocab: Vocabulary):
        self.code_systems = {_normalise_system(uri): vocab_id for uri, vocab_id in code_systems.items()}
        self.mappings = mappings
        self.vocab = vocab
        self._cache: dict[tuple, Resolved] = {}
        self._systems: dict[str, str | None] = {}  # raw system URI as written -> vocabulary_id

    def vocabulary_of(self, system: str | None) -> str | None:
        if not system or not isinstance(system, str):
            return None
        found = self._systems.get(system)
        if found is None and system not in self._systems:
            found = self._systems[system] = self.code_systems.get(_normalise_system(system))
        return found

    def prefetch(self, resources: Iterable[Any]) -> None:
        """Hand the vocabulary the codes of these resources' main CodeableConcepts (PREFETCHED_FIELDS)
        at once: a snapshot answers them in one query instead of one query per code. Codes of other
        fields are still looked up when asked; the answers are the same either way."""
        if isinstance(self.vocab, VocabIndex):
            return  # in memory: nothing to gain from walking the resources
        pairs: set[tuple[str, str]] = set()
        for resource in resources:
            if not isinstance(resource, dict):
                continue
            for field in PREFETCHED_FIELDS:
                concept = resource.get(field)
                codings = concept.get("coding") if isinstance(concept, dict) else None
                for coding in codings if isinstance(codings, list) else ():
                    code = coding.get("code") if isinstance(coding, dict) else None
                    if not isinstance(code, str):
                        continue
                    vocabulary_id = self.vocabulary_of(coding.get("system"))
                    if vocabulary_id is not None and (vocabulary_id, code.strip()) not in self._cache:
                        pairs.add((vocabulary_id, code.strip()))
        if pairs:
            self.vocab.prefetch(pairs)

    def resolve_code(self, vocabulary_id: str, code: str, source_value: str | None = None) -> Resolved:
        """One (vocabulary, code) pair: mapping table, then vocabulary."""
        cache_key = (vocabulary_id, code)
        cached = self._cache.get(cache_key)
        if cached is not None:
            return cached
        hit = self.vocab.lookup(vocabulary_id, code)
        source_concept_id = hit.source_concept_id if hit else 0
        entry = self.mappings.lookup(vocabulary_id, code)
        if entry is not None:
            target = entry.target_concept_id
            known = self.vocab.concept(target)
            domain = known[0] if known else entry.target_domain_id
            result = Resolved(target, code, source_concept_id, domain, vocabulary_id, code, None, entry)
        elif hit is None:
            result = Resolved(0, code, 0, None, vocabulary_id, code, "code_not_in_vocabulary")
        elif hit.standard_concept_id == 0:
            result = Resolved(0, code, source_concept_id, hit.source_domain_id, vocabulary_id, code, "no_standard_mapping")
        else:
            result = Resolved(hit.standard_concept_id, code, source_concept_id, hit.standard_domain_id, vocabulary_id, code,
                              None, None, hit.more_targets)
        self._cache[cache_key] = result
        return result

    def resolve(self, concept: Any, kind: str) -> Resolved:
        """A CodeableConcept (dict) -> the best Resolved by the documented precedence."""
        if not isinstance(concept, dict):
            return UNCODED
        codings = concept.get("coding")
        if not isinstance(codings, list):
            codings = ()
        if len(codings) == 1:
            # Fast path for the common single coding: no ranking needed.
            only = codings[0]
            if isinstance(only, dict) and isinstance(only.get("code"), str) and only["code"].strip():
                vocabulary_id = self.vocabulary_of(only.get("system"))
                if vocabulary_id is not None:
                    resolved = self.resolve_code(vocabulary_id, only["code"].strip())
                    text = concept.get("text")
                    if resolved.concept_id or not isinstance(text, str) or not text.strip():
                        return resolved
                    by_text = self.resolve_text(text)
                    return by_text if by_text.concept_id else resolved
        candidates: list[tuple[tuple, Resolved]] = []
        preference = PREFERENCE.get(kind, ())
        for position, coding in enumerate(codings):
            if not isinstance(coding, dict):
                continue
            code = coding.get("code")
            if not isinstance(code, str) or not code.strip():
                continue
            code = code.strip()
            system = coding.get("system")
            vocabulary_id = self.vocabulary_of(system)
            if vocabulary_id is None:
                resolved = Resolved(0, code, 0, None, str(system or "(no system)"), code, "unknown_system")
            else:
                resolved = self.resolve_code(vocabulary_id, code)
            rank = preference.index(vocabulary_id) if vocabulary_id in preference else len(preference)
            order = (0 if coding.get("userSelected") is True else 1, rank, position)
            candidates.append((order, resolved))
        candidates.sort(key=lambda pair: pair[0])
        for _, resolved in candidates:
            if resolved.concept_id:
                return resolved
        text = concept.get("text")
        if isinstance(text, str) and text.strip():
            by_text = self.resolve_text(text)
            if by_text.concept_id or not candidates:
                return by_text
        if candidates:
            return candidates[0][1]
        return UNCODED

    def resolve_text(self, text: str) -> Resolved:
        """Text-only concepts ('Mycosis fungoides') match TEXT rows of the mapping tables."""
        cached = self._cache.get(("text", text))
        if cached is not None:
            return cached
        result = self._resolve_text(text)
        self._cache[("text", text)] = result
        return result

    def _resolve_text(self, text: str) -> Resolved:
        """Text matches TEXT rows (written diagnoses), then BRAND rows (a drug sent as 'Poteligeo')."""
        normalised = " ".join(text.lower().split())
        source_value = text.strip()[:50]
        for vocabulary_id in TEXT_VOCABULARIES:
            entry = self.mappings.lookup(vocabulary_id, normalised)
            if entry is not None:
                known = self.vocab.concept(entry.target_concept_id)
                domain = known[0] if known else entry.target_domain_id
                return Resolved(entry.target_concept_id, source_value, 0, domain, vocabulary_id, normalised, None, entry)
        return Resolved(0, source_value, 0, None, TEXT_VOCABULARY, normalised, "text_only")


def _normalise_system(uri: str) -> str:
    """Compare system URIs without a version suffix ('|2.74'), trailing slash or http/https difference."""
    uri = uri.split("|", 1)[0].strip().rstrip("/")
    if uri.startswith("https://"):
        uri = "http://" + uri[len("https://") :]
    return uri
