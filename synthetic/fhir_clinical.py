"""Diagnosis Condition, staging Observations (T, N, M, B, group) in the input styles of
docs/codes.md, raw blood values, LDH, large-cell transformation, weight and height."""

from __future__ import annotations

from datetime import date

from ctcl_map.synthetic import codes
from ctcl_map.synthetic.fhir_base import BuildContext, coding, quantity
from ctcl_map.synthetic.model import StagingSet

DIAGNOSIS_STYLES = {"icd10": 0.2, "icd10cm": 0.15, "icdo3": 0.1, "snomed": 0.1, "icd10+icdo3": 0.1,
                    "icd10cm+snomed": 0.15, "icd10+snomed+icdo3": 0.1, "text": 0.1}
STAGE_STYLES = {"loinc_answer": 0.35, "text_stage": 0.2, "arabic_string": 0.15, "variant_string": 0.15, "roman_text": 0.15}
CATEGORY_STYLES = {"text": 0.5, "string": 0.3, "prefixed_string": 0.2}
B_STYLES = {"code": 0.5, "text": 0.3, "string": 0.2}
CLINICAL_STATUS = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


def _category(code: str) -> list[dict]:
    return [{"coding": [coding(codes.OBS_CATEGORY, code)]}]


def diagnosis_code(context: BuildContext) -> dict:
    subtype, style = context.course.subtype, context.styles["diagnosis"]
    texts = codes.DIAGNOSIS_TEXTS[subtype]
    if style == "text":
        return {"text": context.rng.choice(texts)}
    table = codes.DIAGNOSIS_CODINGS[subtype]
    keys = [("icd10cm_extranodal" if k == "icd10cm" and context.rng.random() < 0.2 else k) for k in style.split("+")]
    concept: dict = {"coding": [coding(*table[k]) for k in keys]}
    if context.rng.random() < 0.7:
        concept["text"] = texts[0]
    return concept


def build_condition(context: BuildContext, condition_id: str, stage_refs: dict[str, str] | None) -> dict:
    """The MF/SS diagnosis; onset = diagnosis date; stage (summary + assessment) when ``stage_refs``."""
    course = context.course
    condition: dict = {
        "resourceType": "Condition", "id": condition_id, "meta": {"versionId": "1"},
        "clinicalStatus": {"coding": [coding(CLINICAL_STATUS, "active")]},
        "verificationStatus": {"coding": [coding(VERIFICATION_STATUS, "confirmed")]},
        "category": [{"coding": [coding("http://terminology.hl7.org/CodeSystem/condition-category",
                                        "encounter-diagnosis", "Encounter Diagnosis")]}],
        "code": diagnosis_code(context),
        "subject": context.patient_ref,
        "encounter": context.encounter(course.diagnosis_date),
        "onsetDateTime": course.diagnosis_date.isoformat() if context.rng.random() < 0.5 else context.datetime(course.diagnosis_date),
        "recordedDate": context.datetime(course.diagnosis_date),
    }
    if stage_refs is not None:
        group = course.stagings[0].stage_group
        summary = ({"coding": [coding(codes.LOINC, codes.STAGE_LOINC_ANSWERS[group], f"Stage {group}")]}
                   if context.rng.random() < 0.5 else {"text": f"Stage {group} (ISCL/EORTC)"})
        condition["stage"] = [{"summary": summary,
                               "assessment": [{"reference": f"Observation/{ref}"} for ref in stage_refs.values()]}]
    return context.add(condition)


def build_visit_diagnosis(context: BuildContext, diagnosis: dict, day: date) -> dict:
    """The diagnosis again as an encounter diagnosis of a follow-up visit: same code as the first
    record, no onset, recorded that day (so the CDM row starts on the visit date)."""
    return context.add({
        "resourceType": "Condition", "id": context.new_id(), "meta": {"versionId": "1"},
        "clinicalStatus": diagnosis["clinicalStatus"],
        "verificationStatus": diagnosis["verificationStatus"],
        "category": diagnosis["category"],
        "code": diagnosis["code"],
        "subject": context.patient_ref,
        "encounter": context.encounter(day),
        "recordedDate": context.datetime(day),
    })


def stage_value(context: BuildContext, group: str) -> dict:
    """The stage group in this patient's style: LOINC answer, 'Stage IVA1', '4A1', 'IVA-1', 'IIB'."""
    style = context.styles["stage"]
    if style == "loinc_answer":
        return {"valueCodeableConcept": {"coding": [coding(codes.LOINC, codes.STAGE_LOINC_ANSWERS[group], f"Stage {group}")],
                                         "text": f"Stage {group}"}}
    if style == "text_stage":
        return {"valueCodeableConcept": {"text": f"Stage {group}"}}
    if style == "arabic_string":
        return {"valueString": codes.ARABIC_STAGE[group]}
    if style == "variant_string":
        variant = group[:-1] + "-" + group[-1] if group.endswith(("1", "2")) else group.lower()
        return {"valueString": variant if context.rng.random() < 0.5 else group.replace("IV", "IV ")}
    return {"valueCodeableConcept": {"text": group}}


