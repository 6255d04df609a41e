"""What a person reads: every text output legible at 80 columns and when piped, identifying values
whole, and values from the data escaped (issue: output people can read; hostile input)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from ctcl_map.terminal import clean, safe_markup, show

TESTS = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

GOLDEN = FIXTURES / "golden"

# Strings an export could carry in a code system, code, file name or message.
CLEAR_SCREEN = "\x1b[2J\x1b[H"
HYPERLINK = "\x1b]8;;https://evil.example/\x07click here\x1b]8;;\x07"
FAKE_LINE = "x\nfail  fakeCheck  PERSON.PERSON_ID"
MARKUP = "[link=https://evil.example]bank[/link][bold red]FIT[/]"
BIDI = "report\u202etxt.exe"
HOSTILE = (CLEAR_SCREEN, HYPERLINK, FAKE_LINE, MARKUP, BIDI, "carriage\roverwrite", ":warning: emoji\x00nul\x7f\x9b")


def run(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """The CLI as a user pipes it: stdout and stderr are not terminals; 80 columns."""
    environment = {**os.environ, "COLUMNS": "80", **(env or {})}
    environment.pop("FORCE_COLOR", None)
    return subprocess.run([sys.executable, "-m", "ctcl_map.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=environment, timeout=300)


def rendered(renderable_or_printer, width: int = 80, terminal: bool = True) -> str:
    """Output at `width` columns, as on a colour terminal (terminal=True) or a pipe."""
    out = Console(file=io.StringIO(), width=width, force_terminal=terminal, color_system="truecolor" if terminal else None,
                  emoji=False, highlight=False)
    if callable(renderable_or_printer):
        renderable_or_printer(out)
    else:
        show(renderable_or_printer, out)
    return out.file.getvalue()


def assert_defused(text: str) -> None:
    """No control sequence from the data took effect: only SGR colour codes (ESC [ ... m) remain."""
    without_colours = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert "\x1b" not in without_colours and "\x07" not in text and "\r" not in text and "\x00" not in text
    assert "\u202e" not in text and "\x9b" not in text
    assert not any(line.lstrip().startswith("fail  fakeCheck") for line in without_colours.splitlines())
    assert "[link=https://evil.example]bank[/link]" in without_colours  # shown, not read as markup
    assert "\\x1b[2J" in without_colours and "\\u202e" in without_colours and "\\n" in without_colours


def visible_lines(text: str) -> list[str]:
    return re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines()


# -- the escaping function -------------------------------------------------------------------------


def test_clean_makes_every_control_character_visible():
    assert clean("\x1b[2J") == "\\x1b[2J"
    assert clean("a\nb\tc\rd") == "a\\nb\\tc\\rd"
    assert clean("\x00\x07\x7f\x9b") == "\\x00\\x07\\x7f\\x9b"
    assert clean("abc\u202edef\u2066\u200b") == "abc\\u202edef\\u2066\\u200b"
    assert clean("Sézary syndrome, 5 × 10⁹/L, ≥ 1000 µL") == "Sézary syndrome, 5 × 10⁹/L, ≥ 1000 µL"
    assert clean(None) == "" and clean(12) == "12"
    assert safe_markup("[bold]x[/]") == "\\[bold]x\\[/]"


def test_printed_markup_from_data_is_shown_literally():
    out = Console(file=io.StringIO(), width=200, emoji=False)
    out.print(f"system: {safe_markup(MARKUP + HYPERLINK)}")
    text = out.file.getvalue()
    assert "[link=https://evil.example]bank[/link][bold red]FIT[/]" in text and "\x1b]8" not in text


# -- every renderer, with hostile values -------------------------------------------------------------


def _dq_report(description: str, database: str = "omop.duckdb"):
    from ctcl_map.quality.report import CheckResult, DqReport

    def check(name, table, field, status, violated, total, pct, threshold, text, error=None):
        return CheckResult(name, "FIELD", table, field, None, None, status, violated, total, pct, threshold, text,
                           "convention", "Completeness", "", "Validation", error=error)

    return DqReport(database, [
        check("standardConceptRecordCompleteness", "procedure_occurrence", "procedure_source_concept_id", "fail",
              9, 9, 100.0, 5, "The number and percent of records with a value of 0 in the standard concept field "
              "PROCEDURE_SOURCE_CONCEPT_ID in the PROCEDURE_OCCURRENCE table."),
        check("plausibleValueHigh", "measurement", "value_as_number", "fail", 3, 1200, 0.25, None, description),
        check("isForeignKey", "condition_occurrence", "person_id", "error", None, None, None, None, "", error=description),
        check("isRequired", "person", "person_id", "pass", 0, 10, 0.0, 0, "passes"),
    ], 1.5)


def test_dq_blocks_keep_check_names_whole_at_80_columns():
    text = rendered(_dq_report("values above the plausible high").render_table())
    lines = visible_lines(text)
    assert "fail  standardConceptRecordCompleteness" in lines
    assert "    PROCEDURE_OCCURRENCE.PROCEDURE_SOURCE_CONCEPT_ID" in lines  # did not fit beside the name
    assert "fail  plausibleValueHigh  MEASUREMENT.VALUE_AS_NUMBER" in lines
    assert "    9 of 9 violated (100.00 %), threshold 5 %" in lines
    assert "isRequired" not in text  # passing checks only with include_passed
    assert max(len(line) for line in lines) <= 80
    assert len(lines) <= 2 + 3 * 5  # summary, then a short block per failed or errored check


def test_dq_escapes_descriptions_errors_and_the_database_label():
    for hostile in HOSTILE:
        report = _dq_report(hostile, database=hostile)
        text = rendered(report.render_table(include_passed=True))
        assert clean(hostile) in re.sub(r"\x1b\[[0-9;]*m", "", text).replace("\n", " ") or "\\n" in clean(hostile)
    assert_defused(rendered(_dq_report(" ".join(HOSTILE), database=" ".join(HOSTILE)).render_table()))


def _validation_report(value: str, deep_file: str):
    from collections import Counter

    from ctcl_map.quality.validate_report import Finding, ValidationReport

    findings = [
        Finding("error", "reference.unresolved", deep_file, "entry[12].resource.medicationReference.reference",
                f"reference {value} matches no resource", f"MedicationRequest/{value}"),
        Finding("warning", "ctcl.code_unrecognised", value, value, value),
    ]
    coverage = {
        "by_system": [{"vocabulary": value, "resource_type": "Condition", "distinct_codes": 2, "distinct_mapped": 0,
                       "occurrences": 5, "occurrences_mapped": 0, "percent_mapped": 0.0},
                      {"vocabulary": "http://hospital.example.org/fhir/CodeSystem/local-diagnosis-codes-2019",
                       "resource_type": "Condition", "distinct_codes": 1, "distinct_mapped": 0,
                       "occurrences": 1, "occurrences_mapped": 0, "percent_mapped": 0.0}],
        "unmapped": [{"vocabulary": value, "code": value, "resource_type": "Condition", "occurrences": 5,
                      "reason": "unknown_system"},
                     {"vocabulary": "http://hospital.example.org/fhir/CodeSystem/local-diagnosis-codes-2019",
                      "code": "MF-IIB-EXTENDED-0001", "resource_type": "Condition", "occurrences": 1,
                      "reason": "unknown_system"}],
    }
    return ValidationReport(findings=findings, files=2, resources=10, resources_by_type=Counter(Condition=10),
                            patients=1, coverage=coverage)


DEEP_FILE = "/data/exports/hospital-a/2026-11-30/bulk-export-run-000123/fhir/MedicationRequest.000042.ndjson"


def test_validate_blocks_keep_paths_rules_and_codes_whole_at_80_columns():
    text = rendered(_validation_report("plain-value", DEEP_FILE).render_table())
    lines = visible_lines(text)
    assert f"      file: {DEEP_FILE}" in lines  # 98 columns: one line, not folded into pieces
    assert "      at:   entry[12].resource.medicationReference.reference" in lines
    assert any(line.startswith("  error  reference.unresolved") for line in lines)
    assert "  http://hospital.example.org/fhir/CodeSystem/local-diagnosis-codes-2019" in lines
    assert "      MF-IIB-EXTENDED-0001  (Condition)" in lines  # packed under the system that did not fit beside it
    for line in lines:
        assert len(line) <= 80 or DEEP_FILE in line


def test_validate_escapes_every_value_from_the_export():
    assert_defused(rendered(_validation_report(" ".join(HOSTILE), DEEP_FILE + CLEAR_SCREEN).render_table()))


def _survival_result(label_suffix: str = "", warning: str = "naive design: IMMORTAL-TIME BIAS"):
    from ctcl_map.survival.spec import AttritionStep, GroupSummary, SurvivalResult, SurvivalSpec

    spec = SurvivalSpec(cohort="ctcl", strata=("clipi_group", "ctcl_type"))
    at = [{"survival": 0.931, "lower": 0.842, "upper": 0.971, "at_risk": 137}] * 3
    labels = [f"clipi_group={g} | ctcl_type={t}{label_suffix}" for g in ("low", "intermediate", "high") for t in ("MF", "SS")]
    groups = [GroupSummary(label, 40, 12, 28, 2100.0, 1500.0, None, at) for label in labels]
    attrition = [AttritionStep("ctcl" + label_suffix, "persons with a qualifying entry event", 250, 250),
                 AttritionStep("ctcl" + label_suffix, "index date inside an observation period", 250, 240,
                               "no observation period covers the diagnosis date")]
    result = SurvivalResult(spec, "ctcl" + label_suffix, "none", attrition, groups,
                            logrank={"statistic": 10.5964, "df": 5, "p_value": 0.0011},
                            warnings=[warning])
    return result, labels


def test_survival_group_labels_whole_at_80_columns():
    from ctcl_map.survival.report import print_table

    result, labels = _survival_result()
    for terminal in (True, False):
        lines = visible_lines(rendered(lambda out: print_table(result, out), terminal=terminal))
        for label in labels:  # low, intermediate and high CLIPI told apart, MF from SS
            assert f"  {label}" in lines
        assert "      40 persons, 12 deaths, 28 censored; median 69.0 (95 % CI 49.3-NR)" in lines
        assert "      1 y: 93.1 % (95 % CI 84.2-97.1), 137 at risk" in lines
        assert any("250 -> 240" in line and "index date inside an observation period" in line for line in lines)
        assert max(len(line) for line in lines) <= 80


def test_survival_escapes_labels_cohort_names_and_warnings():
    from ctcl_map.survival.report import print_table

    result, _ = _survival_result(" ".join(HOSTILE), warning=" ".join(HOSTILE))
    assert_defused(rendered(lambda out: print_table(result, out)))


def test_run_report_escapes_codes_and_types_from_the_input():
    from ctcl_map.pipeline import RunReport
    from ctcl_map.report import print_run_report

    report = RunReport(run_id=7)
    hostile = " ".join(HOSTILE)
    report.outcome.rows_by_table.update({"condition_occurrence": 3, "person": 1})
    report.outcome.unmapped[("condition_occurrence", "condition_concept_id", hostile, "C1", "unknown_system")] = 3
    report.outcome.not_mapped_types[hostile] = 1
    report.outcome.quarantined["invalid_date"] = 2
    text = rendered(lambda out: print_run_report(report, "omop.duckdb", out))
    assert_defused(text)
    assert "ctcl-map run 7 -> omop.duckdb" in visible_lines(text)


# -- the commands, piped at 80 columns -------------------------------------------------------------------


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """One load of the Synthea sample plus a quarantining fixture, piped, with a log file."""
    folder = tmp_path_factory.mktemp("load")
    db, log = folder / "omop.duckdb", folder / "load.jsonl"
    result = run("fhir2omop", str(TESTS / "data" / "synthea"), str(GOLDEN / "condition_invalid_date_quarantined.json"),
                 "--db", str(db), "--log-file", str(log))
    assert result.returncode == 0, result.stderr
    return folder, db, log, result


def test_load_report_piped_has_no_progress_bar_and_fits(loaded):
    _, db, _, result = loaded
    assert result.stderr == ""  # the bar is for terminals only
    lines = result.stdout.splitlines()
    assert f"ctcl-map run 1 -> {db}" in lines
    assert "  invalid_date 1" in lines  # quarantined by reason, one whole item
    assert all(len(line) <= 80 for line in lines if str(db) not in line)


def test_progress_bar_is_drawn_on_a_terminal(tmp_path):
    """stderr a terminal (a pseudo-terminal here), stdout piped: the bar is drawn on stderr only."""
    import pty
    import threading

    master, slave = pty.openpty()
    drawn = bytearray()

    def read() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the terminal closed
                return
            if not chunk:
                return
            drawn.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    environment = {**os.environ, "COLUMNS": "80", "TERM": "xterm"}
    result = subprocess.run([sys.executable, "-m", "ctcl_map.cli", "fhir2omop", str(TESTS / "data" / "synthea"),
                             "--db", str(tmp_path / "o.duckdb")], stdout=subprocess.PIPE, stderr=slave, env=environment,
                            text=True, timeout=300)
    os.close(slave)
    reader.join(timeout=10)
    os.close(master)
    assert result.returncode == 0
    bar = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", drawn.decode("utf-8", "replace"))
    assert "2/2 files" in bar and "183 resources" in bar and "ETA" in bar
    assert "ETA" not in result.stdout and "resources loaded" in result.stdout


def test_log_file_lets_a_scheduler_follow_the_load(loaded):
    folder, _, log, _ = loaded
    text = log.read_text(encoding="utf-8")
    events = [json.loads(line) for line in text.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_start" and kinds[-2:] == ["report", "run_end"]
    assert events[0]["backend"] == "duckdb" and events[0]["inputs"] == 2 and events[0]["options"]["batch_size"] == 5000
    progress = [e for e in events if e["event"] == "progress"]
    files_done = [p["files_done"] for p in progress]
    assert files_done[:4] == [0, 1, 2, 3] and files_done[4:] == [3]  # a start, one per file, the last batch
    assert progress[-1]["files_total"] == 3 and progress[-1]["batches_committed"] == 1
    assert progress[-1]["resources"] == sum(p["resources_since_last"] for p in progress)
    assert progress[-1]["quarantined"] == 1 and progress[-1]["bytes_done"] == progress[-1]["bytes_total"]
    assert {"kind": "quarantined", "count": 1, "by_reason": {"invalid_date": 1}}.items() <= next(
        e for e in events if e["event"] == "warning" and e["kind"] == "quarantined").items()
    report = events[-2]["report"]
    assert report["rows_written"]["person"] == 3 and report["quarantined"] == {"invalid_date": 1}
    assert events[-1]["exit_code"] == 0 and events[-1]["status"] == "completed"
    assert all(e["time"].endswith("+00:00") for e in events)
    assert str(folder) not in text and "synthea" not in text and str(TESTS) not in text  # no paths


def test_log_file_records_a_failed_run(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("this is not json")
    log = tmp_path / "run.jsonl"
    result = run("fhir2omop", str(bad), "--db", str(tmp_path / "o.duckdb"), "--log-file", str(log))
    assert result.returncode == 1 and "nothing could be loaded" in result.stderr
    last = json.loads(log.read_text().splitlines()[-1])
    assert (last["event"], last["exit_code"], last["status"], last["error"]) == ("run_end", 1, "failed", "nothing_loaded")
    unwritable = run("fhir2omop", str(bad), "--db", str(tmp_path / "o.duckdb"), "--log-file", str(tmp_path / "no" / "x.jsonl"))
    assert unwritable.returncode == 2 and "cannot write the log file" in unwritable.stderr
    assert "Traceback" not in unwritable.stderr


def test_log_file_and_report_never_show_the_database_password(tmp_path, drop_schema, postgres_or_skip):

    url, schema = postgres_or_skip("log")
    with_password = url.replace("postgres@", "postgres:Sekr1t-pw@", 1)
    assert "Sekr1t-pw" in with_password  # trust auth on the test server ignores it
    log = tmp_path / "run.jsonl"
    try:
        result = run("fhir2omop", str(GOLDEN / "condition_icd10_mf_maps_to_snomed.json"), "--db", with_password,
                     "--cdm-schema", schema, "--log-file", str(log))
        assert result.returncode == 0, result.stderr
        assert "Sekr1t-pw" not in result.stdout + result.stderr + log.read_text()
        assert json.loads(log.read_text().splitlines()[0])["backend"] == "postgresql"
    finally:
        drop_schema(schema)


def test_dq_piped_at_80_columns_one_block_per_failed_check(loaded):
    _, db, _, _ = loaded
    text = run("dq", "--db", str(db)).stdout
    failed = [r for r in json.loads(run("dq", "--db", str(db), "--json").stdout)["results"] if r["status"] == "fail"]
    assert failed
    lines = text.splitlines()
    for check in failed:
        where = check["table"].upper() + (f".{check['field'].upper()}" if check["field"] else "")
        heading = f"fail  {check['check_name']}"
        assert f"{heading}  {where}" in lines or (heading in lines and f"    {where}" in lines)
    assert max(len(line) for line in lines) <= 80
    assert len(lines) <= 2 + 6 * len(failed)  # was ~20 lines per check, names broken in 7-character pieces


def test_validate_piped_at_80_columns_keeps_paths_whole(tmp_path):
    deep = tmp_path / "hospital-export-2026-11-30" / "bulk-export-run-000123" / "fhir-r4-bundles-for-validation"
    shutil.copytree(FIXTURES / "validate", deep)
    result = run("validate", str(deep), "--top", "100")
    document = json.loads(run("validate", str(deep), "--json").stdout)
    lines = result.stdout.splitlines()
    assert result.returncode == 1 and document["findings"]
    for finding in document["findings"]:
        assert f"      file: {finding['file']}" in lines
        assert len(finding["file"]) > 80 or len(str(deep)) < 70
        if finding["path"]:
            assert f"      at:   {finding['path']}" in lines
    for rule in document["rules"]:
        assert any(line.split()[-1:] == [rule["rule"]] for line in lines)
    for code in document["coverage"]["unmapped"]:
        assert any(code["vocabulary"] in line and f"  {code['code']}  " in line for line in lines)
    assert all(len(line) <= 80 for line in lines if str(deep) not in line)


def test_validate_of_a_hostile_export_prints_nothing_that_acts_on_the_terminal(tmp_path):
    bundle = json.loads((FIXTURES / "validate" / "unmapped_code_counts.json").read_text())
    for entry in bundle["entry"]:
        for coding in entry["resource"].get("code", {}).get("coding", []):
            coding["system"] = HYPERLINK + MARKUP
            coding["code"] = CLEAR_SCREEN + FAKE_LINE + BIDI
    folder = tmp_path / ("export" + CLEAR_SCREEN)
    folder.mkdir()
    (folder / "bundle.json").write_text(json.dumps(bundle))
    result = run("validate", str(folder), env={"FORCE_COLOR": "1"})
    assert "Traceback" not in result.stderr
    assert_defused(result.stdout)


# -- help ------------------------------------------------------------------------------------------------


COMMANDS = (["--help"], ["fhir2omop", "--help"], ["validate", "--help"], ["dq", "--help"], ["survival", "--help"],
            ["export", "--help"], ["samples", "generate", "--help"], ["vocab", "load", "--help"],
            ["mappings", "check", "--help"])


def _help(args: list[str]) -> str:
    from typer.testing import CliRunner

    from ctcl_map.cli import app

    result = CliRunner().invoke(app, args, env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: " ".join(args[:-1]) or "ctcl-map")
def test_help_fits_80_columns_without_one_word_lines(args):
    text = _help(args)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert len(lines) <= 90  # fhir2omop --help was 138 lines
    panel_lines = [line for line in lines if line.startswith("│")]
    options = [line for line in panel_lines if line[2] != " "]  # an option, argument or command row
    # Option help reads as sentences: at most three lines an option with its default (fhir2omop had
    # 6.5, a word a line).
    assert len(panel_lines) <= 3 * len(options), (len(panel_lines), len(options))


def test_fhir2omop_help_groups_options_and_shows_their_form():
    text = _help(["fhir2omop", "--help"])
    for panel in ("Input", "Database", "Behaviour", "Output"):
        assert f"╭─ {panel} " in text
    for form in ("--db                PATH|URL", "--mappings        DIR", "--b-rules", "2007|2022", "--log-file          FILE"):
        assert form in text
    assert "  ctcl-map fhir2omop demo/fhir" in text
    assert "      --db postgresql+psycopg://postgres@127.0.0.1:5432/test" in text  # whole, not cut


def test_the_start_here_examples_run_after_pip_install(tmp_path):
    """The top-level help's examples, exactly as printed, in an empty folder (no repository files)."""
    examples = [line.strip() for line in _help(["--help"]).splitlines() if line.startswith("  ctcl-map ")]
    assert examples[0].startswith("ctcl-map samples copy") and any("samples generate" in e for e in examples)
    assert any("fhir2omop" in e for e in examples)
    outputs = {}
    for example in examples:
        args = example.split()[1:]
        result = run(*args, cwd=tmp_path)
        assert result.returncode == (1 if args[0] == "dq" else 0), (example, result.stderr)  # dq: checks may fail
        assert "Traceback" not in result.stderr
        outputs[args[0]] = result.stdout
    survival = outputs["survival"].splitlines()
    assert "  ctcl_type=MF" in survival and "  ctcl_type=SS" in survival
    assert max(len(line) for line in survival) <= 80
