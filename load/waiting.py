"""Records waiting for a resource they need (ctcl_reference_wait): a drug for its Medication, a
result for the DiagnosticReport or Encounter that dates it. Completed at the end of a run, once
whatever this run or an earlier one read may hold what they wait for.
"""

from __future__ import annotations

import json
from collections import Counter

from ctcl_map.converters import ConvertContext, convert
from ctcl_map.converters.context import encounter_key
from ctcl_map.converters.observation import report_awaited_by
from ctcl_map.load.cdm_writer import CdmWriter
from ctcl_map.model import BatchOutcome, BundleIndex, ConvertedItem, SourceItem
from ctcl_map.store.database import Database
from ctcl_map.store.id_map import visit_starts
from ctcl_map.store.quarantine import lift, undated_at
from ctcl_map.store.waits import any_waiting_resource, drugs_waiting_for, results_waiting_for_reports, stop_waiting, wait


def complete_waiting(writer: CdmWriter, medications: dict[str, dict], ctx: ConvertContext, outcome: BatchOutcome) -> tuple[int, int]:
    """Records waiting for a resource they need (ctcl_reference_wait) whose resource is now known,
    read earlier or later in this run or in an earlier run, are completed: (drugs, results).
    A record whose resource is still unknown keeps waiting (and its quarantine, if it has one) for
    a later run. Run-level step: call inside db.exclusive()."""
    return _fill_waiting_medications(writer, medications, ctx, outcome), _convert_waiting_results(writer, ctx, outcome)


def _fill_waiting_medications(writer: CdmWriter, medications: dict[str, dict], ctx: ConvertContext, outcome: BatchOutcome) -> int:
    """Drug rows written before their Medication was read (later in this run, or in an earlier run)
    get the drug now, as the converter would have given it; their report entries move with them.
    (Files holding Medications are always read, so `medications` is every Medication there is.)"""
    db = writer.db
    if not medications:
        return 0
    waiting = drugs_waiting_for(db, list(medications))
    if not waiting:
        return 0
    updates = []
    for _resource_key, medication_key, run_id, drug_id, person_id in waiting:
        resolved = ctx.resolver.resolve(medications[medication_key].get("code"), "drug")
        updates.append((resolved.concept_id, resolved.source_value, resolved.source_concept_id, drug_id))
        if run_id == writer.run_id:  # this run's report counted it as unresolved
            outcome.notes["medication_reference_unresolved"] -= 1
            outcome.unmapped[("drug_exposure", "concept_id", "", "", "medication_reference_unresolved")] -= 1
        if not resolved.concept_id and resolved.reason:
            outcome.unmapped[("drug_exposure", "concept_id", resolved.vocabulary_id or "", resolved.code or "", resolved.reason)] += 1
        outcome.person_ids.add(person_id)
        outcome.persons_by_table["drug_exposure"].add(person_id)
    _drop_spent(outcome.notes, outcome.unmapped)
    for concept_id, source_value, source_concept_id, drug_id in updates:
        db.execute(f"UPDATE {db.table('drug_exposure')} SET drug_concept_id = ?, drug_source_value = ?, drug_source_concept_id = ? "
                   f"WHERE drug_exposure_id = ?", [concept_id, (source_value or "")[:50] or None, source_concept_id, drug_id])
    stop_waiting(db, [key for key, *_ in waiting])
    return len({key for key, *_ in waiting})


def _convert_waiting_results(writer: CdmWriter, ctx: ConvertContext, outcome: BatchOutcome) -> int:
    """Results quarantined without a date or subject because the DiagnosticReport listing them was
    not in their Bundle: converted again with that report (ctcl_result_context, written by any
    file of any run), else with the period of their Encounter as loaded. Those that now load leave
    the quarantine (and this run's count of it, if this run quarantined them); the others wait.
    One dated by its Encounter keeps waiting for its report, which comes first in the rules:
    a later run that reads the report converts it again (an unchanged re-run does not)."""
    db = writer.db
    if not any_waiting_resource(db):
        return 0
    waiting = results_waiting_for_reports(db, report_awaited_by(""))
    candidates: dict[str, tuple] = {}
    for key, run_id, source_file, position, resource, digest, _, context in waiting:
        candidates.setdefault(key, (run_id, source_file, position, json.loads(resource), digest, context and json.loads(context)))
    encounters = {encounter_key(SourceItem(resource, "Observation", "", "", "")) for *_, resource, _, _ in candidates.values()}
    periods = _encounter_periods(db, sorted(key for key in encounters if key is not None))
    entries, restored, still_waiting = [], [], []
    for key, (run_id, source_file, position, resource, digest, context) in candidates.items():
        index = BundleIndex(reports={key: context} if context else {}, encounter_periods=periods)
        item = SourceItem(resource, "Observation", key.split("/", 1)[1], source_file, position, None, index)
        conversion = convert(item, ctx)
        if conversion is None or conversion.quarantined:
            continue  # still nothing gives it a date or subject: it keeps waiting
        entries.append(ConvertedItem(item, conversion, digest))
        restored.append((run_id, source_file, position))
        if not context:  # dated by its Encounter: the report, which comes first, may still arrive
            still_waiting.append((key, report_awaited_by(key), writer.run_id, source_file, position, json.dumps(resource)))
    if not entries:
        return 0
    lifted = undated_at(db, [r[1:] for r in restored])
    for run_id, _, _, reason in lifted:
        if run_id == writer.run_id:  # this run's report counted the quarantine
            outcome.quarantined[reason] -= 1
    _drop_spent(outcome.quarantined)
    lift(db, [(f, p, r) for _, f, p, r in lifted])
    writer.rewrite_batch(entries, outcome)
    wait(db, still_waiting)
    return len(entries)


def _encounter_periods(db: Database, encounter_keys: list[str]) -> dict[str, dict]:
    """Encounter key -> a period starting when its visit_occurrence does, for loaded Encounters."""
    if not encounter_keys:
        return {}
    return {key: {"start": str(moment or day).replace(" ", "T")} for key, day, moment in visit_starts(db, encounter_keys)}


def _drop_spent(*counters: Counter) -> None:
    """Remove the entries a completion brought to zero (the report lists only what happened)."""
    for counter in counters:
        for name in [name for name, count in counter.items() if count <= 0]:
            del counter[name]
