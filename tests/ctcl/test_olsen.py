"""Stage derivation over the whole Olsen 2007 table, with every a/b suffix, and the policies."""

import csv
import itertools
from pathlib import Path

import pytest

from ctcl_map.ctcl.olsen import derive_stage_group, groups_compatible, is_advanced

FIXTURES = Path(__file__).parents[1] / "fixtures" / "staging"

# Suffixed written variants of each base category (ctcl-domain.md 1.2: T1/T2, N1/N2, B0/B1 have
# a/b; N0a/N0b and B2a/B2b are accepted spellings).
VARIANTS = {
    "T1": ("T1", "T1a", "T1b"), "T2": ("T2", "T2a", "T2b"), "T3": ("T3",), "T4": ("T4",),
    "N0": ("N0", "N0a", "N0b"), "N1": ("N1", "N1a", "N1b"), "N2": ("N2", "N2a", "N2b"), "N3": ("N3",),
    "M0": ("M0",), "M1": ("M1",),
    "B0": ("B0", "B0a", "B0b"), "B1": ("B1", "B1a", "B1b"), "B2": ("B2", "B2a", "B2b"),
}


def _read(name):
    with (FIXTURES / name).open(encoding="utf-8") as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))


TABLE = _read("olsen_table.csv")


def test_table_covers_every_base_combination_once():
    combos = [(r["t"], r["n"], r["m"], r["b"]) for r in TABLE]
    expected = set(itertools.product(("T1", "T2", "T3", "T4"), ("N0", "N1", "N2", "N3"), ("M0", "M1"), ("B0", "B1", "B2")))
    assert len(combos) == len(set(combos)) == 96
    assert set(combos) == expected


@pytest.mark.parametrize("row", TABLE, ids=lambda r: f"{r['t']}{r['n']}{r['m']}{r['b']}")
def test_olsen_cell_with_all_suffixes(row):
    for t, n, m, b in itertools.product(VARIANTS[row["t"]], VARIANTS[row["n"]], VARIANTS[row["m"]], VARIANTS[row["b"]]):
        result = derive_stage_group(t, n, m, b)
        assert result.group == row["group"], (t, n, m, b)
        assert result.assumptions == () and result.reason is None


@pytest.mark.parametrize("row", _read("olsen_policies.csv"), ids=lambda r: f"{r['t']}{r['n']}{r['m']}{r['b']}-{r['options']}")
def test_undefined_cells_follow_documented_policy(row):
    options = row["options"]
    result = derive_stage_group(
        row["t"] or None, row["n"] or None, row["m"] or None, row["b"] or None,
        assume_m0="assume_m0" in options, nx_as_n1="strict_nx" not in options,
    )
    assert result.group == (row["group"] or None)
    notes = " | ".join(result.assumptions) + " | " + (result.reason or "")
    if row["flags"]:
        assert row["flags"] in notes
    else:
        assert result.assumptions == ()
    if result.group is None:
        assert result.reason


def test_written_forms_are_accepted():
    assert derive_stage_group("cT4", "n0", "M0", "B2b").group == "IVA1"


def test_invalid_category_is_rejected():
    with pytest.raises(ValueError, match="not an ISCL/EORTC T category"):
        derive_stage_group("T5", "N0", "M0", "B0")


@pytest.mark.parametrize("group,advanced", [
    ("IA", False), ("IB", False), ("IIA", False), ("IIB", True), ("III", True), ("IIIA", True),
    ("IIIB", True), ("IVA1", True), ("IVA2", True), ("IVB", True), ("IVA", True), ("IV", True),
    ("I", False), ("II", False), (None, False), ("Stage IIB", True),
])
def test_is_advanced(group, advanced):
    assert is_advanced(group) is advanced


def test_is_advanced_rejects_non_group():
    with pytest.raises(ValueError):
        is_advanced("V")


@pytest.mark.parametrize("given, derived, agree", [
    ("IIB", "IIB", True), ("III", "IIIA", True), ("IIIB", "III", True), ("IV", "IVA1", True), ("IVA", "IVA2", True),
    ("IV", "IVB", True), ("I", "IB", True),
    ("I", "IIA", False),  # a prefix test would call these compatible
    ("II", "IIIA", False), ("IVA", "IVB", False), ("IB", "IA", False), ("IIA", "IIB", False),
])
def test_groups_compatible(given, derived, agree):
    assert groups_compatible(given, derived) is agree
