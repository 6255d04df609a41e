"""Regenerate the shipped vocabulary subset (vocab/*.csv) from its documented inputs.

Maintainer tool, not used at run time: the converter reads only the CSV files it writes.
Inputs:
- ../shared/reference/vocab-concepts.csv: the research list of verified OMOP concepts;
- vocab/extra_verified.csv: concepts verified during the build of this subset (units, routes, ...);
- OWN_CONCEPTS below: our vocabulary 'CTCL-map' (ids >= 2,000,000,000).
Every decision this script makes (standard flags, exclusions, ancestry) is documented in
vocab/README.md; change both together. Run: python tools/build_vocab_subset.py
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

VOCAB_DIR = Path(__file__).resolve().parents[1] / "vocab"
REFERENCE_CSV = VOCAB_DIR.parents[1] / "shared" / "reference" / "vocab-concepts.csv"
EXTRA_CSV = VOCAB_DIR / "extra_verified.csv"

VALID_START, VALID_END = "19700101", "20991231"
OWN_SOURCE = "ctcl-map (own concept)"
OWN_VOCABULARY = "CTCL-map"
VOCABULARY_VERSION = "ctcl-map shipped subset 2026-11"

CONCEPT_COLUMNS = [
    "concept_id", "concept_name", "domain_id", "vocabulary_id", "concept_class_id",
    "standard_concept", "concept_code", "valid_start_date", "valid_end_date", "invalid_reason",
    "source", "confidence",
]

# (concept_id, concept_code, concept_name, domain_id, concept_class_id); ranges by kind:
# 2000000001 vocabulary, 20000000[1-2]x blood (B) staging, 200000010x labs, 200000020x
# prognosis/histology, 200000030x procedures. Ids never change once shipped.
OWN_CONCEPTS = [
    (2000000001, "CTCL-map", "CTCL-map: ctcl-map project vocabulary for CTCL concepts missing from OMOP", "Metadata", "Vocabulary"),
    (2000000010, "ISCL-B", "ISCL/EORTC blood (B) category", "Measurement", "Staging/Grading"),
    (2000000011, "B0", "ISCL/EORTC B0", "Meas Value", "Answer"),
    (2000000012, "B0a", "ISCL/EORTC B0a (clone negative)", "Meas Value", "Answer"),
    (2000000013, "B0b", "ISCL/EORTC B0b (clone positive)", "Meas Value", "Answer"),
    (2000000014, "B1", "ISCL/EORTC B1", "Meas Value", "Answer"),
    (2000000015, "B1a", "ISCL/EORTC B1a (clone negative)", "Meas Value", "Answer"),
    (2000000016, "B1b", "ISCL/EORTC B1b (clone positive)", "Meas Value", "Answer"),
    (2000000017, "B2", "ISCL/EORTC B2", "Meas Value", "Answer"),
    (2000000018, "B2a", "ISCL/EORTC B2a (clone negative or equivocal, 2022)", "Meas Value", "Answer"),
    (2000000019, "B2b", "ISCL/EORTC B2b (clone positive, 2022)", "Meas Value", "Answer"),
    (2000000020, "BX", "ISCL/EORTC BX (blood involvement cannot be assessed)", "Meas Value", "Answer"),
    (2000000101, "SEZARY-ABS", "Sezary cells [#/volume] in Blood", "Measurement", "Lab Test"),
    (2000000102, "SEZARY-PCT", "Sezary cells/100 lymphocytes in Blood", "Measurement", "Lab Test"),
    (2000000103, "CD4CD26NEG-ABS", "CD4+CD26- T cells [#/volume] in Blood", "Measurement", "Lab Test"),
    (2000000104, "CD4CD7NEG-ABS", "CD4+CD7- T cells [#/volume] in Blood", "Measurement", "Lab Test"),
    (2000000105, "TCR-CLONE-BLOOD", "T-cell receptor clone in Blood (same clone as skin)", "Measurement", "Lab Test"),
    (2000000106, "CLONE-POS", "T-cell clone detected", "Meas Value", "Answer"),
    (2000000107, "CLONE-NEG", "T-cell clone not detected", "Meas Value", "Answer"),
    (2000000201, "LCT", "Large-cell transformation of mycosis fungoides (histology)", "Observation", "Clinical Observation"),
    (2000000202, "CLIPI-SCORE", "PROCLIPI advanced-stage prognostic index (CLIPI) score, points 0-4", "Measurement", "Clinical Observation"),
    (2000000203, "CLIPI-RISK", "CLIPI risk group", "Measurement", "Staging/Grading"),
    (2000000204, "CLIPI-LOW", "CLIPI low risk (0-1 points)", "Meas Value", "Answer"),
    (2000000205, "CLIPI-INT", "CLIPI intermediate risk (2 points)", "Meas Value", "Answer"),
    (2000000206, "CLIPI-HIGH", "CLIPI high risk (3-4 points)", "Meas Value", "Answer"),
    (2000000301, "ECP", "Extracorporeal photopheresis", "Procedure", "Procedure"),
    (2000000302, "TSEBT", "Total skin electron beam therapy", "Procedure", "Procedure"),
    (2000000303, "NBUVB", "Narrow-band ultraviolet B phototherapy", "Procedure", "Procedure"),
]

# Standard flags as the reference list writes them -> OMOP value ('' = non-standard/NULL).
# LOINC answers: blank in the OncologyWG delta file; we ship them standard (decision in README).
_STANDARD = {
    "S": "S", "S (inferred)": "S", "S? (inferred)": "S", "S (blank in file; seed rows give S)": "S",
    "(blank in delta file; official vocab likely S)": "S",
    "(blank in delta file)": "", "(blank)": "", "N": "", "": "", "(older type concept)": "",
}
_UNKNOWN = ("?",)


def _clean(value: str) -> str:
    """Drop the reference list's annotations: ' (inferred)', ' (class blank in file)' ..."""
    value = re.sub(r"\s*\((inferred|class blank in file|matched by name|inferred name)\)", "", value)
    return value.strip()


