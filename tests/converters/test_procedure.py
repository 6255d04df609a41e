"""Procedure -> procedure_occurrence, the converter alone: resources after the US Core Procedure
and FHIR R4 Procedure examples, exact rows out."""

from __future__ import annotations

from datetime import date, datetime

from ctcl_map.converters.procedure import convert_procedure
from ctcl_map.model import Unmapped

SNOMED = "http://snomed.info/sct"


def _rows(conversion):
    return [(row.table, row.key, row.values) for row in conversion.rows]


def test_completed_uva_therapy(run_converter):
    conversion = run_converter(convert_procedure, {
        "resourceType": "Procedure", "id": "uva", "status": "completed",
        "code": {"coding": [{"system": SNOMED, "code": "229587005", "display": "Ultraviolet A therapy"}]},
        "subject": {"reference": "Patient/example"}, "performedDateTime": "2019-03-26T09:00:00Z"})
    assert _rows(conversion) == [("procedure_occurrence", "Procedure/uva", {
        "person_id": "Patient/example", "procedure_concept_id": 4039592,  # Ultraviolet A therapy
        "procedure_date": date(2019, 3, 26), "procedure_datetime": datetime(2019, 3, 26, 9, 0),
        "procedure_type_concept_id": 32817,  # EHR
        "procedure_source_value": "229587005", "procedure_source_concept_id": 4039592, "visit_occurrence_id": None})]
    assert (conversion.quarantined, conversion.unmapped, conversion.notes) == (None, [], [])


def test_unmapped_procedure_with_a_performed_period_keeps_its_end_and_reason(run_converter):
    # FHIR R4 Procedure "f201"-style appendectomy, a SNOMED code outside the shipped vocabulary.
    conversion = run_converter(convert_procedure, {
        "resourceType": "Procedure", "id": "appendectomy", "status": "completed",
        "code": {"coding": [{"system": SNOMED, "code": "80146002", "display": "Appendectomy"}], "text": "Appendectomy"},
        "subject": {"reference": "Patient/example"},
        "performedPeriod": {"start": "2013-01-28T13:31:00+01:00", "end": "2013-01-28T14:27:00+01:00"}})
    assert _rows(conversion) == [("procedure_occurrence", "Procedure/appendectomy", {
        "person_id": "Patient/example", "procedure_concept_id": 0,
        "procedure_date": date(2013, 1, 28), "procedure_datetime": datetime(2013, 1, 28, 13, 31),
        "procedure_type_concept_id": 32817, "procedure_source_value": "80146002", "procedure_source_concept_id": 0,
        "visit_occurrence_id": None,
        "procedure_end_date": date(2013, 1, 28), "procedure_end_datetime": datetime(2013, 1, 28, 14, 27)})]
    assert conversion.unmapped == [Unmapped("procedure_occurrence", "concept_id", "SNOMED", "80146002", "code_not_in_vocabulary")]


def test_procedure_not_done_gives_no_row(run_converter):
    conversion = run_converter(convert_procedure, {
        "resourceType": "Procedure", "id": "notdone", "status": "not-done",
        "code": {"coding": [{"system": SNOMED, "code": "229587005"}]},
        "subject": {"reference": "Patient/example"}, "performedDateTime": "2019-03-26"})
    assert (conversion.rows, conversion.excluded) == ([], "procedure_status_not-done")


def test_completed_procedure_without_a_date_is_quarantined(run_converter):
    conversion = run_converter(convert_procedure, {
        "resourceType": "Procedure", "id": "nodate", "status": "completed",
        "code": {"coding": [{"system": SNOMED, "code": "229587005"}]}, "subject": {"reference": "Patient/example"}})
    assert conversion.quarantined == ("missing_date", "Procedure has no performed[x] date")
