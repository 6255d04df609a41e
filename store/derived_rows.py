"""Our own tables for the derivation step, id allocation, and the undo that makes re-runs idempotent.

ctcl_derived lists every CDM row the step wrote (table_name, row_id, person_id, kind, note), and
every staging link it set (table_name measurement_link, the condition id as note), so a
re-run for the same persons deletes exactly those rows and nothing the converter loaded.
ctcl_first_advanced is a table (not a view) so DuckDB and PostgreSQL behave alike and the
survival step can index on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ctcl_map.store.ctcl_tables import DERIVED_TABLES
from ctcl_map.store.database import Database
from ctcl_map.store.statements import int_list


def ensure_tables(db: Database) -> None:
    for name, body in DERIVED_TABLES.items():
        db.execute(f"CREATE TABLE IF NOT EXISTS {db.table(name)} ({body})")


class IdAllocator:
    """Primary keys for derived rows, from a stable row key ('derived:stage_group:12:2020-06-10').

    The converter hands out ids from ctcl_id_map (id space = table name, next = MAX + 1), so derived
    rows are registered there too: the converter never reuses their ids, and a re-run gets the same
    id for the same key. `allocate(space, row_key) -> id` lets the caller pass the converter's own
    registry instead (needed when derive runs between batches of one converter run). Without a
    ctcl_id_map table (a bare CDM) ids are MAX(id) + 1 of the table.
    """

    def __init__(self, db: Database, allocate: Callable[[str, str], int] | None = None):
        self.db = db
        self.allocate = allocate
        self.use_id_map = allocate is None and db.table_exists("ctcl_id_map")
        self.known: dict[tuple[str, str], int] = {}
        self.next: dict[str, int] = {}
        self.pending: list[tuple[str, str, int]] = []
        if self.use_id_map:
            for space, row_key, omop_id in db.query(
                f"SELECT id_space, row_key, omop_id FROM {db.table('ctcl_id_map')} WHERE row_key LIKE 'derived:%'"
            ):
                self.known[(space, row_key)] = int(omop_id)

    def take(self, table: str, column: str, row_key: str) -> int:
        if self.allocate is not None:
            return self.allocate(table, row_key)
        if (table, row_key) in self.known:
            return self.known[(table, row_key)]
        if table not in self.next:
            highest = self.db.query(f"SELECT MAX({column}) FROM {self.db.table(table)}")[0][0] or 0
            if self.use_id_map:
                mapped = self.db.query(
                    f"SELECT MAX(omop_id) FROM {self.db.table('ctcl_id_map')} WHERE id_space = ?", [table])[0][0]
                highest = max(highest, mapped or 0)
            self.next[table] = int(highest) + 1
        value = self.next[table]
        self.next[table] += 1
        if self.use_id_map:
            self.known[(table, row_key)] = value
            self.pending.append((table, row_key, value))
        return value

    def flush(self) -> None:
        if self.pending:
            self.db.insert_rows(self.db.table("ctcl_id_map"), ("id_space", "row_key", "omop_id"), self.pending)
            self.pending = []


def undo_previous(db: Database, person_ids: Sequence[int]) -> None:
    """Delete what an earlier run derived for these persons (episodes, their events, measurements)."""
    persons = int_list(person_ids)
    derived = db.table("ctcl_derived")
    # One look first: most persons of an incremental run have nothing derived (no CTCL data), and
    # five empty DELETEs cost more than the query.
    present = {name for (name,) in db.query(
        f"SELECT DISTINCT table_name FROM {derived} WHERE person_id IN {persons} UNION ALL "
        f"SELECT 'ctcl_first_advanced' FROM {db.table('ctcl_first_advanced')} WHERE person_id IN {persons}")}
    if "measurement_link" in present:
        # A staging link this step made (not one the converter wrote since: the note holds the id).
        measurement = db.table("measurement")
        db.execute(
            f"UPDATE {measurement} SET measurement_event_id = NULL, meas_event_field_concept_id = NULL WHERE EXISTS "
            f"(SELECT 1 FROM {derived} d WHERE d.table_name = 'measurement_link' AND d.person_id IN {persons} "
            f"AND d.row_id = {measurement}.measurement_id AND d.note = CAST({measurement}.measurement_event_id AS VARCHAR))"
        )
    if "episode" in present:
        db.execute(
            f"DELETE FROM {db.table('episode_event')} WHERE episode_id IN "
            f"(SELECT row_id FROM {derived} WHERE table_name = 'episode' AND person_id IN {persons})"
        )
    for table, key in (("episode", "episode_id"), ("measurement", "measurement_id")):
        if table in present:
            db.execute(
                f"DELETE FROM {db.table(table)} WHERE {key} IN "
                f"(SELECT row_id FROM {derived} WHERE table_name = '{table}' AND person_id IN {persons})"
            )
    if present - {"ctcl_first_advanced"}:
        db.execute(f"DELETE FROM {derived} WHERE person_id IN {persons}")
    if "ctcl_first_advanced" in present:
        db.execute(f"DELETE FROM {db.table('ctcl_first_advanced')} WHERE person_id IN {persons}")


def record(db: Database, rows: list[tuple[str, int, int, str, str | None]]) -> None:
    """rows: (table_name, row_id, person_id, kind, note)."""
    db.insert_rows(db.table("ctcl_derived"), ("table_name", "row_id", "person_id", "kind", "note"), rows)
