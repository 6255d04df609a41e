"""Condition -> condition_occurrence, the converter alone: resources after the US Core Condition
(problem list item) and FHIR R4 Condition examples, with CTCL codes, exact rows out."""

from __future__ import annotations

from datetime import date

from ctcl_map.converters.condition import convert_condition
from ctcl_map.model import Unmapped

VER_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


def _rows(conversion):
    return [(row.table, row.key, row.values) for row in conversion.rows]


def test_confirmed_snomed_mycosis_fungoides_with_onset_and_abatement(run_converter):
    conversion = run_converter(convert_condition, {
        "resourceType": "Condition", "id": "mf",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "verificationStatus": {"coding": [{"system": VER_STATUS, "code": "confirmed"}]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item"}]}],
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "118618005", "display": "Mycosis fungoides"}]},
        "subject": {"reference": "Patient/example"}, "encounter": {"reference": "Encounter/example-1"},
        "onsetDateTime": "2015-10-20", "abatementDateTime": "2016-03-01", "recordedDate": "2015-11-01"})
    assert _rows(conversion) == [("condition_occurrence", "Condition/mf", {
        "person_id": "Patient/example",
        "condition_concept_id": 4040380,  # Mycosis fungoides (clinical), standard SNOMED
        "condition_start_date": date(2015, 10, 20), "condition_start_datetime": None,
        "condition_type_concept_id": 32817,  # EHR
        "condition_source_value": "118618005", "condition_source_concept_id": 4040380,
        "visit_occurrence_id": "Encounter/example-1",
        "condition_end_date": date(2016, 3, 1), "condition_end_datetime": None})]
    assert (conversion.quarantined, conversion.unmapped, conversion.notes) == (None, [], [])


def test_icd10cm_code_maps_through_the_diagnosis_table_and_recorded_date_is_the_start(run_converter):
    # ICD-10-CM C84.00 (mycosis fungoides, unspecified site) is not in the shipped vocabulary:
    # mappings/diagnoses.csv gives its standard concept; the source concept stays 0.
    conversion = run_converter(convert_condition, {
        "resourceType": "Condition", "id": "icd",
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C84.00"}]},
        "subject": {"reference": "Patient/example"}, "recordedDate": "2015-10-20"})
    assert _rows(conversion) == [("condition_occurrence", "Condition/icd", {
        "person_id": "Patient/example", "condition_concept_id": 4040380,
        "condition_start_date": date(2015, 10, 20), "condition_start_datetime": None,
        "condition_type_concept_id": 32817, "condition_source_value": "C84.00", "condition_source_concept_id": 0,
        "visit_occurrence_id": None})]
    assert conversion.notes == ["start_from_recorded_date"]


def test_code_not_in_the_vocabulary_gives_concept_0_and_its_reason(run_converter):
    # FHIR R4 Condition "f201": fever, a SNOMED code outside the shipped vocabulary.
    conversion = run_converter(convert_condition, {
        "resourceType": "Condition", "id": "f201",
        "verificationStatus": {"coding": [{"system": VER_STATUS, "code": "confirmed"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "386661006", "display": "Fever"}]},
        "subject": {"reference": "Patient/f201"}, "onsetDateTime": "2013-04-02"})
    assert _rows(conversion) == [("condition_occurrence", "Condition/f201", {
        "person_id": "Patient/f201", "condition_concept_id": 0,
        "condition_start_date": date(2013, 4, 2), "condition_start_datetime": None,
        "condition_type_concept_id": 32817, "condition_source_value": "386661006", "condition_source_concept_id": 0,
        "visit_occurrence_id": None})]
    assert conversion.unmapped == [Unmapped("condition_occurrence", "concept_id", "SNOMED", "386661006", "code_not_in_vocabulary")]


def test_refuted_condition_gives_no_row(run_converter):
    conversion = run_converter(convert_condition, {
        "resourceType": "Condition", "id": "refuted",
        "verificationStatus": {"coding": [{"system": VER_STATUS, "code": "refuted"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "118618005"}]},
        "subject": {"reference": "Patient/example"}, "onsetDateTime": "2015-10-20"})
    assert (conversion.rows, conversion.excluded) == ([], "condition_refuted")


def test_condition_without_any_date_is_quarantined(run_converter):
    conversion = run_converter(convert_condition, {
        "resourceType": "Condition", "id": "nodate",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "118618005"}]}, "subject": {"reference": "Patient/example"}})
    assert conversion.quarantined == ("missing_date", "Condition has no onset[x], recordedDate or assertedDate extension")