def reference_concepts() -> list[dict[str, str]]:
    rows: dict[str, dict[str, str]] = {}
    with REFERENCE_CSV.open(encoding="utf-8") as handle:
        for ref in csv.DictReader(handle):
            if ref["confidence"] not in ("verified-from-file", "verified-id+name", "verified-id (usage) / inferred name"):
                continue  # 'inferred' rows are excluded (README: excluded list)
            fields = {k: _clean(ref[k]) for k in ("domain_id", "vocabulary_id", "concept_class_id")}
            if any(v.startswith(_UNKNOWN) for v in fields.values()) or ref["standard_concept"].startswith(_UNKNOWN):
                continue  # attributes unknown (liposomal doxorubicin ids): not shippable
            if ref["concept_id"] in rows:
                continue  # section 2 and Appendix A repeat some rows
            name = _clean(ref["concept_name"])
            name = re.sub(r"\s*\[.*\]$", "", name)  # 'Non-standard to Standard map (OMOP) [relationship ...]'
            code = _clean(ref["concept_code"])
            rows[ref["concept_id"]] = {
                "concept_id": ref["concept_id"], "concept_name": name,
                "domain_id": fields["domain_id"], "vocabulary_id": fields["vocabulary_id"],
                "concept_class_id": fields["concept_class_id"],
                "standard_concept": _STANDARD[ref["standard_concept"]],
                "concept_code": "" if code == "(not seen)" else code,
                "valid_start_date": VALID_START, "valid_end_date": VALID_END, "invalid_reason": "",
                "source": ref["source"],
                "confidence": "verified-from-file" if ref["confidence"] == "verified-from-file" else "verified-id+name",
            }
    return list(rows.values())


