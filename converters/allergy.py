"""AllergyIntolerance -> observation.

As the HL7 FHIR-to-OMOP IG (AllergyMap; value-as-concept pattern) and OHDSI ETLs do, an allergy is
an OBSERVATION row whatever the domain of its code:
- a code that resolves to an Observation-domain concept ('Allergy to penicillin') is the
  observation_concept_id;
- a code naming only the substance (a drug ingredient, 'Latex (substance)') is kept as
  value_as_concept_id, with observation_concept_id 0 and the reason 'allergy_substance_only': no
  verified 'Allergy to substance' concept is in the shipped vocabulary to put in front of it.
- verificationStatus refuted / entered-in-error -> no row; date: onset[x], else recordedDate
  (counted as 'start_from_recorded_date'), else quarantined as missing_date.
"""

from __future__ import annotations

from ctcl_map.converters.base import EHR, code_of, excluded, quarantined, start_with_fallback
from ctcl_map.converters.context import ConvertContext, encounter_key, subject_key, subject_problem
from ctcl_map.converters.events import event_row, unmapped_of
from ctcl_map.model import Conversion, SourceItem, Unmapped

NOT_ASSERTED = {"refuted", "entered-in-error"}


def convert_allergy(item: SourceItem, ctx: ConvertContext) -> Conversion:
    allergy = item.resource or {}
    verification = code_of(allergy.get("verificationStatus"))
    if verification in NOT_ASSERTED:
        return excluded(f"allergy_{verification}")
    person_key, problem = subject_key(item, "patient")
    if person_key is None:
        assert problem is not None  # subject_key gives a reason with every missing key
        return subject_problem(item, problem, "patient")
    conversion = Conversion()
    start = start_with_fallback(allergy, ("onsetDateTime", "onsetPeriod"), "recordedDate", "start_from_recorded_date",
                                conversion)
    if start is None:
        return quarantined("missing_date", "AllergyIntolerance has neither onset[x] nor recordedDate")
    resolved = ctx.resolver.resolve(allergy.get("code"), "observation")
    extra = {}
    if resolved.concept_id and resolved.domain_id != "Observation":
        # the substance itself: kept as the value, the allergy concept is not known
        extra = {"value_as_concept_id": resolved.concept_id}
        conversion.unmapped.append(Unmapped("observation", "concept_id", resolved.vocabulary_id or "",
                                            resolved.code or "", "allergy_substance_only"))
        observation = event_row("observation", item.key, person_key, encounter_key(item), resolved, start, None, EHR, extra)
        observation.values["observation_concept_id"] = 0
    else:
        observation = event_row("observation", item.key, person_key, encounter_key(item), resolved, start, None, EHR)
        conversion.unmapped.extend(unmapped_of("observation", "concept_id", resolved))
    conversion.rows.append(observation)
    return conversion
