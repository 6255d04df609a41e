"""Put vocabulary rows into the CDM vocabulary tables: our shipped subset, or a full Athena download.

The shipped subset (vocab/*.csv) is small and loads through `Database.insert_rows`. A real Athena
download has millions of CONCEPT rows, so `load_athena` (in `athena.py`, re-exported here) uses the
databases' bulk paths. Both end with our own 'CTCL-map' rows present, because the converter looks
them up by concept_code whatever vocabulary is loaded.
"""

from __future__ import annotations

import csv
import hashlib
from datetime import date
from importlib import resources
from pathlib import Path

from ctcl_map.cdm.schema import cdm_fields, columns
from ctcl_map.store.database import Database

OWN_VOCABULARY = "CTCL-map"
OWN_CONCEPT_ID_FLOOR = 2_000_000_000

# File name -> CDM table, in load order (CONCEPT first: the others refer to its ids).
SHIPPED_FILES = {
    "CONCEPT.csv": "concept",
    "VOCABULARY.csv": "vocabulary",
    "DOMAIN.csv": "domain",
    "CONCEPT_CLASS.csv": "concept_class",
    "RELATIONSHIP.csv": "relationship",
    "CONCEPT_RELATIONSHIP.csv": "concept_relationship",
    "CONCEPT_ANCESTOR.csv": "concept_ancestor",
}


def shipped_dir() -> Path:
    return Path(str(resources.files("ctcl_map.vocab")))


def shipped_vocabulary_key() -> str:
    """Names what load_shipped_vocabulary writes into an empty CDM: the shipped files, this module's
    code and the version (a prepared CDM template is named by it, see store.template)."""
    from ctcl_map import __version__

    hasher = hashlib.blake2b(__version__.encode(), digest_size=12)
    for name in SHIPPED_FILES:
        hasher.update((shipped_dir() / name).read_bytes())
    hasher.update(Path(__file__).read_bytes())
    return hasher.hexdigest()


def read_shipped(file_name: str) -> list[dict[str, str]]:
    """Rows of one shipped file as strings ('' for NULL), extra columns (source, confidence) included."""
    with (shipped_dir() / file_name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _typed(table: str, row: dict[str, str]) -> tuple:
    """CDM column order and types for one CSV row (dates YYYYMMDD -> date, '' -> NULL)."""
    values: list[int | float | date | str | None] = []
    for field in cdm_fields()[table]:
        text = row.get(field.name, "")
        if text == "" and field.python_kind != "str":
            values.append(None)
        elif field.python_kind == "int":
            values.append(int(text))
        elif field.python_kind == "float":
            values.append(float(text))
        elif field.python_kind == "date":
            values.append(date(int(text[:4]), int(text[4:6]), int(text[6:8])))
        elif field.python_kind == "str" and text == "" and not field.required:
            values.append(None)
        else:
            values.append(text)
    return tuple(values)


def _delete_existing(db: Database, table: str, rows: list[tuple]) -> None:
    """Idempotence: remove the rows we are about to insert (matched on their natural key)."""
    key = {
        "concept": ("concept_id",), "vocabulary": ("vocabulary_id",), "domain": ("domain_id",),
        "concept_class": ("concept_class_id",), "relationship": ("relationship_id",),
        "concept_relationship": ("concept_id_1", "concept_id_2", "relationship_id"),
        "concept_ancestor": ("ancestor_concept_id", "descendant_concept_id"),
    }[table]
    cols = columns(table)
    positions = [cols.index(k) for k in key]
    keys = sorted({tuple(row[p] for p in positions) for row in rows})
    # One set-based statement per table: per-row DELETEs cost a second per fresh database.
    db.delete_keys(table, key, keys)


def load_shipped_vocabulary(db: Database, own_only: bool = False) -> int:
    """Insert vocab/*.csv into the CDM vocabulary tables (which must exist); returns the concept count.

    Meant for a database without an Athena vocabulary (the default set-up). On top of a loaded
    Athena download use own_only=True (what load_athena does): the full subset would overwrite
    Athena's rows of the same concepts with our copies.

    Idempotent: our rows are deleted before they are inserted. With own_only, only the 'CTCL-map'
    concepts (and rows that touch them) are loaded: that is what `load_athena` re-adds on top of a
    full Athena download, where the OMOP rows of the subset are already present in newer versions.
    """
    concept_count = 0
    with db.transaction():
        for file_name, table in SHIPPED_FILES.items():
            rows = read_shipped(file_name)
            if own_only:
                rows = [r for r in rows if _is_own_row(table, r)]
            typed = [_typed(table, r) for r in rows]
            if not typed:
                continue
            _delete_existing(db, table, typed)
            db.insert_rows(table, columns(table), typed)
            if table == "concept":
                concept_count = len(typed)
    return concept_count


def _is_own_row(table: str, row: dict[str, str]) -> bool:
    if table == "concept":
        return row["vocabulary_id"] == OWN_VOCABULARY
    if table == "vocabulary":
        return row["vocabulary_id"] == OWN_VOCABULARY
    if table == "concept_relationship":
        return int(row["concept_id_1"]) >= OWN_CONCEPT_ID_FLOOR or int(row["concept_id_2"]) >= OWN_CONCEPT_ID_FLOOR
    if table == "concept_ancestor":
        return int(row["ancestor_concept_id"]) >= OWN_CONCEPT_ID_FLOOR
    return False  # domains, classes, relationships: Athena has the OMOP ones; ours are added if missing


def vocabulary_version(db: Database) -> str:
    """The loaded vocabulary release ('None' row of VOCABULARY), '' when no vocabulary is loaded."""
    rows = db.query(f"SELECT vocabulary_version FROM {db.table('vocabulary')} WHERE vocabulary_id = 'None'")
    return (rows[0][0] or "") if rows else ""

__all__ = [
    "load_shipped_vocabulary", "read_shipped", "shipped_vocabulary_key",
    "shipped_dir", "vocabulary_version",
]
