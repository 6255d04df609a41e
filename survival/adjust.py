"""Adjusted exposure comparisons: multivariable Cox or a propensity score (PS), with balance.

Input: the analysed frame (one row per person-arm: time_days, event, exposed, person_id and the
baseline covariates at the index date). Methods (`method`):
- cox: Cox model of exposure + covariates (the conditional HR);
- ps-match: 1:1 greedy nearest-neighbour matching on the logit of the PS, without replacement,
  caliper 0.2 SD of the logit PS (Austin 2011); Cox on the matched sample, robust variance
  clustered by matched pair (Austin 2013);
- ps-stratify: PS quintiles; Cox stratified by quintile (OHDSI CohortMethod's stratification);
- iptw: stabilised inverse-probability-of-treatment weights (ATE), the 1st/99th percentiles
  truncated; weighted Cox with robust (sandwich) variance.
The PS is a logistic regression of exposure on the covariates (Newton-Raphson, own code; the tests
compare it with statsmodels). Missing covariates (`missing`): 'indicator' keeps everybody (an
'unknown' level for categories; mean-filled value plus a 0/1 missing indicator for numbers and
yes/no), 'complete-case' drops rows with any missing covariate; both are reported.
Balance: standardised mean differences (SMD) per covariate level before and after adjustment.
"""

from __future__ import annotations

import math
import warnings as py_warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ctcl_map.survival.followup import time_varying_rows
from ctcl_map.survival.spec import COVARIATES, DEFAULT_COVARIATES, METHODS

SMD_THRESHOLD = 0.1
PS_STRATA = 5
CALIPER_SD = 0.2

_STAGE_LEVEL = {"IA": "early", "IB": "early", "IIA": "early", "IIB": "IIB", "III": "III", "IIIA": "III",
                "IIIB": "III", "IV": "IV", "IVA": "IV", "IVA1": "IVA1", "IVA2": "IVA2", "IVB": "IVB"}
_LEVEL_ORDER = {"early": 0, "IIB": 1, "III": 2, "IV": 3, "IVA1": 4, "IVA2": 5, "IVB": 6,
                "low": 0, "intermediate": 1, "high": 2, "unknown": 99}


def parse_covariates(text: str | None) -> tuple[str, ...]:
    """'default' -> the CTCL set; 'age,sex' -> ('age', 'sex'); ValueError on an unknown name."""
    if not text:
        return ()
    names: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part == "default":
            names.extend(DEFAULT_COVARIATES)
        elif part in COVARIATES:
            names.append(part)
        else:
            raise ValueError(f"unknown covariate {part!r}: use 'default' or some of {', '.join(COVARIATES)}")
    return tuple(dict.fromkeys(names))


def covariate_values(frame: pd.DataFrame, name: str) -> pd.Series:
    """The analysis value of one covariate: float for numeric/binary (NaN = missing), label for categories."""
    kind, one, _ = COVARIATES[name]
    if name == "stage_group":
        return frame["stage_group"].map(lambda v: _STAGE_LEVEL.get(v) if isinstance(v, str) else None)
    if name == "stage_iv":
        return frame["stage_group"].map(lambda v: float(str(v).startswith("IV")) if isinstance(v, str) else np.nan)
    if kind == "category":
        return frame[name].map(lambda v: v if isinstance(v, str) else None)
    if kind == "binary" and one in ("male", "SS"):
        return frame[name].map(lambda v: float(v == one) if isinstance(v, str) else np.nan)
    return pd.to_numeric(frame[name], errors="coerce").astype(float)


@dataclass
class Design:
    """The model matrix: one numeric column per term, aligned with `rows` of the input frame."""

    matrix: pd.DataFrame  # term columns only
    rows: pd.Index  # rows of the input frame kept (complete-case drops some)
    missing: dict[str, int]  # covariate -> rows with it missing (before any dropping)
    terms: dict[str, str]  # term column -> what it means


