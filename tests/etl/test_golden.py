"""Golden exact-row tests: one FHIR fixture per rule in, the exact OMOP rows out.

Each `tests/fixtures/golden/<rule>.json` has a `<rule>.expected.json` holding every non-NULL
column of every row of the clinical and derived tables (a column not listed must be NULL), plus
the run report's exclusions, quarantines, notes and unmapped codes. The expected files were
checked by hand against the conversion rules in README.md; a change in any of them is a
behaviour change to review, not to regenerate blindly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
GOLDEN = sorted(p for p in (FIXTURES / "golden").glob("*.json") if not p.name.endswith(".expected.json"))


@pytest.mark.parametrize("fixture", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_fixture_gives_exact_rows(db, fixture, cdm_snapshot, load, pseudonym):
    expected = json.loads(fixture.with_name(fixture.stem + ".expected.json").read_text())
    report = load(db, fixture)

    rows = {table: found for table, found in cdm_snapshot(db).items() if found}
    for person in rows.get("person", []):
        assert person["person_source_value"] == pseudonym("Patient/p1")
        person["person_source_value"] = "<pseudonym of Patient/p1>"
    assert rows == expected["rows"]
    assert dict(report.outcome.excluded) == expected["excluded"]
    assert dict(report.outcome.quarantined) == expected["quarantined"]
    assert dict(report.outcome.notes) == expected["notes"]
    unmapped = [dict(zip(("table", "column", "vocabulary", "code", "reason"), key), rows=count)
                for key, count in sorted(report.outcome.unmapped.items())]
    assert unmapped == expected["unmapped"]


def test_every_rule_has_expected_rows():
    for fixture in GOLDEN:
        assert fixture.with_name(fixture.stem + ".expected.json").exists(), fixture.name


def test_unmapped_codes_are_recorded_in_the_database(db, load):
    """f2o-063: concept 0 never silently: the reason is stored with the run."""
    load(db, FIXTURES / "golden" / "condition_unknown_code_zero_with_reason.json")
    stored = db.query(f"SELECT omop_table, omop_column, vocabulary, code, reason, row_count FROM {db.table('ctcl_unmapped')}")
    assert stored == [("condition_occurrence", "concept_id", "http://hospital.example.org/fhir/CodeSystem/diagnoses", "DX-77", "unknown_system", 1)]


def test_quarantine_names_file_position_and_reason(db, load):
    fixture = FIXTURES / "golden" / "condition_invalid_date_quarantined.json"
    load(db, fixture)
    stored = db.query(f"SELECT source_file, source_position, resource_type, resource_id, reason, message FROM {db.table('ctcl_quarantine')}")
    assert stored == [(str(fixture), "entry[1]", "Condition", "c1", "invalid_date",
                       "onsetDateTime is not a valid FHIR date: '2019-13-45'")]
