"""Encounter -> visit_occurrence.

Encounter.class (v3 ActCode) picks the visit concept through mappings/fhir_valuesets.csv
(IMP -> Inpatient 9201, AMB -> Outpatient 9202, EMER -> ER 9203, ...). Planned, cancelled and
entered-in-error encounters did not happen and give no row.
"""

from __future__ import annotations

from ctcl_map.converters.base import EHR, excluded, period_times, quarantined, text_of
from ctcl_map.converters.context import ConvertContext, subject_key, subject_problem
from ctcl_map.model import Conversion, OmopRow, SourceItem, Unmapped

NOT_REALIZED = {"planned", "cancelled", "entered-in-error"}


def convert_encounter(item: SourceItem, ctx: ConvertContext) -> Conversion:
    encounter = item.resource or {}
    status = text_of(encounter.get("status"))
    if status in NOT_REALIZED:
        return excluded(f"encounter_status_{status}")
    person_key, problem = subject_key(item)
    if person_key is None:
        assert problem is not None  # subject_key gives a reason with every missing key
        return subject_problem(item, problem)
    start, end = period_times(encounter.get("period"), "period")
    if start is None:
        return quarantined("missing_date", "Encounter has no period.start")
    if end is not None and end.day < start.day:
        return quarantined("end_before_start", "Encounter period.end is before period.start")
    visit_class = encounter.get("class")
    if not isinstance(visit_class, dict):
        visit_class = {}
    visit_concept_id, class_code = ctx.valueset("visit_concept_id", visit_class)
    conversion = Conversion()
    if not visit_concept_id:
        conversion.unmapped.append(
            Unmapped("visit_occurrence", "visit_concept_id", str(visit_class.get("system")), str(class_code), "code_not_in_valueset")
        )
    end = end or start
    conversion.rows.append(
        OmopRow("visit_occurrence", item.key, {
            "visit_occurrence_id": item.key,
            "person_id": person_key,
            "visit_concept_id": visit_concept_id,
            "visit_start_date": start.day,
            "visit_start_datetime": start.moment,
            "visit_end_date": end.day,
            "visit_end_datetime": end.moment,
            "visit_type_concept_id": EHR,
            "visit_source_value": class_code,
            "visit_source_concept_id": 0,
        })
    )
    return conversion
