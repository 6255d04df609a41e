"""ctcl_id_map: the OMOP id each source key (a resource, a derived row) was given, by id space."""

from __future__ import annotations

from collections.abc import Sequence

from ctcl_map.store.database import Database
from ctcl_map.store.statements import statement


def visit_starts(db: Database, encounter_keys: Sequence[str]) -> list[tuple]:
    """(Encounter key, visit_start_date, visit_start_datetime) of the loaded Encounters among these."""
    with db.key_relation(encounter_keys) as relation:
        return db.query(statement(db, "id_map", "visit_starts", encounters=relation))
