"""Start-up: the CLI imports only what the command it runs uses, and its two readers of the same
declarations (argparse runs a command, Typer renders help and usage errors) read a command line alike."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ctcl_map.cli import commands
from ctcl_map.command_line import Group, Refused, parsed, resolve, typer_app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BUNDLE = str(FIXTURES / "golden" / "condition_icd10_mf_maps_to_snomed.json")

# Libraries some commands need and a load of one bundle does not: each costs tens to hundreds of
# milliseconds of imports (Typer builds a pydantic adapter per option).
NOT_AT_START = ("typer", "click", "rich", "pydantic", "pandas", "numpy", "duckdb", "psycopg", "sqlalchemy", "pyarrow",
                "fhir", "jsonschema", "lifelines", "matplotlib", "scipy")
NOT_IN_A_LOAD = ("typer", "click", "pydantic", "pandas", "numpy", "psycopg", "sqlalchemy", "pyarrow", "fhir", "jsonschema",
                 "lifelines", "matplotlib", "scipy")


def _modules_after(code: str, **env: str) -> set[str]:
    """Top-level packages imported by a fresh interpreter running `code` (printed at exit)."""
    script = ("import atexit, json, sys\n"
              "atexit.register(lambda: print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr))\n"
              + code)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env={**os.environ, **env})
    return set(json.loads(result.stderr.strip().splitlines()[-1]))


def test_importing_the_cli_loads_no_library_of_any_command():
    loaded = _modules_after("import ctcl_map.cli")
    assert not loaded & set(NOT_AT_START), sorted(loaded & set(NOT_AT_START))


def test_loading_one_bundle_imports_neither_typer_nor_the_analysis_libraries(tmp_path):
    """The shipped mapping tables are checked against their JSON Schemas once per content (a digest
    cache): the first run imports jsonschema, the next ones do not."""
    code = (f"sys.argv = ['ctcl-map', 'fhir2omop', {BUNDLE!r}, '--db', {str(tmp_path / 'o.duckdb')!r}, '-q']\n"
            "from ctcl_map.cli import main\nmain()")
    cache = {"CTCL_MAP_CACHE_DIR": str(tmp_path / "cache")}
    first, second = _modules_after(code, **cache), _modules_after(code, **cache)
    assert "duckdb" in first and "jsonschema" in first  # the load ran; the mapping tables were validated
    assert not second & set(NOT_IN_A_LOAD), sorted(second & set(NOT_IN_A_LOAD))


# Command lines of every command, with each kind of option: flags and their negations, repeated
# options, lists of arguments, numbers, dates, options between arguments.
COMMAND_LINES = [
    ["fhir2omop", "a.json"],
    ["fhir2omop", "a.json", "b/", "--db", "x.duckdb", "--full", "--keep-vanished", "--no-oncology", "-q", "--json"],
    ["fhir2omop", "a.json", "--mappings", "m1", "--workers", "2", "b.json", "--mappings", "m2", "--batch-size", "10",
     "--b-rules", "2022", "--strict", "--log-file", "l.jsonl", "--include-unconfirmed", "--key-file", "k", "--validate",
     "--max-resource-mb", "3", "--max-decompressed-mb", "0", "--cdm-schema", "cdm", "--incremental", "--oncology"],
    ["fhir2omop", "a.json", "--engine", "spark", "--out", "cdm", "--master", "local[2]", "--vocab-db", "v.duckdb",
     "--b-rules", "2022", "--no-oncology"],
    ["validate", "a.json", "--schema", "--top", "5", "--html", "r.html", "--strict", "--json"],
    ["dq", "--check", "isRequired", "--check", "fkDomain", "--table", "person", "--show-passed", "--dqd-json", "d.json"],
    ["survival", "--cohort", "advanced", "--compare", "mogamulizumab", "--landmark-months", "3.5", "--index-from",
     "2020-01-31", "--admin-end", "2024-12-31", "--age-min", "40", "--type", "SS", "--plot", "km", "--cohort-id", "7"],
    ["study", "--out", "s", "--compare", "x", "--landmark-months", "2"],
    ["constraints", "--no-indices", "--foreign-keys"],
    ["export", "out", "--format", "csv", "--table", "person", "--table", "death"],
    ["samples", "copy", "--out", "demo"],
    ["samples", "generate", "--out", "o", "--patients", "3", "--seed", "9", "--gzip", "--messy", "--mogamulizumab-hr",
     "0.5", "--confounding", "--no-background-mortality", "--format", "ndjson"],
    ["vocab", "load", "athena/", "--db", "v.duckdb"],
    ["mappings", "check"],
    ["mappings", "check", "site1", "site2", "--db", "m.duckdb"],
    ["cdm", "load", "cdm/", "--db", "c.duckdb", "--cdm-schema", "cdm"],
]


def _typer_reads(args: list[str]) -> dict:
    """The keyword arguments Typer hands the command function for `args`."""
    received: list[dict] = []
    app = typer_app(commands, lambda function: lambda **kwargs: received.append(kwargs))
    app(args=args, prog_name="ctcl-map", standalone_mode=False)
    return received[0]


@pytest.mark.parametrize("args", COMMAND_LINES, ids=lambda args: " ".join(args[:2]))
def test_argparse_reads_every_option_as_typer_does(args):
    found = resolve(commands, args)
    assert found is not None
    command, rest = found
    assert parsed(command, rest) == _typer_reads(args)


@pytest.mark.parametrize("args", [
    ["fhir2omop"],  # the input is required
    ["fhir2omop", "a.json", "--no-such-option"],
    ["fhir2omop", "a.json", "--workers", "0"],  # below its minimum
    ["survival", "--index-from", "2020-13-01"],
    ["samples", "generate"],  # --out is required
])
def test_a_command_line_argparse_refuses_goes_to_typer(args):
    command, rest = resolve(commands, args)
    with pytest.raises(Refused):
        parsed(command, rest)


@pytest.mark.parametrize("args", [[], ["--help"], ["--version"], ["vocab"], ["nosuch"], ["fhir2omop", "a.json", "--help"]])
def test_help_version_and_unknown_names_are_not_run_by_argparse(args):
    assert resolve(commands, args) is None


def test_the_command_lines_above_cover_every_command():
    def names(group: Group, prefix: str = "") -> set[str]:
        found = set()
        for name, entry in group.entries.items():
            found |= names(entry, f"{prefix}{name} ") if isinstance(entry, Group) else {f"{prefix}{name}"}
        return found

    assert names(commands) == {" ".join(args[:2]) if isinstance(commands.entries[args[0]], Group) else args[0] for args in COMMAND_LINES}