def design_matrix(frame: pd.DataFrame, covariates: tuple[str, ...], missing: str = "indicator") -> Design:
    values = {name: covariate_values(frame, name) for name in covariates}
    counts = {name: int(v.isna().sum()) for name, v in values.items()}
    rows = frame.index
    if missing == "complete-case":
        keep = pd.concat([v.notna() for v in values.values()], axis=1).all(axis=1) if values else pd.Series(True, index=rows)
        rows = frame.index[keep.to_numpy()]
    columns: dict[str, pd.Series] = {}
    terms: dict[str, str] = {}
    for name in covariates:
        kind, one, description = COVARIATES[name]
        v = values[name].loc[rows]
        if kind == "category":
            filled = v.fillna("unknown")
            levels = sorted(filled.unique(), key=lambda x: (_LEVEL_ORDER.get(x, 50), x))
            # reference: the most frequent level (stable estimates), ties by natural order
            reference = max(levels, key=lambda x: (int((filled == x).sum()), -levels.index(x)))
            for level in levels:
                if level != reference:
                    columns[f"{name}={level}"] = (filled == level).astype(float)
                    terms[f"{name}={level}"] = f"{description}: {level} (vs {reference})"
            continue
        columns[name] = v.fillna(v.mean() if v.notna().any() else 0.0)
        terms[name] = description + (f" ({one})" if kind == "binary" else "")
        if v.isna().any():
            columns[f"{name}_missing"] = v.isna().astype(float)
            terms[f"{name}_missing"] = f"{description} missing"
    matrix = pd.DataFrame(columns, index=rows)
    # a term without variation (e.g. every person advanced) cannot be estimated: drop it
    matrix = matrix.loc[:, [c for c in matrix.columns if matrix[c].nunique() > 1]]
    # exact duplicates (SS = stage IV in some cohorts) would make the model singular
    matrix = matrix.T.drop_duplicates().T
    return Design(matrix, rows, counts, {c: terms[c] for c in matrix.columns})


# -- propensity score ---------------------------------------------------------------------------------
def logistic_fit(x: np.ndarray, y: np.ndarray, max_iter: int = 50, ridge: float = 0.0) -> tuple[np.ndarray, bool]:
    """Maximum-likelihood logistic regression with intercept (Newton-Raphson); (coefficients, converged).
    `ridge` adds a small L2 penalty when the unpenalised fit separates."""
    design = np.column_stack([np.ones(len(x)), x])
    beta = np.zeros(design.shape[1])
    penalty = ridge * np.eye(design.shape[1])
    penalty[0, 0] = 0.0
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -30, 30)))
        gradient = design.T @ (y - p) - penalty @ beta
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + penalty
        step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        beta = beta + step
        if np.max(np.abs(step)) < 1e-8:
            return beta, bool(np.all(np.abs(beta) < 25))
    return beta, False


def propensity_scores(matrix: pd.DataFrame, exposed: np.ndarray) -> tuple[np.ndarray, dict]:
    x = matrix.to_numpy(dtype=float)
    # centring and scaling help Newton's method; the fitted probabilities are unchanged
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - x.mean(axis=0)) / scale
    beta, converged = logistic_fit(z, exposed)
    note = ""
    if not converged:
        beta, converged = logistic_fit(z, exposed, ridge=0.01)
        note = "the PS model separated the arms; refitted with a small ridge penalty (0.01)"
    ps = 1.0 / (1.0 + np.exp(-np.clip(np.column_stack([np.ones(len(z)), z]) @ beta, -30, 30)))
    return ps, {"model": "logistic regression of exposure on the covariates", "converged": converged,
                "note": note, "c_statistic": _c_statistic(ps, exposed)}


