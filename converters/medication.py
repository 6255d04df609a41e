"""MedicationAdministration, MedicationRequest, MedicationStatement, MedicationDispense and
Immunization -> drug_exposure.

One converter, five configurations: what differs between the resource types is data (type
concept, statuses that mean "did not happen", where the patient, the dates and the dose are), not
logic. The drug code comes from medicationCodeableConcept (Immunization: vaccineCode, CVX) or from
the referenced Medication: contained ('#med1'), in the same Bundle, or read earlier in the run
(bulk NDJSON Medication files).

`stopped` means the same for all five: the drug was given or taken and then stopped, so the row is
kept and stop_reason says why (statusReason, else 'stopped'); counted as 'medication_stopped'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ctcl_map.converters.base import (
    EHR,
    EHR_ADMINISTRATION,
    EHR_DISPENSING,
    EHR_PRESCRIPTION,
    FhirTime,
    InvalidValue,
    add_days,
    as_list,
    excluded,
    first_time,
    number,
    quarantined,
    text_of,
    whole_number,
)
from ctcl_map.converters.context import ConvertContext, encounter_key, reference, subject_key, subject_problem
from ctcl_map.converters.events import event_row, route, unmapped_of, with_more_targets
from ctcl_map.model import Conversion, SourceItem
from ctcl_map.vocab.lookup import Resolved


@dataclass(frozen=True)
class MedicationKind:
    type_concept_id: int
    not_realized: frozenset[str]  # statuses meaning the drug was not given/taken (f2o-060)
    start_fields: tuple[str, ...]
    encounter_field: str
    dosage_field: str | None  # list of Dosage holding route/text
    realized_intents: frozenset[str] | None = None
    subject_field: str = "subject"
    code_field: str = "medicationCodeableConcept"
    status_reason_field: str = "statusReason"  # CodeableConcept or a list of them


KINDS: dict[str, MedicationKind] = {
    "MedicationAdministration": MedicationKind(
        EHR_ADMINISTRATION, frozenset({"not-done", "entered-in-error"}),
        ("effectiveDateTime", "effectivePeriod"), "context", None,
    ),
    "MedicationRequest": MedicationKind(
        EHR_PRESCRIPTION, frozenset({"cancelled", "entered-in-error", "draft"}),
        ("authoredOn",), "encounter", "dosageInstruction",
        frozenset({"order", "original-order", "reflex-order", "filler-order", "instance-order"}),
    ),
    # No verified 'patient self-reported' type concept is in our subset: statements are typed EHR.
    "MedicationStatement": MedicationKind(
        EHR, frozenset({"entered-in-error", "intended", "not-taken"}),
        ("effectiveDateTime", "effectivePeriod", "dateAsserted"), "context", "dosage",
    ),
    "MedicationDispense": MedicationKind(
        EHR_DISPENSING, frozenset({"preparation", "cancelled", "entered-in-error", "declined", "on-hold"}),
        ("whenHandedOver", "whenPrepared"), "context", "dosageInstruction",
        status_reason_field="statusReasonCodeableConcept",
    ),
    # A given vaccine (HL7 FHIR-to-OMOP IG, OHDSI FhirToCdm: Immunization -> drug_exposure).
    "Immunization": MedicationKind(
        EHR_ADMINISTRATION, frozenset({"not-done", "entered-in-error"}),
        ("occurrenceDateTime",), "encounter", None,
        subject_field="patient", code_field="vaccineCode",
    ),
}
STOPPED = "stopped"


def convert_medication(item: SourceItem, ctx: ConvertContext) -> Conversion:
    resource = item.resource or {}
    kind = KINDS[item.resource_type]
    status = text_of(resource.get("status"))
    if status in kind.not_realized:
        return excluded(f"{_snake(item.resource_type)}_status_{status}")
    if resource.get("doNotPerform") is True:
        return excluded(f"{_snake(item.resource_type)}_do_not_perform")
    intent = text_of(resource.get("intent"))
    if kind.realized_intents is not None and intent not in kind.realized_intents:
        return excluded(f"{_snake(item.resource_type)}_intent_{(intent or 'None')[:40]}")
    person_key, problem = subject_key(item, kind.subject_field)
    if person_key is None:
        assert problem is not None  # subject_key gives a reason with every missing key
        return subject_problem(item, problem, kind.subject_field)
    start, end = first_time(resource, kind.start_fields)
    if start is None:
        return quarantined("missing_date", f"{item.resource_type} has no {' / '.join(kind.start_fields)}")
    if end is not None and end.day < start.day:
        return quarantined("end_before_start", f"{item.resource_type} ends before it starts")

    resolved, code_problem = _drug_code(item, ctx)
    conversion = Conversion()
    if start.imputed:
        conversion.notes.append("date_imputed")
    if code_problem:
        conversion.notes.append(code_problem)
        target = reference(item, resource.get("medicationReference"))
        if target is not None and target.startswith("Medication/"):
            conversion.awaits = target
    table, resolved = route(resolved, "drug_exposure")
    extra: dict[str, Any] = {}
    if table == "drug_exposure":
        extra = _drug_columns(item.resource_type, resource, kind, ctx, start, conversion)
        stop_reason = _stop_reason(resource, kind)
        if stop_reason:
            extra["stop_reason"] = stop_reason
        if status == STOPPED:
            conversion.notes.append("medication_stopped")
        if end is None and extra.get("days_supply"):
            end = add_days(start, extra["days_supply"] - 1, "end date from the days supply")
    row = event_row(table, item.key, person_key, encounter_key(item, kind.encounter_field), resolved, start, end,
                    kind.type_concept_id, extra)
    conversion.rows.extend(with_more_targets(row, resolved, start, end, kind.type_concept_id))
    conversion.unmapped.extend(unmapped_of(table, "concept_id", resolved))
    return conversion


def _drug_code(item: SourceItem, ctx: ConvertContext) -> tuple[Resolved, str | None]:
    resource = item.resource or {}
    kind = KINDS[item.resource_type]
    if isinstance(resource.get(kind.code_field), dict):
        return ctx.resolver.resolve(resource[kind.code_field], "drug"), None
    if kind.code_field != "medicationCodeableConcept":
        return Resolved(0, None, 0, None, None, None, "no_code"), None
    medication = _referenced_medication(item, ctx)
    if medication is None:
        return Resolved(0, None, 0, None, None, None, "medication_reference_unresolved"), "medication_reference_unresolved"
    return ctx.resolver.resolve(medication.get("code"), "drug"), None


def _referenced_medication(item: SourceItem, ctx: ConvertContext) -> dict | None:
    resource = item.resource or {}
    ref = resource.get("medicationReference")
    target = ref.get("reference") if isinstance(ref, dict) else None
    if not isinstance(target, str):
        return None
    if target.startswith("#"):
        for contained in as_list(resource.get("contained")):
            if isinstance(contained, dict) and contained.get("id") == target[1:] and contained.get("resourceType") == "Medication":
                return contained
        return None
    key = reference(item, ref)
    if key is None:
        return None
    if item.bundle is not None and key in item.bundle.medications:
        return item.bundle.medications[key]
    return ctx.medications.get(key)


def _drug_columns(resource_type: str, resource: dict, kind: MedicationKind, ctx: ConvertContext,
                  start: FhirTime, conversion: Conversion) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    dosage = None
    if resource_type == "Immunization":
        dosage = resource  # route and doseQuantity sit on the Immunization itself
        dose = resource.get("doseQuantity")
        if isinstance(dose, dict):
            columns["quantity"] = number(dose.get("value"), "doseQuantity.value")
            unit = dose.get("code") or dose.get("unit")
            columns["dose_unit_source_value"] = unit[:50] if isinstance(unit, str) else None
        if isinstance(resource.get("lotNumber"), str):
            columns["lot_number"] = resource["lotNumber"][:50]
    elif resource_type == "MedicationAdministration":
        dosage = resource.get("dosage") if isinstance(resource.get("dosage"), dict) else None
        dose = dosage.get("dose") if dosage else None
        if isinstance(dose, dict):
            columns["quantity"] = number(dose.get("value"), "dosage.dose.value")
            unit = dose.get("code") or dose.get("unit")
            columns["dose_unit_source_value"] = unit[:50] if isinstance(unit, str) else None
    elif kind.dosage_field:
        dosages = resource.get(kind.dosage_field)
        dosage = dosages[0] if isinstance(dosages, list) and dosages and isinstance(dosages[0], dict) else None
        if dosage and isinstance(dosage.get("text"), str):
            columns["sig"] = dosage["text"]
    if resource_type == "MedicationRequest":
        dispense = resource.get("dispenseRequest")
        if not isinstance(dispense, dict):
            dispense = {}
        if isinstance(dispense.get("quantity"), dict):
            columns["quantity"] = number(dispense["quantity"].get("value"), "dispenseRequest.quantity.value")
        columns["refills"] = whole_number(dispense.get("numberOfRepeatsAllowed"), "dispenseRequest.numberOfRepeatsAllowed")
        columns["days_supply"] = _days(dispense.get("expectedSupplyDuration"))
    elif resource_type == "MedicationDispense":
        if isinstance(resource.get("quantity"), dict):
            columns["quantity"] = number(resource["quantity"].get("value"), "quantity.value")
        columns["days_supply"] = _days(resource.get("daysSupply"))
    route_concept = dosage.get("route") if dosage else None
    if isinstance(route_concept, dict):
        resolved = ctx.resolver.resolve(route_concept, "route")
        columns["route_concept_id"] = resolved.concept_id if resolved.domain_id in (None, "Route") else 0
        columns["route_source_value"] = resolved.source_value
        conversion.unmapped.extend(unmapped_of("drug_exposure", "route_concept_id", resolved))
    return {name: value for name, value in columns.items() if value is not None}


def _stop_reason(resource: dict, kind: MedicationKind) -> str | None:
    """statusReason (text, else the first coding's display or code) -> stop_reason (varchar 20)."""
    reasons = resource.get(kind.status_reason_field)
    reasons = reasons if isinstance(reasons, list) else [reasons]
    for reason in reasons:
        if not isinstance(reason, dict):
            continue
        texts = [reason.get("text")] + [t for c in as_list(reason.get("coding")) if isinstance(c, dict)
                                        for t in (c.get("display"), c.get("code"))]
        text = next((t.strip() for t in texts if isinstance(t, str) and t.strip()), None)
        if text:
            return text[:20]
    return STOPPED if resource.get("status") == STOPPED else None


MAX_DAYS_SUPPLY = 36_500  # a hundred years: more is a typo, not a prescription


def _days(duration: Any) -> int | None:
    """A Duration in days (d) -> whole days; other units are ignored rather than guessed."""
    if not isinstance(duration, dict):
        return None
    value = duration.get("value")
    unit = duration.get("code") or duration.get("unit")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and unit in ("d", "day", "days") and value > 0:
        if value > MAX_DAYS_SUPPLY:
            raise InvalidValue("invalid_value", f"a supply of {value:.0f} days is over {MAX_DAYS_SUPPLY} days")
        return int(round(value))
    return None


def _snake(resource_type: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in resource_type).lstrip("_")

