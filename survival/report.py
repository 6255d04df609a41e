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
        "strata_cox": result.strata_cox,
        "adjusted": result.adjusted,
    }


def csv_text(result: SurvivalResult) -> str:
    """One row per Kaplan-Meier group; survival at each requested year as extra columns."""
    years = list(result.spec.survival_years)
    columns = list(CSV_COLUMNS)
    for y in years:
        columns += [f"survival_{y:g}y", f"survival_{y:g}y_lower", f"survival_{y:g}y_upper", f"at_risk_{y:g}y"]
    columns += ["logrank_p", "hazard_ratio", "hr_lower", "hr_upper", "hr_p",
                "adjusted_method", "adjusted_hr", "adjusted_hr_lower", "adjusted_hr_upper", "adjusted_hr_p",
                "strata_hr", "strata_hr_lower", "strata_hr_upper", "strata_hr_p"]
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
        adjusted = data["adjusted"]
        if adjusted and adjusted.get("estimate"):
            est = adjusted["estimate"]
            row.update({"adjusted_method": adjusted["method"], "adjusted_hr": est["hazard_ratio"],
                        "adjusted_hr_lower": est["lower"], "adjusted_hr_upper": est["upper"],
                        "adjusted_hr_p": est["p_value"]})
        versus = {r["group"]: r for r in (data["strata_cox"] or {}).get("rows", [])}.get(g["group"])
        if versus:  # HR of this stratum vs the reference (first) stratum
            row.update({"strata_hr": versus["hazard_ratio"], "strata_hr_lower": versus["lower"],
                        "strata_hr_upper": versus["upper"], "strata_hr_p": versus["p_value"]})
        elif data["strata_cox"] and g["group"] == data["strata_cox"]["reference"]:
            row["strata_hr"] = 1.0
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return out.getvalue()


def _fmt(value: float | None, digits: int = 1) -> str:
    return "NR" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def print_table(result: SurvivalResult, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    unit = result.spec.time_unit
    console.print(f"[bold]Overall survival[/bold]: cohort {result.cohort_name}, design {result.design}")
    attrition = Table(title="Attrition")
    for column in ("cohort / arm", "step", "before", "after", "dropped", "why dropped"):
        attrition.add_column(column)
    for a in result.attrition:
        attrition.add_row(a.cohort, a.step, str(a.persons_before), str(a.persons_after), str(a.dropped),
                          a.reason if a.dropped else "")
    console.print(attrition)
    table = Table(title=f"Kaplan-Meier (median in {unit}, 95 % CI; survival in %)")
    for column in ("group", "persons", "deaths", "censored", "median", "95 % CI"):
        table.add_column(column)
    for y in result.spec.survival_years:
        table.add_column(f"{y:g} y (95 % CI) [at risk]")
    for g in result.groups:
        cells = [g.label, str(g.persons), str(g.events), str(g.censored), _fmt(_in_unit(g.median_days, unit)),
                 f"{_fmt(_in_unit(g.median_lower_days, unit))}-{_fmt(_in_unit(g.median_upper_days, unit))}"]
        for at in g.at_times:
            cells.append(f"{_pct(at['survival'])} ({_pct(at['lower'])}-{_pct(at['upper'])}) [{at['at_risk']}]")
        table.add_row(*cells)
    console.print(table)
    if result.logrank:
        lr = result.logrank
        console.print(f"Log-rank: chi2 = {lr['statistic']:.3f}, df = {lr['df']}, p = {lr['p_value']:.4g}")
    if result.cox:
        c = result.cox
        console.print(f"Hazard ratio ({c['covariate']}): {c['hazard_ratio']:.3f} "
                      f"(95 % CI {c['lower']:.3f}-{c['upper']:.3f}), p = {c['p_value']:.4g}; {c['model']}")
    if result.strata_cox:
        sc = result.strata_cox
        for r in sc["rows"]:
            console.print(f"Hazard ratio {r['group']} vs {sc['reference']}: {_fmt(r['hazard_ratio'], 3)} "
                          f"(95 % CI {_fmt(r['lower'], 3)}-{_fmt(r['upper'], 3)}), p = {_fmt(r['p_value'], 4)}")
    if result.adjusted:
        _print_adjusted(result.adjusted, console)
    for warning in result.warnings:
        console.print(f"[bold yellow]WARNING[/bold yellow]: {warning}")


def _print_adjusted(adjusted: dict, console) -> None:
    from rich.table import Table

    est = adjusted.get("estimate")
    missing = ", ".join(f"{k} {v}" for k, v in adjusted["missing"].items() if v) or "none"
    console.print(f"[bold]Adjusted[/bold] ({adjusted['method']}; covariates: {', '.join(adjusted['covariates'])}; "
                  f"missing covariates: {adjusted['missing_handling']}, rows missing: {missing})")
    if est:
        console.print(f"Adjusted hazard ratio: {est['hazard_ratio']:.3f} (95 % CI {est['lower']:.3f}-"
                      f"{est['upper']:.3f}), p = {est['p_value']:.4g}; {est['model']}")
    balance = adjusted["balance"]
    table = Table(title="Baseline characteristics by arm (SMD = standardised mean difference)")
    for column in ("characteristic", "exposed", "unexposed", "SMD before", "SMD after"):
        table.add_column(column)
    after = {r["term"]: r for r in balance["after"] or []}
    for r in balance["before"]:
        table.add_row(r["label"], describe_arm(r, "exposed"), describe_arm(r, "unexposed"), _fmt(r["smd"], 3),
                      _fmt(after[r["term"]]["smd"], 3) if r["term"] in after else "-")
    console.print(table)
    ps = adjusted.get("propensity")
    if ps:
        console.print(f"Propensity score: c-statistic {_fmt(ps['c_statistic'], 3)}; "
                      f"{100 * ps['equipoise_share']:.0f} % in empirical equipoise (preference score 0.3-0.7)")


def describe_arm(row: dict, arm: str, dash: str = "-") -> str:
    """One Table 1 cell: mean (SD) for numbers, % for proportions."""
    mean = row[f"{arm}_mean"]
    if mean is None:
        return dash
    if row["statistic"] == "mean":
        return f"{mean:.1f} ({row[f'{arm}_sd']:.1f})"
    return f"{100 * mean:.1f} %"


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
