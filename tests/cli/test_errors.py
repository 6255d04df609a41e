"""One error tree: every user-facing error is a CtclMapError carrying its exit code, and every
command reports a database failure with the same exit code and no traceback."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ctcl_map import errors
from ctcl_map.cli import app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

BUNDLE = str(FIXTURES / "golden" / "patient_person_and_death.json")
UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:1/none"  # nothing listens on port 1


def _error_classes() -> list[type[errors.CtclMapError]]:
    return [value for value in vars(errors).values()
            if inspect.isclass(value) and issubclass(value, errors.CtclMapError)]


@pytest.mark.parametrize("error", _error_classes(), ids=lambda error: error.__name__)
def test_every_error_carries_an_int_exit_code(error):
    assert type(error.exit_code) is int and error.exit_code in (1, 2)


def test_the_tree_keeps_the_exit_codes_users_see():
    assert errors.DatabaseError.exit_code == errors.DatabaseLocked.exit_code == 1
    assert errors.DatabaseUsageError.exit_code == 2 and issubclass(errors.DatabaseUsageError, errors.DatabaseError)
    for usage in (errors.MappingError, errors.KeyProblem, errors.RunFailed, errors.ValidationFailed, errors.AthenaError,
                  errors.OutputPathError, errors.SurvivalSpecError, errors.CirceUnavailable, errors.CohortIdClash):
        assert usage.exit_code == 2, usage


@pytest.mark.parametrize("args", [
    ["fhir2omop", BUNDLE, "-q"],
    ["vocab", "load", str(FIXTURES)],
    ["mappings", "check"],
    ["dq"],
    ["survival"],
    ["study", "--out", "{tmp}/study"],
    ["constraints"],
    ["export", "{tmp}/export"],
    ["validate", BUNDLE],
], ids=lambda args: " ".join(args[:2]))
def test_every_command_reports_a_database_failure_with_one_exit_code_and_no_traceback(tmp_path, args):
    args = [arg.format(tmp=tmp_path) for arg in args] + ["--db", UNREACHABLE]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == errors.DatabaseError.exit_code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "cannot connect" in result.output and "Traceback" not in result.output


def test_a_driver_error_the_store_did_not_wrap_is_a_database_error(tmp_path, monkeypatch):
    import duckdb

    from ctcl_map.store.database import connect

    connect(tmp_path / "x.duckdb").close()

    def fail(*_args, **_kwargs):
        raise duckdb.IOException("IO Error: disk full")

    monkeypatch.setattr("ctcl_map.store.export.export_cdm", fail)
    result = CliRunner().invoke(app, ["export", str(tmp_path / "out"), "--db", str(tmp_path / "x.duckdb")])
    assert result.exit_code == errors.DatabaseError.exit_code, result.output
    assert "IOException: IO Error: disk full" in result.output and "Traceback" not in result.output
