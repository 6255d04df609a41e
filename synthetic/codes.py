"""Code systems and codes the generator writes (docs/codes.md is the contract).

Only codes listed in docs/codes.md or verified in ../shared/reference are used; where no verified
code exists (bexarotene/vorinostat/romidepsin RxCUIs, nbUVB, TSEBT) the drug/procedure is sent
with the codings that do exist (ATC, local, CTCL-map) instead of a guessed one.
"""

from __future__ import annotations

from typing import TypedDict

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICDO3 = "http://terminology.hl7.org/CodeSystem/icd-o-3"
ATC = "http://www.whocc.no/atc"
CPT = "http://www.ama-assn.org/go/cpt"
UCUM = "http://unitsofmeasure.org"
CTCL = "http://ctcl-map.org/fhir/CodeSystem/ctcl"
LOCAL_DRUGS = "http://hospital.example.org/fhir/CodeSystem/local-drugs"
MRN_SYSTEM = "http://hospital.example.org/fhir/sid/mrn"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
YES_NO = "http://terminology.hl7.org/CodeSystem/v2-0136"
OMB_RACE_ETHNICITY = "urn:oid:2.16.840.1.113883.6.238"
US_CORE_RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
US_CORE_ETHNICITY = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"

# Diagnosis codings per subtype: (system, code, display).
DIAGNOSIS_CODINGS: dict[str, dict[str, tuple[str, str, str]]] = {
    "mf": {
        "icd10": (ICD10, "C84.0", "Mycosis fungoides"),
        "icd10cm": (ICD10CM, "C84.00", "Mycosis fungoides, unspecified site"),
        "icd10cm_extranodal": (ICD10CM, "C84.09", "Mycosis fungoides, extranodal and solid organ sites"),
        "icdo3": (ICDO3, "9700/3", "Mycosis fungoides"),
        "snomed": (SNOMED, "118618005", "Mycosis fungoides"),
    },
    "ss": {
        "icd10": (ICD10, "C84.1", "Sezary disease"),
        "icd10cm": (ICD10CM, "C84.10", "Sezary disease, unspecified site"),
        "icd10cm_extranodal": (ICD10CM, "C84.19", "Sezary disease, extranodal and solid organ sites"),
        "icdo3": (ICDO3, "9701/3", "Sezary syndrome"),
        "snomed": (SNOMED, "118611004", "Sezary's disease"),
    },
}
DIAGNOSIS_TEXTS = {
    "mf": ("Mycosis fungoides", "mycosis fungoides, plaque stage", "MF", "Mycosis Fungoides (CTCL)"),
    "ss": ("Sezary syndrome", "Sézary syndrome", "SS - Sezary", "Sezary's disease"),
}

# LOINC staging questions (docs/codes.md).
LOINC_T, LOINC_N, LOINC_M, LOINC_STAGE = "21905-5", "21906-3", "21907-1", "21908-9"
LOINC_DISPLAY = {
    LOINC_T: "Primary tumor.clinical [Class] Cancer",
    LOINC_N: "Regional lymph nodes.clinical [Class] Cancer",
    LOINC_M: "Distant metastases.clinical [Class] Cancer",
    LOINC_STAGE: "Stage group.clinical Cancer",
}
# LOINC answers for stage groups (vocab-concepts.md, OncologyWG deltaConcept.csv).
STAGE_LOINC_ANSWERS = {
    "IA": "LA3663-7", "IB": "LA3662-9", "IIA": "LA3660-3", "IIB": "LA3659-5",
    "III": "LA3657-9", "IIIA": "LA3656-1", "IIIB": "LA3655-3",
    "IVA1": "LA21872-9", "IVA2": "LA21850-5", "IVB": "LA3649-6",
}
ARABIC_STAGE = {
    "IA": "1A", "IB": "1B", "IIA": "2A", "IIB": "2B", "III": "3", "IIIA": "3A", "IIIB": "3B",
    "IVA1": "4A1", "IVA2": "4A2", "IVB": "4B",
}

# Blood and lab observations: (system, code, display, UCUM unit).
SEZARY_ABS = (LOINC, "34918-3", "Sezary cells [#/volume] in Blood", "/uL")
SEZARY_PCT = (CTCL, "SEZARY-PCT", "Sezary cells/100 lymphocytes in Blood", "%")
LYMPHOCYTES = (LOINC, "731-0", "Lymphocytes [#/volume] in Blood by Automated count", "10*3/uL")
CD4CD26NEG_ABS = (CTCL, "CD4CD26NEG-ABS", "CD4+CD26- T cells [#/volume] in Blood", "/uL")
CD4_CD8_RATIO = (LOINC, "54218-3", "CD3+CD4+ cells/CD3+CD8+ cells [# Ratio] in Blood", "{ratio}")
TCR_CLONE = (CTCL, "TCR-CLONE-BLOOD", "T-cell receptor clone in blood (same clone as skin)", "")
LDH = (LOINC, "2532-0", "Lactate dehydrogenase [Enzymatic activity/volume] in Serum or Plasma", "U/L")
ISCL_B = (CTCL, "ISCL-B", "ISCL/EORTC blood (B) category", "")
LCT = (CTCL, "LCT", "Large-cell transformation (histology)", "")
BODY_WEIGHT = (LOINC, "29463-7", "Body weight", "kg")
BODY_HEIGHT = (LOINC, "8302-2", "Body height", "cm")

