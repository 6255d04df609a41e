"""Observation -> measurement or observation, by the concept's domain.

- status cancelled / entered-in-error / registered (no result yet) -> no row.
- Date: effective[x]; without it, `issued` (counted as 'date_from_issued'); without both, the date
  of the DiagnosticReport of the same Bundle that lists it in `result` (effective[x], else issued;
  'date_from_diagnostic_report'), else the start of its Encounter's period ('date_from_encounter').
- Subject: without its own, the subject of that DiagnosticReport ('subject_from_diagnostic_report').
- When that DiagnosticReport (or the Encounter) is not in the same Bundle, the result is
  quarantined and waits for it (Conversion.awaits; ctcl_reference_wait): the end of the run that
  knows it, in another file or a later run, converts the result again with it (pipeline).
- valueQuantity -> value_as_number + unit (UCUM code -> unit concept), its comparator (<, <=, >=, >)
  -> operator_concept_id (measurement); valueCodeableConcept -> value_as_concept_id; valueBoolean ->
  value_as_concept_id Yes 4188539 / No 4188540; valueString -> value_as_string (observation) /
  value_source_value.
- Each component is a row of its own (blood pressure: systolic and diastolic rows).
- referenceRange[0] -> range_low / range_high.
- Staging questions (T, N, M, B, stage group per mappings/staging.csv: LOINC, the SNOMED / NCIt
  codes of mCODE's stage-type value set, and text-only questions) parse their written values
  (AJCC 'cT3', NCIt or LOINC answers, text) and are linked to the Condition named by `focus` or
  `derivedFrom`, or, within one Bundle, by Condition.stage.assessment or the hasMember of a stage
  group about that Condition (measurement_event_id, 1147127). A staging system that is not ISCL/EORTC (method
  or code in fhir_valuesets.csv: Binet, Rai, Ann Arbor ...) is not filed as CTCL staging:
  concept 0 and value 0 with the reason non_ctcl_staging_system, the written value kept.
- A concept of another domain (a diagnosis recorded as an Observation) goes to that domain's table.
- Unmapped codes go to measurement when the result is numeric or the category is laboratory /
  vital-signs, otherwise to observation.
"""

from __future__ import annotations

from typing import Any

from ctcl_map.converters.base import EHR, LAB, as_list, excluded, first_time, number, parse_time, period_times, quarantined, text_of
from ctcl_map.converters.condition import CONDITION_FIELD_CONCEPT
from ctcl_map.converters.context import ConvertContext, encounter_key, reference, subject_key, subject_problem
from ctcl_map.converters.events import event_row, route, unmapped_of, with_more_targets
from ctcl_map.converters.staging_values import resolve_staging_value
from ctcl_map.model import Conversion, SourceItem, Unmapped
from ctcl_map.vocab.lookup import Resolved

NOT_REALIZED = {"cancelled", "entered-in-error", "registered"}
MEASUREMENT_CATEGORIES = {"laboratory", "vital-signs"}
EFFECTIVE = ("effectiveDateTime", "effectivePeriod", "effectiveInstant")
STAGING_AXES = {"T": "T", "N": "N", "M": "M", "B": "B", "stage_group": "stage"}
NON_CTCL = "non_ctcl_staging_system"
QUANTITY_COMPARATOR = "http://hl7.org/fhir/quantity-comparator"  # < <= >= > (mappings/fhir_valuesets.csv)
# valueBoolean -> the Yes / No answers of mappings/answers.csv (HL7 v2 table 0136)
BOOLEAN_ANSWERS = {True: ("HL7 v2-0136", "Y"), False: ("HL7 v2-0136", "N")}


