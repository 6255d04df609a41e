"""ctcl_settings: named values a CDM keeps about itself (the digest of the DDL that built it, the
fingerprint of the configuration SOURCE_TO_CONCEPT_MAP was written with, the pseudonym key check)."""

from __future__ import annotations

from ctcl_map.store.database import Database
from ctcl_map.store.statements import statement


def recorded_setting(db: Database, name: str) -> str | None:
    """A value from ctcl_settings (which must exist); None when absent."""
    rows = db.query(statement(db, "settings", "read"), [name])
    return rows[0][0] if rows else None


def record_setting(db: Database, name: str, value: str) -> None:
    forget_setting(db, name)
    db.insert_rows("ctcl_settings", ("name", "value"), [(name, value)])


def forget_setting(db: Database, name: str) -> None:
    db.execute(statement(db, "settings", "forget"), [name])
