"""The CDM derivation step for staging, B category, advanced stage, episodes and CLIPI.

Run after the converter has loaded a batch:

    report = derive_oncology(db, person_ids=None, b_rules="2007")

It is idempotent: everything it derived earlier for these persons (listed in ctcl_derived) is
deleted first and written again, in one transaction per chunk of persons. Each chunk is read
(oncology_inputs.read_inputs), derived without touching the database (`derive_rows`: input rows
in, DerivedRows out; the Spark path calls it per person) and written (`write_rows`). Steps (README.md):
 1. CTCL diagnoses: condition_concept_id in the diagnosis targets of mappings/diagnoses.csv plus
    the ICDO3 9700/3, 9701/3, 9709/3, 9718/3 concepts, with their concept_ancestor descendants;
    provisional / differential / unconfirmed ones (condition_status_source_value) and the staging
    rows linked to them are left out unless include_unconfirmed;
 2. staging rows (T, N, M, B, stage group) linked to the diagnosis (measurement_event_id,
    meas_event_field_concept_id 1147127) where the converter has not linked them already;
 3. B category from raw blood values on a date without a given B (rule set recorded);
 4. stage group from T/N/M/B on a date without a given group; given groups that disagree (with
    the derived one, or with each other: a group given two ways) are kept and reported;
 5. ctcl_first_advanced(person_id, first_advanced_date, stage_group, measurement_id);
 6. disease and treatment-line episodes with their EPISODE_EVENT links (staging.episodes);
 7. CLIPI at the first advanced date (staging.clipi_step); 8. death ends the disease episode.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ctcl_map.ctcl.blood import derive_b_category
from ctcl_map.ctcl.diagnosis import UNCONFIRMED_STATUSES
from ctcl_map.ctcl.olsen import derive_stage_group, given_group_conflict, groups_compatible, is_advanced, more_advanced
from ctcl_map.ctcl.tnmb import one_category, parse_category
from ctcl_map.derive.concept_sets import FIELD_CONDITION, OncologyConcepts, resolve_concepts
from ctcl_map.derive.mapping_rows import MappingRows, load_mapping_rows
from ctcl_map.derive.oncology_inputs import InputRows, read_inputs
from ctcl_map.derive.oncology_report import OncologyReport
from ctcl_map.derive.oncology_run import (
    EPISODE_COLUMNS,
    EPISODE_EVENT_COLUMNS,
    FIRST_ADVANCED_COLUMNS,
    MEASUREMENT_COLUMNS,
    DerivedRows,
    Run,
    insert_measurement,
)
from ctcl_map.store import derived_rows
from ctcl_map.store.database import Database
from ctcl_map.store.statements import int_list

CHUNK = 500  # persons per transaction


@dataclass(frozen=True)
class Diagnosis:
    condition_occurrence_id: int
    person_id: int
    concept_id: int
    start: date


@dataclass
class StagingRow:
    measurement_id: int
    person_id: int
    day: date
    axis: str
    category: str | None
    linked_to: int | None  # measurement_event_id when already linked to a condition that exists
    derived: bool = False
    dangling: bool = False  # linked to a condition that is gone (deleted, or never arrived)


def derive_oncology(
    db: Database,
    person_ids: Sequence[int] | None = None,
    b_rules: str = "2007",
    *,
    mappings: MappingRows | None = None,
    mapping_dirs: Sequence[Path] = (),
    assume_m0: bool = False,
    nx_as_n1: bool = True,
    gap_days: int = 90,
    regimen_window_days: int = 28,
    allocate_id: Callable[[str, str], int] | None = None,
    include_unconfirmed: bool = False,
) -> OncologyReport:
    """Derive staging links, B, stage groups, first advanced stage, episodes and CLIPI for persons."""
    if b_rules not in ("2007", "2022"):
        raise ValueError(f"unknown B rule set {b_rules!r}: expected '2007' or '2022'")
    rows = mappings if mappings is not None else load_mapping_rows(mapping_dirs)
    derived_rows.ensure_tables(db)
    concepts = resolve_concepts(db, rows)
    report = new_report(b_rules, concepts)
    if person_ids is None:
        person_ids = [int(r[0]) for r in db.query(f"SELECT person_id FROM {db.table('person')} ORDER BY person_id")]
    persons = sorted({int(p) for p in person_ids})
    report.persons = len(persons)
    ids = derived_rows.IdAllocator(db, allocate_id)
    options = oncology_options(assume_m0=assume_m0, nx_as_n1=nx_as_n1, gap_days=gap_days,
                               regimen_window_days=regimen_window_days, include_unconfirmed=include_unconfirmed)
    for start in range(0, len(persons), CHUNK):
        chunk = persons[start:start + CHUNK]
        with db.transaction():
            derived_rows.undo_previous(db, chunk)
            ids.next.clear()  # without ctcl_id_map: ids freed by the undo are reused by the re-run
            run = Run(concepts, report, ids.take, b_rules, options)
            derive_rows(run, chunk, read_inputs(db, concepts, chunk))
            write_rows(db, run.out)
            ids.flush()
    return report


def oncology_options(*, assume_m0: bool = False, nx_as_n1: bool = True, gap_days: int = 90, regimen_window_days: int = 28,
                     include_unconfirmed: bool = False) -> dict:
    """The options of the derivation steps (Run.options), with derive_oncology's defaults."""
    return {"assume_m0": assume_m0, "nx_as_n1": nx_as_n1, "gap_days": gap_days,
            "regimen_window_days": regimen_window_days, "include_unconfirmed": include_unconfirmed}


