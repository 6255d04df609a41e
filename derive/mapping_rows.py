"""The CTCL mapping-table rows the derivation step needs, as plain dicts.

Read through the shared loader `ctcl_map.mappings.tables.load_mappings` (site overrides merged,
every row validated). Every row is a dict of strings with `source_vocabulary_id`, `source_code`,
`target_concept_id` and the kind's extra columns (staging: axis, value_code; therapies:
starts_systemic_line, hemonc_regimen_concept_id, ingredient; ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ctcl_map.mappings.tables import MappingSet, load_mappings

MappingRows = dict[str, list[dict[str, str]]]
KINDS = ("diagnoses", "staging", "therapies", "labs")


def rows_by_kind(mappings: MappingSet, kinds: tuple[str, ...] = KINDS) -> MappingRows:
    """The rows of each kind as dicts of strings: the kind-specific columns plus the common ones."""
    result: MappingRows = {}
    for kind in kinds:
        rows = []
        for entry in mappings.by_kind(kind):
            row = {str(k): "" if v is None else str(v) for k, v in entry.attributes.items()}
            row.update(source_vocabulary_id=entry.source_vocabulary_id, source_code=entry.source_code,
                       target_concept_id=str(entry.target_concept_id))
            rows.append(row)
        result[kind] = rows
    return result


def load_mapping_rows(mapping_dirs: Sequence[Path] = (), kinds: tuple[str, ...] = KINDS) -> MappingRows:
    """The shipped rows of each kind with the site override folders (--mappings DIR) merged over them."""
    return rows_by_kind(load_mappings(list(mapping_dirs)), kinds)


def concept_id(row: dict[str, str], column: str = "target_concept_id") -> int | None:
    """An integer concept id from a row cell; None for blank or 0 (0 = unmapped, never a target)."""
    text = (row.get(column) or "").strip()
    if not text:
        return None
    value = int(float(text))
    return value or None


def is_true(row: dict[str, str], column: str) -> bool:
    return (row.get(column) or "").strip().lower() in ("true", "1", "yes", "y")
