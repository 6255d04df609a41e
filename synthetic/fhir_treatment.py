"""Drugs (MedicationAdministration per infusion, MedicationRequest for oral/SC/topical) and
procedures (PUVA, nbUVB, TSEBT, ECP, allogeneic SCT), with the coding variety of real feeds."""

from __future__ import annotations

from datetime import date, timedelta

from ctcl_map.synthetic import codes
from ctcl_map.synthetic.fhir_base import BuildContext, coding, quantity
from ctcl_map.synthetic.model import DrugCourse, ProcedureCourse

DRUG_STYLES = {"rxnorm": 0.25, "atc": 0.15, "atc_old": 0.1, "local": 0.15, "rxnorm+atc": 0.1,
               "contained": 0.1, "medication_resource": 0.1, "brand_text": 0.05}
ORAL_INSTRUCTIONS = {
    "bexarotene": "300 mg/m2 orally once daily with a meal",
    "vorinostat": "400 mg orally once daily",
    "methotrexate": "25 mg orally once weekly",
    "interferon alfa-2b": "3 million units subcutaneously three times weekly",
    "chlormethine": "apply a thin film to affected skin once daily",
}


def drug_concept(context: BuildContext, drug: str, style: str) -> dict:
    """CodeableConcept for ``drug`` in a coding style; falls back to ATC where the style's code
    does not exist for the drug (no verified RxCUI, no old ATC code, no local code)."""
    props = codes.DRUGS[drug]
    if style == "brand_text" and drug != "methotrexate":  # brand name only, as some order systems send it
        return {"text": props["brand"]}
    parts = style.split("+")
    codings = []
    if "rxnorm" in parts and props["rxnorm"]:
        codings.append(coding(codes.RXNORM, props["rxnorm"], drug))
    if "atc_old" in parts and props["atc_old"]:
        codings.append(coding(codes.ATC, props["atc_old"], drug))
    if "local" in parts and props["local"]:
        codings.append(coding(codes.LOCAL_DRUGS, props["local"], props["brand"]))
        if props["local"] not in codes.SITE_MAPPED_LOCAL_DRUGS:
            parts.append("atc")
    if "atc" in parts or not codings:
        codings.append(coding(codes.ATC, props["atc"], drug))
    return {"coding": codings, "text": props["brand"]}


def _medication_element(context: BuildContext, drug: str, resource: dict) -> dict:
    """medicationCodeableConcept, or a reference to a contained / stand-alone Medication."""
    style = context.styles["drug"]
    if style == "contained":
        resource["contained"] = [{"resourceType": "Medication", "id": "med1",
                                  "code": drug_concept(context, drug, context.rng.choice(("rxnorm", "atc", "local")))}]
        return {"medicationReference": {"reference": "#med1"}}
    if style == "medication_resource":
        key = f"medication:{drug}"
        if key not in context.styles:
            medication = context.add({"resourceType": "Medication", "id": context.new_id(),
                                      "code": drug_concept(context, drug, "rxnorm+atc")})
            context.styles[key] = medication["id"]
        return {"medicationReference": {"reference": f"Medication/{context.styles[key]}"}}
    return {"medicationCodeableConcept": drug_concept(context, drug, style)}


def _route(drug: str) -> dict:
    return {"coding": [coding(codes.SNOMED, *codes.ROUTES[codes.DRUGS[drug]["route"]])]}


def build_administration(context: BuildContext, course: DrugCourse, day: date, dose_mg: float,
                         condition_id: str, status: str = "completed") -> dict:
    resource: dict = {"resourceType": "MedicationAdministration", "id": context.new_id(), "meta": {"versionId": "1"},
                      "status": status}
    resource.update(_medication_element(context, course.drug, resource))
    resource["subject"] = context.patient_ref
    resource["context"] = context.encounter(day)
    start = context.datetime(day, context.rng.randint(9, 14))
    if context.rng.random() < 0.5:
        resource["effectiveDateTime"] = start
    else:
        resource["effectivePeriod"] = {"start": start, "end": start[:11] + "15" + start[13:]}
    resource["reasonReference"] = [{"reference": f"Condition/{condition_id}"}]
    per_kg = {"mogamulizumab": "1 mg/kg", "brentuximab vedotin": "1.8 mg/kg"}.get(course.drug)
    per_m2 = {"romidepsin": "14 mg/m2", "gemcitabine": "1000 mg/m2"}.get(course.drug)
    resource["dosage"] = {"text": f"{course.drug} {per_kg or per_m2} IV infusion", "route": _route(course.drug),
                          "dose": quantity(dose_mg, "mg")}
    return context.add(resource)