def _c_statistic(score: np.ndarray, exposed: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney), how well the covariates predict treatment."""
    ranks = pd.Series(score).rank().to_numpy()
    n1, n0 = int(exposed.sum()), int(len(exposed) - exposed.sum())
    if n1 == 0 or n0 == 0:
        return None
    return float((ranks[exposed == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def preference_scores(ps: np.ndarray, exposed: np.ndarray) -> np.ndarray:
    """Walker et al. 2013: the PS with the treated share taken out; 0.5 = equipoise."""
    share = float(exposed.mean())
    logit = np.log(ps / (1 - ps)) - math.log(share / (1 - share))
    return 1.0 / (1.0 + np.exp(-logit))


def overlap_summary(ps: np.ndarray, exposed: np.ndarray, bins: int = 20) -> dict:
    """Preference-score histograms per arm and the share in empirical equipoise (0.3-0.7)."""
    pref = preference_scores(np.clip(ps, 1e-9, 1 - 1e-9), exposed)
    edges = np.linspace(0, 1, bins + 1)
    return {
        "bin_edges": edges.round(4).tolist(),
        "exposed": np.histogram(pref[exposed == 1], edges)[0].tolist(),
        "unexposed": np.histogram(pref[exposed == 0], edges)[0].tolist(),
        "equipoise_share": float(np.mean((pref >= 0.3) & (pref <= 0.7))),
    }


def match_pairs(ps: np.ndarray, exposed: np.ndarray, person: np.ndarray) -> np.ndarray:
    """Pair id per row (-1 = unmatched): 1:1 greedy nearest neighbour on logit PS within the caliper;
    a person is never matched with their own other arm."""
    logit = np.log(ps / (1 - ps))
    caliper = CALIPER_SD * float(np.std(logit))
    pair = np.full(len(ps), -1)
    controls = list(np.flatnonzero(exposed == 0))
    control_logit = logit[controls]
    used = np.zeros(len(controls), dtype=bool)
    treated = np.flatnonzero(exposed == 1)
    for pair_id, i in enumerate(treated[np.argsort(-logit[treated], kind="stable")]):
        distance = np.abs(control_logit - logit[i])
        distance[used | (person[controls] == person[i])] = np.inf
        j = int(np.argmin(distance)) if len(distance) else -1
        if j >= 0 and distance[j] <= caliper:
            used[j] = True
            pair[i] = pair[controls[j]] = pair_id
    return pair


def iptw_weights(ps: np.ndarray, exposed: np.ndarray) -> np.ndarray:
    share = float(exposed.mean())
    weights = np.where(exposed == 1, share / ps, (1 - share) / (1 - ps))
    low, high = np.percentile(weights, [1, 99])
    return np.clip(weights, low, high)


def stratum_weights(stratum: np.ndarray, exposed: np.ndarray) -> np.ndarray:
    """Weights that give each arm the overall distribution over PS strata (balance after stratifying)."""
    frame = pd.DataFrame({"s": stratum, "x": exposed})
    size = frame.groupby("s")["x"].transform("size")
    arm_size = frame.groupby(["s", "x"])["x"].transform("size")
    arm_total = frame.groupby("x")["x"].transform("size")
    return (size / len(frame) * arm_total / arm_size).to_numpy(dtype=float)


# -- balance --------------------------------------------------------------------------------------------
def _weighted_mean_var(values: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    if weights.sum() <= 0:
        return float("nan"), float("nan")
    mean = float(np.average(values, weights=weights))
    return mean, float(np.average((values - mean) ** 2, weights=weights))


def smd(values: np.ndarray, exposed: np.ndarray, weights: np.ndarray | None = None) -> float | None:
    """(mean exposed - mean unexposed) / sqrt((var exposed + var unexposed) / 2); None if undefined."""
    weights = np.ones(len(values)) if weights is None else weights
    m1, v1 = _weighted_mean_var(values[exposed == 1], weights[exposed == 1])
    m0, v0 = _weighted_mean_var(values[exposed == 0], weights[exposed == 0])
    pooled = math.sqrt((v1 + v0) / 2) if not math.isnan(v1 + v0) else float("nan")
    if math.isnan(pooled):
        return None
    if pooled == 0:
        return 0.0 if m1 == m0 else None
    return (m1 - m0) / pooled


def table_one(frame: pd.DataFrame, covariates: tuple[str, ...], exposed: np.ndarray,
              weights: np.ndarray | None = None) -> list[dict]:
    """Baseline characteristics by arm: per covariate (and category level) the exposed and unexposed
    mean (numbers: mean and SD; yes/no and levels: proportion), the missing count and the SMD.
    Weighted (IPTW, matching, strata) when `weights` is given; missing values are their own level."""
    rows: list[dict] = []
    w = np.ones(len(frame)) if weights is None else weights
    for name in covariates:
        kind, one, description = COVARIATES[name]
        values = covariate_values(frame, name)
        if kind == "category":
            filled = values.fillna("unknown")
            levels = sorted(filled.unique(), key=lambda x: (_LEVEL_ORDER.get(x, 50), x))
            parts = [(f"{name}={level}", f"{description}: {level}", (filled == level).to_numpy(dtype=float), "proportion")
                     for level in levels]
        else:
            known = values.notna().to_numpy()
            parts = [(name, description + (f" ({one})" if kind == "binary" else ""), values.to_numpy(dtype=float),
                      "proportion" if kind == "binary" else "mean")]
            if not known.all():
                parts.append((f"{name}_missing", f"{description} missing", (~known).astype(float), "proportion"))
        for term, label, column, statistic in parts:
            known = ~np.isnan(column)
            row: dict[str, str | int | float | None] = {"covariate": name, "term": term, "label": label,
                                                        "statistic": statistic}
            for arm, flag in (("exposed", 1), ("unexposed", 0)):
                mask = known & (exposed == flag)
                mean, var = _weighted_mean_var(column[mask], w[mask]) if mask.any() else (None, None)
                row[f"{arm}_n"] = int((exposed == flag).sum() if weights is None else (w[exposed == flag] > 0).sum())
                row[f"{arm}_mean"] = mean
                row[f"{arm}_sd"] = math.sqrt(var) if (var is not None and statistic == "mean") else None
            row["smd"] = smd(column[known], exposed[known], w[known]) if known.any() else None
            rows.append(row)
    return rows


def balance_summary(before: list[dict], after: list[dict] | None) -> dict:
    def worst(rows):
        values = [abs(r["smd"]) for r in rows or [] if r["smd"] is not None]
        return max(values) if values else None

    imbalanced = sorted({r["term"] for r in after or [] if r["smd"] is not None and abs(r["smd"]) > SMD_THRESHOLD})
    return {"before": before, "after": after, "max_abs_smd_before": worst(before),
            "max_abs_smd_after": worst(after), "threshold": SMD_THRESHOLD, "imbalanced_after": imbalanced}


# -- outcome models -------------------------------------------------------------------------------------
def fit_cox(data: pd.DataFrame, exposure: str, strata: list[str] | None = None, cluster: str | None = None,
            weights: str | None = None, duration: str = "time_days") -> tuple[pd.DataFrame, list[str]]:
    """lifelines CoxPHFitter (Efron ties); returns its summary and convergence notes."""
    from lifelines import CoxPHFitter

    fitter = CoxPHFitter()
    with py_warnings.catch_warnings(record=True) as caught:
        py_warnings.simplefilter("always")
        fitter.fit(data, duration_col=duration, event_col="event", strata=strata or None, cluster_col=cluster,
                   weights_col=weights, robust=bool(cluster or weights))
    return fitter.summary, convergence_notes(caught)


def convergence_notes(caught: list) -> list[str]:
    """lifelines' convergence warnings (first line each), so they reach the user."""
    return sorted({str(w.message).strip().splitlines()[0] for w in caught
                   if "Convergence" in type(w.message).__name__ or "converge" in str(w.message).lower()})


