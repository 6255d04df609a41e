"""A `ctcl-map dq` report in DataQualityDashboard's results JSON format, for DQD's Shiny viewer.

The layout follows DQD 2.x (R/executeDqChecks.R, R/recordResult.R, R/evaluateThresholds.R,
R/calculateNotApplicableStatus.R, R/summarizeResults.R): a top-level object with startTimestamp,
endTimestamp, executionTime, CheckResults (one object per check instance, camelCase columns,
checkId, pctViolatedRows as a fraction 0-1, thresholdValue in percent, and the four 0/1 flags
failed / passed / isError / notApplicable), Metadata (the CDM_SOURCE row(s), upper-case column
names as DatabaseConnector returns them, plus DQD_VERSION) and Overview (the summary counts).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from ctcl_map.quality.report import CheckResult, DqReport

# Written into Metadata.DQD_VERSION: the check definitions and semantics we follow, and who ran them.
DQD_SEMANTICS = "2.8"


def check_id(result: CheckResult) -> str:
    """DQD's .getCheckId: level_check_table[_field][_concept][_unit], spaces removed, lower case."""
    parts = [result.level, result.check_name, result.table, result.field, result.concept_id, result.unit_concept_id]
    return "_".join(p.replace(" ", "") for p in parts if p and p.replace(" ", "")).lower()


def check_result_row(result: CheckResult) -> dict[str, Any]:
    """One CheckResults entry, with DQD's column names and value conventions."""
    is_error = int(result.status == "error")
    not_applicable = int(result.status == "not_applicable")
    failed = int(result.status == "fail")
    return {
        "numViolatedRows": result.num_violated,
        "pctViolatedRows": None if result.pct_violated is None else result.pct_violated / 100.0,
        "numDenominatorRows": result.num_denominator,
        "executionTime": f"{result.seconds:.6f} secs",
        "queryText": result.sql or "",
        "checkName": result.check_name,
        "checkLevel": result.level,
        "checkDescription": result.description,
        "cdmTableName": result.table.upper(),
        "cdmFieldName": result.field.upper() if result.field else None,
        "conceptId": result.concept_id,
        "unitConceptId": result.unit_concept_id,
        "sqlFile": result.sql_file,
        "category": result.category,
        "subcategory": result.subcategory,
        "context": result.context,
        "warning": None,
        "error": result.error,
        "checkId": check_id(result),
        "failed": failed,
        "passed": int(not (failed or is_error or not_applicable)),
        "isError": is_error,
        "notApplicable": not_applicable,
        "notApplicableReason": result.not_applicable_reason,
        "thresholdValue": result.threshold,
        "notesValue": None,
    }


def overview(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """DQD's .summarizeResults over the CheckResults rows."""
    total = len(rows)
    threshold_failed = sum(1 for r in rows if r["failed"] == 1 and r["error"] is None)
    error_failed = sum(1 for r in rows if r["error"] is not None)
    overall_failed = sum(1 for r in rows if r["failed"] == 1)
    passed = total - overall_failed
    out: dict[str, Any] = {
        "countTotal": total,
        "countPassed": passed,
        "countErrorFailed": error_failed,
        "countThresholdFailed": threshold_failed,
        "countOverallFailed": overall_failed,
        "percentPassed": round(passed / (passed + overall_failed) * 100, 2) if total else 0,
        "percentFailed": round(overall_failed / (passed + overall_failed) * 100, 2) if total else 0,
    }
    for kind, flag in (("Total", None), ("Failed", "failed"), ("Passed", "passed")):
        for category in ("Plausibility", "Conformance", "Completeness"):
            out[f"count{kind}{category}"] = sum(
                1 for r in rows if r["category"] == category and (flag is None or r[flag] == 1)
            )
    return out


def dqd_results(
    report: DqReport, cdm_source: list[dict[str, Any]], started: datetime, ended: datetime, version: str
) -> dict[str, Any]:
    """The whole results object DQD writes with .writeResultsToJson."""
    rows = [check_result_row(r) for r in report.results]
    metadata = [
        {key.upper(): (value.isoformat() if hasattr(value, "isoformat") else value) for key, value in row.items()}
        | {"DQD_VERSION": f"ctcl-map {version} (DataQualityDashboard {DQD_SEMANTICS} checks)"}
        for row in cdm_source
    ]
    return {
        "startTimestamp": started.strftime("%Y-%m-%d %H:%M:%S"),
        "endTimestamp": ended.strftime("%Y-%m-%d %H:%M:%S"),
        "executionTime": f"{report.seconds:.0f} secs",
        "CheckResults": rows,
        "Metadata": metadata,
        "Overview": overview(rows),
    }


def dqd_json(results: dict[str, Any]) -> bytes:
    return orjson.dumps(results, option=orjson.OPT_INDENT_2)
