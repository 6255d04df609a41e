"""One pure converter per FHIR resource type: (SourceItem, ConvertContext) -> Conversion."""

from __future__ import annotations

from collections.abc import Callable

from ctcl_map.converters.allergy import convert_allergy
from ctcl_map.converters.base import InvalidValue, quarantined
from ctcl_map.converters.condition import convert_condition
from ctcl_map.converters.context import ConvertContext, contained_patient
from ctcl_map.converters.encounter import convert_encounter
from ctcl_map.converters.medication import KINDS as MEDICATION_KINDS
from ctcl_map.converters.medication import convert_medication
from ctcl_map.converters.observation import convert_observation
from ctcl_map.converters.patient import convert_patient
from ctcl_map.converters.procedure import convert_procedure
from ctcl_map.model import Conversion, SourceItem

Converter = Callable[[SourceItem, ConvertContext], Conversion]

CONVERTERS: dict[str, Converter] = {
    "Patient": convert_patient,
    "Encounter": convert_encounter,
    "Condition": convert_condition,
    "Observation": convert_observation,
    "Procedure": convert_procedure,
    "AllergyIntolerance": convert_allergy,
    **{resource_type: convert_medication for resource_type in MEDICATION_KINDS},
}


def convert(item: SourceItem, ctx: ConvertContext) -> Conversion | None:
    """Convert one resource; None when its type is not mapped to OMOP (Claim, CarePlan ...).

    A value a converter cannot interpret (an impossible date, a number that is text) raises
    InvalidValue inside the converter and quarantines the resource here, with its reason. Any other
    exception is a resource shaped in a way no converter rule foresaw: it too costs only that
    resource (quarantined as 'conversion_error', naming the exception), never the run. Every
    conversion, in this process or in a worker, comes through here.
    """
    converter = CONVERTERS.get(item.resource_type)
    if converter is None:
        return None
    try:
        conversion = converter(item, ctx)
        if item.resource_type != "Patient" and conversion.rows:
            conversion = _with_contained_patient(item, ctx, conversion)
    except InvalidValue as problem:
        return quarantined(problem.reason, str(problem))
    except Exception as error:  # noqa: BLE001 - the guard that keeps one resource from ending the run
        return quarantined("conversion_error", f"the converter cannot read this resource: {error.__class__.__name__}: {str(error)[:300]}")
    if item.repaired:
        conversion.notes.append("invalid_text_replaced")
    return conversion


def _with_contained_patient(item: SourceItem, ctx: ConvertContext, conversion: Conversion) -> Conversion:
    """A subject that is a contained Patient ('#p'): its person (and death) rows come with the
    resource; when that Patient cannot be a person, the resource is lost with the reason why."""
    contained = contained_patient(item)
    if contained is None:
        return conversion
    person_key, patient = contained
    person = convert_patient(SourceItem(patient, "Patient", person_key.split("/", 1)[1], item.file, item.position,
                                        None, item.bundle), ctx)
    if person.quarantined:
        return quarantined("patient_quarantined", f"its Patient was quarantined: {person.quarantined[0]}")
    if person.excluded:
        return quarantined("patient_excluded", f"its Patient was excluded: {person.excluded}")
    conversion.rows[:0] = person.rows
    conversion.unmapped.extend(person.unmapped)
    conversion.notes.extend(person.notes)
    return conversion
