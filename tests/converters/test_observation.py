"""Observation -> measurement, the converter alone: resources after the US Core laboratory result
and vital-signs (body weight) examples and the FHIR R4 Observation examples, exact rows out."""

from __future__ import annotations

from datetime import date, datetime

from ctcl_map.converters.observation import convert_observation
from ctcl_map.model import Unmapped

CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
UCUM = "http://unitsofmeasure.org"


def _rows(conversion):
    return [(row.table, row.key, row.values) for row in conversion.rows]


def test_laboratory_result_with_unit_and_reference_range(run_converter):
    conversion = run_converter(convert_observation, {
        "resourceType": "Observation", "id": "lymph", "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "731-0", "display": "Lymphocytes [#/volume] in Blood by Automated count"}]},
        "subject": {"reference": "Patient/example"}, "effectiveDateTime": "2005-07-05",
        "valueQuantity": {"value": 2.5, "unit": "10*3/uL", "system": UCUM, "code": "10*3/uL"},
        "referenceRange": [{"low": {"value": 1.0, "unit": "10*3/uL", "system": UCUM, "code": "10*3/uL"},
                            "high": {"value": 4.8, "unit": "10*3/uL", "system": UCUM, "code": "10*3/uL"}}]})
    assert _rows(conversion) == [("measurement", "Observation/lymph", {
        "person_id": "Patient/example",
        "measurement_concept_id": 3004327,  # LOINC 731-0
        "measurement_date": date(2005, 7, 5), "measurement_datetime": None,
        "measurement_type_concept_id": 32856,  # Lab: the laboratory category
        "measurement_source_value": "731-0", "measurement_source_concept_id": 3004327,
        "visit_occurrence_id": None,
        "value_as_number": 2.5, "unit_concept_id": 8848,  # thousand per microliter
        "unit_source_value": "10*3/uL", "range_low": 1.0, "range_high": 4.8})]
    assert (conversion.quarantined, conversion.unmapped, conversion.notes) == (None, [], [])


def test_body_weight_in_pounds_keeps_the_unit_it_cannot_map_with_its_reason(run_converter):
    # US Core body weight example: 185 [lb_av], a UCUM unit outside the shipped vocabulary.
    conversion = run_converter(convert_observation, {
        "resourceType": "Observation", "id": "body-weight", "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body Weight"}]},
        "subject": {"reference": "Patient/example"}, "effectiveDateTime": "2016-03-28",
        "valueQuantity": {"value": 185, "unit": "lbs", "system": UCUM, "code": "[lb_av]"}})
    assert _rows(conversion) == [("measurement", "Observation/body-weight", {
        "person_id": "Patient/example", "measurement_concept_id": 3025315,  # Body weight
        "measurement_date": date(2016, 3, 28), "measurement_datetime": None,
        "measurement_type_concept_id": 32817,  # EHR
        "measurement_source_value": "29463-7", "measurement_source_concept_id": 3025315,
        "visit_occurrence_id": None, "value_as_number": 185.0, "unit_concept_id": 0, "unit_source_value": "[lb_av]"})]
    assert conversion.unmapped == [Unmapped("measurement", "unit_concept_id", "UCUM", "[lb_av]", "code_not_in_vocabulary")]


def test_unmapped_numeric_result_is_a_measurement_with_concept_0_and_its_reason(run_converter):
    # FHIR R4 Observation "f001": glucose, a LOINC code outside the shipped vocabulary.
    conversion = run_converter(convert_observation, {
        "resourceType": "Observation", "id": "f001", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "15074-8", "display": "Glucose [Moles/volume] in Blood"}]},
        "subject": {"reference": "Patient/f001"}, "effectivePeriod": {"start": "2013-04-02T09:30:10+01:00"},
        "valueQuantity": {"value": 6.3, "unit": "mmol/l", "system": UCUM, "code": "mmol/L"}})
    assert _rows(conversion) == [("measurement", "Observation/f001", {
        "person_id": "Patient/f001", "measurement_concept_id": 0,
        "measurement_date": date(2013, 4, 2), "measurement_datetime": datetime(2013, 4, 2, 9, 30, 10),
        "measurement_type_concept_id": 32817, "measurement_source_value": "15074-8", "measurement_source_concept_id": 0,
        "visit_occurrence_id": None, "value_as_number": 6.3,
        "unit_concept_id": 8753,  # millimole per liter
        "unit_source_value": "mmol/L"})]
    assert conversion.unmapped == [Unmapped("measurement", "concept_id", "LOINC", "15074-8", "code_not_in_vocabulary")]


def test_result_without_a_date_is_quarantined_and_waits_for_its_report(run_converter):
    conversion = run_converter(convert_observation, {
        "resourceType": "Observation", "id": "nodate", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "731-0"}]},
        "subject": {"reference": "Patient/example"}, "valueQuantity": {"value": 2.5}})
    assert conversion.rows == []
    assert conversion.quarantined == (
        "missing_date", "Observation has no effective[x] or issued, and no DiagnosticReport or Encounter gives a date")
    assert conversion.awaits == "DiagnosticReport?result=Observation/nodate"


def test_cancelled_observation_gives_no_row(run_converter):
    conversion = run_converter(convert_observation, {
        "resourceType": "Observation", "id": "cancelled", "status": "cancelled",
        "code": {"coding": [{"system": "http://loinc.org", "code": "731-0"}]},
        "subject": {"reference": "Patient/example"}, "effectiveDateTime": "2005-07-05"})
    assert (conversion.rows, conversion.excluded) == ([], "observation_status_cancelled")