def new_report(b_rules: str, concepts: OncologyConcepts) -> OncologyReport:
    return OncologyReport(b_rules=b_rules, measurement_type_concept_id=concepts.measurement_type_id,
                          episode_type_concept_id=concepts.episode_type_id, warnings=list(concepts.warnings))


def derive_rows(run: Run, persons: list[int], inputs: InputRows) -> None:
    """Steps 1-8 for `persons` from their input rows (oncology_inputs), into run.out and run.report.
    Pure: no database, no I/O; the same rows in give the same rows out (ids from run.take_id)."""
    from ctcl_map.derive.clipi_step import derive_clipi
    from ctcl_map.derive.episodes import derive_episodes

    diagnoses = _diagnoses(run, inputs["conditions"])
    staging = _staging_rows(run, inputs["staging"])
    _link_given(run, staging, diagnoses)
    _derive_b(run, inputs["blood"], staging, diagnoses)
    _derive_stage(run, staging, diagnoses)
    first_advanced = _first_advanced(run, staging)
    derive_episodes(run, persons, diagnoses, staging, inputs)
    derive_clipi(run, first_advanced, staging, inputs)


def write_rows(db: Database, out: DerivedRows) -> None:
    """Write what derive_rows derived for a chunk of persons (inside the chunk's transaction)."""
    measurement = db.table("measurement")
    db.insert_rows(measurement, MEASUREMENT_COLUMNS, out.measurements)
    links: dict[int, list[int]] = defaultdict(list)
    for measurement_id, occurrence_id in out.links:
        links[occurrence_id].append(measurement_id)
    for occurrence_id, measurement_ids in links.items():
        db.execute(f"UPDATE {measurement} SET measurement_event_id = ?, meas_event_field_concept_id = ? "
                   f"WHERE measurement_id IN {int_list(measurement_ids)}", [occurrence_id, FIELD_CONDITION])
    if out.unlinks:
        db.execute(f"UPDATE {measurement} SET measurement_event_id = NULL, meas_event_field_concept_id = NULL "
                   f"WHERE measurement_id IN {int_list(out.unlinks)}")
    db.insert_rows(db.table("ctcl_first_advanced"), FIRST_ADVANCED_COLUMNS, out.first_advanced)
    db.insert_rows(db.table("episode"), EPISODE_COLUMNS, out.episodes)
    db.insert_rows(db.table("episode_event"), EPISODE_EVENT_COLUMNS, out.episode_events)
    derived_rows.record(db, out.derived)


# -- step 1 ------------------------------------------------------------------------------------
def _diagnoses(run: Run, conditions: list[tuple]) -> dict[int, list[Diagnosis]]:
    diagnosis_ids = run.concepts.diagnosis_ids
    rows = [row for row in conditions if row[2] in diagnosis_ids]
    if not run.options["include_unconfirmed"]:
        # MF as a differential diagnosis is routine in dermatology: it is not an MF case.
        run.unconfirmed = {int(row[0]) for row in rows if row[4] in UNCONFIRMED_STATUSES}
        rows = [row for row in rows if int(row[0]) not in run.unconfirmed]
        run.report.unconfirmed_diagnoses_excluded += len(run.unconfirmed)
    by_person: dict[int, list[Diagnosis]] = defaultdict(list)
    for occurrence_id, person_id, concept, start, _ in rows:
        by_person[int(person_id)].append(Diagnosis(int(occurrence_id), int(person_id), int(concept), start))
    run.report.diagnoses += len(rows)
    return by_person