def convert_observation(item: SourceItem, ctx: ConvertContext) -> Conversion:
    observation = item.resource or {}
    status = text_of(observation.get("status"))
    if status in NOT_REALIZED:
        return excluded(f"observation_status_{status}")
    conversion = Conversion()
    report = item.bundle.reports.get(item.key) if item.bundle is not None else None
    if observation.get("subject") is None and report is not None and report.get("subject") is not None:
        # The report's subject, resolved as if it were the result's own (same Bundle, same rules).
        item = SourceItem({**observation, "subject": report["subject"]}, item.resource_type, item.resource_id,
                          item.file, item.position, item.method, item.bundle)
        conversion.notes.append("subject_from_diagnostic_report")
    person_key, problem = subject_key(item)
    if person_key is None:
        assert problem is not None  # subject_key gives a reason with every missing key
        return _awaiting_report(item, report, subject_problem(item, problem))
    start = _result_date(item, observation, report, conversion.notes)
    if start is None:
        return _awaiting_report(item, report, quarantined(
            "missing_date", "Observation has no effective[x] or issued, and no DiagnosticReport or Encounter gives a date"))
    if start.imputed:
        conversion.notes.append("date_imputed")
    categories = _category_codes(observation)
    type_concept_id = LAB if "laboratory" in categories else EHR
    visit_key = encounter_key(item)

    parts: list[tuple[str, dict]] = []
    components = [c for c in as_list(observation.get("component")) if isinstance(c, dict)]
    if _has_value(observation) or not components:
        parts.append((item.key, observation))
    parts.extend((f"{item.key}#component{n}", component) for n, component in enumerate(components))
    non_ctcl = _non_ctcl_system(observation, ctx)
    condition_key = _condition_link(item)
    for key, part in parts:
        resolved = ctx.resolver.resolve(part.get("code"), "measurement")
        axis = _staging_axis(resolved)
        if non_ctcl or _non_ctcl_system(part, ctx):
            # a Binet / Ann Arbor / Rai stage is not an ISCL/EORTC one: not filed as CTCL staging
            resolved = Resolved(0, resolved.source_value, resolved.source_concept_id, None, resolved.vocabulary_id,
                                resolved.code, NON_CTCL)
        numeric = isinstance(part.get("valueQuantity"), dict) or "valueInteger" in part
        default = "measurement" if numeric or categories & MEASUREMENT_CATEGORIES or resolved.reason == NON_CTCL \
            else "observation"
        table, resolved = route(resolved, default)
        values, value_unmapped = {}, []
        if resolved.reason == NON_CTCL:
            values = {"value_as_concept_id": 0, "value_source_value": _value_text(part)}
            value_unmapped = [Unmapped(table, "value_as_concept_id", resolved.vocabulary_id or "", resolved.code or "", NON_CTCL)]
        elif table in ("measurement", "observation"):
            values, value_unmapped = value_columns(table, part, ctx, axis)
            if axis and table == "measurement" and condition_key:
                values.update(measurement_event_id=condition_key, meas_event_field_concept_id=CONDITION_FIELD_CONCEPT)
        # else: coded with a condition/procedure/drug concept, the row goes to that domain's table (f2o-037)
        row = event_row(table, key, person_key, visit_key, resolved, start, None, type_concept_id, values)
        conversion.rows.extend(with_more_targets(row, resolved, start, None, type_concept_id))
        conversion.unmapped.extend(unmapped_of(table, "concept_id", resolved))
        conversion.unmapped.extend(value_unmapped)
    return conversion


def report_awaited_by(result_key: str) -> str:
    """The awaited key of a result waiting for the DiagnosticReport that lists it."""
    return f"DiagnosticReport?result={result_key}"


def report_contexts(item: SourceItem) -> list[tuple[str, dict]]:
    """(result key, context) for each result a DiagnosticReport lists: the report's date fields and
    its subject resolved to a key, i.e. what _result_date and the subject fallback read from it,
    in a form that holds outside its Bundle."""
    report = item.resource or {}
    results = report.get("result")
    if not isinstance(results, list):
        return []
    context = {name: report[name] for name in (*EFFECTIVE, "issued") if name in report}
    subject = reference(item, report.get("subject"))
    if subject is not None:
        context["subject"] = {"reference": subject}
    keys = (reference(item, result) for result in results)
    return [(key, context) for key in dict.fromkeys(keys) if key is not None and key.startswith("Observation/")]


def _awaiting_report(item: SourceItem, report: dict | None, verdict: Conversion) -> Conversion:
    """A result its Bundle gives no DiagnosticReport: the report (or its Encounter) may be in
    another file or come in a later run, so the quarantine waits for it."""
    if report is None and verdict.quarantined is not None and verdict.quarantined[0] in ("missing_date", "missing_subject"):
        verdict.awaits = report_awaited_by(item.key)
    return verdict


def _result_date(item: SourceItem, observation: dict, report: dict | None, notes: list[str]):
    """The first date FHIR gives a result: its own effective[x] or issued, the DiagnosticReport that
    lists it (effective[x], else issued), the start of its Encounter's period; each fallback noted."""
    start, _ = first_time(observation, EFFECTIVE)
    if start is not None:
        return start
    start = parse_time(observation.get("issued"), "issued")
    if start is not None:
        notes.append("date_from_issued")
        return start
    if report is not None:
        start, _ = first_time(report, EFFECTIVE)
        start = start or parse_time(report.get("issued"), "DiagnosticReport.issued")
        if start is not None:
            notes.append("date_from_diagnostic_report")
            return start
    visit = encounter_key(item)
    if visit is not None and item.bundle is not None and visit in item.bundle.encounter_periods:
        start, _ = period_times(item.bundle.encounter_periods[visit], "Encounter.period")
        if start is not None:
            notes.append("date_from_encounter")
            return start
    return None