def estimate_row(summary: pd.DataFrame, term: str) -> dict | None:
    row = summary.loc[term]
    values = [float(row[c]) for c in ("exp(coef)", "exp(coef) lower 95%", "exp(coef) upper 95%")]
    if not all(math.isfinite(v) and v > 0 for v in values):
        return None
    return {"hazard_ratio": values[0], "lower": values[1], "upper": values[2], "p_value": float(row["p"])}


def term_rows(summary: pd.DataFrame, terms: dict[str, str]) -> list[dict]:
    out = []
    for term in summary.index:
        est = estimate_row(summary, term)
        out.append({"term": str(term), "label": terms.get(str(term), str(term)), **(est or {"hazard_ratio": None})})
    return out


def adjusted_comparison(frame: pd.DataFrame, covariates: tuple[str, ...], method: str, missing: str,
                        strata: list[str] | None = None, person_column: str = "person_id") -> dict:
    """The adjusted HR of `exposed` by `method`, with the PS, balance and missing-data report."""
    frame = frame.dropna(subset=list(strata or []))  # an unknown stratum is left out, as unadjusted
    design = design_matrix(frame, covariates, missing)
    used = frame.loc[design.rows].reset_index(drop=True)
    matrix = design.matrix.reset_index(drop=True)
    exposed = used["exposed"].to_numpy(dtype=int)
    out: dict = {
        "method": method, "covariates": list(covariates), "missing_handling": missing,
        "missing": design.missing, "persons_excluded_missing": int(len(frame) - len(used)),
        "terms": design.terms, "warnings": [],
    }
    if missing == "complete-case" and len(used) < len(frame):
        out["warnings"].append(f"complete-case analysis: {len(frame) - len(used)} of {len(frame)} rows dropped "
                               "for a missing covariate")
    before = table_one(used, covariates, exposed)
    if len(set(exposed)) < 2 or used["event"].sum() == 0:
        out.update(estimate=None, balance=balance_summary(before, None), propensity=None)
        out["warnings"].append("adjusted hazard ratio not estimable (one arm empty or no deaths)")
        return out
    ps, ps_info = propensity_scores(matrix, exposed)
    ps = np.clip(ps, 1e-6, 1 - 1e-6)
    propensity = ps_info | overlap_summary(ps, exposed)
    if ps_info["note"]:
        out["warnings"].append(ps_info["note"])
    data = pd.concat([used[["time_days", "event"] + list(strata or [])], matrix], axis=1)
    data["exposed"] = exposed
    cluster = person_column if used[person_column].duplicated().any() else None
    if cluster:
        data[cluster] = used[person_column].to_numpy()
    after_weights = None
    model = ""
    if method == "cox":
        fit_data, columns, model = data, ["exposed", *matrix.columns], "multivariable Cox PH (Efron ties)"
        fit_kwargs = {"cluster": cluster}
    elif method == "ps-match":
        pair = match_pairs(ps, exposed, used[person_column].to_numpy())
        keep = pair >= 0
        fit_data = data.loc[keep, ["time_days", "event", "exposed", *(strata or [])]].assign(pair=pair[keep])
        columns, fit_kwargs = ["exposed"], {"cluster": "pair"}
        after_weights = keep.astype(float)
        model = ("Cox PH on the 1:1 PS-matched sample (nearest neighbour on logit PS, caliper 0.2 SD), "
                 "robust variance clustered by matched pair")
        out["matched_pairs"] = int(keep.sum() // 2)
        out["unmatched_exposed"] = int(((exposed == 1) & ~keep).sum())
    elif method == "ps-stratify":
        stratum = pd.qcut(pd.Series(ps).rank(method="first"), PS_STRATA, labels=False).to_numpy()
        fit_data = data[["time_days", "event", "exposed", *(strata or [])]].assign(ps_stratum=stratum)
        if cluster:
            fit_data[cluster] = data[cluster]
        columns, fit_kwargs = ["exposed"], {"cluster": cluster}
        strata = [*(strata or []), "ps_stratum"]
        after_weights = stratum_weights(stratum, exposed)
        model = f"Cox PH stratified by PS quintile ({PS_STRATA} strata)"
    elif method == "iptw":
        weights = iptw_weights(ps, exposed)
        fit_data = data[["time_days", "event", "exposed", *(strata or [])]].assign(iptw=weights)
        if cluster:
            fit_data[cluster] = data[cluster]
        columns, fit_kwargs = ["exposed"], {"cluster": cluster, "weights": "iptw"}
        after_weights = weights
        model = "weighted Cox PH, stabilised ATE weights (1st/99th percentile truncated), robust variance"
    else:
        raise ValueError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    keep_cols = ["time_days", "event", *columns, *(strata or [])] + [c for c in fit_kwargs.values() if c]
    fit_data = fit_data[list(dict.fromkeys(keep_cols))]
    arms_with_deaths = fit_data.groupby("exposed")["event"].sum()
    notes: list[str]  # the fit's warnings
    if len(arms_with_deaths) < 2 or (arms_with_deaths == 0).any():
        estimate, terms, notes = None, [], []
    else:
        summary, notes = fit_cox(fit_data, "exposed", strata or None, fit_kwargs.get("cluster"), fit_kwargs.get("weights"))
        estimate, terms = estimate_row(summary, "exposed"), term_rows(summary, design.terms)
    if estimate is None:
        out["warnings"].append(f"adjusted hazard ratio ({method}) not estimable")
    else:
        estimate |= {"persons": int(fit_data.shape[0]), "events": int(fit_data["event"].sum()),
                     "model": model + (f", stratified by {', '.join(s for s in strata if s != 'ps_stratum')}"
                                       if strata and [s for s in strata if s != "ps_stratum"] else ""),
                     "fit_warnings": notes}
        out["warnings"].extend(f"adjusted Cox model: {note}" for note in notes)
    after = table_one(used, covariates, exposed, after_weights) if after_weights is not None else None
    balance = balance_summary(before, after)
    if balance["imbalanced_after"]:
        out["warnings"].append(
            f"covariate imbalance after {method}: |SMD| > {SMD_THRESHOLD} for {', '.join(balance['imbalanced_after'])}")
    out.update(estimate=estimate, model_terms=terms, balance=balance, propensity=propensity)
    return out


def adjusted_time_varying(frame: pd.DataFrame, covariates: tuple[str, ...], missing: str,
                          strata: list[str] | None = None) -> dict:
    """Cox with the exposure time-varying and the baseline covariates (at the cohort index) fixed.
    Only regression adjustment: there is no baseline treatment decision to model a PS for."""
    frame = frame.dropna(subset=list(strata or []))
    design = design_matrix(frame, covariates, missing)
    used = frame.loc[design.rows]
    out: dict = {"method": "cox", "covariates": list(covariates), "missing_handling": missing,
                 "missing": design.missing, "persons_excluded_missing": int(len(frame) - len(used)),
                 "terms": design.terms, "warnings": [], "propensity": None}
    if missing == "complete-case" and len(used) < len(frame):
        out["warnings"].append(f"complete-case analysis: {len(frame) - len(used)} of {len(frame)} persons dropped "
                               "for a missing covariate")
    long = time_varying_rows(pd.concat([used, design.matrix.add_prefix("x:")], axis=1), extra=[
        *(strata or []), *("x:" + c for c in design.matrix.columns)])
    long = long.rename(columns=lambda c: c[2:] if c.startswith("x:") else c).dropna(subset=list(strata or []))
    exposed_any = used["exposure_day"].notna() & (used["exposure_day"] < used["time_days"])
    before = table_one(used, covariates, exposed_any.to_numpy(dtype=int))
    out["balance"] = balance_summary(before, None)
    if long["exposed"].nunique() < 2 or long["event"].sum() == 0:
        out.update(estimate=None, model_terms=[])
        out["warnings"].append("adjusted hazard ratio not estimable (nobody exposed, or no deaths)")
        return out
    from lifelines import CoxTimeVaryingFitter

    fitter = CoxTimeVaryingFitter()
    with py_warnings.catch_warnings(record=True) as caught:
        py_warnings.simplefilter("always")
        fitter.fit(long, id_col="person_id", event_col="event", start_col="start",
                   stop_col="stop", strata=strata or None)
    notes = convergence_notes(caught)
    estimate = estimate_row(fitter.summary, "exposed")
    if estimate is not None:
        estimate |= {"persons": int(used["person_id"].nunique()), "events": int(long["event"].sum()),
                     "model": "Cox with time-varying exposure and baseline covariates (lifelines CoxTimeVaryingFitter)"
                              + (f", stratified by {', '.join(strata)}" if strata else ""),
                     "fit_warnings": notes}
    out.update(estimate=estimate, model_terms=term_rows(fitter.summary, design.terms))
    out["warnings"].extend(f"adjusted Cox model: {note}" for note in notes)
    return out
