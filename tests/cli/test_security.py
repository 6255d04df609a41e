"""Security and usage: no password in output or ctcl_run, no write through planted symlinks, no
DuckDB load into a file that is not a DuckDB database, and usage errors exit 2 without a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ctcl_map.cli import app
from ctcl_map.store.database import connect

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

BUNDLE = str(FIXTURES / "golden" / "condition_icd10_mf_maps_to_snomed.json")
PASSWORD = "s3cret-Pw-4711"


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    text = result.output + (getattr(result, "stderr", "") if result.stderr_bytes is not None else "")
    return result.exit_code, text, result.exception


def assert_usage_error(args, *phrases):
    code, text, exception = invoke(*args)
    assert code == 2, text
    assert exception is None or isinstance(exception, SystemExit), exception
    assert "Traceback" not in text
    for phrase in phrases:
        assert phrase in text, text
    return text


@pytest.mark.parametrize("content", ['{"resourceType": "Bundle"}\n', "person_id,year_of_birth\n1,1950\n"])
def test_db_pointing_at_an_existing_json_or_csv_file_is_refused_and_the_file_left_alone(tmp_path, content):
    target = tmp_path / "data.json"
    target.write_text(content)
    assert_usage_error(["fhir2omop", BUNDLE, "--db", str(target), "-q"], "not a DuckDB database")
    assert target.read_text() == content
    assert_usage_error(["dq", "--db", str(target)], "not a DuckDB database")


def test_db_pointing_at_a_folder_is_refused(tmp_path):
    assert_usage_error(["fhir2omop", BUNDLE, "--db", str(tmp_path), "-q"], "is a folder")


def test_an_existing_duckdb_file_and_a_new_path_are_accepted(tmp_path):
    target = tmp_path / "omop.duckdb"
    for _ in range(2):
        code, text, _ = invoke("fhir2omop", BUNDLE, "--db", str(target), "-q")
        assert code == 0, text


@pytest.mark.parametrize("schema", ["pg_catalog", "information_schema", "PG_TOAST", "Information_Schema", "bad-name"])
def test_reserved_or_invalid_schema_names_are_usage_errors(tmp_path, schema):
    assert_usage_error(["fhir2omop", BUNDLE, "--db", str(tmp_path / "x.duckdb"), "--cdm-schema", schema, "-q"], repr(schema))
    assert_usage_error(["survival", "--db", str(tmp_path / "x.duckdb"), "--results-schema", schema], repr(schema))


@pytest.mark.parametrize("port", ["abc", "70000", "0"])
def test_a_bad_port_is_a_usage_error_that_does_not_repeat_the_password(port):
    text = assert_usage_error(["fhir2omop", BUNDLE, "--db", f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:{port}/test", "-q"],
                              "port")
    assert PASSWORD not in text


def test_an_unparseable_url_does_not_repeat_the_password():
    text = assert_usage_error(["fhir2omop", BUNDLE, "--db", f"postgresql+psycopg://postgres:{PASSWORD}@[::1/test", "-q"])
    assert PASSWORD not in text


def test_a_refused_connection_does_not_repeat_the_password():
    code, text, _ = invoke("fhir2omop", BUNDLE, "--db", f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:1/test", "-q")
    assert code == 1 and "cannot connect" in text and PASSWORD not in text


@pytest.mark.postgres
def test_the_db_password_never_reaches_output_or_the_run_record(drop_schema, postgres_or_skip):
    """The server trusts local connections, so a password in the URL is accepted and ignored."""
    url, schema = postgres_or_skip("ctcl_pw")
    with_password = url.replace("postgres@", f"postgres:{PASSWORD}@")
    assert PASSWORD in with_password
    try:
        for extra in ([], ["--json"]):
            code, text, _ = invoke("fhir2omop", BUNDLE, "--db", with_password, "--cdm-schema", schema, "-q", *extra)
            assert code == 0, text
            assert PASSWORD not in text
        code, text, _ = invoke("dq", "--db", with_password, "--cdm-schema", schema, "--json")
        assert PASSWORD not in text
        db = connect(url, cdm_schema=schema)
        try:
            for table in ("ctcl_run", "ctcl_settings", "ctcl_quarantine", "cdm_source"):
                assert PASSWORD not in json.dumps(db.query(f"SELECT * FROM {db.table(table)}"), default=str), table
        finally:
            db.close()
    finally:
        drop_schema(schema)


# -- output folders ---------------------------------------------------------------------------
@pytest.fixture
def loaded_cdm(tmp_path):
    path = tmp_path / "omop.duckdb"
    code, text, _ = invoke("fhir2omop", BUNDLE, "--db", str(path), "-q")
    assert code == 0, text
    return path


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_export_never_writes_through_a_symlink_leading_outside_the_folder(tmp_path, loaded_cdm, file_format):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    out = tmp_path / "export"
    out.mkdir()
    (out / f"person.{file_format}").symlink_to(outside)
    assert_usage_error(["export", str(out), "--db", str(loaded_cdm), "--format", file_format], "symbolic link")
    assert outside.read_text() == "keep me"
    assert not (out / f"condition_occurrence.{file_format}").exists()  # refused before anything was written


def test_export_and_samples_refuse_an_out_folder_that_is_a_file(tmp_path, loaded_cdm):
    a_file = tmp_path / "out.txt"
    a_file.write_text("x")
    assert_usage_error(["export", str(a_file), "--db", str(loaded_cdm)], "is a file")
    assert_usage_error(["samples", "generate", "--out", str(a_file), "--patients", "1"], "is a file")
    assert a_file.read_text() == "x"


@pytest.mark.parametrize("planted", ["truth.csv", "fhir", "fhir/ctcl-00001.json"])
def test_samples_generate_never_writes_through_a_symlink_leading_outside_the_folder(tmp_path, planted):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "ctcl-00001.json").write_text("keep me")
    (outside / "truth.csv").write_text("keep me")
    out = tmp_path / "samples"
    (out / "fhir").mkdir(parents=True)
    link = out / planted
    if link.exists():
        link.rmdir()
    link.symlink_to(outside if planted == "fhir" else outside / planted.rsplit("/", 1)[-1])
    assert_usage_error(["samples", "generate", "--out", str(out), "--patients", "1"], "symbolic link")
    assert sorted(p.name for p in outside.iterdir()) == ["ctcl-00001.json", "truth.csv"]
    assert all(p.read_text() == "keep me" for p in outside.iterdir())
