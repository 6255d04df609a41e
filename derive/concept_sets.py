"""Concept ids the derivation step needs, resolved at run time from CONCEPT and the mapping tables.

No concept id is hard-coded here except the verified ones named in issue 4 (field concepts
1147127 condition_occurrence, 1147094 drug_exposure; episode concepts 32533, 32531; type
concepts 32817 EHR, and 32880 / 32545 used only when present in the loaded CONCEPT table).
Our own concepts are looked up by (vocabulary_id 'CTCL-map', concept_code).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from ctcl_map.ctcl.diagnosis import UNCONFIRMED_STATUSES
from ctcl_map.derive.mapping_rows import MappingRows, concept_id, is_true
from ctcl_map.store.database import Database
from ctcl_map.store.statements import int_list

FIELD_CONDITION = 1147127  # condition_occurrence.condition_occurrence_id (vocab-concepts.csv §6)
FIELD_DRUG = 1147094  # drug_exposure.drug_exposure_id (issue 4, vocab/extra_verified.csv)
DISEASE_EPISODE = 32533
TREATMENT_REGIMEN = 32531
TYPE_EHR = 32817
TYPE_STANDARD_ALGORITHM = 32880  # measurement_type of derived rows, when present in CONCEPT
TYPE_EPISODE_ALGORITHM = 32545  # "Episode algorithmically derived from EHR", when present in CONCEPT
STAGE_GROUP_QUESTION = ("LOINC", "21908-9")  # the question of derived stage-group rows



def confirmed_condition_sql(alias: str = "") -> str:
    """SQL condition: a condition_occurrence row that is not a provisional / differential /
    unconfirmed diagnosis (converters.condition records those in condition_status_source_value)."""
    column = f"{alias}.condition_status_source_value" if alias else "condition_status_source_value"
    statuses = ", ".join(f"'{s}'" for s in UNCONFIRMED_STATUSES)
    return f"({column} IS NULL OR {column} NOT IN ({statuses}))"


def not_of_unconfirmed_sql(db: Database, alias: str) -> str:
    """SQL condition: measurement `alias` is not linked (1147127) to an unconfirmed diagnosis."""
    return (f"NOT EXISTS (SELECT 1 FROM {db.table('condition_occurrence')} uc "
            f"WHERE {alias}.meas_event_field_concept_id = {FIELD_CONDITION} "
            f"AND uc.condition_occurrence_id = {alias}.measurement_event_id AND NOT {confirmed_condition_sql('uc')})")


# ICD-O-3 morphologies of CTCL (ctcl-domain.md §4.2, vocab-concepts.md App. A): MF, SS, CTCL NOS, pcALCL.
CTCL_ICDO3_MORPHOLOGIES = ("9700/3", "9701/3", "9709/3", "9718/3")

# Question codes from docs/codes.md 'Staging as FHIR sends it', used with mappings/staging.csv.
CONTRACT_QUESTIONS = {
    "T": (("LOINC", "21905-5"), ("LOINC", "21899-0"), ("LOINC", "21911-3")),
    "N": (("LOINC", "21906-3"),),
    "M": (("LOINC", "21907-1"),),
    "stage": (("LOINC", "21908-9"), ("LOINC", "21902-2"), ("LOINC", "21914-7")),
    "B": (("CTCL-map", "ISCL-B"),),
}
STAGING_AXIS_NAMES = {"T": "T", "N": "N", "M": "M", "B": "B", "stage_group": "stage", "stage": "stage"}

# Raw blood inputs of the B derivation: our concepts and the LOINC codes of codes.md.
BLOOD_INPUTS = {
    "sezary_per_ul": (("CTCL-map", "SEZARY-ABS"), ("LOINC", "34918-3")),
    "sezary_pct_lymphocytes": (("CTCL-map", "SEZARY-PCT"),),
    "cd4cd26neg_per_ul": (("CTCL-map", "CD4CD26NEG-ABS"),),
    "cd4cd7neg_per_ul": (("CTCL-map", "CD4CD7NEG-ABS"),),
    "cd4_cd8_ratio": (("LOINC", "54218-3"),),
    "clone": (("CTCL-map", "TCR-CLONE-BLOOD"),),
    "lymphocytes_per_ul": (("LOINC", "731-0"), ("LOINC", "26474-7"), ("LOINC", "30364-4")),
}
LDH_CODES = (("LOINC", "2532-0"), ("LOINC", "14804-9"))
OUR_CODES = (
    "ISCL-B", "CLONE-POS", "CLONE-NEG", "LCT", "CLIPI-SCORE", "CLIPI-RISK", "CLIPI-LOW", "CLIPI-INT", "CLIPI-HIGH",
)


class ConceptSource(Protocol):
    """What resolve_concepts reads CONCEPT and CONCEPT_ANCESTOR through: a Database, or the Spark
    path's adapter over Spark SQL (ctcl_map.spark.derive)."""

    def table(self, name: str) -> str: ...

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]: ...

    def temp_relation(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> AbstractContextManager[str]: ...


@dataclass
class OncologyConcepts:
    diagnosis_ids: set[int]
    questions: dict[str, set[int]]  # axis -> measurement_concept_ids
    stage_question_id: int | None  # LOINC 21908-9: question of derived stage-group rows
    value_codes: dict[int, tuple[str, str]]  # value concept id -> (axis, normalised category)
    category_value_ids: dict[tuple[str, str], int]  # (axis, category) -> value concept id
    blood: dict[str, set[int]]  # BLOOD_INPUTS key -> measurement concept ids
    ldh_ids: set[int]
    ours: dict[str, int]  # CTCL-map concept_code -> concept_id (only those present)
    systemic: dict[int, dict[str, str]]  # ingredient concept id -> its therapies.csv row
    non_systemic_codes: set[str]  # source codes of rows that do not start a line (bexarotene gel)
    measurement_type_id: int
    episode_type_id: int
    measurement_field_id: int | None  # measurement.measurement_id field concept, if in CONCEPT
    regimens_present: set[int] = field(default_factory=set)  # therapies' HemOnc regimen concepts CONCEPT holds
    warnings: list[str] = field(default_factory=list)


def _concept_ids(db: ConceptSource, codes: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """concept_id of each (vocabulary_id, concept_code) that CONCEPT holds, in one query."""
    with db.temp_relation("ctcl_wanted_codes", ("vocabulary_id", "concept_code"), sorted(codes)) as relation:
        rows = db.query(f"SELECT c.vocabulary_id, c.concept_code, MIN(c.concept_id) FROM {db.table('concept')} c "
                        f"JOIN {relation} w ON w.vocabulary_id = c.vocabulary_id AND w.concept_code = c.concept_code "
                        "GROUP BY c.vocabulary_id, c.concept_code")
    return {(vocabulary_id, code): int(cid) for vocabulary_id, code, cid in rows}


def _existing(db: ConceptSource, concepts: set[int]) -> set[int]:
    return {int(r[0]) for r in db.query(f"SELECT concept_id FROM {db.table('concept')} WHERE concept_id IN {int_list(concepts)}")}


def _diagnosis_ids(db: ConceptSource, rows: MappingRows) -> set[int]:
    mapped = {cid for row in rows.get("diagnoses", []) if (cid := concept_id(row))}
    likes = " OR ".join("concept_code LIKE ?" for _ in CTCL_ICDO3_MORPHOLOGIES)
    morphologies = f"SELECT concept_id FROM {db.table('concept')} WHERE vocabulary_id = 'ICDO3' AND ({likes})"
    patterns = [f"{m}%" for m in CTCL_ICDO3_MORPHOLOGIES]
    # The morphology concepts stay in SQL (a full Athena vocabulary has hundreds of them).
    found = db.query(
        f"SELECT concept_id FROM ({morphologies}) roots UNION "
        f"SELECT descendant_concept_id FROM {db.table('concept_ancestor')} "
        f"WHERE ancestor_concept_id IN {int_list(mapped)} OR ancestor_concept_id IN ({morphologies})",
        patterns + patterns,
    )
    return mapped | {int(r[0]) for r in found}


def resolve_concepts(db: ConceptSource, rows: MappingRows) -> OncologyConcepts:
    warnings: list[str] = []
    wanted = {pair for codes in [*CONTRACT_QUESTIONS.values(), *BLOOD_INPUTS.values(), LDH_CODES] for pair in codes}
    found = _concept_ids(db, wanted | {("CTCL-map", code) for code in OUR_CODES} | {STAGE_GROUP_QUESTION})
    questions: dict[str, set[int]] = {axis: set() for axis in CONTRACT_QUESTIONS}
    for axis, codes in CONTRACT_QUESTIONS.items():
        questions[axis] |= {cid for vocab, code in codes if (cid := found.get((vocab, code)))}
    value_codes: dict[int, tuple[str, str]] = {}
    category_value_ids: dict[tuple[str, str], int] = {}
    for row in rows.get("staging", []):
        row_axis = STAGING_AXIS_NAMES.get(row.get("axis", ""))
        target = concept_id(row)
        if row_axis is None or target is None:
            continue
        value_code = row.get("value_code", "")
        if not value_code:
            questions[row_axis].add(target)
            continue
        value_codes.setdefault(target, (row_axis, value_code))
        if row.get("source_vocabulary_id") == "ISCL" or (row_axis, value_code) not in category_value_ids:
            category_value_ids[(row_axis, value_code)] = target

    blood = {
        name: {cid for vocab, code in codes if (cid := found.get((vocab, code)))}
        for name, codes in BLOOD_INPUTS.items()
    }
    for row in rows.get("labs", []):  # labs.csv may map more source codes onto the same inputs
        for name, codes in BLOOD_INPUTS.items():
            if (row.get("source_vocabulary_id"), row.get("source_code")) in codes and (cid := concept_id(row)):
                blood[name].add(cid)
    ldh_ids = {cid for vocab, code in LDH_CODES if (cid := found.get((vocab, code)))}
    ldh_ids |= {cid for row in rows.get("labs", [])
                if (row.get("source_vocabulary_id"), row.get("source_code")) in LDH_CODES and (cid := concept_id(row))}
    if not ldh_ids:
        warnings.append("no LDH concept (LOINC 2532-0 / 14804-9) in CONCEPT or labs.csv: LDH rows are found "
                        "only by measurement_source_value 2532-0 / 14804-9 on concept 0")

    ours = {code: cid for code in OUR_CODES if (cid := found.get(("CTCL-map", code)))}
    for code in OUR_CODES:
        if code not in ours:
            warnings.append(f"CTCL-map concept {code} not in CONCEPT")

    systemic: dict[int, dict[str, str]] = {}
    non_systemic_codes: set[str] = set()
    for row in rows.get("therapies", []):
        target = concept_id(row)
        if target and is_true(row, "starts_systemic_line"):
            systemic.setdefault(target, row)
        elif row.get("source_code"):
            non_systemic_codes.add(row["source_code"])

    regimens = {cid for row in systemic.values() if (cid := concept_id(row, "hemonc_regimen_concept_id"))}
    present = _existing(db, {TYPE_STANDARD_ALGORITHM, TYPE_EPISODE_ALGORITHM} | regimens)
    measurement_type = TYPE_STANDARD_ALGORITHM if TYPE_STANDARD_ALGORITHM in present else TYPE_EHR
    episode_type = TYPE_EPISODE_ALGORITHM if TYPE_EPISODE_ALGORITHM in present else TYPE_EHR
    field_rows = db.query(
        f"SELECT concept_id FROM {db.table('concept')} WHERE vocabulary_id = 'CDM' "
        "AND concept_name = 'measurement.measurement_id'"
    )
    measurement_field = int(field_rows[0][0]) if field_rows else None
    if measurement_field is None:
        warnings.append(
            "no CDM field concept 'measurement.measurement_id' in CONCEPT: staging measurements are linked "
            "to the diagnosis (1147127) but not written as EPISODE_EVENT rows"
        )
    stage_question = found.get(STAGE_GROUP_QUESTION)
    if stage_question is None:
        warnings.append("LOINC 21908-9 not in CONCEPT: derived stage groups cannot be written")
    return OncologyConcepts(
        diagnosis_ids=_diagnosis_ids(db, rows),
        questions=questions,
        stage_question_id=stage_question,
        value_codes=value_codes,
        category_value_ids=category_value_ids,
        blood=blood,
        ldh_ids=ldh_ids,
        ours=ours,
        systemic=systemic,
        non_systemic_codes=non_systemic_codes,
        measurement_type_id=measurement_type,
        episode_type_id=episode_type,
        measurement_field_id=measurement_field,
        regimens_present=regimens & present,
        warnings=warnings,
    )
