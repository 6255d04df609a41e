"""MedicationRequest, MedicationAdministration and MedicationStatement -> drug_exposure, the
converter alone: resources after the US Core MedicationRequest and FHIR R4 MedicationAdministration
/ MedicationStatement examples, with CTCL drugs, exact rows out."""

from __future__ import annotations

from datetime import date, datetime

from ctcl_map.converters.medication import convert_medication
from ctcl_map.model import Unmapped

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"


def _rows(conversion):
    return [(row.table, row.key, row.values) for row in conversion.rows]


def test_medication_request_order_with_route_and_dosage_text(run_converter):
    conversion = run_converter(convert_medication, {
        "resourceType": "MedicationRequest", "id": "moga", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "2054068", "display": "mogamulizumab"}]},
        "subject": {"reference": "Patient/example"}, "encounter": {"reference": "Encounter/example-1"}, "authoredOn": "2019-06-24",
        "dosageInstruction": [{"text": "1 mg/kg IV on days 1, 8, 15 and 22",
                               "route": {"coding": [{"system": SNOMED, "code": "47625008", "display": "Intravenous"}]}}]})
    assert _rows(conversion) == [("drug_exposure", "MedicationRequest/moga", {
        "person_id": "Patient/example", "drug_concept_id": 35200202,  # mogamulizumab (RxNorm Ingredient)
        "drug_exposure_start_date": date(2019, 6, 24), "drug_exposure_start_datetime": None,
        "drug_type_concept_id": 32838,  # EHR prescription
        "drug_source_value": "2054068", "drug_source_concept_id": 35200202,
        "visit_occurrence_id": "Encounter/example-1",
        "drug_exposure_end_date": date(2019, 6, 24),  # no duration given: the start day
        "sig": "1 mg/kg IV on days 1, 8, 15 and 22",
        "route_concept_id": 4171047, "route_source_value": "47625008"})]  # Intravenous
    assert (conversion.quarantined, conversion.unmapped, conversion.notes) == (None, [], [])


def test_medication_request_with_an_unknown_drug_code_keeps_it_with_concept_0_and_its_reason(run_converter):
    # US Core MedicationRequest example drug (RxNorm 582620, Nizatidine oral solution): not shipped.
    conversion = run_converter(convert_medication, {
        "resourceType": "MedicationRequest", "id": "uscore-mo1", "status": "completed", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "582620", "display": "Nizatidine 15 MG/ML Oral Solution [Axid]"}]},
        "subject": {"reference": "Patient/example"}, "authoredOn": "2008-04-05"})
    assert _rows(conversion) == [("drug_exposure", "MedicationRequest/uscore-mo1", {
        "person_id": "Patient/example", "drug_concept_id": 0,
        "drug_exposure_start_date": date(2008, 4, 5), "drug_exposure_start_datetime": None,
        "drug_type_concept_id": 32838, "drug_source_value": "582620", "drug_source_concept_id": 0,
        "visit_occurrence_id": None, "drug_exposure_end_date": date(2008, 4, 5)})]
    assert conversion.unmapped == [Unmapped("drug_exposure", "concept_id", "RxNorm", "582620", "code_not_in_vocabulary")]


def test_medication_request_that_is_only_a_plan_gives_no_row(run_converter):
    conversion = run_converter(convert_medication, {
        "resourceType": "MedicationRequest", "id": "plan", "status": "active", "intent": "plan",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "2054068"}]},
        "subject": {"reference": "Patient/example"}, "authoredOn": "2019-06-24"})
    assert (conversion.rows, conversion.excluded) == ([], "medication_request_intent_plan")


