"""Realistic mess for ``--messy``: each kind below is injected into a patient with a small
probability (and into every 25th patient by position, so even small cohorts show each kind).
Every injection is recorded as an anomaly; none changes the truth: extra records are extra,
and a disagreeing stage group is written next to T/N/M/B that still stage to the true group."""

from __future__ import annotations

import copy
import random
from datetime import date, timedelta
from typing import Any

from ctcl_map.synthetic import codes
from ctcl_map.synthetic.fhir_base import BuildContext, coding, quantity
from ctcl_map.synthetic.olsen import STAGE_GROUPS

KINDS = (
    "partial_birth_date", "partial_onset", "missing_onset", "missing_gender", "duplicate_same_content",
    "duplicate_newer_version", "unknown_local_code", "entered_in_error", "cancelled_or_not_done",
    "dangling_subject", "invalid_date", "invalid_decimal", "implausible_value", "disagreeing_stage_group",
)
FHIR_INVALID = frozenset({"invalid_date", "invalid_decimal"})  # the only kinds that break R4 validation
PROBABILITY = 0.04
FORCE_EVERY = 25


def plan(index: int, rng: random.Random) -> set[str]:
    """Kinds injected into patient ``index`` (mutually compatible: onset kinds exclude each other)."""
    chosen = {kind for position, kind in enumerate(KINDS)
              if rng.random() < PROBABILITY or index % FORCE_EVERY == position}
    if {"partial_onset", "missing_onset"} <= chosen:
        chosen.discard("missing_onset")
    return chosen


def disagreeing_group(rng: random.Random, true_group: str) -> str:
    return rng.choice([g for g in STAGE_GROUPS if g != true_group])


def _record(context: BuildContext, kind: str, resource: dict | str, detail: str) -> None:
    reference = resource if isinstance(resource, str) else f"{resource['resourceType']}/{resource['id']}"
    context.course.anomalies.append({"kind": kind, "resource": reference, "fhir_invalid": kind in FHIR_INVALID,
                                     "detail": detail})


def _extra_ldh(context: BuildContext, day: date, value: object, subject: dict | None = None) -> dict:
    observation: dict[str, Any] = {
        "resourceType": "Observation", "id": context.new_id(), "meta": {"versionId": "1"}, "status": "final",
        "category": [{"coding": [coding(codes.OBS_CATEGORY, "laboratory")]}],
        "code": {"coding": [coding(codes.LDH[0], codes.LDH[1], codes.LDH[2])], "text": codes.LDH[2]},
        "subject": subject or context.patient_ref,
        "effectiveDateTime": context.datetime(day),
        "valueQuantity": quantity(0, "U/L"),
    }
    observation["valueQuantity"]["value"] = value
    return context.add(observation)


def _interim_day(context: BuildContext) -> date:
    """A date inside follow-up (between diagnosis and follow-up end) for extra records."""
    course = context.course
    span = max(1, (course.followup_end - course.diagnosis_date).days)
    return course.diagnosis_date + timedelta(days=context.rng.randrange(span))


