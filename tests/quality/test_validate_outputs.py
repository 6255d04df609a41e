"""`ctcl-map validate` outputs: JSON, rich table, HTML; exit codes; privacy of every output."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

from rich.console import Console

from ctcl_map.quality.validate import validate_inputs

FIXTURES = Path(__file__).parents[1] / "fixtures" / "validate"
# Written into event_after_death_reported.json's Patient: name, MRN, address.
PRIVATE = ("Privacyhidden", "Johanna", "MRN-778899", "Secret Lane", "Hiddenville")


def _rendered(report) -> str:
    console = Console(file=io.StringIO(), width=250, color_system=None)
    console.print(report.render_table())
    return console.file.getvalue()


def test_json_lists_every_finding_with_its_fields():
    report = validate_inputs([FIXTURES / "reference_dangling_reported.json", FIXTURES / "diagnosis_missing.json"])
    document = json.loads(report.to_json())
    assert document["fit"] is False
    assert document["counts"] == {"error": 3, "warning": 2}
    assert document["resources"] == 9 and document["patients"] == 2
    first = document["findings"][0]
    assert set(first) == {"severity", "rule", "file", "path", "message", "resource"}
    assert {f["rule"] for f in document["findings"]} == {
        "reference.broken_urn", "reference.broken_contained", "reference.missing_patient", "reference.unresolved",
        "ctcl.diagnosis_missing"}
    assert {"severity": "error", "rule": "reference.broken_urn", "findings": 1} in document["rules"]


def test_exit_codes():
    assert validate_inputs([FIXTURES / "unmapped_code_counts.json"]).exit_code() == 0
    warnings_only = validate_inputs([FIXTURES / "diagnosis_missing.json"])
    assert warnings_only.exit_code() == 0 and warnings_only.exit_code(strict=True) == 1
    assert validate_inputs([FIXTURES / "event_before_birth_reported.json"]).exit_code(strict=False) == 1


def test_no_names_identifiers_or_addresses_in_any_output():
    report = validate_inputs([FIXTURES / "event_after_death_reported.json"], json_schema=True)
    assert report.errors  # the fixture does produce output about this patient
    for text in (report.to_json(), report.to_html(), _rendered(report)):
        for secret in PRIVATE:
            assert secret not in text


def test_html_is_self_contained_and_escaped(tmp_path):
    hostile = tmp_path / "<b>export<i>.json"
    shutil.copy(FIXTURES / "stage_group_inconsistent_with_tnmb.json", hostile)
    page = validate_inputs([hostile]).to_html()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<b>export<i>" not in page and "&lt;b&gt;export&lt;i&gt;" in page
    for external in ("<script", "src=", "href=", "@import", "url("):
        assert external not in page
    assert "ctcl.stage_group_inconsistent" in page


def test_table_shows_summary_rules_and_unmapped_codes():
    text = _rendered(validate_inputs([FIXTURES / "unmapped_code_counts.json"]))
    assert text.startswith("FIT: 1 files, 8 resources, 1 patients")
    assert "999999991" in text and "Most frequent unmapped codes" in text
    text = _rendered(validate_inputs([FIXTURES / "event_before_birth_reported.json"]))
    assert text.startswith("NOT FIT") and "ctcl.event_before_birth" in text


def test_a_loaded_vocabulary_database_is_used_and_left_unchanged(tmp_path):
    """--db: the vocabulary is read from the given CDM (here one holding the shipped subset); nothing is written."""
    from ctcl_map.store.database import connect
    from ctcl_map.store.prepare import prepare_database
    from ctcl_map.vocab.loader import load_shipped_vocabulary

    database = connect(str(tmp_path / "vocab.duckdb"))
    try:
        prepare_database(database, load_shipped_vocabulary)
        before = database.query(f"SELECT COUNT(*) FROM {database.table('concept')}")[0][0]
        with_db = validate_inputs([FIXTURES / "stage_group_inconsistent_with_tnmb.json"], db=database)
        assert database.query(f"SELECT COUNT(*) FROM {database.table('concept')}")[0][0] == before
        assert database.query(f"SELECT COUNT(*) FROM {database.table('measurement')}")[0][0] == 0
    finally:
        database.close()
    shipped = validate_inputs([FIXTURES / "stage_group_inconsistent_with_tnmb.json"])
    assert with_db.vocabulary.endswith("vocab.duckdb") and shipped.vocabulary == "shipped vocabulary subset"
    assert with_db.findings == shipped.findings and with_db.coverage == shipped.coverage