def value_columns(table: str, part: dict, ctx: ConvertContext, axis: str | None) -> tuple[dict[str, Any], list]:
    """The value[x] of an Observation or component as measurement/observation columns."""
    values: dict[str, Any] = {}
    unmapped: list = []
    measurement = table == "measurement"
    quantity = part.get("valueQuantity")
    if isinstance(quantity, dict):
        values["value_as_number"] = number(quantity.get("value"), "valueQuantity.value")
        comparator = text_of(quantity.get("comparator"))
        unit_code = quantity.get("code") if isinstance(quantity.get("code"), str) else None
        unit_text = unit_code or (quantity.get("unit") if isinstance(quantity.get("unit"), str) else None)
        if unit_text:
            unit = ctx.resolver.resolve_code("UCUM", unit_code) if unit_code and ctx.resolver.vocabulary_of(quantity.get("system")) == "UCUM" else None
            values["unit_concept_id"] = unit.concept_id if unit else 0
            values["unit_source_value"] = unit_text[:50]
            if not values["unit_concept_id"]:
                unmapped.append(_unit_gap(table, unit_text, quantity.get("system")))
        if comparator:
            values["value_source_value"] = f"{comparator}{quantity.get('value')}"
            if measurement:  # OBSERVATION has no operator column: the source value keeps it
                operator, _ = ctx.valueset("operator_concept_id", str(comparator), QUANTITY_COMPARATOR)
                values["operator_concept_id"] = operator
                if not operator:
                    unmapped.append(Unmapped(table, "operator_concept_id", QUANTITY_COMPARATOR, str(comparator)[:20],
                                             "code_not_in_valueset"))
    elif "valueInteger" in part:
        values["value_as_number"] = number(part.get("valueInteger"), "valueInteger")
    elif isinstance(part.get("valueCodeableConcept"), dict) or (axis and isinstance(part.get("valueString"), str)):
        raw = part.get("valueCodeableConcept") or part.get("valueString")
        resolved = resolve_staging_value(ctx, raw, axis) if axis else ctx.resolver.resolve(raw, "value")
        values["value_as_concept_id"] = resolved.concept_id
        values["value_source_value"] = resolved.source_value
        if not measurement and isinstance(raw, str):
            values["value_as_string"] = raw[:60]
        unmapped.extend(unmapped_of(table, "value_as_concept_id", resolved))
    elif isinstance(part.get("valueString"), str):
        text = part["valueString"]
        if measurement:
            values["value_source_value"] = text[:50]
        else:
            values["value_as_string"] = text[:60]
    elif isinstance(part.get("valueBoolean"), bool):
        text = "true" if part["valueBoolean"] else "false"
        answer = ctx.resolver.resolve_code(*BOOLEAN_ANSWERS[part["valueBoolean"]])
        values["value_as_concept_id"] = answer.concept_id
        values["value_source_value"] = text
        if not measurement:
            values["value_as_string"] = text
        unmapped.extend(unmapped_of(table, "value_as_concept_id", answer))
    if measurement:
        ranges = part.get("referenceRange")
        if isinstance(ranges, list) and ranges and isinstance(ranges[0], dict):
            low, high = ranges[0].get("low"), ranges[0].get("high")
            values["range_low"] = number(low.get("value"), "referenceRange.low") if isinstance(low, dict) else None
            values["range_high"] = number(high.get("value"), "referenceRange.high") if isinstance(high, dict) else None
    return values, unmapped


def _non_ctcl_system(part: dict, ctx: ConvertContext) -> bool:
    """Observation.method or .code names a staging system that is not ISCL/EORTC (data:
    fhir_valuesets.csv rows measurement_concept_id -> 0, e.g. Binet, Rai, Ann Arbor)."""
    for field_name in ("method", "code"):
        concept = part.get(field_name)
        for coding in as_list(concept.get("coding")) if isinstance(concept, dict) else ():
            if isinstance(coding, dict) and ("measurement_concept_id", str(coding.get("system") or ""),
                                             str(coding.get("code") or "")) in ctx.valuesets:
                return True
    return False


def _condition_link(item: SourceItem) -> str | None:
    """The Condition a staging Observation is about: focus (mCODE), else derivedFrom naming one,
    else a Condition.stage.assessment or a stage group's hasMember of the same Bundle naming it."""
    resource = item.resource or {}
    for field_name in ("focus", "derivedFrom"):
        for ref in as_list(resource.get(field_name)):
            key = reference(item, ref)
            if key and key.startswith("Condition/"):
                return key
    return item.bundle.staging_links.get(item.key) if item.bundle is not None else None


def _value_text(part: dict) -> str | None:
    value = part.get("valueCodeableConcept")
    if isinstance(value, dict):
        texts = [value.get("text")] + [c.get("code") for c in as_list(value.get("coding")) if isinstance(c, dict)]
        text = next((t for t in texts if isinstance(t, str) and t.strip()), None)
    else:
        text = part.get("valueString")
    return text.strip()[:50] if isinstance(text, str) else None


def _unit_gap(table: str, unit_text: str, system: Any) -> Unmapped:
    reason = "unit_not_ucum" if system is None else "code_not_in_vocabulary"
    return Unmapped(table, "unit_concept_id", "UCUM", unit_text, reason)


def _staging_axis(resolved: Resolved) -> str | None:
    entry = resolved.mapping
    if entry is None or getattr(entry, "kind", None) != "staging":
        return None
    return STAGING_AXES.get(entry.attributes.get("axis", "")) if not entry.attributes.get("value_code") else None


def _has_value(part: dict) -> bool:
    return any(name.startswith("value") for name in part)


def _category_codes(observation: dict) -> set[str]:
    codes = set()
    for category in as_list(observation.get("category")):
        if isinstance(category, dict):
            for coding in as_list(category.get("coding")):
                if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                    codes.add(coding["code"])
    return codes

