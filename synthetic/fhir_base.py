"""Shared pieces of the FHIR builders: the per-patient build context, references, date-times,
the Patient and its Encounters. Resources are plain dicts in a fixed key order (deterministic
bytes, fast); references are relative ('Patient/<id>') and become urn:uuid in bundles."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date

from ctcl_map.synthetic import codes
from ctcl_map.synthetic.course import new_uuid
from ctcl_map.synthetic.model import PatientCourse

TIMEZONES = ("+00:00", "+01:00", "+02:00", "-05:00", "Z")
GIVEN_NAMES = {"male": ("Testo", "Synthio", "Mocktor", "Fakim", "Dumas", "Examplo"),
               "female": ("Testa", "Synthia", "Mockette", "Fakira", "Dummia", "Exempla")}
FAMILY_NAMES = ("Synthetic", "Testperson", "Fakename", "Mockwell", "Placeholder", "Exampleton", "Notreal")
RACES = (("2106-3", "White"), ("2054-5", "Black or African American"), ("2028-9", "Asian"),
         ("1002-5", "American Indian or Alaska Native"))
ETHNICITIES = (("2186-5", "Not Hispanic or Latino"), ("2135-2", "Hispanic or Latino"))


@dataclass
class BuildContext:
    """Per-patient state while writing its resources; ``rng`` only decides representation
    (coding styles, times), never clinical facts, so styles can change without changing the truth."""

    course: PatientCourse
    rng: random.Random
    timezone: str
    resources: list[dict] = field(default_factory=list)
    encounters: dict[tuple[date, str], str] = field(default_factory=dict)
    styles: dict[str, str] = field(default_factory=dict)

    @property
    def patient_ref(self) -> dict:
        return {"reference": f"Patient/{self.course.patient_id}"}

    def new_id(self) -> str:
        return new_uuid(self.rng)

    def datetime(self, day: date, hour: int | None = None) -> str:
        """Local clinic time 08:00-16:59; with the offsets used the UTC date equals the local date."""
        random_value = self.rng.random()  # one draw for hour and minute: this runs ~150 times per patient
        hour = 8 + int(random_value * 9) if hour is None else hour
        return f"{day.isoformat()}T{hour:02d}:{int(random_value * 540) % 60:02d}:00{self.timezone}"

    def encounter(self, day: date, klass: str = "AMB", days: int = 0) -> dict:
        """Reference to the encounter of that day (one per day and class, created on first use)."""
        key = (day, klass)
        if key not in self.encounters:
            encounter_id = self.new_id()
            self.encounters[key] = encounter_id
            end_day = date.fromordinal(day.toordinal() + days)
            self.resources.append({
                "resourceType": "Encounter", "id": encounter_id, "status": "finished",
                "class": {"system": codes.ACT_CODE, "code": klass,
                          "display": "ambulatory" if klass == "AMB" else "inpatient encounter"},
                "type": [{"text": "Dermatology / cutaneous lymphoma clinic" if klass == "AMB" else "Haematology ward"}],
                "subject": self.patient_ref,
                "period": {"start": self.datetime(day, 8), "end": self.datetime(end_day, 17)},
            })
        return {"reference": f"Encounter/{self.encounters[key]}"}

    def add(self, resource: dict) -> dict:
        self.resources.append(resource)
        return resource


def coding(system: str, code: str, display: str | None = None) -> dict:
    result = {"system": system, "code": code}
    if display:
        result["display"] = display
    return result


def quantity(value: float | int, unit: str) -> dict:
    return {"value": value, "unit": unit, "system": codes.UCUM, "code": unit}


def build_patient(context: BuildContext) -> dict:
    course, rng = context.course, context.rng
    given = rng.choice(GIVEN_NAMES[course.sex])
    family = rng.choice(FAMILY_NAMES)
    patient: dict = {"resourceType": "Patient", "id": course.patient_id, "meta": {"versionId": "1"}}
    if rng.random() < 0.6:
        race, ethnicity = rng.choice(RACES), rng.choice(ETHNICITIES)
        patient["extension"] = [
            {"url": codes.US_CORE_RACE, "extension": [
                {"url": "ombCategory", "valueCoding": coding(codes.OMB_RACE_ETHNICITY, *race)},
                {"url": "text", "valueString": race[1]}]},
            {"url": codes.US_CORE_ETHNICITY, "extension": [
                {"url": "ombCategory", "valueCoding": coding(codes.OMB_RACE_ETHNICITY, *ethnicity)},
                {"url": "text", "valueString": ethnicity[1]}]},
        ]
    patient["identifier"] = [{
        "type": {"coding": [coding("http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "Medical Record Number")],
                 "text": "Medical Record Number"},
        "system": codes.MRN_SYSTEM, "value": f"SYN{rng.randrange(10**7):07d}",
    }]
    patient["name"] = [{"use": "official", "family": family, "given": [given], "text": f"{given} {family} (synthetic)"}]
    patient["gender"] = course.sex
    patient["birthDate"] = course.birth_date.isoformat()
    if course.death_date is not None:
        patient["deceasedDateTime"] = context.datetime(course.death_date)
    return context.add(patient)
