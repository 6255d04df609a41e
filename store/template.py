"""A new DuckDB CDM file filled from a prepared copy instead of statement by statement.

Creating the ~50 CDM and ctcl_ tables and loading the shipped vocabulary into a new file costs more
than loading a small bundle. The result is the same bytes every time for the same DDL, vocabulary,
software and DuckDB, so it is kept once as a template file in the cache folder, named by a digest
of all of those, and a new CDM file starts as a copy of it. Anything that changes what preparation
writes changes the name: a stale template is never used, only left for removal.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from ctcl_map.store.cache import cache_folder
from ctcl_map.store.database import DUCKDB_STORAGE_VERSION, Database, connect, open_duckdb

TEMPLATE_PREFIX = "cdm-template-"
STALE_SECONDS = 7 * 86400
# The modules whose code decides what preparation writes besides its DDL and the caller's key.
_PREPARING_MODULES = ("prepare.py", "template.py", "settings.py", "duckdb_backend.py", "ctcl_tables.py")


def fill_from_template(db: Database, key: str, prepare: Callable[[Database], None]) -> bool:
    """Replace `db`, a DuckDB file its connection just created, by a copy of the template named by
    `key` (built first with `prepare` when absent). False, with `db` untouched, where no template
    can be used: a server or in-memory database, a file that existed or holds tables already, an
    unwritable cache folder."""
    path = db.database_file() if db.created and db.dialect == "duckdb" else None
    # Still empty: this connection may have written tables since it created the file (`vocab load`).
    if path is None or db.query("SELECT COUNT(*) FROM information_schema.tables")[0][0]:
        db.created = False
        return False
    from ctcl_map.store.duckdb_backend import DuckDBBackend

    copy = path.with_name(f"{path.name}.{os.getpid()}.template")
    try:
        shutil.copyfile(_template(db, key, prepare), copy)
    except OSError:
        copy.unlink(missing_ok=True)
        return False  # the cache folder cannot be written: prepare statement by statement
    db.backend.close()
    try:
        path.with_name(f"{path.name}.wal").unlink(missing_ok=True)
        os.replace(copy, path)  # the CDM file is the new empty one or the whole template, never half
    finally:
        copy.unlink(missing_ok=True)
        db.backend = DuckDBBackend(open_duckdb(path))
    db.created = False
    return True


def _template(db: Database, key: str, prepare: Callable[[Database], None]) -> Path:
    import duckdb

    here = Path(__file__).resolve().parent
    hasher = hashlib.blake2b(digest_size=12)
    for part in (key, duckdb.__version__, DUCKDB_STORAGE_VERSION, repr((db.cdm_schema, db.results_schema))):
        hasher.update(f"{part}\n".encode())
    for name in _PREPARING_MODULES:
        hasher.update((here / name).read_bytes())
    folder = cache_folder()
    template = folder / f"{TEMPLATE_PREFIX}{hasher.hexdigest()}.duckdb"
    if template.exists():
        os.utime(template)  # in use: not stale
        return template
    folder.mkdir(parents=True, exist_ok=True)
    partial = template.with_name(f"{template.name}.{os.getpid()}.partial")
    try:
        with connect(partial, cdm_schema=db.cdm_schema, results_schema=db.results_schema) as fresh:
            prepare(fresh)
        os.replace(partial, template)  # concurrent builders: each renames a whole file
    finally:
        partial.unlink(missing_ok=True)
        partial.with_name(f"{partial.name}.wal").unlink(missing_ok=True)
    for stale in folder.glob(f"{TEMPLATE_PREFIX}*.duckdb"):  # of other versions, unused for a week
        if stale != template and time.time() - stale.stat().st_mtime > STALE_SECONDS:
            stale.unlink(missing_ok=True)
    return template
