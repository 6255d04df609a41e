"""AllergyIntolerance -> observation, the converter alone: resources after the US Core
AllergyIntolerance example (an RxNorm substance), exact rows out."""

from __future__ import annotations

from datetime import date

from ctcl_map.converters.allergy import convert_allergy
from ctcl_map.model import Unmapped

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"


def _rows(conversion):
    return [(row.table, row.key, row.values) for row in conversion.rows]


def test_allergy_to_a_drug_ingredient_keeps_the_substance_as_value(run_converter):
    # No verified 'Allergy to methotrexate' concept is shipped: the ingredient is the value,
    # observation_concept_id 0 with the reason allergy_substance_only (HL7 FHIR-to-OMOP AllergyMap).
    conversion = run_converter(convert_allergy, {
        "resourceType": "AllergyIntolerance", "id": "mtx",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]},
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]},
        "code": {"coding": [{"system": RXNORM, "code": "6851", "display": "methotrexate"}]},
        "patient": {"reference": "Patient/example"}, "onsetDateTime": "2019-05-01", "recordedDate": "2019-05-03"})
    assert _rows(conversion) == [("observation", "AllergyIntolerance/mtx", {
        "person_id": "Patient/example", "observation_concept_id": 0,
        "observation_date": date(2019, 5, 1), "observation_datetime": None,
        "observation_type_concept_id": 32817,  # EHR
        "observation_source_value": "6851", "observation_source_concept_id": 1305058,
        "visit_occurrence_id": None,
        "value_as_concept_id": 1305058})]  # methotrexate
    assert conversion.unmapped == [Unmapped("observation", "concept_id", "RxNorm", "6851", "allergy_substance_only")]


def test_allergy_to_a_substance_outside_the_vocabulary_dated_by_its_recorded_date(run_converter):
    # US Core AllergyIntolerance example: penicillin G (RxNorm 7980), not in the shipped vocabulary.
    conversion = run_converter(convert_allergy, {
        "resourceType": "AllergyIntolerance", "id": "example",
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]},
        "code": {"coding": [{"system": RXNORM, "code": "7980", "display": "Penicillin G"}]},
        "patient": {"reference": "Patient/example"}, "recordedDate": "2016-05-01"})
    assert _rows(conversion) == [("observation", "AllergyIntolerance/example", {
        "person_id": "Patient/example", "observation_concept_id": 0,
        "observation_date": date(2016, 5, 1), "observation_datetime": None,
        "observation_type_concept_id": 32817, "observation_source_value": "7980", "observation_source_concept_id": 0,
        "visit_occurrence_id": None})]
    assert conversion.unmapped == [Unmapped("observation", "concept_id", "RxNorm", "7980", "code_not_in_vocabulary")]
    assert conversion.notes == ["start_from_recorded_date"]


def test_refuted_allergy_gives_no_row(run_converter):
    conversion = run_converter(convert_allergy, {
        "resourceType": "AllergyIntolerance", "id": "refuted",
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "refuted"}]},
        "code": {"coding": [{"system": RXNORM, "code": "6851"}]},
        "patient": {"reference": "Patient/example"}, "onsetDateTime": "2019-05-01"})
    assert (conversion.rows, conversion.excluded) == ([], "allergy_refuted")


def test_allergy_without_any_date_is_quarantined(run_converter):
    conversion = run_converter(convert_allergy, {
        "resourceType": "AllergyIntolerance", "id": "nodate",
        "code": {"coding": [{"system": RXNORM, "code": "6851"}]}, "patient": {"reference": "Patient/example"}})
    assert conversion.quarantined == ("missing_date", "AllergyIntolerance has neither onset[x] nor recordedDate")
