"""Kaplan-Meier figure: step curves with 95 % bands, censoring ticks and a number-at-risk table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ctcl_map.survival.spec import DAYS_PER_MONTH, DAYS_PER_YEAR, SurvivalResult

_UNIT_DAYS = {"days": 1.0, "months": DAYS_PER_MONTH, "years": DAYS_PER_YEAR}


def _ticks(max_days: float, unit: str) -> np.ndarray:
    span = max_days / _UNIT_DAYS[unit]
    step = {"days": 365.0, "months": 12.0, "years": 1.0}[unit]
    while span / step > 10:
        step *= 2
    while span / step < 3 and step > 1:
        step /= 2
    return np.arange(0, span + step * 0.001, step)


def plot(result: SurvivalResult, path_stem: Path) -> list[Path]:
    """Write <path_stem>.png and <path_stem>.svg; returns the two paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unit = result.spec.time_unit
    per_unit = _UNIT_DAYS[unit]
    groups = [g for g in result.groups if g.curve is not None]
    max_days = max((float(g.curve.time[-1]) for g in groups), default=1.0) or 1.0
    ticks = _ticks(max_days, unit)
    rows = max(len(groups), 1)
    fig_height = 4.6 + 0.28 * rows
    fig = plt.figure(figsize=(9.5, fig_height))
    table_inches = 0.35 + 0.26 * rows  # number-at-risk block under the x axis label
    bottom = (0.55 + table_inches) / fig_height
    ax = fig.add_axes((0.22, bottom, 0.74, 0.9 - bottom))
    risk_ax = fig.add_axes((0.22, 0.2 / fig_height, 0.74, (table_inches - 0.1) / fig_height), sharex=ax)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, g in enumerate(groups):
        colour = colours[i % len(colours)]
        t = g.curve.time / per_unit
        ax.step(t, g.curve.survival, where="post", color=colour, linewidth=1.8,
                label=f"{g.label} (n={g.persons}, deaths={g.events})")
        ax.fill_between(t, g.curve.lower, g.curve.upper, step="post", color=colour, alpha=0.15, linewidth=0)
        censored = g.curve.censored > 0
        ax.plot(t[censored], g.curve.survival[censored], "|", color=colour, markersize=7)
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, max(float(ticks[-1]) if len(ticks) else 0.0, max_days / per_unit, 1.0))
    if not groups:
        ax.text(0.5, 0.5, "no persons left to analyse (see the attrition table)", transform=ax.transAxes,
                ha="center", va="center")
    ax.set_xticks(ticks)
    ax.set_ylabel("Overall survival")
    ax.axhline(0.5, color="grey", linewidth=0.6, linestyle=":")
    ax.grid(alpha=0.25)
    title = f"Kaplan-Meier overall survival: {result.cohort_name}"
    if result.design != "none":
        title += f" ({result.design} design)"
    if result.logrank or result.cox:
        parts = []
        if result.logrank:
            parts.append(f"log-rank p = {result.logrank['p_value']:.3g}")
        if result.cox:
            c = result.cox
            parts.append(f"HR {c['hazard_ratio']:.2f} (95 % CI {c['lower']:.2f}-{c['upper']:.2f})")
        title += "\n" + "; ".join(parts)
    ax.set_title(title, fontsize=10)
    if groups:
        ax.legend(loc="best", fontsize=8, frameon=False)
    # number at risk under the time axis: one row per curve, one column per x tick
    ax.set_xlabel(f"Time since index ({unit})")
    risk_ax.set_ylim(rows + 0.2, -0.9)
    risk_ax.axis("off")
    risk_ax.text(-0.05, -0.6, "Number at risk", transform=risk_ax.get_yaxis_transform(), ha="right",
                 fontsize=8.5, weight="bold")
    for i, g in enumerate(groups):
        colour = colours[i % len(colours)]
        label = g.label if len(g.label) <= 26 else g.label[:25] + "…"
        risk_ax.text(-0.05, i + 0.4, label, transform=risk_ax.get_yaxis_transform(), ha="right",
                     fontsize=8, color=colour)
        for tick in ticks:
            risk_ax.text(tick, i + 0.4, str(g.curve.number_at_risk(tick * per_unit)), ha="center", fontsize=8)
    path_stem = Path(path_stem)
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in (".png", ".svg"):
        target = path_stem.with_suffix(suffix)
        fig.savefig(target, dpi=150 if suffix == ".png" else None)
        written.append(target)
    plt.close(fig)
    return written