def category_value(context: BuildContext, category: str) -> dict:
    style = context.styles["category"]
    if style == "text":
        return {"valueCodeableConcept": {"text": category}}
    if style == "prefixed_string" and category[0] in "TNM":
        return {"valueString": "c" + category}
    return {"valueString": category}


def b_value(context: BuildContext, b: str) -> dict:
    style = context.styles["b"]
    if style == "code":
        return {"valueCodeableConcept": {"coding": [coding(codes.CTCL, b)], "text": b}}
    if style == "text":
        return {"valueCodeableConcept": {"text": b}}
    return {"valueString": b}


def _observation(context: BuildContext, staging: StagingSet, code: tuple, category: str, value: dict) -> dict:
    system, code_value, display = code[:3]
    observation = {
        "resourceType": "Observation", "id": context.new_id(), "meta": {"versionId": "1"}, "status": "final",
        "category": _category(category),
        "code": {"coding": [coding(system, code_value, display)], "text": display},
        "subject": context.patient_ref,
        "encounter": context.encounter(staging.staging_date),
        "effectiveDateTime": context.datetime(staging.staging_date),
    }
    observation.update(value)
    return context.add(observation)


def build_staging(context: BuildContext, staging: StagingSet, condition_id: str, written_group: str) -> dict[str, str]:
    """T, N, M, B and group Observations; returns their ids by axis. ``written_group`` is the
    derived group except where the messy mode deliberately writes a disagreeing one."""
    ids: dict[str, str] = {}
    for axis, loinc_code, category in (("T", codes.LOINC_T, staging.t), ("N", codes.LOINC_N, staging.n),
                                       ("M", codes.LOINC_M, staging.m)):
        obs = _observation(context, staging, (codes.LOINC, loinc_code, codes.LOINC_DISPLAY[loinc_code]), "survey",
                           category_value(context, category))
        obs["focus"] = [{"reference": f"Condition/{condition_id}"}]
        ids[axis] = obs["id"]
    ids["B"] = _observation(context, staging, codes.ISCL_B, "survey", b_value(context, staging.b))["id"]
    group = _observation(context, staging, (codes.LOINC, codes.LOINC_STAGE, codes.LOINC_DISPLAY[codes.LOINC_STAGE]),
                         "survey", stage_value(context, written_group))
    group["method"] = {"text": "ISCL/EORTC 2007 (Olsen)"}
    group["focus"] = [{"reference": f"Condition/{condition_id}"}]
    if context.rng.random() < 0.5:
        group["hasMember"] = [{"reference": f"Observation/{ids[axis]}"} for axis in "TNMB"]
    ids["group"] = group["id"]
    return ids


def build_labs(context: BuildContext, staging: StagingSet) -> dict[str, str]:
    """Flow cytometry, clone, LDH (with reference range) and LCT on the staging date."""
    ids: dict[str, str] = {}
    for key, code, value in (("lymphocytes", codes.LYMPHOCYTES, round(staging.lymphocytes_per_ul / 1000, 2)),
                             ("sezary", codes.SEZARY_ABS, staging.sezary_per_ul),
                             ("sezary_pct", codes.SEZARY_PCT, staging.sezary_pct_lymphocytes),
                             ("cd4cd26", codes.CD4CD26NEG_ABS, staging.cd4cd26neg_per_ul),
                             ("ratio", codes.CD4_CD8_RATIO, staging.cd4_cd8_ratio)):
        ids[key] = _observation(context, staging, code, "laboratory", {"valueQuantity": quantity(value, code[3])})["id"]
    clone = "CLONE-POS" if staging.blood_clone else "CLONE-NEG"
    ids["clone"] = _observation(context, staging, codes.TCR_CLONE, "laboratory",
                                {"valueCodeableConcept": {"coding": [coding(codes.CTCL, clone)],
                                                          "text": "clone detected" if staging.blood_clone else "no clone"}})["id"]
    ldh = _observation(context, staging, codes.LDH, "laboratory", {"valueQuantity": quantity(staging.ldh_u_per_l, "U/L")})
    ldh["referenceRange"] = [{"low": quantity(staging.ldh_upper_limit // 2 + 10, "U/L"),
                              "high": quantity(staging.ldh_upper_limit, "U/L")}]
    if staging.ldh_u_per_l > staging.ldh_upper_limit:
        ldh["interpretation"] = [{"coding": [coding(INTERPRETATION, "H", "High")]}]
    ids["ldh"] = ldh["id"]
    if context.styles["lct"] == "boolean":
        lct_value: dict = {"valueBoolean": staging.lct}
    else:
        answer = ("Y", "Yes") if staging.lct else ("N", "No")
        lct_value = {"valueCodeableConcept": {"coding": [coding(codes.YES_NO, *answer)],
                                              "text": "large-cell transformation" + ("" if staging.lct else " absent")}}
    ids["lct"] = _observation(context, staging, codes.LCT, "laboratory", lct_value)["id"]
    return ids


def build_body_measures(context: BuildContext, staging: StagingSet) -> None:
    course = context.course
    for code, value in ((codes.BODY_WEIGHT, course.weight_kg), (codes.BODY_HEIGHT, course.height_cm)):
        _observation(context, staging, code, "vital-signs", {"valueQuantity": quantity(value, code[3])})