def build_request(context: BuildContext, course: DrugCourse, day: date, condition_id: str, status: str) -> dict:
    """One prescription (first or renewal) covering up to 90 days of the course."""
    valid_end = min(day + timedelta(days=90), course.end)
    resource: dict = {"resourceType": "MedicationRequest", "id": context.new_id(), "meta": {"versionId": "1"},
                      "status": status, "intent": "order"}
    resource.update(_medication_element(context, course.drug, resource))
    resource["subject"] = context.patient_ref
    resource["encounter"] = context.encounter(day)
    resource["authoredOn"] = context.datetime(day)
    resource["reasonReference"] = [{"reference": f"Condition/{condition_id}"}]
    resource["dosageInstruction"] = [{
        "text": ORAL_INSTRUCTIONS[course.drug], "route": _route(course.drug),
        "timing": {"repeat": {"boundsPeriod": {"start": day.isoformat(), "end": valid_end.isoformat()}}},
    }]
    resource["dispenseRequest"] = {"validityPeriod": {"start": day.isoformat(), "end": valid_end.isoformat()},
                                   "expectedSupplyDuration": {"value": 90, "unit": "days", "system": codes.UCUM, "code": "d"}}
    return context.add(resource)


def build_drug_course(context: BuildContext, course: DrugCourse, condition_id: str) -> list[dict]:
    if codes.DRUGS[course.drug]["route"] == "IV":
        return [build_administration(context, course, day, dose, condition_id)
                for day, dose in zip(course.event_dates, course.dose_mg)]
    ongoing = context.course.death_date is None and course.end >= context.course.censor_date
    last = len(course.event_dates) - 1
    return [build_request(context, course, day, condition_id, "active" if ongoing and i == last else "completed")
            for i, day in enumerate(course.event_dates)]


def build_procedure_course(context: BuildContext, procedure: ProcedureCourse, condition_id: str) -> list[dict]:
    built = []
    for day in procedure.session_dates:
        klass, stay = ("IMP", 28) if procedure.kind == "allo_sct" else ("AMB", 0)
        all_codings = codes.PROCEDURES[procedure.kind]
        choice = context.rng.random()
        chosen = all_codings if choice < 0.5 else all_codings[:1]
        if procedure.kind in codes.LOCAL_PROCEDURE_CODES and choice > 0.85:  # site code only
            chosen = [(codes.LOCAL_PROCEDURES, *codes.LOCAL_PROCEDURE_CODES[procedure.kind])]
        resource: dict = {"resourceType": "Procedure", "id": context.new_id(), "meta": {"versionId": "1"},
                          "status": "completed",
                          "code": {"coding": [coding(*c) for c in chosen], "text": codes.PROCEDURE_TEXTS[procedure.kind]},
                          "subject": context.patient_ref, "encounter": context.encounter(day, klass, stay)}
        if procedure.kind == "ecp":  # two treatments on consecutive days per cycle
            resource["performedPeriod"] = {"start": context.datetime(day), "end": context.datetime(day + timedelta(days=1))}
        elif len(procedure.session_dates) == 1 and procedure.end > procedure.start:
            resource["performedPeriod"] = {"start": context.datetime(procedure.start), "end": context.datetime(procedure.end)}
        else:
            resource["performedDateTime"] = context.datetime(day)
        resource["reasonReference"] = [{"reference": f"Condition/{condition_id}"}]
        built.append(context.add(resource))
    return built