# Drugs: key -> properties. rxnorm only where the RxCUI is verified (docs/codes.md). A brand is
# also sent as text only (brand_text style) unless it is a generic description (methotrexate).
class DrugCodes(TypedDict):
    rxnorm: str | None  # None: no verified RxCUI
    atc: str
    atc_old: str | None  # the ATC code before a reclassification, if any
    local: str
    brand: str
    route: str  # a key of ROUTES


DRUGS: dict[str, DrugCodes] = {
    "mogamulizumab": {"rxnorm": "2054068", "atc": "L01FX09", "atc_old": "L01XC25", "local": "MOGA-IV",
                      "brand": "Poteligeo", "route": "IV"},
    "brentuximab vedotin": {"rxnorm": "1147320", "atc": "L01FX05", "atc_old": None, "local": "BV-IV",
                            "brand": "Adcetris", "route": "IV"},
    "romidepsin": {"rxnorm": None, "atc": "L01XH02", "atc_old": "L01XX39", "local": "ROMI-IV",
                   "brand": "Istodax", "route": "IV"},
    "gemcitabine": {"rxnorm": "12574", "atc": "L01BC05", "atc_old": None, "local": "GEM-IV",
                    "brand": "Gemzar", "route": "IV"},
    "bexarotene": {"rxnorm": None, "atc": "L01XF03", "atc_old": "L01XX25", "local": "BEXA-PO",
                   "brand": "Targretin", "route": "PO"},
    "vorinostat": {"rxnorm": None, "atc": "L01XH01", "atc_old": "L01XX38", "local": "VORI-PO",
                   "brand": "Zolinza", "route": "PO"},
    "methotrexate": {"rxnorm": "6851", "atc": "L01BA01", "atc_old": None, "local": "MTX-PO",
                     "brand": "Methotrexate 2.5 mg tablets", "route": "PO"},
    "interferon alfa-2b": {"rxnorm": "5880", "atc": "L03AB05", "atc_old": None, "local": "IFN-SC",
                           "brand": "Intron A", "route": "SC"},
    "chlormethine": {"rxnorm": "6674", "atc": "L01AA05", "atc_old": None, "local": "CHLORMETH-GEL",
                     "brand": "Ledaga", "route": "TOP"},
}
# Local codes the example site override maps (samples/site-mappings/therapies.csv, another
# module's file; tests/test_synthetic.py checks they are listed there). Other local codes are
# always sent together with their ATC code, so they never decide whether a drug is recognised.
SITE_MAPPED_LOCAL_DRUGS = frozenset({"MOGA-IV", "BEXA-PO", "MTX-PO", "CHLORMETH-GEL", "VORI-PO", "ROMI-IV", "BV-IV",
                                     "GEM-IV", "IFN-SC"})
ROUTES = {  # SNOMED route codes (FHIR example route value set)
    "IV": ("47625008", "Intravenous route"),
    "PO": ("26643006", "Oral route"),
    "SC": ("34206005", "Subcutaneous route"),
    "TOP": ("6064005", "Topical route"),
}
# Local codes the example site mapping (samples/site-mappings/) deliberately does not cover.
UNKNOWN_LOCAL_DRUGS = (("TRIAL-CTCL-07", "Study drug CTCL-07 (blinded)"), ("XX-ONC-991", "Oncology compound 991"))

# Procedures: key -> list of codings (system, code, display); first one always written.
PROCEDURES: dict[str, list[tuple[str, str, str]]] = {
    "puva": [(SNOMED, "46467001", "Photochemotherapy with psoralens and ultraviolet A"),
             (CPT, "96912", "Photochemotherapy; psoralens and ultraviolet A (PUVA)")],
    "nbuvb": [(CTCL, "NBUVB", "Narrow-band UVB phototherapy")],
    "tsebt": [(CTCL, "TSEBT", "Total skin electron beam therapy")],
    "ecp": [(CPT, "36522", "Photopheresis, extracorporeal"), (CTCL, "ECP", "Extracorporeal photopheresis")],
    "allo_sct": [(CPT, "38240", "Hematopoietic progenitor cell (HPC); allogeneic transplantation per donor"),
                 (SNOMED, "234336002", "Hemopoietic stem cell transplant")],
}
LOCAL_PROCEDURES = "http://hospital.example.org/fhir/CodeSystem/local-procedures"
# Site-local procedure codes (mapped only by samples/site-mappings/procedures.csv).
LOCAL_PROCEDURE_CODES = {"ecp": ("ECP-LOCAL", "Extracorporeal photopheresis session"),
                         "tsebt": ("TSEBT-LOCAL", "Total skin electron beam course")}
PROCEDURE_TEXTS = {
    "puva": "PUVA", "nbuvb": "nbUVB phototherapy", "tsebt": "TSEBT 30 Gy",
    "ecp": "Extracorporeal photopheresis", "allo_sct": "Allogeneic stem cell transplant",
}