def test_medication_administration_with_dose_and_route(run_converter):
    conversion = run_converter(convert_medication, {
        "resourceType": "MedicationAdministration", "id": "mtx", "status": "completed",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "6851", "display": "methotrexate"}]},
        "subject": {"reference": "Patient/example"},
        "effectivePeriod": {"start": "2015-01-15T14:30:00+01:00", "end": "2015-01-15T14:30:00+01:00"},
        "dosage": {"route": {"coding": [{"system": SNOMED, "code": "34206005", "display": "Subcutaneous"}]},
                   "dose": {"value": 25, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}})
    assert _rows(conversion) == [("drug_exposure", "MedicationAdministration/mtx", {
        "person_id": "Patient/example", "drug_concept_id": 1305058,  # methotrexate
        "drug_exposure_start_date": date(2015, 1, 15), "drug_exposure_start_datetime": datetime(2015, 1, 15, 14, 30),
        "drug_type_concept_id": 32818,  # EHR administration record
        "drug_source_value": "6851", "drug_source_concept_id": 1305058, "visit_occurrence_id": None,
        "drug_exposure_end_date": date(2015, 1, 15), "drug_exposure_end_datetime": datetime(2015, 1, 15, 14, 30),
        "quantity": 25.0, "dose_unit_source_value": "mg",
        "route_concept_id": 4142048, "route_source_value": "34206005"})]  # Subcutaneous


def test_medication_administration_not_done_gives_no_row(run_converter):
    conversion = run_converter(convert_medication, {
        "resourceType": "MedicationAdministration", "id": "notdone", "status": "not-done",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "6851"}]},
        "subject": {"reference": "Patient/example"}, "effectiveDateTime": "2015-01-15"})
    assert (conversion.rows, conversion.excluded) == ([], "medication_administration_status_not-done")


def test_medication_statement_with_an_effective_period(run_converter):
    conversion = run_converter(convert_medication, {
        "resourceType": "MedicationStatement", "id": "ifn", "status": "active",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "5880", "display": "interferon alfa-2b"}]},
        "subject": {"reference": "Patient/example"}, "effectivePeriod": {"start": "2015-01-23", "end": "2015-02-23"},
        "dateAsserted": "2015-02-22"})
    assert _rows(conversion) == [("drug_exposure", "MedicationStatement/ifn", {
        "person_id": "Patient/example", "drug_concept_id": 1380068,  # interferon alfa-2b
        "drug_exposure_start_date": date(2015, 1, 23), "drug_exposure_start_datetime": None,
        "drug_type_concept_id": 32817,  # EHR
        "drug_source_value": "5880", "drug_source_concept_id": 1380068, "visit_occurrence_id": None,
        "drug_exposure_end_date": date(2015, 2, 23), "drug_exposure_end_datetime": None})]


def test_medication_statement_with_a_contained_medication(run_converter):
    # FHIR R4 MedicationStatement "example001" style: medicationReference to a contained Medication.
    conversion = run_converter(convert_medication, {
        "resourceType": "MedicationStatement", "id": "contained", "status": "completed",
        "contained": [{"resourceType": "Medication", "id": "med0309", "code": {"coding": [{"system": RXNORM, "code": "6851"}]}}],
        "medicationReference": {"reference": "#med0309"},
        "subject": {"reference": "Patient/example"}, "effectiveDateTime": "2015-01-23"})
    assert _rows(conversion) == [("drug_exposure", "MedicationStatement/contained", {
        "person_id": "Patient/example", "drug_concept_id": 1305058,
        "drug_exposure_start_date": date(2015, 1, 23), "drug_exposure_start_datetime": None,
        "drug_type_concept_id": 32817, "drug_source_value": "6851", "drug_source_concept_id": 1305058,
        "visit_occurrence_id": None, "drug_exposure_end_date": date(2015, 1, 23)})]


def test_medication_statement_without_a_date_is_quarantined(run_converter):
    conversion = run_converter(convert_medication, {
        "resourceType": "MedicationStatement", "id": "nodate", "status": "active",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "5880"}]}, "subject": {"reference": "Patient/example"}})
    assert conversion.quarantined == ("missing_date", "MedicationStatement has no effectiveDateTime / effectivePeriod / dateAsserted")
