"""Check that every mapping target exists, is standard and has the domain its row promises.

Against the shipped vocabulary subset by default, or against the CONCEPT table of a database (for
instance after `ctcl-map vocab load`), so a site's override pointing at a concept of its own Athena
download is checked where it will be used.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ctcl_map.errors import MappingError
from ctcl_map.mappings.tables import load_fhir_valuesets, load_mappings
from ctcl_map.store.database import Database

FIELD_DOMAINS = {
    "gender_concept_id": "Gender", "race_concept_id": "Race", "ethnicity_concept_id": "Ethnicity", "visit_concept_id": "Visit",
    "condition_status_concept_id": "Condition Status", "operator_concept_id": "Meas Value Operator",
    "measurement_concept_id": "Measurement",
}


@dataclass(frozen=True)
class ConceptInfo:
    concept_name: str
    domain_id: str
    vocabulary_id: str
    standard_concept: str  # 'S', 'C' or '' (non-standard)


@cache
def shipped_concepts() -> dict[int, ConceptInfo]:
    from ctcl_map.vocab.loader import read_shipped

    return {
        int(r["concept_id"]): ConceptInfo(r["concept_name"], r["domain_id"], r["vocabulary_id"], r["standard_concept"])
        for r in read_shipped("CONCEPT.csv")
    }


def database_concepts(db: Database, concept_ids: Iterable[int]) -> dict[int, ConceptInfo]:
    wanted = sorted(set(concept_ids))
    found: dict[int, ConceptInfo] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        rows = db.query(
            f"SELECT concept_id, concept_name, domain_id, vocabulary_id, standard_concept FROM {db.table('concept')} "
            f"WHERE concept_id IN ({', '.join('?' for _ in chunk)})",
            chunk,
        )
        found.update({r[0]: ConceptInfo(r[1], r[2], r[3], r[4] or "") for r in rows})
    return found


def _problem(where: str, concept_id: int, expected_domain: str, concepts: dict[int, ConceptInfo], vocabulary: str) -> str | None:
    concept = concepts.get(concept_id)
    if concept is None:
        return f"{where}: target concept {concept_id} is not in the {vocabulary}"
    if concept.standard_concept != "S":
        return f"{where}: target concept {concept_id} ({concept.concept_name}) is not a standard concept"
    if concept.domain_id != expected_domain:
        return f"{where}: target concept {concept_id} ({concept.concept_name}) has domain {concept.domain_id}, expected {expected_domain}"
    return None


def check_mappings(override_dirs: Sequence[Path] = (), db: Database | None = None) -> list[str]:
    """Problems found (empty list = OK): malformed files, absent / non-standard / wrong-domain targets.

    Checked: every target_concept_id, hemonc_regimen_concept_id (domain Regimen), unit_concept_id
    (domain Unit) and every non-zero fhir_valuesets target (domain of its OMOP field).
    """
    try:
        mappings = load_mappings(override_dirs)
        valuesets = load_fhir_valuesets(override_dirs)
    except MappingError as exc:
        return [str(exc)]
    ids = [e.target_concept_id for e in mappings.entries]
    ids += [int(e.attributes["hemonc_regimen_concept_id"]) for e in mappings.entries if e.attributes.get("hemonc_regimen_concept_id")]
    ids += [int(e.attributes["unit_concept_id"]) for e in mappings.entries if e.attributes.get("unit_concept_id")]
    ids += list(valuesets.values())
    concepts = database_concepts(db, ids) if db is not None else shipped_concepts()
    vocabulary = f"CONCEPT table of {db.label}" if db is not None else "shipped vocabulary subset (vocab/CONCEPT.csv)"

    problems = []
    for entry in mappings.entries:
        where = f"{entry.origin}: {entry.source_vocabulary_id} {entry.source_code!r}"
        problems.append(_problem(where, entry.target_concept_id, entry.target_domain_id, concepts, vocabulary))
        regimen = entry.attributes.get("hemonc_regimen_concept_id")
        if regimen:
            problems.append(_problem(f"{where} (hemonc_regimen_concept_id)", int(regimen), "Regimen", concepts, vocabulary))
        unit = entry.attributes.get("unit_concept_id")
        if unit:
            problems.append(_problem(f"{where} (unit_concept_id)", int(unit), "Unit", concepts, vocabulary))
    for (field_name, system, code), concept_id in valuesets.items():
        if concept_id == 0:
            continue  # deliberate 'No matching concept' (the row's note says why)
        problems.append(_problem(f"fhir_valuesets: {field_name} {system}|{code}", concept_id, FIELD_DOMAINS[field_name], concepts, vocabulary))
    return [p for p in problems if p]
