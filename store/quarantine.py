"""ctcl_quarantine: the records a run did not load, with why (one row per record and reason)."""

from __future__ import annotations

from collections.abc import Sequence

from ctcl_map.store.database import Database
from ctcl_map.store.statements import statement

QUARANTINE_KEY = ("source_file", "source_position", "reason")


def already_quarantined_by_other_runs(db: Database, run_id: int, entries: Sequence[tuple[str, str, str]]) -> set[tuple]:
    """The (source file, position, reason) of `entries` a run other than `run_id` quarantined."""
    with db.temp_relation("ctcl_quarantine_keys", QUARANTINE_KEY, entries) as relation:
        return set(db.query(statement(db, "quarantine", "already_quarantined_by_other_runs", entries=relation), [run_id]))


def undated_at(db: Database, places: Sequence[tuple[str, str]]) -> list[tuple]:
    """(run id, source file, position, reason) of the records at `places` (source file, position)
    quarantined without a date or a subject."""
    with db.temp_relation("ctcl_quarantine_keys", ("source_file", "source_position"), places) as relation:
        return db.query(statement(db, "quarantine", "undated_at", entries=relation))


def lift(db: Database, keys: Sequence[tuple[str, str, str]]) -> None:
    """Take the records (source file, position, reason) out of the quarantine."""
    db.delete_keys("ctcl_quarantine", QUARANTINE_KEY, sorted(set(keys)))


def why_persons_are_missing(db: Database, person_ids: set[int]) -> list[tuple[int, str | None, str | None]]:
    """(person_id, status of its Patient or None, the Patient's quarantine reason or None)."""
    with db.temp_relation("ctcl_person_ids", ("person_id",), [(p,) for p in sorted(person_ids)]) as relation:
        return db.query(statement(db, "quarantine", "why_persons_are_missing", persons=relation))


QUARANTINE_COLUMNS = ("run_id", "source_file", "source_position", "resource_type", "resource_id", "reason", "message")


def quarantine_records(db: Database, rows: Sequence[tuple]) -> None:
    """Quarantine records (rows of QUARANTINE_COLUMNS). A problem already recorded at the same
    file, position and reason is replaced, not repeated: a re-run (or the run that completes a
    killed one) leaves one row per problem."""
    if not rows:
        return
    lift(db, [(f, p, r) for _, f, p, _, _, r, _ in rows])
    db.insert_rows("ctcl_quarantine", QUARANTINE_COLUMNS, rows)
