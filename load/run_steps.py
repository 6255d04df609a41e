"""The run-level steps after a run's last batch, which judge what the batches together left: resources
no file holds any more, rows whose person never arrived, visit links to restore, events before a
person's birth, the cdm_source row. Each runs inside the run's one db.exclusive() transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date

from ctcl_map import CDM_VERSION, __version__
from ctcl_map.cdm.schema import columns
from ctcl_map.load.cdm_writer import CdmWriter
from ctcl_map.model import BatchOutcome, ConvertedItem, SourceItem, content_hash
from ctcl_map.store.database import Database
from ctcl_map.store.quarantine import already_quarantined_by_other_runs, why_persons_are_missing
from ctcl_map.store.runs import persons_missing_from_runs

EVENT_TABLES = ("visit_occurrence", "condition_occurrence", "drug_exposure", "procedure_occurrence",
                "device_exposure", "measurement", "observation", "death")


def delete_vanished(writer: CdmWriter, files: list[str], outcome: BatchOutcome) -> int:
    """Delete, as a DELETE entry would, each resource that no file holds any more (judged by the
    files this run read cleanly to the end). Run-level step: call inside db.exclusive()."""
    vanished = writer.vanished_resources(files)
    deletes = [_absent_resource(key, file) for key, file in vanished]
    if deletes:
        writer.write_batch(deletes, [], outcome)
    return len(deletes)


def _absent_resource(key: str, file: str) -> ConvertedItem:
    """The DELETE entry of resource `key` ('Type/id'), last held by `file`."""
    resource_type, resource_id = key.split("/", 1)
    return ConvertedItem(SourceItem(None, resource_type, resource_id, file, "absent", "DELETE"), None, content_hash(None))


def remove_dangling_subjects(writer: CdmWriter, own_runs: Sequence[int], outcome: BatchOutcome) -> tuple[int, set[str]]:
    """Rows whose person never arrived: remove them, quarantine their resource, forget its state
    (so a later run that brings the Patient loads them).

    The quarantine says why: the Patient is absent ('dangling_subject'), or it was read but
    quarantined or excluded itself ('patient_quarantined: missing_birth_date'). The rows this run
    wrote for them leave the report's counts, so the report equals the CDM; a resource still
    waiting for the Patient an earlier run already quarantined it for is counted as a note, not as
    a new quarantine.

    Only rows this run (or a killed run it completes) wrote, or of persons it changed (a deleted
    Patient), are checked: a concurrent loader's events whose Patient it has not committed yet
    are not dangling. Run-level step: call inside db.exclusive().
    """
    db, run_id = writer.db, writer.run_id
    t = db.table
    runs = ", ".join(str(r) for r in own_runs)
    # One cheap query first instead of one per table.
    if not persons_missing_from_runs(db, own_runs):
        return 0, set()
    dangling: set[tuple[str, str, str, int]] = set()
    for table in EVENT_TABLES:
        rows = db.query(
            f"SELECT DISTINCT l.resource_key, l.source_file, l.source_position, e.person_id FROM {t(table)} e "
            f"JOIN {t('ctcl_lineage')} l ON l.omop_table = '{table}' AND l.omop_id = "
            f"{'e.person_id' if table == 'death' else 'e.' + table + '_id'} "
            f"WHERE e.person_id NOT IN (SELECT person_id FROM {t('person')}) AND (l.run_id IN ({runs}) OR e.person_id IN "
            f"(SELECT person_id FROM {t('ctcl_run_person')} WHERE run_id IN ({runs})))"
        )
        dangling.update(rows)
    if not dangling:
        return 0, set()
    keys = sorted({key for key, _, _, _ in dangling})
    verdicts = _missing_person_verdicts(db, {person for _, _, _, person in dangling})
    written = writer.rows_written_by(keys)
    for table, key, count in written:
        outcome.rows_by_table[table] -= count
        outcome.rows_by_source[(key.split("/", 1)[0], table)] -= count
    for key in {key for _, key, _ in written}:
        outcome.resources_loaded[key.split("/", 1)[0]] -= 1
        outcome.unmapped.subtract(writer.awaiting_person.get(key, Counter()))
    for counter in (outcome.rows_by_table, outcome.rows_by_source, outcome.resources_loaded, outcome.unmapped):
        for name in [name for name, count in counter.items() if count <= 0]:
            del counter[name]
    writer.forget_resources(keys)
    entries = sorted({(run_id, f, p, key.split("/", 1)[0], key.split("/", 1)[1], *verdicts[person])
                      for key, f, p, person in dangling})
    known = already_quarantined_by_other_runs(db, run_id, [entry[1:3] + entry[5:6] for entry in entries])
    for entry in entries:
        if (entry[1], entry[2], entry[5]) in known:
            outcome.notes["still_waiting_for_their_patient"] += 1
        else:
            outcome.quarantined[entry[5]] += 1
    writer.record_quarantine(entries)
    return len(keys), {source_file for _, source_file, _, _ in dangling}


def _missing_person_verdicts(db: Database, person_ids: set[int]) -> dict[int, tuple[str, str]]:
    """person_id -> (reason, message) of why it is not in the CDM: its Patient was quarantined
    (with the Patient's own reason), excluded, or never arrived."""
    verdicts = {}
    for person_id, status, reason in why_persons_are_missing(db, person_ids):
        if status == "quarantined":
            verdicts[person_id] = ("patient_quarantined", f"its Patient was quarantined: {reason or 'see its entry'}")
        elif status == "excluded":
            verdicts[person_id] = ("patient_excluded", "its Patient was excluded: it is not loaded as a person")
        else:
            verdicts[person_id] = ("dangling_subject", "subject references a Patient that is not in the input or the database")
    return verdicts


PERSON_MISSING_REASONS = ("dangling_subject", "patient_quarantined", "patient_excluded")  # see _missing_person_verdicts


EVENT_START_DATES = {"visit_occurrence": "visit_start_date", "condition_occurrence": "condition_start_date",
                     "drug_exposure": "drug_exposure_start_date", "procedure_occurrence": "procedure_date",
                     "device_exposure": "device_exposure_start_date", "measurement": "measurement_date",
                     "observation": "observation_date"}


def events_before_birth(db: Database, own_runs: Sequence[int]) -> int:
    """Rows of the persons these runs changed that start before the person's birth (a partial
    birth date counts from its first day). Each resource is converted alone, so this is found
    here, after the load; the rows stay (the birth date may be the wrong one) and are counted.
    Run-level step: call inside db.exclusive()."""
    t = db.table
    runs = ", ".join(str(r) for r in own_runs)
    birth = "make_date(p.year_of_birth, COALESCE(p.month_of_birth, 1), COALESCE(p.day_of_birth, 1))"
    counts = " UNION ALL ".join(
        f"SELECT COUNT(*) AS n FROM {t(table)} e JOIN {t('person')} p ON p.person_id = e.person_id "
        f"WHERE e.{column} < {birth} AND e.person_id IN (SELECT person_id FROM {t('ctcl_run_person')} WHERE run_id IN ({runs}))"
        for table, column in EVENT_START_DATES.items())
    return int(db.query(f"SELECT SUM(n) FROM ({counts}) c")[0][0] or 0)


def write_cdm_source(db: Database, name: str, vocab_version: str) -> None:
    """The one cdm_source row (rewritten only when it changes: a write costs more than a read)."""
    row = (name[:255], "ctcl-map", "ctcl-map user", "FHIR R4 resources converted by ctcl-map",
           None, f"ctcl-map {__version__}", date.today(), date.today(), CDM_VERSION, 0, (vocab_version or "unknown")[:20])
    if db.query(f"SELECT {', '.join(columns('cdm_source'))} FROM {db.table('cdm_source')}") == [row]:
        return
    db.execute(f"DELETE FROM {db.table('cdm_source')}")
    db.insert_rows("cdm_source", columns("cdm_source"), [row])
