"""The command line: exit codes 0/1/2, teaching help, and never a traceback for user problems."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
GOLDEN = FIXTURES / "golden"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ctcl_map.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_version():
    from ctcl_map import __version__

    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"ctcl-map {__version__}"


def test_help_teaches_the_main_command():
    result = run("fhir2omop", "--help")
    assert result.returncode == 0
    for phrase in ("--db", "--mappings", "--strict", "Examples", "quarantine"):
        assert phrase in result.stdout


def test_load_writes_duckdb_and_prints_a_summary(tmp_path):
    result = run("fhir2omop", str(TESTS / "data" / "synthea"), "--db", str(tmp_path / "omop.duckdb"), "-q")
    assert result.returncode == 0, result.stderr
    assert "person" in result.stdout and "resources loaded" in result.stdout
    assert (tmp_path / "omop.duckdb").exists()


def test_json_report(tmp_path):
    result = run("fhir2omop", str(GOLDEN / "condition_icd10_mf_maps_to_snomed.json"), "--db", str(tmp_path / "o.duckdb"), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["rows_written"] == {"condition_occurrence": 1, "person": 1, "visit_occurrence": 1}
    assert report["cdm_version"] == "v5.4"


def test_nothing_loadable_exits_1_without_traceback(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("this is not json")
    result = run("fhir2omop", str(bad), "--db", str(tmp_path / "o.duckdb"), "-q")
    assert result.returncode == 1
    assert "nothing could be loaded" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_strict_turns_quarantine_into_exit_1(tmp_path):
    fixture = GOLDEN / "condition_invalid_date_quarantined.json"
    relaxed = run("fhir2omop", str(fixture), "--db", str(tmp_path / "a.duckdb"), "-q")
    strict = run("fhir2omop", str(fixture), "--db", str(tmp_path / "b.duckdb"), "-q", "--strict")
    assert relaxed.returncode == 0
    assert strict.returncode == 1
    assert "quarantined" in strict.stderr


def test_usage_error_exits_2():
    result = run("fhir2omop", "--no-such-option")
    assert result.returncode == 2


def test_bad_mapping_override_refuses_to_start(tmp_path):
    overrides = tmp_path / "site"
    overrides.mkdir()
    (overrides / "therapies.csv").write_text("source_vocabulary_id,source_code\nLOCAL-DRUGS,X1\n")
    result = run("fhir2omop", str(GOLDEN / "patient_person_and_death.json"), "--db", str(tmp_path / "o.duckdb"),
                 "--mappings", str(overrides), "-q")
    assert result.returncode == 2
    assert "therapies.csv" in result.stderr
    assert "Traceback" not in result.stderr


def test_unusable_database_exits_1_without_traceback(tmp_path):
    result = run("fhir2omop", str(GOLDEN / "patient_person_and_death.json"),
                 "--db", "postgresql+psycopg://nobody@127.0.0.1:1/none", "-q")
    assert result.returncode == 1
    assert "cannot connect" in result.stderr
    assert "Traceback" not in result.stderr


def test_samples_generate_then_load(tmp_path):
    out = tmp_path / "cohort"
    generated = run("samples", "generate", "--patients", "5", "--seed", "7", "--out", str(out), "--format", "ndjson")
    assert generated.returncode == 0, generated.stderr
    assert (out / "truth.csv").exists() and (out / "fhir" / "Patient.ndjson").exists()
    loaded = run("fhir2omop", str(out / "fhir"), "--db", str(tmp_path / "o.duckdb"), "--json")
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout)["resources_loaded"]["Patient"] == 5


def test_samples_generate_rejects_an_unknown_format(tmp_path):
    result = run("samples", "generate", "--patients", "2", "--out", str(tmp_path), "--format", "xml")
    assert result.returncode == 2
    assert "unknown format" in result.stderr and "Traceback" not in result.stderr


def test_validate_exit_codes(tmp_path):
    clean = run("validate", str(TESTS.parent / "samples" / "mf_early_stage.json"), "--json")
    assert clean.returncode == 0, clean.stderr
    report = json.loads(clean.stdout)
    assert report["fit"] is True and report["counts"] == {"error": 0, "warning": 0}
    broken = run("validate", str(FIXTURES / "validate" / "reference_dangling_reported.json"), "--html", str(tmp_path / "r.html"))
    assert broken.returncode == 1
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
