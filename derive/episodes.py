"""Disease and treatment-line episodes (CDM v5.4 EPISODE / EPISODE_EVENT) for CTCL patients.

- One Disease Episode (32533) per person with a CTCL diagnosis: start = earliest CTCL diagnosis,
  object = that diagnosis' concept, end = death date when the person died (else open).
  Repeated diagnosis rows of one disease (MF coded at every visit, or as SNOMED and ICD-O-3) are
  one disease, so they are EPISODE_EVENT links (1147127) of the same episode, not new episodes.
- Staging measurements are linked to it only when the loaded CONCEPT table has the CDM field
  concept 'measurement.measurement_id' (none is verified for us; no id is invented).
- Systemic therapy (mappings/therapies.csv starts_systemic_line) drug_exposure rows, matched on
  the ingredient directly or through concept_ancestor, are grouped into lines (staging.lines).
  A row whose drug_source_value is the source code of a therapies row that does not start a line
  (e.g. a site's bexarotene GEL code, mapped to the same ingredient as the capsules) is left out.
  Each line is a Treatment Regimen episode (32531): parent = the disease episode, number = line
  number, object = the HemOnc monotherapy regimen of a single-ingredient line when its concept is
  in CONCEPT, else the ingredient; a combination without a known regimen gets 0 and its
  ingredients in episode_source_value. Its drug_exposure rows are EPISODE_EVENT links (1147094)
  of the line and of the disease episode.
"""

from __future__ import annotations

from collections import defaultdict

from ctcl_map.ctcl.lines import Exposure, assign_lines
from ctcl_map.derive.concept_sets import DISEASE_EPISODE, FIELD_CONDITION, FIELD_DRUG, TREATMENT_REGIMEN
from ctcl_map.derive.mapping_rows import concept_id


def _systemic_exposures(run, rows: list[tuple]) -> dict[int, list[Exposure]]:
    """Each person's systemic exposures, from the `exposures` input rows (sorted by person, start)."""
    by_person: dict[int, list[Exposure]] = defaultdict(list)
    for exposure_id, person_id, ingredient, start, end, source in rows:
        # The same ingredient can be skin-directed (bexarotene gel): its own source code says so.
        systemic = (source or "").strip() not in run.concepts.non_systemic_codes
        by_person[int(person_id)].append(Exposure(int(exposure_id), int(ingredient), start, end, systemic))
    return by_person


def _line_object(run, ingredients: tuple[int, ...]) -> tuple[int, str]:
    names = [run.concepts.systemic[i].get("ingredient") or str(i) for i in ingredients]
    label = "+".join(names)
    if len(ingredients) > 1:
        return 0, f"combination: {label}"  # no HemOnc regimen concept for it
    regimen = concept_id(run.concepts.systemic[ingredients[0]], "hemonc_regimen_concept_id")
    if regimen and regimen in run.concepts.regimens_present:
        return regimen, f"{label} monotherapy"
    return ingredients[0], label


def derive_episodes(run, persons: list[int], diagnoses, staging, inputs) -> None:
    report, concepts = run.report, run.concepts
    exposures = _systemic_exposures(run, inputs["exposures"])
    deaths = {int(pid): day for pid, day in inputs["deaths"]}
    episodes: list[tuple] = run.out.episodes  # EPISODE rows in EPISODE_COLUMNS order
    events: list[tuple] = []  # EPISODE_EVENT rows: episode, event, field concept
    staging_by_person = defaultdict(list)
    for row in staging:
        staging_by_person[row.person_id].append(row.measurement_id)
    for person_id in persons:
        person_diagnoses = diagnoses.get(person_id, [])
        if not person_diagnoses:
            if exposures.get(person_id):
                report.therapy_without_diagnosis.append(person_id)
            continue
        first = person_diagnoses[0]
        disease_id = run.take_id("episode", "episode_id", f"derived:disease_episode:{person_id}")
        death_day = deaths.get(person_id)
        if death_day is not None:
            report.episodes_ended_by_death += 1
        episodes.append((disease_id, person_id, DISEASE_EPISODE, first.start, death_day, None, None,
                         first.concept_id, concepts.episode_type_id, "CTCL disease"))
        run.out.derived.append(("episode", disease_id, person_id, "disease_episode", None))
        events += [(disease_id, d.condition_occurrence_id, FIELD_CONDITION) for d in person_diagnoses]
        if concepts.measurement_field_id is not None:
            events += [(disease_id, mid, concepts.measurement_field_id) for mid in sorted(staging_by_person[person_id])]
        linked_exposures: set[int] = set()
        for line in assign_lines(exposures.get(person_id, []), gap_days=run.options["gap_days"],
                                 regimen_window_days=run.options["regimen_window_days"]):
            line_id = run.take_id("episode", "episode_id", f"derived:treatment_line:{person_id}:{line.line_number}")
            object_concept, label = _line_object(run, line.ingredients)
            episodes.append((line_id, person_id, TREATMENT_REGIMEN, line.start, line.end, disease_id,
                             line.line_number, object_concept, concepts.episode_type_id, label[:50]))
            run.out.derived.append(("episode", line_id, person_id, "treatment_line", label))
            events += [(line_id, eid, FIELD_DRUG) for eid in line.exposure_ids]
            linked_exposures.update(line.exposure_ids)
            report.treatment_lines += 1
        events += [(disease_id, eid, FIELD_DRUG) for eid in sorted(linked_exposures)]
        report.disease_episodes += 1
    run.out.episode_events += events
    report.episode_events += len(events)
