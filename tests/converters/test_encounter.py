"""Encounter -> visit_occurrence, the converter alone: resources after the US Core Encounter
example and the FHIR R4 Encounter example, exact rows out."""

from __future__ import annotations

from datetime import date, datetime

from ctcl_map.converters.encounter import convert_encounter
from ctcl_map.model import Unmapped

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def _rows(conversion):
    return [(row.table, row.key, row.values) for row in conversion.rows]


def test_us_core_ambulatory_encounter_is_an_outpatient_visit(run_converter):
    # US Core Encounter "example-1"; the period's offset is dropped, its wall-clock time kept.
    conversion = run_converter(convert_encounter, {
        "resourceType": "Encounter", "id": "example-1", "status": "finished",
        "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "type": [{"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "99201"}], "text": "Office Visit"}],
        "subject": {"reference": "Patient/example"},
        "period": {"start": "2015-11-01T17:00:14-05:00", "end": "2015-11-01T18:00:14-05:00"}})
    assert _rows(conversion) == [("visit_occurrence", "Encounter/example-1", {
        "visit_occurrence_id": "Encounter/example-1", "person_id": "Patient/example",
        "visit_concept_id": 9202,  # Outpatient Visit
        "visit_start_date": date(2015, 11, 1), "visit_start_datetime": datetime(2015, 11, 1, 17, 0, 14),
        "visit_end_date": date(2015, 11, 1), "visit_end_datetime": datetime(2015, 11, 1, 18, 0, 14),
        "visit_type_concept_id": 32817,  # EHR
        "visit_source_value": "AMB", "visit_source_concept_id": 0})]
    assert (conversion.quarantined, conversion.unmapped, conversion.notes) == (None, [], [])


def test_class_outside_the_value_set_gives_visit_concept_0_and_its_reason(run_converter):
    conversion = run_converter(convert_encounter, {
        "resourceType": "Encounter", "id": "field", "status": "finished",
        "class": {"system": ACT_CODE, "code": "FLD", "display": "field"},
        "subject": {"reference": "Patient/example"}, "period": {"start": "2015-11-01", "end": "2015-11-01"}})
    assert _rows(conversion) == [("visit_occurrence", "Encounter/field", {
        "visit_occurrence_id": "Encounter/field", "person_id": "Patient/example", "visit_concept_id": 0,
        "visit_start_date": date(2015, 11, 1), "visit_start_datetime": None,
        "visit_end_date": date(2015, 11, 1), "visit_end_datetime": None,
        "visit_type_concept_id": 32817, "visit_source_value": "FLD", "visit_source_concept_id": 0})]
    assert conversion.unmapped == [Unmapped("visit_occurrence", "visit_concept_id", ACT_CODE, "FLD", "code_not_in_valueset")]


def test_in_progress_encounter_without_a_period_is_quarantined(run_converter):
    # FHIR R4 Encounter "example": an inpatient encounter in progress, no period.
    conversion = run_converter(convert_encounter, {
        "resourceType": "Encounter", "id": "example", "status": "in-progress",
        "class": {"system": ACT_CODE, "code": "IMP", "display": "inpatient encounter"},
        "subject": {"reference": "Patient/example"}})
    assert conversion.rows == []
    assert conversion.quarantined == ("missing_date", "Encounter has no period.start")


def test_encounter_without_subject_is_quarantined(run_converter):
    conversion = run_converter(convert_encounter, {
        "resourceType": "Encounter", "id": "e2", "status": "finished",
        "class": {"system": ACT_CODE, "code": "AMB"}, "period": {"start": "2015-11-01"}})
    assert conversion.quarantined == ("missing_subject", "Encounter.subject is missing")