def diagnosis_for(diagnoses: list[Diagnosis], day: date) -> Diagnosis | None:
    """The first CTCL diagnosis on or before the day, else the earliest one (list is date-sorted)."""
    if not diagnoses:
        return None
    on_or_before = [d for d in diagnoses if d.start <= day]
    return on_or_before[0] if on_or_before else diagnoses[0]


# -- step 2 ------------------------------------------------------------------------------------
def _staging_rows(run: Run, rows: list[tuple]) -> list[StagingRow]:
    concepts = run.concepts
    axis_of = {cid: axis for axis, cids in concepts.questions.items() for cid in cids}
    result = []
    for mid, pid, day, question, value_id, value_text, code, name, event_id, field_id, condition_id in rows:
        axis = axis_of[int(question)]
        # A link (focus, derivedFrom, or ours) to a Condition not loaded (yet), or deleted, is no link.
        to_condition = event_id is not None and field_id == FIELD_CONDITION
        linked = int(event_id) if to_condition and condition_id is not None else None
        if linked in run.unconfirmed:
            run.report.staging_of_unconfirmed_excluded += 1
            continue
        category = staging_category(concepts, axis, value_id, (code, name, value_text))
        if category is None:
            run.report.unparseable_values.append(
                {"measurement_id": int(mid), "axis": axis, "value_source_value": value_text}
            )
        result.append(StagingRow(int(mid), int(pid), day, axis, category, linked, dangling=to_condition and linked is None))
    run.report.staging_rows += len(result)
    return result


def staging_category(concepts: OncologyConcepts, axis: str, value_id, texts) -> str | None:
    """Normalised category of a staging value: mapping-table value code first, then written forms."""
    if value_id is not None and int(value_id) in concepts.value_codes:
        mapped_axis, code = concepts.value_codes[int(value_id)]
        if mapped_axis == axis and (parsed := parse_category(axis, code)):
            return parsed
    for text in texts:
        if text and (parsed := parse_category(axis, text)):
            return parsed
    return None


def _link_given(run: Run, staging: list[StagingRow], diagnoses: dict[int, list[Diagnosis]]) -> None:
    """Fill measurement_event_id / 1147127 on staging rows the converter left unlinked, or linked
    to a condition that no longer exists (a deleted diagnosis): such a link is never kept.

    Each link made here is recorded in ctcl_derived ('measurement_link', with the condition id
    as note), so the next derivation for the person undoes it and links to the diagnosis current
    then: a link depends on the diagnoses, not on the order they were loaded in."""
    for row in staging:
        diagnosis = diagnosis_for(diagnoses.get(row.person_id, []), row.day)
        if diagnosis is None:
            run.report.staging_without_diagnosis += 1
            if row.dangling:
                run.out.unlinks.append(row.measurement_id)
            continue
        if row.linked_to is None:
            row.linked_to = diagnosis.condition_occurrence_id
            run.out.links.append((row.measurement_id, diagnosis.condition_occurrence_id))
            run.out.derived.append(("measurement_link", row.measurement_id, row.person_id, "staging_link",
                                    str(diagnosis.condition_occurrence_id)))
            run.report.staging_linked += 1


def _warn_once(run: Run, message: str) -> None:
    if message not in run.report.warnings:
        run.report.warnings.append(message)


# -- step 3 ------------------------------------------------------------------------------------
def _derive_b(run: Run, blood_rows: list[tuple], staging: list[StagingRow], diagnoses) -> None:
    from ctcl_map.derive.blood_inputs import blood_values_by_date

    concepts = run.concepts
    if "ISCL-B" not in concepts.ours:
        return
    given_b = {(r.person_id, r.day) for r in staging if r.axis == "B"}
    for (person_id, day), values in sorted(blood_values_by_date(run.concepts, blood_rows).items()):
        if (person_id, day) in given_b:
            continue
        result = derive_b_category(rules=run.b_rules, **values.inputs)
        if result.category is None:
            run.report.b_not_derivable.append({"person_id": person_id, "date": day, "missing": list(result.missing)})
            continue
        value_concept = concepts.category_value_ids.get(("B", result.category)) or concepts.ours.get(result.category)
        if not value_concept:
            _warn_once(run, f"no value concept for B category {result.category}: value_as_concept_id 0, "
                            "category kept in value_source_value")
        diagnosis = diagnosis_for(diagnoses.get(person_id, []), day)
        event_id = diagnosis.condition_occurrence_id if diagnosis else None
        note = "; ".join([f"decided_by={','.join(result.decided_by)}", f"missing={','.join(result.missing)}"]
                         + values.notes)
        measurement_id = insert_measurement(
            run, person_id, day, concepts.ours["ISCL-B"], "b_category", value_concept=value_concept or 0,
            source=f"derived:ISCL-{run.b_rules}", value_source=result.category, event_id=event_id, note=note,
        )
        staging.append(StagingRow(measurement_id, person_id, day, "B", result.category, event_id, derived=True))
        run.report.b_derived += 1


