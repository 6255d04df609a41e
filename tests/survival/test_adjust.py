"""Adjusted comparisons where the truth is known: a simulated frame with confounding by indication.

The frame (fixed seed, 1,500 persons, < 1 s per fit): SS and high CLIPI make death likelier and
treatment likelier, so the unadjusted HR is biased upwards; the true conditional HR is 0.7. The
adjusted estimates must recover it; their numbers must equal lifelines / statsmodels fitted directly
on the same frame, and the balance statistics must equal hand computations.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter

from ctcl_map.survival.adjust import (
    CALIPER_SD,
    DEFAULT_COVARIATES,
    adjusted_comparison,
    design_matrix,
    iptw_weights,
    match_pairs,
    parse_covariates,
    preference_scores,
    propensity_scores,
    smd,
    table_one,
)
from ctcl_map.survival.analysis import cox_hazard_ratio

TRUE_HR = 0.7
COVARIATES = ("age", "sex", "ctcl_type", "clipi_group")


def confounded_frame(n: int = 1500, seed: int = 15, hr: float = TRUE_HR) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ss = rng.random(n) < 0.3
    clipi = rng.choice(["low", "intermediate", "high"], size=n, p=[0.5, 0.3, 0.2])
    age = rng.normal(66, 10, n).round()
    male = rng.random(n) < 0.6
    risk = 0.9 * ss + np.select([clipi == "intermediate", clipi == "high"], [0.6, 1.4], 0.0) + 0.02 * (age - 66)
    treat_logit = -1.5 + 1.2 * ss + np.select([clipi == "intermediate", clipi == "high"], [0.8, 2.0], 0.0)
    exposed = (rng.random(n) < 1 / (1 + np.exp(-treat_logit))).astype(int)
    hazard = 0.0008 * np.exp(risk + math.log(hr) * exposed)  # per day
    death = rng.exponential(1 / hazard)
    censor = rng.uniform(200, 2500, n)
    return pd.DataFrame({
        "person_id": np.arange(1, n + 1), "exposed": exposed,
        "time_days": np.maximum(1, np.minimum(death, censor).round()).astype(int),
        "event": (death <= censor).astype(int),
        "age": age, "sex": np.where(male, "male", "female"), "ctcl_type": np.where(ss, "SS", "MF"),
        "clipi_group": clipi, "stage_group": None,
    })


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return confounded_frame()


@pytest.fixture(scope="module")
def adjusted(frame) -> dict[str, dict]:
    return {method: adjusted_comparison(frame, COVARIATES, method, "indicator")
            for method in ("cox", "ps-match", "ps-stratify", "iptw")}


def test_unadjusted_is_biased_and_every_adjusted_method_recovers_the_true_hazard_ratio(frame, adjusted):
    crude = cox_hazard_ratio(frame)
    assert crude["lower"] > TRUE_HR  # confounding by indication makes the drug look worse
    for method in ("cox", "ps-match", "ps-stratify", "iptw"):
        estimate = adjusted[method]["estimate"]
        assert estimate["lower"] <= TRUE_HR <= estimate["upper"], (method, estimate)
        assert estimate["hazard_ratio"] < crude["hazard_ratio"]


def test_multivariable_cox_equals_lifelines_on_the_same_frame(frame, adjusted):
    result = adjusted["cox"]
    direct = pd.DataFrame({
        "time_days": frame["time_days"], "event": frame["event"], "exposed": frame["exposed"],
        "age": frame["age"], "sex": (frame["sex"] == "male").astype(float),
        "ss": (frame["ctcl_type"] == "SS").astype(float),
        "intermediate": (frame["clipi_group"] == "intermediate").astype(float),
        "high": (frame["clipi_group"] == "high").astype(float),
    })
    fitted = CoxPHFitter().fit(direct, "time_days", "event")
    assert result["estimate"]["hazard_ratio"] == pytest.approx(float(fitted.hazard_ratios_["exposed"]), rel=1e-6)
    lower, upper = np.exp(fitted.confidence_intervals_.loc["exposed"])
    assert (result["estimate"]["lower"], result["estimate"]["upper"]) == pytest.approx((lower, upper), rel=1e-6)
    terms = {t["term"]: t["hazard_ratio"] for t in result["model_terms"]}
    assert terms["clipi_group=high"] == pytest.approx(float(fitted.hazard_ratios_["high"]), rel=1e-6)


def test_propensity_score_equals_statsmodels_logit(frame):
    sm = pytest.importorskip("statsmodels.api")
    design = design_matrix(frame, COVARIATES)
    ps, info = propensity_scores(design.matrix, frame["exposed"].to_numpy())
    expected = sm.Logit(frame["exposed"].to_numpy(), sm.add_constant(design.matrix)).fit(disp=0).predict()
    assert np.max(np.abs(ps - expected)) < 1e-8
    assert info["converged"] and 0.5 < info["c_statistic"] < 1


def test_iptw_and_stratified_estimates_equal_lifelines_with_the_same_weights_and_strata(frame, adjusted):
    sm = pytest.importorskip("statsmodels.api")
    design = design_matrix(frame, COVARIATES)
    exposed = frame["exposed"].to_numpy()
    ps = sm.Logit(exposed, sm.add_constant(design.matrix)).fit(disp=0).predict()
    share = exposed.mean()
    raw = np.where(exposed == 1, share / ps, (1 - share) / (1 - ps))
    weights = np.clip(raw, *np.percentile(raw, [1, 99]))
    assert np.allclose(iptw_weights(ps, exposed), weights)
    data = frame[["time_days", "event", "exposed"]].assign(w=weights)
    fitted = CoxPHFitter().fit(data, "time_days", "event", weights_col="w", robust=True)
    ours = adjusted["iptw"]["estimate"]
    assert ours["hazard_ratio"] == pytest.approx(float(fitted.hazard_ratios_["exposed"]), rel=1e-5)
    quintile = pd.qcut(pd.Series(ps).rank(method="first"), 5, labels=False)
    stratified = CoxPHFitter().fit(frame[["time_days", "event", "exposed"]].assign(q=quintile.to_numpy()),
                                   "time_days", "event", strata=["q"])
    ours = adjusted["ps-stratify"]["estimate"]
    assert ours["hazard_ratio"] == pytest.approx(float(stratified.hazard_ratios_["exposed"]), rel=1e-5)


def test_balance_improves_and_smd_matches_the_hand_formula(frame, adjusted):
    before = {r["term"]: r for r in table_one(frame, COVARIATES, frame["exposed"].to_numpy())}
    ss = (frame["ctcl_type"] == "SS").to_numpy(dtype=float)
    x = frame["exposed"].to_numpy()
    p1, p0 = ss[x == 1].mean(), ss[x == 0].mean()
    assert before["ctcl_type"]["smd"] == pytest.approx((p1 - p0) / math.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2))
    assert before["ctcl_type"]["exposed_mean"] == pytest.approx(p1)
    for method in ("ps-match", "ps-stratify", "iptw"):
        balance = adjusted[method]["balance"]
        assert balance["max_abs_smd_before"] > 0.3
        assert balance["max_abs_smd_after"] < balance["max_abs_smd_before"] / 2, method
    assert smd(np.array([1.0, 2, 3, 4]), np.array([1, 1, 0, 0])) == pytest.approx(-2 / 0.5)


def test_imbalance_after_adjustment_is_warned():
    frame = confounded_frame(n=300, seed=3)
    frame["age"] = np.where(frame["exposed"] == 1, frame["age"] + 15, frame["age"])  # age strongly decides
    result = adjusted_comparison(frame, ("ctcl_type",), "ps-stratify", "indicator")  # age not adjusted
    assert result["balance"]["imbalanced_after"] == []  # only adjusted covariates are tabulated
    result = adjusted_comparison(frame, ("ctcl_type", "age"), "ps-match", "indicator")
    assert all(abs(r["smd"]) <= 0.1 or r["term"] in result["balance"]["imbalanced_after"]
               for r in result["balance"]["after"])
    flagged = [w for w in result["warnings"] if "imbalance" in w]
    assert bool(flagged) == bool(result["balance"]["imbalanced_after"])


def test_matching_is_one_to_one_within_the_caliper_and_never_with_oneself():
    ps = np.array([0.20, 0.21, 0.50, 0.52, 0.90, 0.30, 0.31])
    exposed = np.array([1, 0, 1, 0, 1, 0, 1])
    person = np.array([1, 2, 3, 3, 4, 5, 6])  # person 3 is in both arms: must not be matched with itself
    pair = match_pairs(ps, exposed, person)
    logit = np.log(ps / (1 - ps))
    caliper = CALIPER_SD * logit.std()
    for pair_id in set(pair[pair >= 0]):
        members = np.flatnonzero(pair == pair_id)
        assert len(members) == 2 and sorted(exposed[members]) == [0, 1]
        assert abs(logit[members[0]] - logit[members[1]]) <= caliper
        assert person[members[0]] != person[members[1]]
    assert pair[4] == -1  # ps 0.90: no control near it


def test_missing_covariates_indicator_keeps_everybody_complete_case_drops_and_both_report():
    frame = confounded_frame(n=400, seed=7)
    frame.loc[:39, "clipi_group"] = None
    frame.loc[:19, "age"] = np.nan
    indicator = adjusted_comparison(frame, COVARIATES, "cox", "indicator")
    assert indicator["missing"] == {"age": 20, "sex": 0, "ctcl_type": 0, "clipi_group": 40}
    assert indicator["persons_excluded_missing"] == 0 and indicator["estimate"]["persons"] == 400
    assert {"age_missing", "clipi_group=unknown"} <= set(indicator["terms"])
    complete = adjusted_comparison(frame, COVARIATES, "cox", "complete-case")
    assert complete["persons_excluded_missing"] == 40 and complete["estimate"]["persons"] == 360
    assert any("complete-case" in w and "40 of 400" in w for w in complete["warnings"])


def test_design_matrix_drops_terms_without_variation_and_parse_covariates():
    frame = confounded_frame(n=100, seed=1).assign(ctcl_type="MF")
    design = design_matrix(frame, COVARIATES)
    assert "ctcl_type" not in design.matrix.columns
    assert parse_covariates("default") == DEFAULT_COVARIATES
    assert parse_covariates("age, default,prior_lines") == ("age", *DEFAULT_COVARIATES[1:], "prior_lines")
    with pytest.raises(ValueError, match="unknown covariate 'weight'"):
        parse_covariates("age,weight")


def test_preference_score_is_one_half_at_the_treated_share():
    exposed = np.array([1, 0, 0, 0])
    assert preference_scores(np.array([0.25, 0.25, 0.25, 0.25]), exposed) == pytest.approx([0.5] * 4)
