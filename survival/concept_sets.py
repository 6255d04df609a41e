"""CTCL diagnosis concept sets (all CTCL, MF, SS), resolved against the vocabulary in the CDM.

The rules are data (`concept_sets.csv`): root concepts with their CONCEPT_ANCESTOR descendants,
ICD-O-3 histology prefixes matched on concept_code, and the targets of the diagnosis mapping
table `mappings/diagnoses.csv` (when it is shipped). The only concept ids written down are the
two verified SNOMED roots; everything else comes from the loaded vocabulary at run time.
"""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources

from ctcl_map.store.database import Database

RULES_FILE = "concept_sets.csv"
# Column names the diagnosis mapping table may use (issue 3 defines it; first match wins).
_TARGET_COLUMNS = ("target_concept_id", "concept_id", "standard_concept_id")
_SUBTYPE_COLUMNS = ("ctcl_subtype", "subtype")


@cache
def concept_set_rules() -> dict[str, list[tuple[str, str]]]:
    """concept set name -> [(rule, value)], in file order."""
    text = resources.files("ctcl_map.survival").joinpath(RULES_FILE).read_text(encoding="utf-8")
    rules: dict[str, list[tuple[str, str]]] = {}
    for row in csv.DictReader(text.splitlines()):
        rules.setdefault(row["concept_set"].strip(), []).append((row["rule"].strip(), row["value"].strip()))
    return rules


def diagnosis_mapping_targets() -> dict[str, set[int]]:
    """CTCL subtype (upper case) -> target concept ids from mappings/diagnoses.csv; {} if absent."""
    try:
        text = resources.files("ctcl_map.mappings").joinpath("diagnoses.csv").read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError):
        return {}
    reader = csv.DictReader(text.splitlines())
    names = reader.fieldnames or []
    target_col = next((c for c in _TARGET_COLUMNS if c in names), None)
    subtype_col = next((c for c in _SUBTYPE_COLUMNS if c in names), None)
    if target_col is None:
        return {}
    targets: dict[str, set[int]] = {}
    for row in reader:
        value = (row.get(target_col) or "").strip()
        if not value.isdigit() or int(value) == 0:
            continue
        subtype = (row.get(subtype_col) or "").strip().upper() if subtype_col else ""
        targets.setdefault(subtype, set()).add(int(value))
    return targets


def resolve_concept_set(db: Database, name: str) -> frozenset[int]:
    """All condition concept ids of concept set `name` present in (or rooted by) the vocabulary."""
    rules = concept_set_rules()
    if name not in rules:
        raise KeyError(f"unknown concept set {name!r}: {', '.join(sorted(rules))}")
    roots: set[int] = set()
    icdo3_prefixes: list[str] = []
    found: set[int] = set()
    for rule, value in rules[name]:
        if rule == "concept_set":
            found |= resolve_concept_set(db, value)
        elif rule == "concept_and_descendants":
            roots.add(int(value))
        elif rule == "icdo3_histology":
            icdo3_prefixes.append(value)
        elif rule == "diagnoses_subtype":
            mapped = diagnosis_mapping_targets()
            if value == "*":
                for ids in mapped.values():
                    roots |= ids
            else:
                roots |= mapped.get(value.upper(), set())
        else:
            raise ValueError(f"{RULES_FILE}: unknown rule {rule!r} in concept set {name!r}")
    found |= roots  # a root counts even when the vocabulary subset lacks its CONCEPT row
    found |= descendants(db, roots)
    for prefix in icdo3_prefixes:
        rows = db.query(
            f"SELECT concept_id FROM {db.table('concept')} "
            "WHERE vocabulary_id = 'ICDO3' AND (concept_code = ? OR concept_code LIKE ?)",
            [prefix, prefix + "-%"],
        )
        found |= {int(r[0]) for r in rows}
    return frozenset(found)


def descendants(db: Database, ancestors: set[int] | frozenset[int]) -> set[int]:
    """Descendants through CONCEPT_ANCESTOR (the ancestors themselves included)."""
    if not ancestors:
        return set()
    rows = db.query(
        f"SELECT descendant_concept_id FROM {db.table('concept_ancestor')} "
        f"WHERE ancestor_concept_id IN ({sql_ids(ancestors)})"
    )
    return set(ancestors) | {int(r[0]) for r in rows}


def sql_ids(ids: set[int] | frozenset[int] | list[int]) -> str:
    """An IN-list of integers; ids are validated as int so the text is safe to inline."""
    values = sorted({int(i) for i in ids})
    return ", ".join(str(v) for v in values) if values else "NULL"