def apply(context: BuildContext, kinds: set[str], index: dict[str, list[dict]]) -> list[dict]:
    """Inject ``kinds`` into the built resources; returns the re-sent copies (second file)."""
    rng, resent = context.rng, []
    patient, condition = index["Patient"][0], index["Condition"][0]
    if "partial_birth_date" in kinds:
        patient["birthDate"] = patient["birthDate"][:7]
        _record(context, "partial_birth_date", patient, patient["birthDate"])
    if "missing_gender" in kinds:
        del patient["gender"]
        _record(context, "missing_gender", patient, "gender absent")
    if "partial_onset" in kinds:
        condition["onsetDateTime"] = condition["onsetDateTime"][:7]
        _record(context, "partial_onset", condition, condition["onsetDateTime"])
    if "missing_onset" in kinds:
        del condition["onsetDateTime"]
        _record(context, "missing_onset", condition, "onsetDateTime absent; recordedDate kept")
    labs = index["lab"]
    if "duplicate_same_content" in kinds:
        original = rng.choice(labs)
        resent.append(copy.deepcopy(original))
        _record(context, "duplicate_same_content", original, "identical copy in the re-sent file")
    if "duplicate_newer_version" in kinds:
        original = rng.choice(labs)
        newer = copy.deepcopy(original)
        original["status"] = "preliminary"
        newer["meta"] = {"versionId": "2"}
        newer["status"] = "final"
        resent.append(newer)
        _record(context, "duplicate_newer_version", original, "v1 preliminary in the main file, v2 final re-sent")
    if "unknown_local_code" in kinds:
        code, display = rng.choice(codes.UNKNOWN_LOCAL_DRUGS)
        day = _interim_day(context)
        request = context.add({
            "resourceType": "MedicationRequest", "id": context.new_id(), "meta": {"versionId": "1"},
            "status": "completed", "intent": "order",
            "medicationCodeableConcept": {"coding": [coding(codes.LOCAL_DRUGS, code, display)], "text": display},
            "subject": context.patient_ref, "authoredOn": context.datetime(day)})
        _record(context, "unknown_local_code", request, f"{codes.LOCAL_DRUGS}|{code} is in no mapping")
    drug_records = index["drug_first"]
    for kind, statuses in (("entered_in_error", ("entered-in-error",)), ("cancelled_or_not_done", None)):
        if kind not in kinds or not drug_records:
            continue
        first = rng.choice(drug_records)
        bogus = copy.deepcopy(first)
        bogus["id"] = context.new_id()
        is_admin = first["resourceType"] == "MedicationAdministration"
        bogus["status"] = statuses[0] if statuses else ("not-done" if is_admin else "cancelled")
        shift = timedelta(days=-rng.randint(3, 10))  # before the true line start: must not move it
        _shift_dates(bogus, shift)
        context.add(bogus)
        _record(context, kind, bogus, f"status {bogus['status']}, dated before the real first record")
    if "dangling_subject" in kinds:
        orphan = _extra_ldh(context, _interim_day(context), 180, {"reference": f"Patient/{context.new_id()}"})
        _record(context, "dangling_subject", orphan, "subject refers to a Patient that exists nowhere")
    if "invalid_date" in kinds:
        bad = _extra_ldh(context, _interim_day(context), 190)
        bad["effectiveDateTime"] = f"{context.course.diagnosis_date.year}-02-30T10:00:00Z"
        _record(context, "invalid_date", bad, bad["effectiveDateTime"])
    if "invalid_decimal" in kinds:
        bad = _extra_ldh(context, _interim_day(context), "245,0")
        _record(context, "invalid_decimal", bad, "valueQuantity.value is the string '245,0'")
    if "implausible_value" in kinds:
        bad = _extra_ldh(context, _interim_day(context), -12)
        _record(context, "implausible_value", bad, "LDH -12 U/L")
    return resent


def _shift_dates(resource: dict, shift: timedelta) -> None:
    """Move every date/dateTime of a drug record by ``shift`` (same time of day, same zone)."""
    def move(text: str) -> str:
        return (date.fromisoformat(text[:10]) + shift).isoformat() + text[10:]
    for key in ("authoredOn", "effectiveDateTime"):
        if key in resource:
            resource[key] = move(resource[key])
    if "effectivePeriod" in resource:
        resource["effectivePeriod"] = {k: move(v) for k, v in resource["effectivePeriod"].items()}
    for instruction in resource.get("dosageInstruction", []):
        bounds = instruction["timing"]["repeat"]["boundsPeriod"]
        bounds["start"] = move(bounds["start"])
    if "dispenseRequest" in resource:
        resource["dispenseRequest"]["validityPeriod"]["start"] = move(resource["dispenseRequest"]["validityPeriod"]["start"])
