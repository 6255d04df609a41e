"""A database made ready for a load: the CDM and our ctcl_ tables created if absent, upgrades of
a CDM loaded by an earlier version run once, the shipped vocabulary loaded into an empty CDM."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from ctcl_map.cdm.schema import cdm_ddl, cdm_fields
from ctcl_map.store.ctcl_tables import CTCL_TABLES, ctcl_ddl
from ctcl_map.store.database import Database
from ctcl_map.store.settings import record_setting, recorded_setting
from ctcl_map.store.statements import statement

# Names of the upgrade steps below: part of the DDL digest, so a CDM last loaded by a version
# without one of them runs them (once) on its first run of this version.
UPGRADES = ("reread-files-with-deletions-1",)


def prepare_database(db: Database, load_vocabulary: Callable[[Database], object], vocabulary_key: str | None = None) -> None:
    """Create the CDM and our tables if absent, and `load_vocabulary` into an empty CDM (the
    vocabulary layer's shipped subset: the store does not know vocabularies). `vocabulary_key`
    names what `load_vocabulary` writes: given, a DuckDB file just created starts as a copy of the
    prepared template of that key (store.template), built once."""
    statements = cdm_ddl(db.dialect, db.cdm_schema) + ctcl_ddl(db.table, db.dialect)
    # The DDL that built this CDM is recorded by its digest: when it matches and every table is
    # there, the ~50 CREATE ... IF NOT EXISTS statements are skipped (a fifth of a small
    # incremental run). The probe runs outside the transaction: a missing table aborts it.
    digest = hashlib.sha256("\n".join([*statements, *UPGRADES]).encode()).hexdigest()

    def prepare(target: Database) -> None:
        _prepare(target, statements, digest, load_vocabulary)

    if vocabulary_key is not None and db.created:
        from ctcl_map.store.template import fill_from_template

        fill_from_template(db, f"{digest} {vocabulary_key}", prepare)
    prepare(db)


def _prepare(db: Database, statements: list[str], digest: str, load_vocabulary: Callable[[Database], object]) -> None:
    complete = db.tables_exist([*cdm_fields(), *CTCL_TABLES])
    # Under the load lock: two loaders starting together on a new PostgreSQL schema would otherwise
    # race in CREATE TABLE IF NOT EXISTS and both load the vocabulary.
    with db.exclusive():
        if not complete or recorded_setting(db, "ddl_digest") != digest:
            for ddl in statements:
                db.execute(ddl)
            _backfill_occurrences(db)
            _reread_files_with_deletions(db)
            record_setting(db, "ddl_digest", digest)
        if not db.query(statement(db, "prepare", "any_concept")):
            load_vocabulary(db)


def _reread_files_with_deletions(db: Database) -> None:
    """Repair for CDMs loaded by concurrent PostgreSQL loaders of earlier versions, which deleted
    each other's resources as "vanished" from files that still held them, and then recorded those
    files as loaded (so an incremental run skipped them). Every file a deleted resource was last
    seen in is read again by the next run: a resource it still holds is loaded again (its content
    differs from 'deleted'); a resource really gone or deleted by a DELETE entry stays deleted."""
    db.execute(statement(db, "prepare", "reread_files_with_deletions"))


def _backfill_occurrences(db: Database) -> None:
    """A CDM loaded by a version without ctcl_resource_file: each resource is taken to stand in
    the file that last loaded it (ctcl_resource_state.source_file), so a resource that vanishes
    from that file is found from the first run of this version on."""
    if db.query(statement(db, "prepare", "any_resource_file")):
        return
    db.execute(statement(db, "prepare", "backfill_resource_files"))
