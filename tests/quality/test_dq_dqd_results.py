"""`ctcl-map dq --dqd-json`: DataQualityDashboard's results format, which DQD's viewer reads.

The expected layout is DQD's own (R/executeDqChecks.R, R/recordResult.R, R/evaluateThresholds.R,
R/summarizeResults.R); the column list below is the default of DQD's writeJsonResultsToCsv
(R/writeJsonResultsTo.R), i.e. every column a DQD results file carries per check.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date

from ctcl_map.quality import run_dq
from ctcl_map.quality.dqd_results import check_id, dqd_results
from ctcl_map.store.database import Database, connect

TODAY = date(2025, 1, 1)  # DQD's GETDATE() in these tests (tests/quality/conftest.py)

DQD_CHECK_COLUMNS = [
    "checkId", "failed", "passed", "isError", "notApplicable", "checkName", "checkDescription",
    "thresholdValue", "notesValue", "checkLevel", "category", "subcategory", "context", "cdmTableName",
    "cdmFieldName", "conceptId", "unitConceptId", "numViolatedRows", "pctViolatedRows", "numDenominatorRows",
    "executionTime", "notApplicableReason", "error", "queryText",
]
OVERVIEW_KEYS = [
    "countTotal", "countPassed", "countErrorFailed", "countThresholdFailed", "countOverallFailed",
    "percentPassed", "percentFailed", "countTotalPlausibility", "countTotalConformance", "countTotalCompleteness",
    "countFailedPlausibility", "countFailedConformance", "countFailedCompleteness", "countPassedPlausibility",
    "countPassedConformance", "countPassedCompleteness",
]


def _results(insert, db: Database) -> dict:
    from datetime import datetime

    if not db.query("SELECT COUNT(*) FROM cdm_source")[0][0]:
        insert(db, "cdm_source", [{"cdm_source_name": "sound test CDM", "cdm_source_abbreviation": "sound",
                                   "cdm_holder": "tests", "source_release_date": TODAY, "cdm_release_date": TODAY,
                                   "cdm_version": "v5.4", "cdm_version_concept_id": 0, "vocabulary_version": "t"}])
    report = run_dq(db, today=TODAY)
    source = db.query_df("SELECT * FROM cdm_source").to_dict("records")
    return json.loads(json.dumps(dqd_results(report, source, datetime(2025, 1, 1, 12), datetime(2025, 1, 1, 12, 1), "t"),
                                 default=str)), report


def test_results_have_dqd_layout_flags_and_fractions(sound_db: Database, insert) -> None:
    insert(sound_db, "condition_occurrence", [{
        "condition_occurrence_id": 50, "person_id": 1, "condition_concept_id": 0,
        "condition_start_date": TODAY, "condition_type_concept_id": 32817, "condition_source_value": "X"}])
    data, report = _results(insert, sound_db)
    assert set(data) == {"startTimestamp", "endTimestamp", "executionTime", "CheckResults", "Metadata", "Overview"}
    assert list(data["Overview"]) == OVERVIEW_KEYS
    rows = data["CheckResults"]
    assert len(rows) == len(report.results)
    for row in rows:
        assert set(DQD_CHECK_COLUMNS) <= set(row)
        # exactly one of the four outcomes, as DQD's viewer expects
        assert row["failed"] + row["passed"] + row["isError"] + row["notApplicable"] == 1
        if row["numDenominatorRows"]:
            assert abs(row["pctViolatedRows"] - row["numViolatedRows"] / row["numDenominatorRows"]) < 1e-12
    ids = [row["checkId"] for row in rows]
    assert len(ids) == len(set(ids))
    by_id = {row["checkId"]: row for row in rows}
    # DQD's .getCheckId: level_check_table_field[_concept[_unit]], lower case
    required = by_id["field_isrequired_person_person_id"]
    assert (required["cdmTableName"], required["cdmFieldName"], required["passed"]) == ("PERSON", "PERSON_ID", 1)
    completeness = by_id["field_standardconceptrecordcompleteness_condition_occurrence_condition_concept_id"]
    assert completeness["thresholdValue"] == 5 and completeness["numViolatedRows"] == 1
    assert completeness["pctViolatedRows"] == 1 / completeness["numDenominatorRows"]  # a fraction, not percent
    counts = report.counts()
    assert data["Overview"]["countTotal"] == len(report.results)
    assert data["Overview"]["countOverallFailed"] == counts["fail"]
    assert data["Overview"]["countPassed"] == len(report.results) - counts["fail"]
    assert data["Metadata"][0]["CDM_SOURCE_NAME"] and "DQD_VERSION" in data["Metadata"][0]


def test_check_id_of_a_concept_check_with_unit() -> None:
    from ctcl_map.quality.report import CheckResult

    result = CheckResult("plausibleUnitConceptIds", "CONCEPT", "measurement", "measurement_concept_id", "3013721",
                         None, "pass", 0, 1, 0.0, None, "", "", "", "", "")
    assert check_id(result) == "concept_plausibleunitconceptids_measurement_measurement_concept_id_3013721"


def test_cli_writes_the_dqd_json(tmp_path, build_sound_cdm) -> None:
    path = tmp_path / "cdm.duckdb"
    db = build_sound_cdm(connect(str(path)))
    db.close()
    out = tmp_path / "results.json"
    done = subprocess.run([sys.executable, "-m", "ctcl_map.cli", "dq", "--db", str(path), "--dqd-json", str(out)],
                          capture_output=True, text=True)
    assert done.returncode in (0, 1), done.stderr
    data = json.loads(out.read_text())
    assert len(data["CheckResults"]) == data["Overview"]["countTotal"] > 2000
    assert f"DQD results written: {out}" in done.stderr
