"""Patient -> person (+ death).

Policies (README, 'Conversion rules'):
- No birthDate -> quarantined: OMOP requires year_of_birth and says to drop such persons.
- person_source_value is a keyed hash of the Patient key, never a name, MRN or the raw id.
- deceasedDateTime -> a death row. deceasedBoolean=true without a date -> no death row (an invented
  date would bias every survival curve); counted in the run report as 'deceased_without_date'.
- Death before birth -> quarantined as impossible dates; a birthDate after today -> quarantined.
- No `gender`: the sex from the US Core individual-sex extension, else us-core-birthsex (counted
  as 'gender_from_extension'), through the same value-set table.
- A Patient with the core patient-animal extension is not a person: excluded ('patient_not_human').
"""

from __future__ import annotations

from datetime import date, datetime

from ctcl_map.converters.base import EHR, TODAY, as_list, excluded, extension_value, parse_time, quarantined, text_of
from ctcl_map.converters.context import ConvertContext
from ctcl_map.model import Conversion, OmopRow, SourceItem, Unmapped

US_CORE_RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
US_CORE_ETHNICITY = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
GENDER_SYSTEM = "http://hl7.org/fhir/administrative-gender"
ANIMAL = "http://hl7.org/fhir/StructureDefinition/patient-animal"
# Where FHIR profiles put a sex when `gender` is absent, in order of preference: (url, value, system of a valueCode).
SEX_EXTENSIONS = (
    ("http://hl7.org/fhir/us/core/StructureDefinition/us-core-individual-sex", "valueCoding", None),
    ("http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex", "valueCode",
     "http://terminology.hl7.org/CodeSystem/v3-AdministrativeGender"),
)


def convert_patient(item: SourceItem, ctx: ConvertContext) -> Conversion:
    patient = item.resource or {}
    key = item.key
    if any(isinstance(e, dict) and e.get("url") == ANIMAL for e in as_list(patient.get("extension"))):
        return excluded("patient_not_human")
    birth = parse_time(patient.get("birthDate"), "birthDate")
    if birth is None:
        return quarantined("missing_birth_date", "Patient has no birthDate; OMOP requires year_of_birth")
    if birth.day > TODAY:
        return quarantined("birth_in_future", f"birthDate {birth.day.isoformat()} is after today")
    partial = patient.get("birthDate", "")
    conversion = Conversion()

    gender_system: str | None
    gender_code, gender_system = text_of(patient.get("gender")), GENDER_SYSTEM
    if gender_code is None:
        gender_code, gender_system = _sex_from_extensions(patient, conversion)
    gender_id, _ = ctx.valueset("gender_concept_id", gender_code, gender_system)
    if not gender_id:
        conversion.unmapped.append(Unmapped("person", "gender_concept_id", gender_system or "", str(gender_code), "gender_not_male_or_female"))
    race_id, race_code = _us_core_category(patient, US_CORE_RACE, "race_concept_id", ctx, conversion)
    ethnicity_id, ethnicity_code = _us_core_category(patient, US_CORE_ETHNICITY, "ethnicity_concept_id", ctx, conversion)

    person = {
        "person_id": key,
        "gender_concept_id": gender_id,
        "year_of_birth": birth.day.year,
        "month_of_birth": birth.day.month if len(partial) >= 7 else None,
        "day_of_birth": birth.day.day if len(partial) >= 10 else None,
        # birth_datetime only when the full date is known: a completed partial date is not a birth date.
        "birth_datetime": (birth.moment or _midnight(birth.day)) if len(partial) >= 10 else None,
        "race_concept_id": race_id,
        "ethnicity_concept_id": ethnicity_id,
        "person_source_value": ctx.person_source_value(key),
        "gender_source_value": gender_code if isinstance(gender_code, str) else None,
        "gender_source_concept_id": 0,
        "race_source_value": race_code,
        "race_source_concept_id": 0,
        "ethnicity_source_value": ethnicity_code,
        "ethnicity_source_concept_id": 0,
    }
    conversion.rows.append(OmopRow("person", key, person))

    deceased = patient.get("deceasedDateTime")
    if deceased is not None:
        death = parse_time(deceased, "deceasedDateTime")
        assert death is not None  # parse_time gives None only for a None value
        if death.day < birth.day:
            return quarantined("death_before_birth", "deceasedDateTime is before birthDate")
        conversion.rows.append(
            OmopRow("death", key, {
                "person_id": key,
                "death_date": death.day,
                "death_datetime": death.moment,
                "death_type_concept_id": EHR,
                "cause_concept_id": 0,
                "cause_source_concept_id": 0,
            })
        )
    elif patient.get("deceasedBoolean") is True:
        conversion.notes.append("deceased_without_date")
    return conversion


def _sex_from_extensions(patient: dict, conversion: Conversion) -> tuple[str | None, str | None]:
    """(code, system) of the first sex extension present; (None, the gender system) without one.
    The system is None for a bare code in the valueCoding extension (which names no system)."""
    for url, value_name, system in SEX_EXTENSIONS:
        value = extension_value(patient, url, value_name)
        if isinstance(value, dict) and isinstance(value.get("code"), str):
            conversion.notes.append("gender_from_extension")
            return value["code"], str(value.get("system") or "")
        if isinstance(value, str):
            conversion.notes.append("gender_from_extension")
            return value, system
    return None, GENDER_SYSTEM


def _us_core_category(patient: dict, url: str, omop_field: str, ctx: ConvertContext, conversion: Conversion) -> tuple[int, str | None]:
    """The ombCategory coding of a US Core race/ethnicity extension; absent -> 0 (no reason needed)."""
    for extension in as_list(patient.get("extension")):
        if not isinstance(extension, dict) or extension.get("url") != url:
            continue
        for part in as_list(extension.get("extension")):
            if isinstance(part, dict) and part.get("url") == "ombCategory" and isinstance(part.get("valueCoding"), dict):
                concept_id, code = ctx.valueset(omop_field, part["valueCoding"])
                if not concept_id:
                    conversion.unmapped.append(Unmapped("person", omop_field, str(part["valueCoding"].get("system")), str(code), "code_not_in_valueset"))
                return concept_id, code
    return 0, None


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)
