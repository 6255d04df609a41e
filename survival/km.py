"""Kaplan-Meier product-limit estimator, written out so that every number in a report is traceable.

Why not lifelines' KaplanMeierFitter: two of its conventions differ from R `survival::survfit`,
which is what OHDSI CohortSurvival reports (see shared/reference/ohdsi-survival.md section 4):
the median when S(t) sits exactly at 0.5 on a flat stretch (R takes the midpoint to the next
event time, lifelines the first time) and floating-point round-off in S(t) == 0.5. Here S(t) is
compared with 0.5 within 1e-12, and the R midpoint rule is used. The confidence band is the
'log-log' (exponential Greenwood) band by default, identical to lifelines; 'log' gives R's
default `conf.type = "log"`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z_95 = 1.959963984540054  # standard normal 97.5 % quantile
_EPS = 1e-12


@dataclass(frozen=True)
class KMCurve:
    """S(t) right after each distinct time (event or censoring), plus the time-0 row."""

    time: np.ndarray  # days; time[0] == 0
    at_risk: np.ndarray  # persons at risk just before time[i]
    events: np.ndarray  # deaths at time[i]
    censored: np.ndarray  # censored at time[i]
    survival: np.ndarray  # S(time[i])
    lower: np.ndarray  # 95 % band
    upper: np.ndarray

    def value_at(self, t: float) -> tuple[float, float, float, int] | None:
        """(S, lower, upper, number at risk) at time t; None beyond the last follow-up time."""
        if t > self.time[-1]:
            return None
        i = int(np.searchsorted(self.time, t, side="right") - 1)
        return float(self.survival[i]), float(self.lower[i]), float(self.upper[i]), self.number_at_risk(t)

    def number_at_risk(self, t: float) -> int:
        """Persons still under follow-up at time t (time >= t)."""
        i = int(np.searchsorted(self.time[1:], t, side="left"))
        return int(self.at_risk[1 + i]) if 1 + i < len(self.time) else 0


def kaplan_meier(time: np.ndarray, event: np.ndarray, conf_type: str = "log-log") -> KMCurve:
    """Product-limit estimate with a Greenwood-based 95 % band.

    time: follow-up in days (> 0), event: 1 = death observed, 0 = censored. At tied times the
    deaths are counted before the censorings (the usual convention: a person censored at t was
    at risk at t).
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=int)
    if len(time) == 0:
        raise ValueError("no persons to estimate survival for")
    distinct = np.unique(time)
    at_risk = np.array([(time >= t).sum() for t in distinct])
    deaths = np.array([((time == t) & (event == 1)).sum() for t in distinct])
    censored = np.array([((time == t) & (event == 0)).sum() for t in distinct])
    factors = 1.0 - deaths / at_risk
    survival = np.cumprod(factors)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(at_risk > deaths, deaths / (at_risk * (at_risk - deaths)), np.inf)
    greenwood = np.cumsum(terms)  # Var(log S) estimate
    lower, upper = _band(survival, greenwood, conf_type)
    return KMCurve(
        time=np.concatenate([[0.0], distinct]),
        at_risk=np.concatenate([[len(time)], at_risk]),
        events=np.concatenate([[0], deaths]),
        censored=np.concatenate([[0], censored]),
        survival=np.concatenate([[1.0], survival]),
        lower=np.concatenate([[1.0], lower]),
        upper=np.concatenate([[1.0], upper]),
    )


def _band(survival: np.ndarray, greenwood: np.ndarray, conf_type: str) -> tuple[np.ndarray, np.ndarray]:
    lower = np.empty_like(survival)
    upper = np.empty_like(survival)
    for i, (s, var) in enumerate(zip(survival, greenwood)):
        if s <= 0 or not math.isfinite(var):
            lower[i] = upper[i] = max(s, 0.0)  # everyone died: the curve is 0 with no spread
            continue
        if var == 0 or s >= 1.0:
            lower[i] = upper[i] = s
            continue
        if conf_type == "log-log":
            # exponential Greenwood: CI for log(-log S), as lifelines and R conf.type="log-log"
            log_s = math.log(s)
            half = Z_95 * math.sqrt(var) / abs(log_s)
            lower[i] = s ** math.exp(half)
            upper[i] = s ** math.exp(-half)
        elif conf_type == "log":
            half = Z_95 * math.sqrt(var)
            lower[i] = s * math.exp(-half)
            upper[i] = min(1.0, s * math.exp(half))
        else:
            raise ValueError(f"conf_type must be 'log-log' or 'log', not {conf_type!r}")
    return lower, upper


def quantile_time(time: np.ndarray, curve: np.ndarray, q: float = 0.5) -> float | None:
    """Smallest t with curve(t) <= q; R's midpoint rule when the curve equals q on a flat stretch.

    None when the curve never reaches q (median not reached).
    """
    below = np.nonzero(curve <= q + _EPS)[0]
    if len(below) == 0:
        return None
    i = int(below[0])
    if abs(curve[i] - q) <= _EPS and i + 1 < len(time):
        # S == q exactly from time[i] up to the next step: R reports the midpoint to the next drop
        later = np.nonzero(curve[i + 1 :] < q - _EPS)[0]
        if len(later):
            return (float(time[i]) + float(time[i + 1 + int(later[0])])) / 2.0
        return float(time[i])
    return float(time[i])


def median_with_ci(curve: KMCurve) -> tuple[float | None, float | None, float | None]:
    """Median and its 95 % CI: where the survival curve and its band limits cross 0.5."""
    return (
        quantile_time(curve.time, curve.survival),
        quantile_time(curve.time, curve.lower),
        quantile_time(curve.time, curve.upper),
    )
