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
from ctcl_map.store.statements import int_list

EPISODE_COLUMNS = (
    "episode_id", "person_id", "episode_concept_id", "episode_start_date", "episode_end_date", "episode_parent_id",
    "episode_number", "episode_object_concept_id", "episode_type_concept_id", "episode_source_value",
)


def _systemic_exposures(run, persons: list[int]) -> dict[int, list[Exposure]]:
    db, systemic = run.db, run.concepts.systemic
    ingredients = int_list(systemic)
    rows = db.query(
        f"SELECT de.drug_exposure_id, de.person_id, de.drug_concept_id, de.drug_exposure_start_date, "
        f"de.drug_exposure_end_date, de.drug_source_value FROM {db.table('drug_exposure')} de "
        f"WHERE de.person_id IN {int_list(persons)} AND de.drug_concept_id IN {ingredients} "
        f"UNION SELECT de.drug_exposure_id, de.person_id, ca.ancestor_concept_id, de.drug_exposure_start_date, "
        f"de.drug_exposure_end_date, de.drug_source_value FROM {db.table('drug_exposure')} de "
        f"JOIN {db.table('concept_ancestor')} ca ON ca.descendant_concept_id = de.drug_concept_id "
        f"WHERE de.person_id IN {int_list(persons)} AND ca.ancestor_concept_id IN {ingredients}"
    )
    by_person: dict[int, list[Exposure]] = defaultdict(list)
    for exposure_id, person_id, ingredient, start, end, source in sorted(rows, key=lambda r: (r[1], r[3], r[0], r[2])):
        # The same ingredient can be skin-directed (bexarotene gel): its own source code says so.
        systemic = (source or "").strip() not in run.concepts.non_systemic_codes
        by_person[int(person_id)].append(Exposure(int(exposure_id), int(ingredient), start, end, systemic))
    return by_person


def _deaths(run, persons: list[int]) -> dict[int, object]:
    rows = run.db.query(
        f"SELECT person_id, MIN(death_date) FROM {run.db.table('death')} "
        f"WHERE person_id IN {int_list(persons)} GROUP BY person_id"
    )
    return {int(pid): day for pid, day in rows}


def _concept_exists(run, concept: int, cache: dict[int, bool]) -> bool:
    if concept not in cache:
        cache[concept] = bool(run.db.query(f"SELECT 1 FROM {run.db.table('concept')} WHERE concept_id = ?", [concept]))
    return cache[concept]


def _line_object(run, ingredients: tuple[int, ...], cache: dict[int, bool]) -> tuple[int, str]:
    names = [run.concepts.systemic[i].get("ingredient") or str(i) for i in ingredients]
    label = "+".join(names)
    if len(ingredients) > 1:
        return 0, f"combination: {label}"  # no HemOnc regimen concept for it
    regimen = concept_id(run.concepts.systemic[ingredients[0]], "hemonc_regimen_concept_id")
    if regimen and _concept_exists(run, regimen, cache):
        return regimen, f"{label} monotherapy"
    return ingredients[0], label


def derive_episodes(run, persons: list[int], diagnoses, staging) -> None:
    db, report, concepts = run.db, run.report, run.concepts
    exposures = _systemic_exposures(run, persons)
    deaths = _deaths(run, persons)
    episodes: list[tuple] = []  # EPISODE rows in EPISODE_COLUMNS order
    events: list[tuple[int, int, int]] = []  # EPISODE_EVENT rows: episode, event, field concept
    regimen_cache: dict[int, bool] = {}
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
        disease_id = run.ids.take("episode", "episode_id", f"derived:disease_episode:{person_id}")
        death_day = deaths.get(person_id)
        if death_day is not None:
            report.episodes_ended_by_death += 1
        episodes.append((disease_id, person_id, DISEASE_EPISODE, first.start, death_day, None, None,
                         first.concept_id, concepts.episode_type_id, "CTCL disease"))
        run.derived.append(("episode", disease_id, person_id, "disease_episode", None))
        events += [(disease_id, d.condition_occurrence_id, FIELD_CONDITION) for d in person_diagnoses]
        if concepts.measurement_field_id is not None:
            events += [(disease_id, mid, concepts.measurement_field_id) for mid in sorted(staging_by_person[person_id])]
        linked_exposures: set[int] = set()
        for line in assign_lines(exposures.get(person_id, []), gap_days=run.options["gap_days"],
                                 regimen_window_days=run.options["regimen_window_days"]):
            line_id = run.ids.take("episode", "episode_id", f"derived:treatment_line:{person_id}:{line.line_number}")
            object_concept, label = _line_object(run, line.ingredients, regimen_cache)
            episodes.append((line_id, person_id, TREATMENT_REGIMEN, line.start, line.end, disease_id,
                             line.line_number, object_concept, concepts.episode_type_id, label[:50]))
            run.derived.append(("episode", line_id, person_id, "treatment_line", label))
            events += [(line_id, eid, FIELD_DRUG) for eid in line.exposure_ids]
            linked_exposures.update(line.exposure_ids)
            report.treatment_lines += 1
        events += [(disease_id, eid, FIELD_DRUG) for eid in sorted(linked_exposures)]
        report.disease_episodes += 1
    db.insert_rows(db.table("episode"), EPISODE_COLUMNS, episodes)
    db.insert_rows(db.table("episode_event"), ("episode_id", "event_id", "episode_event_field_concept_id"), events)
    report.episode_events += len(events)
