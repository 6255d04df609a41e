"""SurvivalResult -> terminal table (rich), JSON, CSV. Column meanings: survival/README.md."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ctcl_map.survival.spec import DAYS_PER_MONTH, DAYS_PER_YEAR, SurvivalResult

CSV_COLUMNS = [
    "group", "persons", "events", "censored", "median_days", "median_lower_days", "median_upper_days",
    "median_months", "median_lower_months", "median_upper_months",
]


def _in_unit(days: float | None, unit: str) -> float | None:
    if days is None:
        return None
    return {"days": days, "months": days / DAYS_PER_MONTH, "years": days / DAYS_PER_YEAR}[unit]


def result_dict(result: SurvivalResult) -> dict[str, Any]:
    """Everything a machine needs, JSON-ready (curves included as arrays)."""
    groups = []
    for g in result.groups:
        curve = g.curve
        groups.append({
            "group": g.label,
            "persons": g.persons,
            "events": g.events,
            "censored": g.censored,
            "median_days": g.median_days,
            "median_lower_days": g.median_lower_days,
            "median_upper_days": g.median_upper_days,
            "median_months": _in_unit(g.median_days, "months"),
            "median_lower_months": _in_unit(g.median_lower_days, "months"),
            "median_upper_months": _in_unit(g.median_upper_days, "months"),
            "survival_at": g.at_times,
            "curve": None if curve is None else {
                "time_days": curve.time.tolist(),
                "survival": curve.survival.tolist(),
                "lower": curve.lower.tolist(),
                "upper": curve.upper.tolist(),
                "at_risk": curve.at_risk.tolist(),
                "events": curve.events.tolist(),
                "censored": curve.censored.tolist(),
            },
        })
    return {
        "cohort": result.cohort_name,
        "design": result.design,
        "spec": result.spec.as_dict(),
        "attrition": [
            {"cohort": a.cohort, "step": a.step, "persons_before": a.persons_before,
             "persons_after": a.persons_after, "dropped": a.dropped, "reason": a.reason}
            for a in result.attrition
        ],
        "groups": groups,
        "logrank": result.logrank,
        "cox": result.cox,
        "warnings": list(result.warnings),
        "cohorts_written": list(result.written),
    }


def csv_text(result: SurvivalResult) -> str:
    """One row per Kaplan-Meier group; survival at each requested year as extra columns."""
    years = list(result.spec.survival_years)
    columns = list(CSV_COLUMNS)
    for y in years:
        columns += [f"survival_{y:g}y", f"survival_{y:g}y_lower", f"survival_{y:g}y_upper", f"at_risk_{y:g}y"]
    columns += ["logrank_p", "hazard_ratio", "hr_lower", "hr_upper", "hr_p"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    data = result_dict(result)
    for g in data["groups"]:
        row = {c: g.get(c) for c in CSV_COLUMNS}
        for y, at in zip(years, g["survival_at"]):
            row.update({f"survival_{y:g}y": at["survival"], f"survival_{y:g}y_lower": at["lower"],
                        f"survival_{y:g}y_upper": at["upper"], f"at_risk_{y:g}y": at["at_risk"]})
        row["logrank_p"] = data["logrank"]["p_value"] if data["logrank"] else None
        if data["cox"]:
            row.update({"hazard_ratio": data["cox"]["hazard_ratio"], "hr_lower": data["cox"]["lower"],
                        "hr_upper": data["cox"]["upper"], "hr_p": data["cox"]["p_value"]})
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return out.getvalue()


def _fmt(value: float | None, digits: int = 1) -> str:
    return "NR" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def print_table(result: SurvivalResult, console=None) -> None:
    """Attrition, then one block per Kaplan-Meier group (its full label on its own line; counts,
    median and survival at each requested year under it), log-rank, hazard ratio and warnings.
    Legible at 80 columns and when piped; group labels are never cut."""
    from rich.console import Group

    from ctcl_map.terminal import console as make_console
    from ctcl_map.terminal import items_line, prose, show, whole_line

    out = console or make_console()
    unit = result.spec.time_unit
    blocks: list = [prose(f"Overall survival: cohort {result.cohort_name}, design {result.design}", indent=0,
                          style="bold"), whole_line(""), whole_line(("Attrition", "bold"))]
    arm = None
    for a in result.attrition:
        if a.cohort != arm:
            arm = a.cohort
            blocks.append(whole_line((a.cohort, "bold"), indent=2))
        blocks.append(items_line(f"{a.persons_before:>6,} -> {a.persons_after:<6,}", a.step, indent=4, continuation=16))
        if a.dropped:
            blocks.append(prose(f"{a.dropped:,} dropped: {a.reason}" if a.reason else f"{a.dropped:,} dropped", indent=20))
    blocks += [whole_line(""), whole_line((f"Kaplan-Meier (median in {unit}, 95 % CI; survival in %)", "bold"))]
    for g in result.groups:
        blocks.append(whole_line((g.label, "bold"), indent=2))
        blocks.append(whole_line(f"{g.persons} persons, {g.events} deaths, {g.censored} censored; median "
                                 f"{_fmt(_in_unit(g.median_days, unit))} (95 % CI "
                                 f"{_fmt(_in_unit(g.median_lower_days, unit))}-{_fmt(_in_unit(g.median_upper_days, unit))})",
                                 indent=6))
        for y, at in zip(result.spec.survival_years, g.at_times):
            blocks.append(whole_line(f"{y:g} y: {_pct(at['survival'])} % (95 % CI {_pct(at['lower'])}-{_pct(at['upper'])}), "
                                     f"{at['at_risk']} at risk", indent=6))
    blocks.append(whole_line(""))
    if result.logrank:
        lr = result.logrank
        blocks.append(prose(f"Log-rank: chi2 = {lr['statistic']:.3f}, df = {lr['df']}, p = {lr['p_value']:.4g}", indent=0))
    if result.cox:
        c = result.cox
        blocks.append(prose(f"Hazard ratio ({c['covariate']}): {c['hazard_ratio']:.3f} "
                            f"(95 % CI {c['lower']:.3f}-{c['upper']:.3f}), p = {c['p_value']:.4g}; {c['model']}", indent=0))
    blocks += [prose(f"WARNING: {warning}", indent=0, style="bold yellow") for warning in result.warnings]
    show(Group(*blocks), out)


def render(result: SurvivalResult, fmt: str = "table", out: Path | None = None) -> str:
    """Render as 'table' | 'json' | 'csv'; written to `out` when given, else returned (table: printed)."""
    if fmt == "json":
        text = json.dumps(result_dict(result), indent=2, default=str) + "\n"
    elif fmt == "csv":
        text = csv_text(result)
    elif fmt == "table":
        if out is None:
            print_table(result)
            return ""
        from rich.console import Console

        buffer = io.StringIO()
        print_table(result, Console(file=buffer, width=160, color_system=None))
        text = buffer.getvalue()
    else:
        raise ValueError(f"unknown output format {fmt!r}: table, json or csv")
    if out is not None:
        Path(out).write_text(text, encoding="utf-8")
    return text
