"""DQD machinery: check selection from the CSVs, thresholds, not-applicable rules, errors, report output."""

from __future__ import annotations

import io
import json
from datetime import date

import pytest
from rich.console import Console

from ctcl_map.errors import CheckSetupError
from ctcl_map.quality.definitions import check_instances, check_names
from ctcl_map.quality.dq import CATALOG_CHECKS, CHECK_SQL, _exceeds_threshold
from ctcl_map.quality.report import CheckResult
from ctcl_map.quality.sqlparts import plausible_bound
from ctcl_map.store.database import Database

EHR = 32817  # Type Concept


def test_every_dqd_check_description_is_implemented() -> None:
    assert set(check_names()) == set(CHECK_SQL) | set(CATALOG_CHECKS)


def test_evaluation_filters_select_the_rows_dqd_selects() -> None:
    by_name = {}
    for instance in check_instances():
        by_name.setdefault(instance.name, []).append(instance)
    # Counted by hand from the shipped CSVs (isForeignKey=='Yes' & fkDomain!='' etc.).
    assert len(by_name["cdmTable"]) == 39
    assert len(by_name["fkDomain"]) == 43
    assert len(by_name["fkClass"]) == 3
    assert len(by_name["plausibleUnitConceptIds"]) == 181
    assert len(by_name["measureConditionEraCompleteness"]) == 1
    assert {i.table for i in by_name["fkClass"]} == {"drug_era", "dose_era", "drug_strength"}
    # DQD's cdmDatatype filter is case-sensitive (cdmDatatype=='integer'): the 4 'Integer' rows are skipped.
    assert len(by_name["cdmDatatype"]) == 210


def test_unknown_check_or_table_names_are_rejected_with_the_known_names() -> None:
    with pytest.raises(ValueError, match="unknown DQD check name.*isRequried"):
        check_instances(["isRequried"])
    with pytest.raises(ValueError, match="unknown CDM table.*persn"):
        check_instances(tables=["persn"])


def test_plausible_bounds_translate_dqd_sql_server_expressions() -> None:
    today = date(2025, 1, 1)
    assert plausible_bound("'19500101'", today) == date(1950, 1, 1)
    assert plausible_bound("DATEADD(dd,1,GETDATE())", today) == date(2025, 1, 2)
    assert plausible_bound("YEAR(GETDATE())+1", today) == 2026.0
    assert plausible_bound("0.0000001", today) == 1e-7
    with pytest.raises(CheckSetupError):
        plausible_bound("EOMONTH(GETDATE())", today)


def _result(violated: int, denominator: int, threshold: float | None) -> CheckResult:
    pct = 100.0 * violated / denominator
    return CheckResult("x", "FIELD", "t", "f", None, None, "pass", violated, denominator, pct, threshold,
                       "", "", "", "", "")


def test_threshold_is_exceeded_only_above_it_and_zero_or_missing_means_any_violation() -> None:
    assert _exceeds_threshold(_result(1, 20, 5.0)) is False  # 5% is not above 5%
    assert _exceeds_threshold(_result(2, 20, 5.0)) is True
    assert _exceeds_threshold(_result(1, 1000, 0.0)) is True
    assert _exceeds_threshold(_result(1, 1000, None)) is True
    assert _exceeds_threshold(_result(0, 1000, None)) is False


def test_empty_table_and_unpopulated_field_are_not_applicable(sound_db: Database, result, run) -> None:
    report = run(sound_db, ["isRequired", "measurePersonCompleteness", "measureValueCompleteness", "isForeignKey"],
                 ["note", "condition_occurrence"])
    assert result(report, "isRequired", "note", "note_id").not_applicable_reason == "Table NOTE is empty."
    # DQD 2.8: measurePersonCompleteness is not applicable only for a missing table; an empty NOTE
    # (threshold 100 %) is judged and passes, every person lacking a note.
    persons = result(report, "measurePersonCompleteness", "note")
    assert (persons.status, persons.not_applicable_reason) == ("pass", None)
    assert persons.num_violated == persons.num_denominator > 0
    assert result(report, "measureValueCompleteness", "note", "note_id").status == "not_applicable"
    provider = result(report, "isForeignKey", "condition_occurrence", "provider_id")
    assert (provider.status, provider.not_applicable_reason) == (
        "not_applicable", "Field CONDITION_OCCURRENCE.PROVIDER_ID is not populated.")
    # measureValueCompleteness itself still runs on an all-NULL field (that is what it measures).
    completeness = result(report, "measureValueCompleteness", "condition_occurrence", "provider_id")
    assert (completeness.status, completeness.num_violated, completeness.num_denominator) == ("pass", 4, 4)


def test_a_check_whose_helper_table_is_missing_is_an_error_not_a_crash(sound_db: Database, result, run) -> None:
    sound_db.execute("DROP TABLE death")
    report = run(sound_db, ["plausibleDuringLife"], ["condition_occurrence"])
    check = result(report, "plausibleDuringLife", "condition_occurrence", "condition_start_date")
    assert (check.status, check.error) == ("error", "table death (read by this check) does not exist")
    assert report.exit_code == 1 and report.errors == [check]


def test_report_json_and_table_show_failures_with_filled_descriptions(sound_db: Database, insert, run) -> None:
    insert(sound_db, "condition_occurrence", [
        {"condition_occurrence_id": 5, "person_id": 99, "condition_concept_id": 0,
         "condition_start_date": date(2020, 3, 1), "condition_type_concept_id": EHR}
    ])
    report = run(sound_db, ["isForeignKey", "isRequired"], ["condition_occurrence"])
    assert [(r.check_name, r.field) for r in report.failed] == [("isForeignKey", "person_id")]
    payload = json.loads(report.to_json())
    assert payload["counts"]["fail"] == 1
    failed = [r for r in payload["results"] if r["status"] == "fail"]
    assert failed[0]["description"] == (
        "The number and percent of records that have a value in the PERSON_ID field in the "
        "CONDITION_OCCURRENCE table that does not exist in the PERSON table."
    )
    assert (failed[0]["num_violated"], failed[0]["num_denominator"], failed[0]["pct_violated"]) == (1, 5, 20.0)
    assert "sql" not in failed[0] and "SELECT" in json.loads(report.to_json(include_sql=True))["results"][0]["sql"]
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(report.render_table())
    text = console.export_text()
    assert "1 failed" in text and "CONDITION_OCCURRENCE.PERSON_ID" in text and "isRequired" not in text
