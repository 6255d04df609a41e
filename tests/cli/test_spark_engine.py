"""`fhir2omop --engine spark` on the command line: usage errors exit 2 with a message, pyspark is
never imported when the CLI starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from ctcl_map.cli import app

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "mf_early_stage.json"


def test_engine_spark_without_out_is_a_usage_error():
    result = CliRunner().invoke(app, ["fhir2omop", str(SAMPLE), "--engine", "spark"])
    assert result.exit_code == 2
    assert "--out CDM_DIR" in result.output


def test_engine_spark_without_pyspark_or_java_says_what_to_install(monkeypatch, tmp_path):
    import ctcl_map.spark.session as session

    monkeypatch.setattr(session, "missing_requirement", lambda: "--engine spark needs PySpark, which is not installed")
    result = CliRunner().invoke(app, ["fhir2omop", str(SAMPLE), "--engine", "spark", "--out", str(tmp_path / "cdm")])
    assert result.exit_code == 2
    assert "needs PySpark" in result.output
    assert not (tmp_path / "cdm").exists()


def test_spark_options_without_engine_spark_are_refused(tmp_path):
    result = CliRunner().invoke(app, ["fhir2omop", str(SAMPLE), "--out", str(tmp_path / "cdm"), "--db", str(tmp_path / "x.duckdb")])
    assert result.exit_code == 2
    assert "--engine spark" in result.output


def test_the_cli_starts_without_importing_pyspark():
    code = "import sys, ctcl_map.cli; sys.exit('pyspark' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
