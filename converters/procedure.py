"""Procedure -> procedure_occurrence (or the table of the concept's domain).

Only `completed` procedures happened (f2o-060): preparation, in-progress, not-done, on-hold,
stopped, entered-in-error and unknown give no row and are counted by status in the run report.
"""

from __future__ import annotations

from ctcl_map.converters.base import EHR, excluded, first_time, quarantined, text_of
from ctcl_map.converters.context import ConvertContext, encounter_key, subject_key, subject_problem
from ctcl_map.converters.events import event_row, route, unmapped_of, with_more_targets
from ctcl_map.model import Conversion, SourceItem


def convert_procedure(item: SourceItem, ctx: ConvertContext) -> Conversion:
    procedure = item.resource or {}
    status = text_of(procedure.get("status"))
    if status != "completed":
        return excluded(f"procedure_status_{(status or 'missing')[:40]}")
    person_key, problem = subject_key(item)
    if person_key is None:
        assert problem is not None  # subject_key gives a reason with every missing key
        return subject_problem(item, problem)
    start, end = first_time(procedure, ("performedDateTime", "performedPeriod"))
    if start is None:
        return quarantined("missing_date", "Procedure has no performed[x] date")
    if end is not None and end.day < start.day:
        return quarantined("end_before_start", "Procedure performedPeriod ends before it starts")
    resolved = ctx.resolver.resolve(procedure.get("code"), "procedure")
    table, resolved = route(resolved, "procedure_occurrence")
    conversion = Conversion()
    if start.imputed:
        conversion.notes.append("date_imputed")
    row = event_row(table, item.key, person_key, encounter_key(item), resolved, start, end, EHR)
    conversion.rows.extend(with_more_targets(row, resolved, start, end, EHR))
    conversion.unmapped.extend(unmapped_of(table, "concept_id", resolved))
    return conversion
