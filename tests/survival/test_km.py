"""Kaplan-Meier, log-rank and Cox: hand-computed cases and agreement with independent computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter

from ctcl_map.survival.analysis import cox_hazard_ratio, logrank, summarise_group
from ctcl_map.survival.km import kaplan_meier, median_with_ci, quantile_time
from ctcl_map.survival.spec import SurvivalSpec


def test_km_steps_with_tied_deaths_and_a_censoring_at_the_same_time():
    # time:  2  3  3  3  5  6  8  9      (days)
    # event: 1  1  1  0  1  0  1  0      (the censoring at 3 is still at risk at 3)
    curve = kaplan_meier(np.array([2, 3, 3, 3, 5, 6, 8, 9]), np.array([1, 1, 1, 0, 1, 0, 1, 0]))
    # t=2: 8 at risk, 1 death -> S = 7/8            = 0.875
    # t=3: 7 at risk, 2 deaths -> S = 0.875 * 5/7   = 0.625
    # t=5: 4 at risk, 1 death -> S = 0.625 * 3/4   = 0.46875
    # t=6: censoring only      -> S unchanged
    # t=8: 2 at risk, 1 death -> S = 0.46875 * 1/2 = 0.234375
    assert curve.time.tolist() == [0, 2, 3, 5, 6, 8, 9]
    assert curve.at_risk.tolist() == [8, 8, 7, 4, 3, 2, 1]
    assert curve.events.tolist() == [0, 1, 2, 1, 0, 1, 0]
    assert curve.censored.tolist() == [0, 0, 1, 0, 1, 0, 1]
    assert curve.survival.tolist() == pytest.approx([1, 0.875, 0.625, 0.46875, 0.46875, 0.234375, 0.234375])
    # first time S <= 0.5 is t=5
    assert median_with_ci(curve)[0] == 5.0
    # Greenwood at t=3: 1/(8*7) + 2/(7*5) = 0.075; log-log band: S^exp(+-1.96*sqrt(0.075)/|ln S|)
    half = 1.959963984540054 * math.sqrt(0.075) / abs(math.log(0.625))
    assert curve.lower[2] == pytest.approx(0.625 ** math.exp(half))
    assert curve.upper[2] == pytest.approx(0.625 ** math.exp(-half))


def test_median_when_survival_sits_exactly_at_one_half_uses_the_r_midpoint():
    # 4 deaths at 1,2,3,4: S = 0.75, 0.5, 0.25, 0. S == 0.5 on [2, 3): R reports (2 + 3) / 2 = 2.5
    curve = kaplan_meier(np.array([1, 2, 3, 4]), np.array([1, 1, 1, 1]))
    assert median_with_ci(curve)[0] == 2.5


def test_median_robust_to_floating_point_round_off_at_one_half():
    # 6 persons, deaths at 10, 20, 30: S = 5/6 * 4/5 * 3/4, which is 0.5 but not bit-exact in floats.
    # S stays at 0.5 until the next death at 50, so the median is (30 + 50) / 2 = 40 (R gives 40).
    curve = kaplan_meier(np.array([10, 20, 30, 50, 60, 70]), np.array([1, 1, 1, 1, 0, 0]))
    assert median_with_ci(curve)[0] == 40.0


def test_median_not_reached_is_none():
    curve = kaplan_meier(np.array([5, 10, 20]), np.array([1, 0, 0]))  # S ends at 2/3
    assert quantile_time(curve.time, curve.survival) is None


def test_survival_at_years_and_number_at_risk():
    # deaths at 100 and 500 days, censorings at 400 and 800; 1 year = 365.25 days
    spec = SurvivalSpec(survival_years=(1.0, 2.0, 5.0))
    summary = summarise_group("all", np.array([100, 400, 500, 800]), np.array([1, 0, 1, 0]), spec)
    one, two, five = summary.at_times
    assert one["survival"] == pytest.approx(0.75)  # 3/4 after the death at 100
    assert one["at_risk"] == 3  # 400, 500, 800 are still followed at day 365.25
    assert two["survival"] == pytest.approx(0.375)  # 0.75 * 1/2 after the death at 500 (2 at risk)
    assert two["at_risk"] == 1  # only 800 >= 730.5
    assert five["survival"] is None and five["at_risk"] == 0  # 1826.25 days is beyond follow-up
    assert (summary.persons, summary.events, summary.censored) == (4, 2, 2)


def _product_limit(time: np.ndarray, event: np.ndarray) -> dict[float, float]:
    """Textbook product-limit, written independently of the code under test."""
    surv, out = 1.0, {}
    for t in sorted(set(time.tolist())):
        n = sum(1 for x in time if x >= t)
        d = sum(1 for x, e in zip(time, event) if x == t and e == 1)
        surv *= 1 - d / n
        out[t] = surv
    return out


def test_km_agrees_with_a_hand_written_product_limit_and_lifelines_on_random_data():
    rng = np.random.default_rng(20240601)
    time = rng.integers(1, 400, size=500)  # many ties
    event = rng.integers(0, 2, size=500)
    curve = kaplan_meier(time, event)
    expected = _product_limit(time, event)
    assert dict(zip(curve.time[1:].tolist(), curve.survival[1:].tolist())) == pytest.approx(expected)
    fitted = KaplanMeierFitter().fit(time, event)
    band = fitted.confidence_interval_.to_numpy()
    assert np.allclose(curve.survival, fitted.survival_function_.to_numpy()[:, 0])
    assert np.allclose(curve.lower[1:], band[1:, 0]) and np.allclose(curve.upper[1:], band[1:, 1])


def _own_logrank(time: np.ndarray, event: np.ndarray, group: np.ndarray) -> float:
    """Two-group log-rank chi-square: (O1 - E1)^2 / V over the distinct death times."""
    observed_minus_expected, variance = 0.0, 0.0
    for t in np.unique(time[event == 1]):
        at_risk = time >= t
        n, n1 = at_risk.sum(), (at_risk & (group == 1)).sum()
        d = ((time == t) & (event == 1)).sum()
        d1 = ((time == t) & (event == 1) & (group == 1)).sum()
        observed_minus_expected += d1 - d * n1 / n
        if n > 1:
            variance += d * (n1 / n) * (1 - n1 / n) * (n - d) / (n - 1)
    return observed_minus_expected**2 / variance


def test_logrank_wrapper_agrees_with_an_own_computation():
    rng = np.random.default_rng(7)
    group = rng.integers(0, 2, size=400)
    time = np.ceil(rng.exponential(np.where(group == 1, 900, 600))).astype(int)
    event = (rng.random(400) < 0.7).astype(int)
    frame = pd.DataFrame({"time_days": time, "event": event, "group": group})
    result = logrank(frame)
    assert result["statistic"] == pytest.approx(_own_logrank(time, event, group), rel=1e-9)
    assert result["df"] == 1


def _own_cox_log_hr(time: np.ndarray, event: np.ndarray, x: np.ndarray) -> float:
    """Newton-Raphson on the Cox partial likelihood for one covariate (no ties: Efron = Breslow)."""
    beta = 0.0
    order = np.argsort(time)
    time, event, x = time[order], event[order], x[order]
    for _ in range(50):
        score, info = 0.0, 0.0
        for i in np.nonzero(event)[0]:
            risk = time >= time[i]
            w = np.exp(beta * x[risk])
            mean = (w * x[risk]).sum() / w.sum()
            score += x[i] - mean
            info += (w * x[risk] ** 2).sum() / w.sum() - mean**2
        beta += score / info
    return beta


def test_cox_hazard_ratio_agrees_with_an_own_partial_likelihood_fit():
    rng = np.random.default_rng(11)
    exposed = rng.integers(0, 2, size=300)
    time = rng.exponential(np.where(exposed == 1, 1000.0, 600.0))  # continuous: no ties
    event = (rng.random(300) < 0.75).astype(int)
    frame = pd.DataFrame({"time_days": time, "event": event, "exposed": exposed})
    result = cox_hazard_ratio(frame)
    assert result["hazard_ratio"] == pytest.approx(math.exp(_own_cox_log_hr(time, event, exposed)), rel=1e-5)
    assert result["lower"] < result["hazard_ratio"] < result["upper"]
    assert (result["persons"], result["events"]) == (300, int(event.sum()))


def test_cox_is_not_estimable_without_two_groups():
    frame = pd.DataFrame({"time_days": [1, 2, 3], "event": [1, 0, 1], "exposed": [1, 1, 1]})
    assert cox_hazard_ratio(frame) is None
