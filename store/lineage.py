"""ctcl_lineage: which resource (and where it was read) each CDM row came from; ctcl_resource_state:
the last version of each resource loaded (its content hash, status and file)."""

from __future__ import annotations

from collections.abc import Sequence

from ctcl_map.store.database import Database

LINEAGE_COLUMNS = ("omop_table", "omop_id", "resource_key", "source_file", "source_position", "run_id")
STATE_COLUMNS = ("resource_key", "content_hash", "version_id", "last_updated", "status", "source_file", "run_id")


def record_lineage(db: Database, rows: Sequence[tuple]) -> None:
    """Rows of LINEAGE_COLUMNS."""
    db.insert_rows("ctcl_lineage", LINEAGE_COLUMNS, rows)


def record_resource_states(db: Database, rows: Sequence[tuple]) -> None:
    """Rows of STATE_COLUMNS, replacing each resource's earlier state."""
    db.upsert_rows("ctcl_resource_state", STATE_COLUMNS, rows, key=("resource_key",))


def record_new_resource_states(db: Database, rows: Sequence[tuple]) -> None:
    """Rows of STATE_COLUMNS of resources that have no state row yet (a plain insert)."""
    db.insert_rows("ctcl_resource_state", STATE_COLUMNS, rows)
