"""`ctcl-map study`: the standard CTCL survival study in one command, as one self-contained HTML report.

Sections: attrition; Table 1 (baseline characteristics by CTCL type); overall survival by CTCL type
and by stage group (cohort `ctcl`, from diagnosis) and by CLIPI group (cohort `advanced`, from the
first advanced stage: CLIPI is defined there); with --compare, the exposure comparison by every
design, unadjusted and adjusted by every method, with balance (Love plot) and PS overlap; warnings.
Everything shown is also written as JSON (study.json) and CSV, next to report.html.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ctcl_map.store.database import Database
from ctcl_map.survival.adjust import DEFAULT_COVARIATES, METHODS, adjusted_comparison, table_one
from ctcl_map.survival.analysis import run_survival
from ctcl_map.survival.baseline import add_baseline_covariates
from ctcl_map.survival.plot import plot
from ctcl_map.survival.report import describe_arm, render, result_dict
from ctcl_map.survival.spec import DAYS_PER_MONTH, SurvivalResult, SurvivalSpec

DESIGNS = ("new-user", "landmark", "time-varying", "naive")
OS_SECTIONS = (  # key, title, cohort, stratum
    ("os_by_type", "Overall survival by CTCL type (from diagnosis)", "ctcl", "ctcl_type"),
    ("os_by_stage", "Overall survival by stage group at diagnosis", "ctcl", "stage_group"),
    ("os_by_clipi", "Overall survival by CLIPI group (from the first advanced stage)", "advanced", "clipi_group"),
)


@dataclass
class StudyOptions:
    compare: str | None = None
    cohort: str = "advanced"  # target cohort of the exposure comparison
    covariates: tuple[str, ...] = DEFAULT_COVARIATES
    missing: str = "indicator"
    landmark_months: float = 6.0
    admin_end: date | None = None


@dataclass
class Study:
    options: StudyOptions
    os_results: dict[str, SurvivalResult] = field(default_factory=dict)
    table_one: list[dict] = field(default_factory=list)
    comparison: list[dict] = field(default_factory=list)  # one row per design x method
    designs: dict[str, SurvivalResult] = field(default_factory=dict)
    # design -> method -> adjusted dict (None: the design's own run was not adjusted)
    adjusted: dict[str, dict[str, dict | None]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def run_study(db: Database, options: StudyOptions) -> Study:
    study = Study(options)
    for key, _title, cohort, stratum in OS_SECTIONS:
        result = run_survival(db, SurvivalSpec(cohort=cohort, strata=(stratum,), admin_end=options.admin_end,
                                               time_unit="years"))
        study.os_results[key] = result
        study.warnings.extend(f"{key}: {w}" for w in result.warnings)
    persons = study.os_results["os_by_type"].persons
    if persons is not None and not persons.empty:
        persons = add_baseline_covariates(db, persons, 30)
        study.table_one = table_one(persons, ("age", "sex", "stage_group", "stage_iv", "ldh_raised", "lct",
                                              "prior_lines", "index_year"),
                                    (persons["ctcl_type"] == "SS").to_numpy(dtype=int))
    if options.compare:
        _compare(db, study)
    study.warnings = list(dict.fromkeys(study.warnings))
    return study


def _compare(db: Database, study: Study) -> None:
    o = study.options
    for design in DESIGNS:
        spec = SurvivalSpec(cohort=o.cohort, compare=o.compare, design=design, admin_end=o.admin_end,
                            landmark_months=o.landmark_months, adjust=o.covariates, missing=o.missing,
                            method="cox", time_unit="years")
        result = run_survival(db, spec)
        study.designs[design] = result
        study.warnings.extend(f"{design}: {w}" for w in result.warnings)
        study.comparison.append(_row(design, "unadjusted", result.cox))
        by_method: dict[str, dict | None] = {"cox": result.adjusted}
        if design != "time-varying":
            for method in METHODS[1:]:
                comparison = adjusted_comparison(result.persons, o.covariates, method, o.missing)
                by_method[method] = comparison
                study.warnings.extend(f"{design}, {method}: {w}" for w in comparison["warnings"])
        for method, adjusted in by_method.items():
            study.comparison.append(_row(design, method, adjusted and adjusted["estimate"], adjusted))
        study.adjusted[design] = by_method


def _row(design: str, method: str, estimate: dict | None, adjusted: dict | None = None) -> dict:
    balance = (adjusted or {}).get("balance") or {}
    return {"design": design, "method": method,
            "hazard_ratio": estimate and estimate["hazard_ratio"], "lower": estimate and estimate["lower"],
            "upper": estimate and estimate["upper"], "p_value": estimate and estimate["p_value"],
            "persons": estimate and estimate["persons"], "events": estimate and estimate["events"],
            "max_abs_smd_before": balance.get("max_abs_smd_before"),
            "max_abs_smd_after": balance.get("max_abs_smd_after"),
            "model": estimate and estimate["model"]}


# -- outputs -------------------------------------------------------------------------------------------
def study_dict(study: Study) -> dict[str, Any]:
    return {
        "generated_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {"compare": study.options.compare, "cohort": study.options.cohort,
                    "covariates": list(study.options.covariates), "missing": study.options.missing,
                    "landmark_months": study.options.landmark_months,
                    "admin_end": str(study.options.admin_end) if study.options.admin_end else None},
        "overall_survival": {key: result_dict(result) for key, result in study.os_results.items()},
        "table_one_by_ctcl_type": study.table_one,
        "comparison": study.comparison,
        "designs": {design: result_dict(result) for design, result in study.designs.items()},
        "adjusted": {design: {m: {k: v for k, v in a.items()} for m, a in methods.items() if a}
                     for design, methods in study.adjusted.items()},
        "warnings": study.warnings,
    }


def write_study(study: Study, out_dir: Path) -> list[Path]:
    """report.html (self-contained), study.json, CSVs and the figures (PNG + SVG) in out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    data = study_dict(study)
    (out_dir / "study.json").write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    written.append(out_dir / "study.json")
    figures: dict[str, Path] = {}
    for key, result in study.os_results.items():
        render(result, "csv", out_dir / f"{key}.csv")
        written.append(out_dir / f"{key}.csv")
        figures[key] = plot(result, out_dir / key)[0]
    _write_csv(out_dir / "table_one.csv", study.table_one)
    written.append(out_dir / "table_one.csv")
    if study.comparison:
        _write_csv(out_dir / "comparison.csv", study.comparison)
        written.append(out_dir / "comparison.csv")
        balance = _balance_rows(study)
        _write_csv(out_dir / "balance.csv", balance)
        written.append(out_dir / "balance.csv")
        figures["forest"] = _forest_plot(study, out_dir / "comparison_forest")
        figures["love"] = _love_plot(study, "new-user", out_dir / "balance_love")
        figures["overlap"] = _overlap_plot(study, out_dir / "ps_overlap")
        for design, result in study.designs.items():
            figures[f"km_{design}"] = plot(result, out_dir / f"km_{design}")[0]
    written.extend(p for path in figures.values() for p in (path, path.with_suffix(".svg")))
    (out_dir / "report.html").write_text(_html(study, data, figures), encoding="utf-8")
    written.append(out_dir / "report.html")
    return written


