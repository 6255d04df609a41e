"""Patient -> person (+ death), the converter alone: resources after the US Core Patient example
(race and ethnicity extensions) and the FHIR R4 Patient examples, exact rows out."""

from __future__ import annotations

from datetime import date, datetime

from ctcl_map.converters.patient import convert_patient
from ctcl_map.model import Unmapped

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition"
CDC_RACE_ETHNICITY = "urn:oid:2.16.840.1.113883.6.238"

# US Core Patient "example", without the parts that do not reach OMOP (telecom, address ...).
US_CORE_EXAMPLE = {
    "resourceType": "Patient", "id": "example",
    "extension": [
        {"url": f"{US_CORE}/us-core-race", "extension": [
            {"url": "ombCategory", "valueCoding": {"system": CDC_RACE_ETHNICITY, "code": "2106-3", "display": "White"}},
            {"url": "text", "valueString": "Mixed"}]},
        {"url": f"{US_CORE}/us-core-ethnicity", "extension": [
            {"url": "ombCategory", "valueCoding": {"system": CDC_RACE_ETHNICITY, "code": "2135-2", "display": "Hispanic or Latino"}},
            {"url": "text", "valueString": "Hispanic or Latino"}]},
    ],
    "identifier": [{"system": "http://hospital.smarthealthit.org", "value": "1032702"}],
    "name": [{"family": "Shaw", "given": ["Amy", "V."]}],
    "gender": "female",
    "birthDate": "1987-02-20",
}


def _rows(conversion):
    return [(row.table, row.key, row.values) for row in conversion.rows]


def test_us_core_patient_gives_one_person_with_race_and_ethnicity(run_converter, pseudonym):
    conversion = run_converter(convert_patient, US_CORE_EXAMPLE)
    assert _rows(conversion) == [("person", "Patient/example", {
        "person_id": "Patient/example",
        "gender_concept_id": 8532,  # FEMALE
        "year_of_birth": 1987, "month_of_birth": 2, "day_of_birth": 20,
        "birth_datetime": datetime(1987, 2, 20, 0, 0),
        "race_concept_id": 8527,  # White
        "ethnicity_concept_id": 38003563,  # Hispanic or Latino
        "person_source_value": pseudonym("Patient/example"),  # never the name, MRN or id
        "gender_source_value": "female", "gender_source_concept_id": 0,
        "race_source_value": "2106-3", "race_source_concept_id": 0,
        "ethnicity_source_value": "2135-2", "ethnicity_source_concept_id": 0,
    })]
    assert (conversion.quarantined, conversion.excluded, conversion.unmapped, conversion.notes) == (None, None, [], [])


def test_partial_birth_date_and_death_date_give_person_and_death(run_converter, pseudonym):
    # FHIR R4 Patient examples: a year-month birthDate, a deceasedDateTime with an offset (its
    # wall-clock time is kept, the offset dropped).
    conversion = run_converter(convert_patient, {
        "resourceType": "Patient", "id": "pat2", "gender": "male", "birthDate": "1974-12",
        "deceasedDateTime": "2015-02-14T13:42:00+10:00"})
    assert _rows(conversion) == [
        ("person", "Patient/pat2", {
            "person_id": "Patient/pat2", "gender_concept_id": 8507,  # MALE
            "year_of_birth": 1974, "month_of_birth": 12, "day_of_birth": None,
            "birth_datetime": None,  # a completed partial date is not a birth date
            "race_concept_id": 0, "ethnicity_concept_id": 0,
            "person_source_value": pseudonym("Patient/pat2"),
            "gender_source_value": "male", "gender_source_concept_id": 0,
            "race_source_value": None, "race_source_concept_id": 0,
            "ethnicity_source_value": None, "ethnicity_source_concept_id": 0}),
        ("death", "Patient/pat2", {
            "person_id": "Patient/pat2", "death_date": date(2015, 2, 14), "death_datetime": datetime(2015, 2, 14, 13, 42),
            "death_type_concept_id": 32817,  # EHR
            "cause_concept_id": 0, "cause_source_concept_id": 0}),
    ]


def test_gender_other_is_kept_as_source_value_with_concept_0_and_its_reason(run_converter):
    conversion = run_converter(convert_patient, {"resourceType": "Patient", "id": "p3", "gender": "other", "birthDate": "1974-12-25"})
    [(_, _, person)] = _rows(conversion)
    assert (person["gender_concept_id"], person["gender_source_value"]) == (0, "other")
    assert conversion.unmapped == [Unmapped("person", "gender_concept_id", "http://hl7.org/fhir/administrative-gender", "other",
                                            "gender_not_male_or_female")]


def test_patient_without_birth_date_is_quarantined(run_converter):
    conversion = run_converter(convert_patient, {"resourceType": "Patient", "id": "p4", "gender": "female"})
    assert conversion.rows == []
    assert conversion.quarantined == ("missing_birth_date", "Patient has no birthDate; OMOP requires year_of_birth")


def test_a_bare_individual_sex_code_without_a_system_is_recorded_unmapped_with_an_empty_vocabulary(run_converter):
    """US Core individual-sex sent as a bare code where a Coding belongs: nothing says which code
    system it is, so the gender stays unmapped, recorded with vocabulary '' (ctcl_unmapped.vocabulary
    is NOT NULL; the None recorded here before failed the whole run at its end)."""
    patient = {"resourceType": "Patient", "id": "sex-bare", "birthDate": "1950-01-01", "extension": [
        {"url": f"{US_CORE}/us-core-individual-sex", "valueCoding": "248152002"}]}
    conversion = run_converter(convert_patient, patient)
    assert conversion.rows[0].values["gender_concept_id"] == 0
    assert Unmapped("person", "gender_concept_id", "", "248152002", "gender_not_male_or_female") in conversion.unmapped
