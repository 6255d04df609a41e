"""parse_category on a table of written forms (tests/fixtures/staging/parse_forms.csv)."""

import csv
from pathlib import Path

import pytest

from ctcl_map.ctcl.tnmb import base_category, parse_category

FIXTURE = Path(__file__).parents[1] / "fixtures" / "staging" / "parse_forms.csv"


def _rows():
    with FIXTURE.open(encoding="utf-8") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    return [(r["axis"], r["text"], r["expected"] or None) for r in csv.DictReader(lines)]


@pytest.mark.parametrize("axis,text,expected", _rows())
def test_written_form(axis, text, expected):
    assert parse_category(axis, text) == expected


def test_fixture_has_rejections_for_every_axis():
    rejected_axes = {axis for axis, _text, expected in _rows() if expected is None}
    assert rejected_axes == {"T", "N", "M", "B", "stage"}


def test_none_text_is_none():
    assert parse_category("T", None) is None


def test_unknown_axis_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown staging axis"):
        parse_category("X", "T1")


@pytest.mark.parametrize("code,base", [("T2b", "T2"), ("B0a", "B0"), ("NX", "NX"), ("N1", "N1"), ("IVA1", "IVA1")])
def test_base_category_strips_only_clone_suffix(code, base):
    assert base_category(code) == base
