"""The vocabulary converters are handed, prepared before any conversion.

The shipped subset (or any small vocabulary) is read whole into a VocabIndex. A full Athena load
is too large for memory: its vocabulary rows (each concept with its 'Maps to' targets) are copied
once into a snapshot file (vocab.snapshot), which every converting process opens read-only. So
conversion never queries the CDM database, and worker processes need no connection to it.

The snapshot is named by a digest of the loaded vocabulary (its version, the counts and id sums of
its concepts and 'Maps to' rows): a new `vocab load` makes a new snapshot, built at the next run.
Summing 'Maps to' rows reads all relationships (over a second at Athena's size), so a writing run
records the digest in ctcl_settings beside a cheap key (version, concept count/sum/max, relationship
count) and reuses it while that key holds; `vocab load` forgets it (forget_vocabulary_digest).
It lies next to a DuckDB CDM file; for PostgreSQL or an in-memory CDM, in the user's cache folder.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ctcl_map.store.cache import cache_folder
from ctcl_map.store.database import Database
from ctcl_map.store.settings import forget_setting, record_setting, recorded_setting
from ctcl_map.vocab.lookup import VOCABULARY_ROW_COLUMNS, VocabIndex, Vocabulary
from ctcl_map.vocab.snapshot import ROWS_TABLE, SnapshotVocabulary

IN_MEMORY_LIMIT = 300_000  # concepts; above it the vocabulary is read through a snapshot
SNAPSHOT_PREFIX = "ctcl-map-vocabulary-"
DIGEST_SETTING = "vocabulary_digest"  # ctcl_settings: "<cheap key> <digest>" of the loaded vocabulary
_ROW_TYPES = tuple(zip(VOCABULARY_ROW_COLUMNS, ("VARCHAR", "VARCHAR", "BIGINT", "VARCHAR", "VARCHAR", "BIGINT", "VARCHAR", "VARCHAR")))


def prepare_vocabulary(db: Database, record_digest: bool = False) -> Vocabulary:
    """The vocabulary loaded in `db`, ready for conversion in any process. `record_digest`: `db` is
    writable, so the vocabulary's digest may be kept in ctcl_settings for the next runs."""
    count = db.query(f"SELECT COUNT(*) FROM {db.table('concept')}")[0][0]
    if count <= IN_MEMORY_LIMIT:
        return VocabIndex(db.query(_rows_sql(db)))
    path = _snapshot_folder(db) / f"{SNAPSHOT_PREFIX}{_known_digest(db, record_digest)}.duckdb"
    if not path.exists():
        _build(db, path)
    return SnapshotVocabulary(path)


def _rows_sql(db: Database, ordered: bool = True) -> str:
    """The vocabulary rows; `ordered` as VocabIndex reads them (a snapshot orders at each lookup)."""
    t = db.table
    return (
        "SELECT c.vocabulary_id, c.concept_code, c.concept_id, c.standard_concept, c.domain_id, "
        "t.concept_id AS target_concept_id, t.domain_id AS target_domain_id, t.standard_concept AS target_standard_concept "
        f"FROM {t('concept')} c "
        f"LEFT JOIN {t('concept_relationship')} r ON r.concept_id_1 = c.concept_id "
        "AND r.relationship_id = 'Maps to' AND (r.invalid_reason IS NULL OR r.invalid_reason = '') "
        f"LEFT JOIN {t('concept')} t ON t.concept_id = r.concept_id_2 "
        + ("ORDER BY c.concept_id, t.concept_id" if ordered else "")
    )


def forget_vocabulary_digest(db: Database) -> None:
    """Called by every vocabulary load: the next run computes the digest of what was loaded."""
    if db.table_exists("ctcl_settings"):  # absent while a new CDM gets its vocabulary before its first run
        forget_setting(db, DIGEST_SETTING)


def _known_digest(db: Database, record: bool) -> str:
    """The vocabulary digest (_digest), read from ctcl_settings while the vocabulary's cheap key is the one recorded."""
    t = db.table
    version = db.query(f"SELECT vocabulary_version FROM {t('vocabulary')} WHERE vocabulary_id = 'None'")
    concepts = db.query(f"SELECT COUNT(*), SUM(concept_id), MAX(concept_id) FROM {t('concept')}")
    relationships = db.query(f"SELECT COUNT(*) FROM {t('concept_relationship')}")
    key = hashlib.blake2b(repr((version, concepts, relationships)).encode(), digest_size=12).hexdigest()
    settings = db.table_exists("ctcl_settings")
    recorded = recorded_setting(db, DIGEST_SETTING) if settings else None
    if recorded is not None and recorded.startswith(f"{key} "):
        return recorded.removeprefix(f"{key} ")
    digest = _digest(db, version, concepts)
    if record and settings:
        with db.exclusive():  # concurrent PostgreSQL loaders: one at a time replaces the row
            record_setting(db, DIGEST_SETTING, f"{key} {digest}")
    return digest


def _digest(db: Database, version: list[tuple], concepts: list[tuple]) -> str:
    """Names the loaded vocabulary: any `vocab load` of another release or content changes it.
    `version` and `concepts` are the cheap key's own query results (not read twice)."""
    maps_to = db.query(f"SELECT COUNT(*), SUM(concept_id_1), SUM(concept_id_2) FROM {db.table('concept_relationship')} "
                       "WHERE relationship_id = 'Maps to'")
    return hashlib.blake2b(repr((version, concepts, maps_to)).encode(), digest_size=12).hexdigest()


def _snapshot_folder(db: Database) -> Path:
    database_file = db.database_file()
    if database_file is not None:
        return database_file.parent  # beside the CDM file it was read from
    folder = cache_folder()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _build(db: Database, path: Path) -> None:
    """Write the snapshot under a temporary name, then rename it: a concurrent loader building the
    same one, or a reader, never sees half a file. Snapshots of earlier vocabularies are removed."""
    import duckdb

    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    rows_file = path.with_name(f"{path.name}.{os.getpid()}.csv")
    try:
        # Through a CSV file the database writes itself (COPY): the rows of a full vocabulary
        # (millions) never pass through Python objects nor sit in memory whole. A quoted empty
        # field is an empty code (the subset has some), an unquoted one NULL.
        db.write_csv(_rows_sql(db, ordered=False), rows_file)
        with duckdb.connect(str(partial)) as snapshot:
            spec = ", ".join(f"'{name}': '{kind}'" for name, kind in _ROW_TYPES)
            snapshot.execute(f"CREATE TABLE {ROWS_TABLE} AS SELECT * FROM read_csv(?, header=true, auto_detect=false, allow_quoted_nulls=false, "
                             f"columns={{{spec}}})", [str(rows_file)])
            snapshot.execute(f"CREATE INDEX {ROWS_TABLE}_code ON {ROWS_TABLE} (concept_code)")
            snapshot.execute(f"CREATE INDEX {ROWS_TABLE}_concept ON {ROWS_TABLE} (concept_id)")
    finally:
        rows_file.unlink(missing_ok=True)
    os.replace(partial, path)
    for earlier in path.parent.glob(f"{SNAPSHOT_PREFIX}*.duckdb"):
        if earlier != path:
            earlier.unlink(missing_ok=True)
