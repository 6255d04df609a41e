"""Turn one simulated PatientCourse into its FHIR resources (and messy re-sent copies)."""

from __future__ import annotations

import random
from datetime import date

from ctcl_map.synthetic import fhir_clinical, fhir_treatment, messy
from ctcl_map.synthetic.fhir_base import TIMEZONES, BuildContext, build_patient
from ctcl_map.synthetic.model import GeneratorConfig, PatientCourse, PatientRecord


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def choose_styles(rng: random.Random) -> dict[str, str]:
    """How this patient's hospital writes things: one style per patient, mixed across patients."""
    return {
        "diagnosis": _weighted(rng, fhir_clinical.DIAGNOSIS_STYLES),
        "stage": _weighted(rng, fhir_clinical.STAGE_STYLES),
        "category": _weighted(rng, fhir_clinical.CATEGORY_STYLES),
        "b": _weighted(rng, fhir_clinical.B_STYLES),
        "drug": _weighted(rng, fhir_treatment.DRUG_STYLES),
        "lct": "boolean" if rng.random() < 0.6 else "code",
    }


def _follow_up_visits(context: BuildContext, course: PatientCourse, rng: random.Random) -> list[date]:
    """Routine clinic visits every 5-7 months, and a last contact on the censoring date.

    Without them a survivor's last record could be years before the end of follow-up, so the
    observation period (which a CDM derives from the records) would end early for survivors only
    while deaths always extend it: informative censoring that biases every survival curve down.
    """
    day, days = course.diagnosis_date, []
    while True:
        day = date.fromordinal(day.toordinal() + 150 + int(rng.random() * 60))
        if day >= course.followup_end:
            break
        context.encounter(day)
        days.append(day)
    if course.death_date is None:
        context.encounter(course.followup_end)
    return days


def build_record(course: PatientCourse, config: GeneratorConfig) -> PatientRecord:
    """Representation choices use their own RNG streams (seeded by cohort seed + patient index),
    separate from the simulation's, so the truth never depends on how the FHIR is written."""
    rng = random.Random(f"ctcl-map-fhir:{config.seed}:{course.index}")
    context = BuildContext(course=course, rng=rng, timezone=rng.choice(TIMEZONES))
    context.styles = choose_styles(rng)
    messy_rng = random.Random(f"ctcl-map-messy:{config.seed}:{course.index}")
    kinds = messy.plan(course.index, messy_rng) if config.messy else set()
    patient = build_patient(context)
    condition_id = context.new_id()
    labs: list[dict] = []
    diagnosis_stage_ids: dict[str, str] = {}
    disagreeing_at = rng.randrange(len(course.stagings)) if "disagreeing_stage_group" in kinds else -1
    for position, staging in enumerate(course.stagings):
        written = staging.stage_group
        if position == disagreeing_at:
            written = messy.disagreeing_group(messy_rng, staging.stage_group)
        ids = fhir_clinical.build_staging(context, staging, condition_id, written)
        if position == disagreeing_at:
            course.anomalies.append({"kind": "disagreeing_stage_group", "resource": f"Observation/{ids['group']}",
                                     "fhir_invalid": False,
                                     "detail": f"written {written}; {staging.t} {staging.n} {staging.m} {staging.b} "
                                               f"stage {staging.stage_group}"})
        before = len(context.resources)
        fhir_clinical.build_labs(context, staging)
        labs.extend(r for r in context.resources[before:] if r["resourceType"] == "Observation")
        if position == 0:
            diagnosis_stage_ids = ids
            fhir_clinical.build_body_measures(context, staging)
    condition = fhir_clinical.build_condition(context, condition_id, diagnosis_stage_ids if rng.random() < 0.4 else None)
    first_drug_records = []
    for drug_course in course.drug_courses:
        built = fhir_treatment.build_drug_course(context, drug_course, condition_id)
        first_drug_records.append(built[0])
    for procedure in course.procedures:
        fhir_treatment.build_procedure_course(context, procedure, condition_id)
    visits = _follow_up_visits(context, course, random.Random(f"ctcl-map-followup:{config.seed}:{course.index}"))
    resent: list[dict] = []
    if kinds:
        index = {"Patient": [patient], "Condition": [condition], "lab": labs, "drug_first": first_drug_records}
        resent = messy.apply(context, kinds, index)
    # Real records carry the diagnosis at the visits that follow it (what "two diagnosis records"
    # phenotypes rely on); drawn last, so every other resource stays as it was.
    for day in visits:
        fhir_clinical.build_visit_diagnosis(context, condition, day)
    return PatientRecord(course=course, resources=context.resources, resent=resent)
