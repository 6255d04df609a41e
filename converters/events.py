"""Domain routing (f2o-037): the target concept's domain, not the resource type, picks the table.

Every clinical-event converter builds its row through `event_row`, so the column naming of the
six event tables lives in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ctcl_map.converters.base import FhirTime
from ctcl_map.model import OmopRow, Unmapped
from ctcl_map.vocab.lookup import Resolved


@dataclass(frozen=True)
class EventColumns:
    concept: str
    start_date: str
    start_datetime: str
    end_date: str | None
    end_datetime: str | None
    type_concept: str
    source_value: str
    source_concept: str


EVENT_TABLES: dict[str, EventColumns] = {
    "condition_occurrence": EventColumns(
        "condition_concept_id", "condition_start_date", "condition_start_datetime", "condition_end_date",
        "condition_end_datetime", "condition_type_concept_id", "condition_source_value", "condition_source_concept_id",
    ),
    "procedure_occurrence": EventColumns(
        "procedure_concept_id", "procedure_date", "procedure_datetime", "procedure_end_date",
        "procedure_end_datetime", "procedure_type_concept_id", "procedure_source_value", "procedure_source_concept_id",
    ),
    "measurement": EventColumns(
        "measurement_concept_id", "measurement_date", "measurement_datetime", None, None,
        "measurement_type_concept_id", "measurement_source_value", "measurement_source_concept_id",
    ),
    "observation": EventColumns(
        "observation_concept_id", "observation_date", "observation_datetime", None, None,
        "observation_type_concept_id", "observation_source_value", "observation_source_concept_id",
    ),
    "drug_exposure": EventColumns(
        "drug_concept_id", "drug_exposure_start_date", "drug_exposure_start_datetime", "drug_exposure_end_date",
        "drug_exposure_end_datetime", "drug_type_concept_id", "drug_source_value", "drug_source_concept_id",
    ),
    "device_exposure": EventColumns(
        "device_concept_id", "device_exposure_start_date", "device_exposure_start_datetime", "device_exposure_end_date",
        "device_exposure_end_datetime", "device_type_concept_id", "device_source_value", "device_source_concept_id",
    ),
}

DOMAIN_TABLE = {
    "Condition": "condition_occurrence",
    "Procedure": "procedure_occurrence",
    "Measurement": "measurement",
    "Observation": "observation",
    "Drug": "drug_exposure",
    "Device": "device_exposure",
}


def route(resolved: Resolved, default_table: str) -> tuple[str, Resolved]:
    """Table for a resolved concept. Unmapped codes stay in the resource's default table; a mapped
    concept whose domain has no event table (a unit, a gender ...) cannot be an event: concept 0."""
    if not resolved.concept_id:
        return default_table, resolved
    table = DOMAIN_TABLE.get(resolved.domain_id or "")
    if table is None:
        demoted = Resolved(0, resolved.source_value, resolved.source_concept_id, resolved.domain_id,
                           resolved.vocabulary_id, resolved.code, f"domain_not_routable:{resolved.domain_id}")
        return default_table, demoted
    return table, resolved


def event_row(
    table: str,
    key: str,
    person_key: str,
    visit_key: str | None,
    resolved: Resolved,
    start: FhirTime,
    end: FhirTime | None,
    type_concept_id: int,
    extra: dict[str, Any] | None = None,
) -> OmopRow:
    columns = EVENT_TABLES[table]
    values: dict[str, Any] = {
        "person_id": person_key,
        columns.concept: resolved.concept_id,
        columns.start_date: start.day,
        columns.start_datetime: start.moment,
        columns.type_concept: type_concept_id,
        columns.source_value: resolved.source_value,
        columns.source_concept: resolved.source_concept_id,
        "visit_occurrence_id": visit_key,
    }
    if columns.end_date and columns.end_datetime:  # both or neither: EVENT_TABLES
        if end is not None:
            values[columns.end_date] = end.day
            values[columns.end_datetime] = end.moment
        elif table == "drug_exposure":
            # drug_exposure_end_date is required: with no end recorded, the exposure lasted one day.
            values[columns.end_date] = start.day
    if extra:
        values.update(extra)
    return OmopRow(table, key, values)


def with_more_targets(row: OmopRow, resolved: Resolved, start: FhirTime, end: FhirTime | None,
                      type_concept_id: int) -> list[OmopRow]:
    """The event row, plus one row per further 'Maps to' target of its code (OMOP convention: a
    source code mapped to several standard concepts gives one record per target), each in the
    table of its target's domain. A target in the same table repeats the row's value columns."""
    rows = [row]
    for number, (concept_id, domain_id) in enumerate(resolved.more_targets, start=2):
        target = Resolved(concept_id, resolved.source_value, resolved.source_concept_id, domain_id,
                          resolved.vocabulary_id, resolved.code, None)
        target_table, target = route(target, row.table)
        key = f"{row.key}#maps{number}"
        if target_table == row.table:
            values = dict(row.values)
            values[EVENT_TABLES[row.table].concept] = concept_id
            rows.append(OmopRow(row.table, key, values))
        else:
            rows.append(event_row(target_table, key, row.values["person_id"], row.values.get("visit_occurrence_id"),
                                  target, start, end, type_concept_id))
    return rows


def unmapped_of(table: str, column: str, resolved: Resolved) -> list[Unmapped]:
    if resolved.concept_id or resolved.reason is None:
        return []
    return [Unmapped(table, column, resolved.vocabulary_id or "", resolved.code or "", resolved.reason)]
