"""Mapping coverage: which codes of the input the mapping tables and the vocabulary resolve.

Counted per code system (OMOP vocabulary_id, or the raw system URI when the system is unknown)
and resource type, over the CodeableConcepts the converters map: Condition.code, Procedure.code,
Observation.code / component.code / valueCodeableConcept, Medication.code and
medicationCodeableConcept of the four medication resources. Each coding is resolved exactly as
the converter resolves it (`ConceptResolver.resolve_code`: site override -> CTCL table ->
vocabulary). A coding that does not resolve but whose CodeableConcept resolves through another
coding is 'covered' (nothing to add); the rest is 'unmapped' and listed with its count: the list
a site adds to its local mapping file. CodeableConcepts with only text are counted under TEXT but
their text is never listed (free text may hold anything).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ctcl_map.converters.base import as_list
from ctcl_map.model import SourceItem
from ctcl_map.vocab.lookup import ConceptResolver

# resource type -> (field, resolver kind) of the CodeableConcepts the converters map
CODED_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "Condition": (("code", "condition"),),
    "Procedure": (("code", "procedure"),),
    "Observation": (("code", "measurement"), ("valueCodeableConcept", "value")),
    "Medication": (("code", "drug"),),
    "MedicationAdministration": (("medicationCodeableConcept", "drug"),),
    "MedicationRequest": (("medicationCodeableConcept", "drug"),),
    "MedicationStatement": (("medicationCodeableConcept", "drug"),),
    "MedicationDispense": (("medicationCodeableConcept", "drug"),),
    "Immunization": (("vaccineCode", "drug"),),
    "AllergyIntolerance": (("code", "observation"),),
}
TEXT_ONLY = "TEXT"


@dataclass
class CoverageCounter:
    resolver: ConceptResolver
    # (vocabulary, resource_type, code) -> [occurrences, mapped occurrences, covered occurrences]
    codes: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)
    reasons: dict[tuple[str, str, str], str] = field(default_factory=dict)
    text_only: Counter = field(default_factory=Counter)  # resource_type -> occurrences
    text_only_mapped: Counter = field(default_factory=Counter)

    def add(self, item: SourceItem) -> None:
        resource = item.resource
        fields = CODED_FIELDS.get(item.resource_type)
        if not fields or not isinstance(resource, dict):
            return
        for name, kind in fields:
            self.add_concept(item.resource_type, resource.get(name), kind)
        if item.resource_type == "Observation":
            for component in as_list(resource.get("component")):
                if isinstance(component, dict):
                    self.add_concept(item.resource_type, component.get("code"), "measurement")
                    self.add_concept(item.resource_type, component.get("valueCodeableConcept"), "value")

    def add_concept(self, resource_type: str, concept: Any, kind: str) -> None:
        if not isinstance(concept, dict):
            return
        codings = [c for c in as_list(concept.get("coding")) if isinstance(c, dict)
                   and isinstance(c.get("code"), str) and c["code"].strip()]
        if not codings:
            if isinstance(concept.get("text"), str) and concept["text"].strip():
                self.text_only[resource_type] += 1
                if self.resolver.resolve_text(concept["text"]).concept_id:
                    self.text_only_mapped[resource_type] += 1
            return
        whole = self.resolver.resolve(concept, kind).concept_id != 0
        for coding in codings:
            code = coding["code"].strip()
            vocabulary = self.resolver.vocabulary_of(coding.get("system"))
            if vocabulary is None:
                label, mapped, reason = str(coding.get("system") or "(no system)")[:200], False, "unknown_system"
            else:
                resolved = self.resolver.resolve_code(vocabulary, code)
                label, mapped, reason = vocabulary, resolved.concept_id != 0, resolved.reason or ""
            key = (label, resource_type, code[:100])
            counts = self.codes.setdefault(key, [0, 0, 0])
            counts[0] += 1
            if mapped:
                counts[1] += 1
            elif whole:
                counts[2] += 1
            else:
                self.reasons.setdefault(key, reason)

    def summary(self) -> dict[str, Any]:
        """by_system rows and the unmapped list (most frequent first), JSON-ready."""
        groups: dict[tuple[str, str], list[int]] = {}
        for (vocabulary, resource_type, _code), (total, mapped, covered) in self.codes.items():
            row = groups.setdefault((vocabulary, resource_type), [0, 0, 0, 0, 0])
            row[0] += 1
            row[1] += 1 if mapped == total else 0
            row[2] += total
            row[3] += mapped
            row[4] += covered
        for resource_type, total in self.text_only.items():
            groups[(TEXT_ONLY, resource_type)] = [0, 0, total, self.text_only_mapped[resource_type], 0]
        by_system = [
            {"vocabulary": vocabulary, "resource_type": resource_type, "distinct_codes": distinct,
             "distinct_mapped": distinct_mapped, "occurrences": total, "occurrences_mapped": mapped,
             "occurrences_covered_by_other_coding": covered,
             "percent_mapped": round(100.0 * mapped / total, 1) if total else 0.0}
            for (vocabulary, resource_type), (distinct, distinct_mapped, total, mapped, covered) in sorted(groups.items())
        ]
        unmapped: list[dict[str, Any]] = [
            {"vocabulary": vocabulary, "code": code, "resource_type": resource_type,
             "occurrences": total - mapped - covered, "reason": self.reasons.get((vocabulary, resource_type, code), "")}
            for (vocabulary, resource_type, code), (total, mapped, covered) in self.codes.items()
            if total - mapped - covered > 0
        ]
        unmapped.sort(key=lambda u: (-u["occurrences"], u["vocabulary"], u["code"], u["resource_type"]))
        return {"by_system": by_system, "unmapped": unmapped,
                "text_only_unmapped": sum(self.text_only.values()) - sum(self.text_only_mapped.values())}
