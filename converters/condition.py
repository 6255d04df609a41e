"""Condition -> condition_occurrence (or the table of the concept's domain), plus Condition.stage.

- verificationStatus refuted / entered-in-error -> no row (f2o-060). Provisional, differential and
  unconfirmed diagnoses are loaded with their status: condition_status_source_value = the code,
  condition_status_concept_id from mappings/fhir_valuesets.csv (32899 'Preliminary diagnosis').
  The oncology derivation and the survival cohorts leave them out unless asked to include them
  (ctcl.diagnosis.UNCONFIRMED_STATUSES); counted as 'condition_unconfirmed'.
- Start: onset[x]; without onset, recordedDate (counted as 'start_from_recorded_date'); without
  both, the core condition-assertedDate extension ('start_from_asserted_date').
- End: abatement[x] when it is a date or period.
- Condition.stage.summary (a stage group, coded or as text) -> a stage-group measurement linked to
  this condition (measurement_event_id, meas_event_field_concept_id 1147127).
"""

from __future__ import annotations

from ctcl_map.converters.base import EHR, as_list, code_of, excluded, extension_value, first_time, parse_time, quarantined
from ctcl_map.converters.context import ConvertContext, encounter_key, subject_key, subject_problem
from ctcl_map.converters.events import event_row, route, unmapped_of, with_more_targets
from ctcl_map.converters.staging_values import resolve_staging_value
from ctcl_map.ctcl.diagnosis import NOT_ASSERTED, UNCONFIRMED_STATUSES
from ctcl_map.model import Conversion, SourceItem, Unmapped

CONDITION_FIELD_CONCEPT = 1147127  # condition_occurrence.condition_occurrence_id (vocab-concepts.md section 6)
ASSERTED_DATE = "http://hl7.org/fhir/StructureDefinition/condition-assertedDate"
STAGE_GROUP_QUESTION = ("LOINC", "21908-9")  # Stage group.clinical Cancer


def convert_condition(item: SourceItem, ctx: ConvertContext) -> Conversion:
    condition = item.resource or {}
    verification = code_of(condition.get("verificationStatus"))
    if verification in NOT_ASSERTED:
        return excluded(f"condition_{verification}")
    person_key, problem = subject_key(item)
    if person_key is None:
        assert problem is not None  # subject_key gives a reason with every missing key
        return subject_problem(item, problem)
    start, _ = first_time(condition, ("onsetDateTime", "onsetPeriod"))
    notes = []
    if start is None:
        start = parse_time(condition.get("recordedDate"), "recordedDate")
        if start is not None:
            notes.append("start_from_recorded_date")
    if start is None:
        start = parse_time(extension_value(condition, ASSERTED_DATE, "valueDateTime"), "condition-assertedDate")
        if start is not None:
            notes.append("start_from_asserted_date")
    if start is None:
        return quarantined("missing_date", "Condition has no onset[x], recordedDate or assertedDate extension")
    end, _ = first_time(condition, ("abatementDateTime", "abatementPeriod"))
    if end is not None and end.day < start.day:
        return quarantined("end_before_start", "Condition abatement is before its onset")

    resolved = ctx.resolver.resolve(condition.get("code"), "condition")
    table, resolved = route(resolved, "condition_occurrence")
    visit_key = encounter_key(item)
    conversion = Conversion(notes=notes)
    if start.imputed:
        conversion.notes.append("date_imputed")
    extra = _status_columns(condition, ctx, conversion) if table == "condition_occurrence" else None
    conversion.rows.extend(with_more_targets(event_row(table, item.key, person_key, visit_key, resolved, start, end, EHR, extra),
                                              resolved, start, end, EHR))
    conversion.unmapped.extend(unmapped_of(table, "concept_id", resolved))
    if table == "condition_occurrence":
        _stage_rows(item, ctx, person_key, visit_key, start, conversion)
    return conversion


def _status_columns(condition: dict, ctx: ConvertContext, conversion: Conversion) -> dict | None:
    """A diagnosis not (yet) confirmed keeps its status: analyses must be able to leave it out."""
    status = condition.get("verificationStatus")
    coding = next((c for c in as_list((status or {}).get("coding")) if isinstance(c, dict)), None) \
        if isinstance(status, dict) else None
    if coding is None or coding.get("code") not in UNCONFIRMED_STATUSES:
        return None
    concept_id, code = ctx.valueset("condition_status_concept_id", coding)
    conversion.notes.append("condition_unconfirmed")
    if not concept_id:
        conversion.unmapped.append(Unmapped("condition_occurrence", "condition_status_concept_id",
                                            str(coding.get("system")), str(code), "code_not_in_valueset"))
    return {"condition_status_concept_id": concept_id, "condition_status_source_value": code}


def _stage_rows(item: SourceItem, ctx: ConvertContext, person_key: str, visit_key, onset, conversion: Conversion) -> None:
    for number, stage in enumerate(as_list((item.resource or {}).get("stage"))):
        if not isinstance(stage, dict) or not isinstance(stage.get("summary"), dict):
            continue
        question = ctx.resolver.resolve_code(*STAGE_GROUP_QUESTION)
        value = resolve_staging_value(ctx, stage["summary"], "stage")
        key = f"{item.key}#stage{number}"
        row = event_row("measurement", key, person_key, visit_key, question, onset, None, EHR, {
            "value_as_concept_id": value.concept_id,
            "value_source_value": value.source_value,
            "measurement_event_id": item.key,
            "meas_event_field_concept_id": CONDITION_FIELD_CONCEPT,
        })
        conversion.rows.append(row)
        conversion.unmapped.extend(unmapped_of("measurement", "value_as_concept_id", value))
