"""ctcl_file_state: content hash (salted with the configuration), size and modification time of
each input file a completed run loaded, and how many Medications it held."""

from __future__ import annotations

from collections.abc import Sequence

from ctcl_map.store.database import Database
from ctcl_map.store.statements import statement

FILE_STATE_COLUMNS = ("source_file", "content_hash", "size_bytes", "modified_ns", "medications", "run_id")
KnownState = tuple[str, int, int, int]  # content hash, size, modification time (ns), medications


def recorded_file_states(db: Database, names: Sequence[str]) -> dict[str, KnownState]:
    """The recorded state of each of the files `names` that a completed run loaded."""
    with db.temp_relation("ctcl_input_files", ("source_file",), [(name,) for name in names] or [("",)]) as relation:
        rows = db.query(statement(db, "file_states", "of_files", files=relation))
    return {name: (digest, size, modified, medications) for name, digest, size, modified, medications in rows}


def record_file_states(db: Database, rows: Sequence[tuple], forget: set[str]) -> None:
    """Record `rows` (of FILE_STATE_COLUMNS), replacing earlier states; forget the states of the
    files `forget` (to be read again next time)."""
    if forget:
        with db.key_relation(sorted(forget)) as relation:
            db.execute(statement(db, "file_states", "forget", files=relation))
    db.upsert_rows("ctcl_file_state", FILE_STATE_COLUMNS, rows, key=("source_file",))