def extra_concepts() -> list[dict[str, str]]:
    with EXTRA_CSV.open(encoding="utf-8") as handle:
        return [
            {**{k: row[k] for k in CONCEPT_COLUMNS if k in row}, "valid_start_date": VALID_START,
             "valid_end_date": VALID_END, "invalid_reason": ""}
            for row in csv.DictReader(handle)
        ]


def own_concepts() -> list[dict[str, str]]:
    return [
        {"concept_id": str(cid), "concept_name": name, "domain_id": domain, "vocabulary_id": OWN_VOCABULARY,
         "concept_class_id": cls, "standard_concept": "" if cls == "Vocabulary" else "S", "concept_code": code,
         "valid_start_date": VALID_START, "valid_end_date": VALID_END, "invalid_reason": "",
         "source": OWN_SOURCE, "confidence": "ours"}
        for cid, code, name, domain, cls in OWN_CONCEPTS
    ]


# Non-standard concepts of the subset and their documented standard target.
MAPS_TO = [
    ("135204", "4040380", "OHDSI OncologyWG white-list 135204 -> 4040380, as recorded in shared/reference/vocab-concepts.csv"),
    ("135759", "4041799", "OHDSI OncologyWG white-list 135759 -> 4041799, as recorded in shared/reference/vocab-concepts.csv"),
]

MF, SS, PCALCL = "4040380", "4041799", "36676804"
MF_CHILDREN = [
    "35623049", "4301661", "4300695", "4301662", "4297351", "4301660", "4299139", "4301663", "4301664",
    "4300697", "4300696", "4299141", "135764", "201813", "442169", "134879", "442168", "602073", "609236",
    "609126", "37165807", "37165808", "37165809", "37165851",
]
SS_CHILDREN = ["140664", "439265", "439267", "138378", "439266", "439270", "195760", "37165825", "37165826", "37165827"]


def _write(name: str, columns: list[str], rows: list[dict[str, str]]) -> None:
    with (VOCAB_DIR / name).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def build() -> None:
    concepts = reference_concepts() + extra_concepts() + own_concepts()
    by_id = {c["concept_id"]: c for c in concepts}
    assert len(by_id) == len(concepts), "duplicate concept_id across inputs"
    standard = [c for c in concepts if c["standard_concept"] == "S"]
    _write("CONCEPT.csv", CONCEPT_COLUMNS, concepts)

    rel_cols = ["concept_id_1", "concept_id_2", "relationship_id", "valid_start_date", "valid_end_date", "invalid_reason", "source"]
    relationships = []
    for source_id, target_id, note in MAPS_TO:
        relationships.append(dict(zip(rel_cols, [source_id, target_id, "Maps to", VALID_START, VALID_END, "", note])))
        relationships.append(dict(zip(rel_cols, [target_id, source_id, "Mapped from", VALID_START, VALID_END, "", note])))
    for c in standard:  # OMOP convention: every standard concept 'Maps to' itself
        note = "OMOP convention: a standard concept maps to itself"
        relationships.append(dict(zip(rel_cols, [c["concept_id"], c["concept_id"], "Maps to", VALID_START, VALID_END, "", note])))
        relationships.append(dict(zip(rel_cols, [c["concept_id"], c["concept_id"], "Mapped from", VALID_START, VALID_END, "", note])))
    _write("CONCEPT_RELATIONSHIP.csv", rel_cols, relationships)

    anc_cols = ["ancestor_concept_id", "descendant_concept_id", "min_levels_of_separation", "max_levels_of_separation"]
    ancestors = [dict(zip(anc_cols, [c["concept_id"], c["concept_id"], "0", "0"])) for c in standard]
    icdo3_parent = {"9700/3": MF, "9701/3": SS, "9718/3": PCALCL}
    children = [(MF, cid) for cid in MF_CHILDREN] + [(SS, cid) for cid in SS_CHILDREN]
    children += [
        (icdo3_parent[c["concept_code"][:6]], c["concept_id"]) for c in standard
        if c["vocabulary_id"] == "ICDO3" and c["concept_code"][:6] in icdo3_parent
    ]
    for parent, child in children:
        assert by_id[parent]["standard_concept"] == "S" and by_id[child]["standard_concept"] == "S", (parent, child)
        ancestors.append(dict(zip(anc_cols, [parent, child, "1", "1"])))
    _write("CONCEPT_ANCESTOR.csv", anc_cols, ancestors)
    _write_metadata(concepts)