# -- step 4 ------------------------------------------------------------------------------------
def _derive_stage(run: Run, staging: list[StagingRow], diagnoses) -> None:
    by_date: dict[tuple[int, date], list[StagingRow]] = defaultdict(list)
    for row in staging:
        by_date[(row.person_id, row.day)].append(row)
    for (person_id, day), rows in sorted(by_date.items()):
        given_groups = given_group_conflict([r.category for r in rows if r.axis == "stage" and r.category])
        if given_groups:
            run.report.stage_given_conflicts.append({"person_id": person_id, "date": day, "given": given_groups})
        if not any(r.axis in ("T", "N", "M") for r in rows):
            continue  # a blood draw or a bare stage group is not a TNM assessment
        chosen: dict[str, str | None] = {}
        conflicts = []
        for axis in ("T", "N", "M", "B"):
            chosen[axis], conflict = one_category([r.category for r in rows if r.axis == axis and r.category])
            if conflict:
                conflicts.append(axis)
        if conflicts:
            run.report.stage_conflicts.append({"person_id": person_id, "date": day, "axes": conflicts})
            continue
        result = derive_stage_group(chosen["T"], chosen["N"], chosen["M"], chosen["B"],
                                    assume_m0=run.options["assume_m0"], nx_as_n1=run.options["nx_as_n1"])
        given = [r.category for r in rows if r.axis == "stage" and r.category]
        if given:
            if result.group is not None:
                for group in sorted(set(given)):
                    if not groups_compatible(group, result.group):
                        run.report.stage_disagreements.append(
                            {"person_id": person_id, "date": day, "given": group, "derived": result.group,
                             "assumptions": list(result.assumptions)})
            continue
        if result.group is None:
            run.report.stage_not_derivable.append({"person_id": person_id, "date": day, "reason": result.reason})
            continue
        _write_stage(run, person_id, day, result, chosen, diagnoses, staging)


def _write_stage(run: Run, person_id, day, result, chosen, diagnoses, staging) -> None:
    concepts = run.concepts
    if concepts.stage_question_id is None:
        return
    value_concept = concepts.category_value_ids.get(("stage", result.group), 0)
    if not value_concept:
        _warn_once(run, f"no value concept for stage group {result.group}: value_as_concept_id 0, "
                        "group kept in value_source_value")
    diagnosis = diagnosis_for(diagnoses.get(person_id, []), day)
    event_id = diagnosis.condition_occurrence_id if diagnosis else None
    categories = " ".join(chosen[a] or f"{a}?" for a in ("T", "N", "M", "B"))
    measurement_id = insert_measurement(
        run, person_id, day, concepts.stage_question_id, "stage_group", value_concept=value_concept,
        source="derived:ISCL-EORTC-2007-table", value_source=f"{result.group} {categories}", event_id=event_id,
        note="; ".join(result.assumptions) or None,
    )
    staging.append(StagingRow(measurement_id, person_id, day, "stage", result.group, event_id, derived=True))
    run.report.stage_derived += 1


# -- step 5 ------------------------------------------------------------------------------------
def _first_advanced(run: Run, staging: list[StagingRow]) -> dict[int, tuple[date, str, int]]:
    first: dict[int, tuple[date, str, int]] = {}
    for row in sorted(staging, key=lambda r: (r.person_id, r.day, r.measurement_id)):
        if row.axis != "stage" or not row.category or not is_advanced(row.category):
            continue
        current = first.get(row.person_id)
        if current is None:
            first[row.person_id] = (row.day, row.category, row.measurement_id)
        elif current[0] == row.day and more_advanced(row.category, current[1]) != current[1]:
            first[row.person_id] = (row.day, row.category, row.measurement_id)
    run.out.first_advanced += [(pid, day, group, mid) for pid, (day, group, mid) in sorted(first.items())]
    run.report.first_advanced += len(first)
    return first
