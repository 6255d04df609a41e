"""The CTCL mapping-table rows the derivation step needs, as plain dicts.

One small seam: the shared loader `ctcl_map.mappings.tables.load_mappings` when it exists (it
merges site overrides and validates), else the shipped CSVs read with csv.DictReader. Every row
is a dict of strings with at least `source_vocabulary_id`, `source_code`, `target_concept_id`
and the kind's extra columns (staging: axis, value_code; therapies: starts_systemic_line,
hemonc_regimen_concept_id, ingredient; ...).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

MappingRows = dict[str, list[dict[str, str]]]
KINDS = ("diagnoses", "staging", "therapies", "labs")


def _from_loader(kind: str, mapping_dirs: Sequence[Path]) -> list[dict[str, str]] | None:
    try:
        from ctcl_map.mappings.tables import load_mappings  # written by the vocabulary/mappings issue
    except ImportError:
        return None
    rows = []
    for entry in load_mappings(list(mapping_dirs)).by_kind(kind):
        row = {str(k): "" if v is None else str(v) for k, v in (getattr(entry, "attributes", None) or {}).items()}
        for name in ("source_vocabulary_id", "source_code", "target_concept_id"):
            value = getattr(entry, name, None)
            if value is not None:
                row[name] = str(value)
        rows.append(row)
    return rows


def _from_csv(kind: str) -> list[dict[str, str]]:
    resource = resources.files("ctcl_map.mappings").joinpath(f"{kind}.csv")
    if not resource.is_file():
        return []
    text = resource.read_text(encoding="utf-8-sig")
    rows = csv.DictReader(text.splitlines())
    return [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in rows]


def load_mapping_rows(mapping_dirs: Sequence[Path] = (), kinds: tuple[str, ...] = KINDS) -> MappingRows:
    """The shipped rows of each kind, with the site override folders (--mappings DIR) merged over
    them by the shared loader (the CSV fallback reads the shipped tables only)."""
    result: MappingRows = {}
    for kind in kinds:
        rows = _from_loader(kind, mapping_dirs)
        result[kind] = rows if rows is not None else _from_csv(kind)
    return result


def concept_id(row: dict[str, str], column: str = "target_concept_id") -> int | None:
    """An integer concept id from a row cell; None for blank or 0 (0 = unmapped, never a target)."""
    text = (row.get(column) or "").strip()
    if not text:
        return None
    value = int(float(text))
    return value or None


def is_true(row: dict[str, str], column: str) -> bool:
    return (row.get(column) or "").strip().lower() in ("true", "1", "yes", "y")