def _write_csv(path: Path, rows: list[dict]) -> None:
    import csv

    with path.open("w", newline="", encoding="utf-8") as handle:
        if not rows:
            return
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)


def _balance_rows(study: Study) -> list[dict]:
    rows = []
    for design, methods in study.adjusted.items():
        for method, adjusted in methods.items():
            if not adjusted:
                continue
            after = {r["term"]: r["smd"] for r in adjusted["balance"]["after"] or []}
            for r in adjusted["balance"]["before"]:
                rows.append({"design": design, "method": method, "term": r["term"], "label": r["label"],
                             "exposed_mean": r["exposed_mean"], "unexposed_mean": r["unexposed_mean"],
                             "smd_before": r["smd"], "smd_after": after.get(r["term"])})
    return rows


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, stem: Path) -> Path:
    plt = _figure()
    fig.savefig(stem.with_suffix(".png"), dpi=150, bbox_inches="tight")
    fig.savefig(stem.with_suffix(".svg"), bbox_inches="tight")
    plt.close(fig)
    return stem.with_suffix(".png")


def _forest_plot(study: Study, stem: Path) -> Path:
    plt = _figure()
    rows = [r for r in study.comparison]
    fig, ax = plt.subplots(figsize=(8.5, 0.34 * len(rows) + 1.2))
    labels = []
    for y, r in enumerate(reversed(rows)):
        labels.append(f"{r['design']} · {r['method']}")
        if r["hazard_ratio"] is None:
            ax.text(1.0, y, "not estimable", va="center", ha="center", fontsize=8, color="grey")
            continue
        colour = "#b03a2e" if r["method"] == "unadjusted" else "#1f5f8b"
        ax.plot([r["lower"], r["upper"]], [y, y], color=colour, linewidth=1.6)
        ax.plot(r["hazard_ratio"], y, "s", color=colour, markersize=5)
    ax.axvline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xscale("log")
    ticks = [t for t in (0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
             if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.set_xlabel(f"Hazard ratio of death, {study.options.compare} vs comparator (95 % CI, log scale)")
    ax.grid(axis="x", alpha=0.25)
    ax.set_title("Exposure comparison: unadjusted (red) and adjusted (blue)", fontsize=10)
    return _save(fig, stem)


def _love_plot(study: Study, design: str, stem: Path) -> Path:
    plt = _figure()
    methods = study.adjusted.get(design) or {}
    base = next((a for a in methods.values() if a), None)
    terms = [r for r in base["balance"]["before"]] if base else []
    fig, ax = plt.subplots(figsize=(7.5, 0.3 * len(terms) + 1.4))
    markers = {"ps-match": ("o", "#1f5f8b"), "ps-stratify": ("^", "#2e8b57"), "iptw": ("D", "#8e44ad")}
    for y, r in enumerate(reversed(terms)):
        if r["smd"] is not None:
            ax.plot(abs(r["smd"]), y, "x", color="#b03a2e", label="before" if y == 0 else None)
    for method, (marker, colour) in markers.items():
        adjusted = methods.get(method)
        after = {r["term"]: r["smd"] for r in (adjusted or {}).get("balance", {}).get("after") or []}
        for y, r in enumerate(reversed(terms)):
            if after.get(r["term"]) is not None:
                ax.plot(abs(after[r["term"]]), y, marker, color=colour, markersize=4, alpha=0.8,
                        label=f"after {method}" if y == 0 else None)
    ax.axvline(0.1, color="grey", linestyle="--", linewidth=0.8)
    ax.set_yticks(range(len(terms)), [r["label"] for r in reversed(terms)], fontsize=8)
    ax.set_xlabel("|standardised mean difference| (dashed: 0.1)")
    ax.set_title(f"Covariate balance, {design} design", fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="x", alpha=0.25)
    return _save(fig, stem)


def _overlap_plot(study: Study, stem: Path) -> Path:
    shown = [(d, ps_match["propensity"]) for d, m in study.adjusted.items()
             if (ps_match := m.get("ps-match")) and ps_match.get("propensity")]
    return overlap_plot(shown, study.options.compare or "exposed", stem)


def overlap_plot(shown: list[tuple[str, dict]], exposure: str, stem: Path) -> Path:
    """Preference-score histograms, exposed up and comparator down, one panel per (title, propensity)."""
    plt = _figure()
    fig, axes = plt.subplots(1, max(len(shown), 1), figsize=(4.2 * max(len(shown), 1), 3.2), squeeze=False)
    for ax, (design, ps) in zip(axes[0], shown):
        edges = np.array(ps["bin_edges"])
        width = np.diff(edges)
        exposed = np.array(ps["exposed"], dtype=float)
        unexposed = np.array(ps["unexposed"], dtype=float)
        ax.bar(edges[:-1], exposed / max(exposed.sum(), 1), width, align="edge", color="#1f5f8b", alpha=0.6,
               label=exposure)
        ax.bar(edges[:-1], -unexposed / max(unexposed.sum(), 1), width, align="edge", color="#b03a2e", alpha=0.6,
               label="comparator")
        ax.axvspan(0.3, 0.7, color="grey", alpha=0.08)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_title(f"{design}: {100 * ps['equipoise_share']:.0f} % in equipoise; c = {ps['c_statistic']:.2f}",
                     fontsize=9)
        ax.set_xlabel("preference score")
        ax.legend(fontsize=7, frameon=False)
    from matplotlib.ticker import FuncFormatter

    for ax in axes[0]:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{abs(value):.2f}"))
    axes[0][0].set_ylabel("share of arm (comparator below)")
    return _save(fig, stem)


# -- HTML --------------------------------------------------------------------------------------------
_CSS = """
body{font-family:Georgia,'Times New Roman',serif;max-width:1050px;margin:2em auto;color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.7em;margin-bottom:.1em} h2{border-bottom:2px solid #1f5f8b;padding-bottom:.15em;margin-top:2em;font-size:1.3em}
h3{font-size:1.05em;margin-bottom:.3em} .meta{color:#666;font-size:.9em}
table{border-collapse:collapse;font-family:Helvetica,Arial,sans-serif;font-size:.82em;margin:.6em 0 1.2em}
th,td{padding:.25em .6em;text-align:right;border-bottom:1px solid #ddd} th{background:#f2f5f8;border-bottom:2px solid #999}
td:first-child,th:first-child{text-align:left} tr.flag td{background:#fff3e0}
img{max-width:100%;display:block;margin:.5em 0} .warn{background:#fff8e1;border-left:4px solid #f0a020;padding:.4em .8em;font-size:.88em;margin:.3em 0}
.note{font-size:.88em;color:#444} .key{font-weight:bold;color:#1f5f8b}
"""


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _f(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[str]], flags: list[bool] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = ' class="flag"' if flags and flags[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _attrition(result: SurvivalResult) -> str:
    rows = [[html.escape(a.cohort), html.escape(a.step), str(a.persons_before), str(a.persons_after), str(a.dropped),
             html.escape(a.reason if a.dropped else "")] for a in result.attrition]
    return _table(["cohort / arm", "step", "before", "after", "dropped", "why"], rows)


def _km_table(result: SurvivalResult) -> str:
    rows = []
    versus = {r["group"]: r for r in (result.strata_cox or {}).get("rows", [])}
    for g in result.groups:
        cells = [html.escape(g.label), str(g.persons), str(g.events),
                 _months(g.median_days), f"{_months(g.median_lower_days)}–{_months(g.median_upper_days)}"]
        for at in g.at_times:
            cells.append("–" if at["survival"] is None else
                         f"{100 * at['survival']:.0f} % ({100 * at['lower']:.0f}–{100 * at['upper']:.0f})")
        hr = versus.get(g.label)
        if result.strata_cox:
            cells.append("reference" if g.label == result.strata_cox["reference"] else
                         (f"{_f(hr['hazard_ratio'])} ({_f(hr['lower'])}–{_f(hr['upper'])})" if hr else "–"))
        rows.append(cells)
    header = ["group", "persons", "deaths", "median OS (months)", "95 % CI"]
    header += [f"{y:g}-year OS (95 % CI)" for y in result.spec.survival_years]
    if result.strata_cox:
        header.append("HR (95 % CI)")
    return _table(header, rows)


def _months(days: float | None) -> str:
    return "NR" if days is None else f"{days / DAYS_PER_MONTH:.1f}"


def _smd_cell(value: float | None) -> str:
    return "–" if value is None else (f"<b>{value:.2f}</b>" if abs(value) > 0.1 else f"{value:.2f}")


def _describe(row: dict, arm: str) -> str:
    return describe_arm(row, arm, "–")


def _html(study: Study, data: dict, figures: dict[str, Path]) -> str:
    o = study.options
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>CTCL survival study</title>"
             f"<style>{_CSS}</style></head><body>",
             "<h1>Overall survival in cutaneous T-cell lymphoma</h1>",
             f"<p class='meta'>Generated {html.escape(data['generated_utc'])} by ctcl-map from an OMOP CDM v5.4. "
             f"Follow-up rules: OHDSI CohortSurvival (see the survival README). "
             + (f"Exposure compared: <span class='key'>{html.escape(o.compare)}</span> in the "
                f"<span class='key'>{html.escape(o.cohort)}</span> cohort; adjustment set: "
                f"{html.escape(', '.join(o.covariates))}; missing covariates: {html.escape(o.missing)}." if o.compare else "")
             + "</p>"]
    if study.comparison:
        parts.append(_key_findings(study))
    parts.append("<h2>1. Cohorts and attrition</h2>")
    for key, _title, _cohort, _stratum in OS_SECTIONS[::2]:
        parts.append(f"<h3>{html.escape(study.os_results[key].cohort_name)} cohort</h3>" + _attrition(study.os_results[key]))
    if study.designs.get("new-user"):
        parts.append("<h3>new-user design arms</h3>" + _attrition(study.designs["new-user"]))
    parts.append("<h2>2. Baseline characteristics (Table 1), by CTCL type</h2>")
    if study.table_one:
        rows = [[html.escape(r["label"]), _describe(r, "unexposed"), _describe(r, "exposed"), _smd_cell(r["smd"])]
                for r in study.table_one]
        n_mf, n_ss = study.table_one[0]["unexposed_n"], study.table_one[0]["exposed_n"]
        parts.append(_table(["characteristic at diagnosis", f"MF (n={n_mf})", f"SS (n={n_ss})", "SMD"], rows))
        parts.append("<p class='note'>Mean (SD) or %; % of those with a known value. SMD: standardised mean "
                     "difference SS vs MF.</p>")
    parts.append("<h2>3. Overall survival</h2>")
    for key, title, _cohort, _stratum in OS_SECTIONS:
        result = study.os_results[key]
        parts.append(f"<h3>{html.escape(title)}</h3>" + _img(figures[key]) + _km_table(result))
        if result.logrank:
            parts.append(f"<p class='note'>Log-rank p = {result.logrank['p_value']:.3g}. HR: Cox model, reference "
                         "= first group (as R coxph(Surv ~ group)). NR = not reached.</p>")
    if study.comparison:
        parts.append(_comparison_html(study, figures))
    parts.append("<h2>Warnings</h2>")
    parts.extend(f"<div class='warn'>{html.escape(w)}</div>" for w in study.warnings) if study.warnings else \
        parts.append("<p>None.</p>")
    parts.append("<p class='meta'>Data behind this report: study.json, *.csv and the figures (PNG and SVG) in the "
                 "same folder.</p></body></html>")
    return "\n".join(parts)


def _key_findings(study: Study) -> str:
    rows = {(r["design"], r["method"]): r for r in study.comparison}
    crude, adjusted = rows.get(("new-user", "unadjusted")), rows.get(("new-user", "cox"))

    def ci(r):
        return "not estimable" if not r or r["hazard_ratio"] is None else \
            f"HR {r['hazard_ratio']:.2f} (95 % CI {r['lower']:.2f}–{r['upper']:.2f})"

    return (f"<p><span class='key'>Key result</span> (new-user design, {html.escape(study.options.compare or '')} vs "
            f"another systemic line): unadjusted {ci(crude)}; adjusted (multivariable Cox) {ci(adjusted)}. "
            "All designs and methods are in section 4.</p>")


def _comparison_html(study: Study, figures: dict[str, Path]) -> str:
    parts = [f"<h2>4. {html.escape(study.options.compare or '')}: exposure comparison</h2>",
             "<p class='note'>new-user: line start with the drug vs another line (comparator censored at switch); "
             "landmark: exposed by the landmark, time from the landmark; time-varying: exposure as a time-varying "
             "covariate (regression adjustment only); naive: ever vs never, <b>immortal-time biased</b>, shown for "
             "contrast. Methods: cox = multivariable Cox (conditional HR); ps-match = 1:1 PS matching (caliper 0.2 "
             "SD of logit PS); ps-stratify = PS quintiles; iptw = stabilised ATE weights. PS methods estimate a "
             "marginal HR, which lies closer to 1 than the conditional one when covariates are strongly "
             "prognostic.</p>", _img(figures["forest"])]
    rows = [[r["design"], r["method"], "not estimable" if r["hazard_ratio"] is None else _f(r["hazard_ratio"]),
             "" if r["hazard_ratio"] is None else f"{_f(r['lower'])}–{_f(r['upper'])}",
             _f(r["p_value"], 3), str(r["persons"] or ""), str(r["events"] or ""),
             _smd_cell(r["max_abs_smd_after"]) if r["method"] not in ("unadjusted", "cox") else "–"]
            for r in study.comparison]
    flags = [r["max_abs_smd_after"] is not None and r["max_abs_smd_after"] > 0.1 and r["method"] not in ("cox",)
             for r in study.comparison]
    parts.append(_table(["design", "method", "HR", "95 % CI", "p", "persons", "deaths", "max |SMD| after"], rows, flags))
    parts.append("<h3>Balance: baseline characteristics by arm (new-user design)</h3>")
    methods = study.adjusted.get("new-user") or {}
    base = methods.get("cox")
    if base:
        after = {m: {r["term"]: r["smd"] for r in (methods[m] or {}).get("balance", {}).get("after") or []}
                 for m in METHODS[1:] if methods.get(m)}
        rows = [[html.escape(r["label"]), _describe(r, "exposed"), _describe(r, "unexposed"), _smd_cell(r["smd"])]
                + [_smd_cell(after[m].get(r["term"])) for m in after] for r in base["balance"]["before"]]
        first = base["balance"]["before"][0] if base["balance"]["before"] else {"exposed_n": 0, "unexposed_n": 0}
        parts.append(_table(["characteristic at index", f"{study.options.compare} (n={first['exposed_n']})",
                             f"comparator (n={first['unexposed_n']})", "SMD before"] + [f"SMD {m}" for m in after], rows))
        missing = ", ".join(f"{k}: {v}" for k, v in base["missing"].items() if v) or "none"
        parts.append(f"<p class='note'>Missing covariates ({html.escape(base['missing_handling'])}): "
                     f"{html.escape(missing)}. Bold: |SMD| &gt; 0.1.</p>")
    parts.append(_img(figures["love"]))
    parts.append("<h3>Propensity-score overlap (preference score, Walker 2013)</h3>" + _img(figures["overlap"]))
    parts.append("<h3>Kaplan–Meier curves by design</h3>")
    for design in study.designs:
        parts.append(_img(figures[f"km_{design}"]))
    return "\n".join(parts)


def render_text(study: Study) -> str:
    """A short terminal summary of the comparison table."""
    out = io.StringIO()
    for r in study.comparison:
        hr = "not estimable" if r["hazard_ratio"] is None else f"{r['hazard_ratio']:.2f} ({r['lower']:.2f}-{r['upper']:.2f})"
        out.write(f"{r['design']:<13} {r['method']:<11} HR {hr}\n")
    return out.getvalue()