VOCABULARY_NAMES = {
    "SNOMED": "Systematic Nomenclature of Medicine - Clinical Terms (IHTSDO)", "ICDO3": "International Classification of Diseases for Oncology, Third Edition (WHO)",
    "RxNorm": "RxNorm (NLM)", "HemOnc": "HemOnc", "CPT4": "Current Procedural Terminology version 4 (AMA)",
    "LOINC": "Logical Observation Identifiers Names and Codes (Regenstrief Institute)", "Cancer Modifier": "Diagnostic Modifiers of Cancer (OMOP)",
    "NAACCR": "Data Standards & Data Dictionary Volume II (NAACCR)", "Gender": "OMOP Gender", "Race": "Race and Ethnicity Code Set (USBC)",
    "Ethnicity": "OMOP Ethnicity", "Visit": "OMOP Visit", "NUCC": "National Uniform Claim Committee Health Care Provider Taxonomy Code Set (NUCC)",
    "Type Concept": "OMOP Type Concept", "Condition Status": "OMOP Condition Status", "Episode": "OMOP Episode",
    "Relationship": "OMOP Relationship", "CDM": "OMOP Common Data Model", "None": "OMOP Standardized Vocabularies",
    "UCUM": "Unified Code for Units of Measure (Regenstrief Institute)", OWN_VOCABULARY: "ctcl-map CTCL concepts missing from OMOP",
}


def _write_metadata(concepts: list[dict[str, str]]) -> None:
    vocabularies = sorted({c["vocabulary_id"] for c in concepts})
    _write("VOCABULARY.csv", ["vocabulary_id", "vocabulary_name", "vocabulary_reference", "vocabulary_version", "vocabulary_concept_id"], [
        {"vocabulary_id": v, "vocabulary_name": VOCABULARY_NAMES[v],
         "vocabulary_reference": "https://ctcl-map.org/vocab" if v == OWN_VOCABULARY else "OMOP generated",
         "vocabulary_version": VOCABULARY_VERSION if v in ("None", OWN_VOCABULARY) else "",
         "vocabulary_concept_id": "2000000001" if v == OWN_VOCABULARY else "0"}
        for v in vocabularies
    ])
    _write("DOMAIN.csv", ["domain_id", "domain_name", "domain_concept_id"], [
        {"domain_id": d, "domain_name": d, "domain_concept_id": "0"} for d in sorted({c["domain_id"] for c in concepts})
    ])
    _write("CONCEPT_CLASS.csv", ["concept_class_id", "concept_class_name", "concept_class_concept_id"], [
        {"concept_class_id": k, "concept_class_name": k, "concept_class_concept_id": "0"}
        for k in sorted({c["concept_class_id"] for c in concepts})
    ])
    _write("RELATIONSHIP.csv", ["relationship_id", "relationship_name", "is_hierarchical", "defines_ancestry", "reverse_relationship_id", "relationship_concept_id"], [
        {"relationship_id": "Maps to", "relationship_name": "Non-standard to Standard map (OMOP)", "is_hierarchical": "0",
         "defines_ancestry": "0", "reverse_relationship_id": "Mapped from", "relationship_concept_id": "44818977"},
        {"relationship_id": "Mapped from", "relationship_name": "Standard to Non-standard map (OMOP)", "is_hierarchical": "0",
         "defines_ancestry": "0", "reverse_relationship_id": "Maps to", "relationship_concept_id": "44818976"},
    ])


if __name__ == "__main__":
    build()
