"""ctcl_cleared_link: visit links cleared because their visit was missing (an Encounter that never
arrived, or was deleted), remembered so they are put back when it arrives."""

from __future__ import annotations

from collections.abc import Sequence

from ctcl_map.cdm.schema import primary_key
from ctcl_map.store.database import Database

VISIT_LINKED_TABLES = ("condition_occurrence", "drug_exposure", "procedure_occurrence", "device_exposure", "measurement", "observation")


def clear_missing_visits(db: Database, own_runs: Sequence[int], candidates: set[int] | None) -> int:
    """visit_occurrence_id values pointing at an Encounter that never arrived (or was deleted)
    become NULL, in rows of the persons this run or a killed run it completes changed.

    `candidates`: every visit id this run's rows reference or whose visit it deleted, when known;
    if all of them exist, no link can dangle and the tables are not scanned.
    Run-level step: call inside db.exclusive()."""
    t = db.table
    if candidates is not None:
        if not candidates:
            return 0
        with db.temp_relation("ctcl_visit_ids", ("visit_id",), [(v,) for v in sorted(candidates)]) as relation:
            missing = db.query(f"SELECT COUNT(*) FROM {relation} c WHERE NOT EXISTS "
                               f"(SELECT 1 FROM {t('visit_occurrence')} v WHERE v.visit_occurrence_id = c.visit_id)")[0][0]
        if not missing:
            return 0
    runs = ", ".join(str(r) for r in own_runs)
    # Rows these runs wrote have their person in ctcl_run_person; so do rows whose Encounter these
    # runs deleted. Filtering on those persons is cheaper than on the lineage of the runs.
    where = {
        table: (f"visit_occurrence_id IS NOT NULL AND person_id IN "
                f"(SELECT person_id FROM {t('ctcl_run_person')} WHERE run_id IN ({runs})) AND NOT EXISTS "
                f"(SELECT 1 FROM {t('visit_occurrence')} v WHERE v.visit_occurrence_id = {t(table)}.visit_occurrence_id)")
        for table in VISIT_LINKED_TABLES
    }
    counts = db.query(" UNION ALL ".join(f"SELECT '{table}', COUNT(*) FROM {t(table)} WHERE {condition}"
                                         for table, condition in where.items()))
    for table, count in counts:
        if count:
            # Remembered with the version of the resource that made the row (see restore_visit_links).
            pk = primary_key(table)
            db.execute(f"INSERT INTO {t('ctcl_cleared_link')} (omop_table, omop_id, visit_occurrence_id, resource_key, content_hash) "
                       f"SELECT '{table}', {t(table)}.{pk}, {t(table)}.visit_occurrence_id, l.resource_key, s.content_hash "
                       f"FROM {t(table)} JOIN {t('ctcl_lineage')} l ON l.omop_table = '{table}' AND l.omop_id = {t(table)}.{pk} "
                       f"JOIN {t('ctcl_resource_state')} s ON s.resource_key = l.resource_key WHERE {where[table]}")
            db.execute(f"UPDATE {t(table)} SET visit_occurrence_id = NULL WHERE {where[table]}")
    return sum(count for _, count in counts)


def restore_visit_links(db: Database) -> int:
    """Put back visit links an earlier run cleared, whose Encounter has arrived since: the visit
    id is the one its key always gets, so the link is what the resource said. Only while the
    resource is still the version that made the row (a newer version wrote its own link, or none);
    remembered links that can never be restored that way are forgotten.
    Run-level step: call inside db.exclusive()."""
    t = db.table
    current = (f"EXISTS (SELECT 1 FROM {t('ctcl_resource_state')} s JOIN {t('ctcl_lineage')} l ON l.resource_key = s.resource_key "
               f"WHERE s.resource_key = c.resource_key AND s.content_hash = c.content_hash "
               f"AND l.omop_table = c.omop_table AND l.omop_id = c.omop_id)")
    arrived = f"EXISTS (SELECT 1 FROM {t('visit_occurrence')} v WHERE v.visit_occurrence_id = c.visit_occurrence_id)"
    tables = [table for (table,) in db.query(f"SELECT DISTINCT c.omop_table FROM {t('ctcl_cleared_link')} c WHERE {arrived}")]
    restored = 0
    for table in tables:
        pk = primary_key(table)
        link = (f"FROM {t('ctcl_cleared_link')} c WHERE c.omop_table = '{table}' AND c.omop_id = {t(table)}.{pk} "
                f"AND {arrived} AND {current}")
        restored += db.execute_count(f"UPDATE {t(table)} SET visit_occurrence_id = (SELECT MAX(c.visit_occurrence_id) {link}) "
                                     f"WHERE {t(table)}.visit_occurrence_id IS NULL AND EXISTS (SELECT 1 {link})")
    if tables:
        db.execute(f"DELETE FROM {t('ctcl_cleared_link')} AS c WHERE {arrived} OR NOT {current}")
    return restored
