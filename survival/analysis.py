"""Overall survival analyses over OHDSI-style cohorts: `run_survival(db, spec) -> SurvivalResult`.

Designs for an exposure X (see README.md for why each is, or is not, free of immortal-time bias):
- none: Kaplan-Meier of the cohort (optionally by strata, log-rank across strata);
- naive: ever vs never received X, indexed at the cohort index. Biased; returned with a warning;
- new-user: X line vs another systemic line, each indexed at the start of that line (episode 32531);
  the comparator is censored when X starts; a person may contribute to both arms (robust variance);
- landmark: only persons alive and under observation at index + L; exposure fixed by then; time from L;
- time-varying: Cox model with X as a time-varying covariate (lifelines CoxTimeVaryingFitter).
"""

from __future__ import annotations

import math
import warnings as py_warnings

import numpy as np
import pandas as pd

from ctcl_map.store.database import Database
from ctcl_map.survival import cohorts
from ctcl_map.survival.adjust import adjusted_comparison, adjusted_time_varying, convergence_notes
from ctcl_map.survival.baseline import add_baseline_covariates
from ctcl_map.survival.circe import run_circe_cohort
from ctcl_map.survival.concept_sets import sql_ids
from ctcl_map.survival.covariates import STAGE_ORDER, covariates_at_index
from ctcl_map.survival.followup import read_cohort_followup, time_to_death, time_varying_rows
from ctcl_map.survival.km import kaplan_meier, median_with_ci
from ctcl_map.survival.spec import (
    DAYS_PER_MONTH,
    DAYS_PER_YEAR,
    AttritionStep,
    GroupSummary,
    Restrictions,
    SurvivalResult,
    SurvivalSpec,
)

NAIVE_WARNING = (
    "IMMORTAL-TIME BIAS: 'ever vs never received {x}' indexed at the cohort index credits the "
    "exposed with the time they survived before starting {x} (they had to live long enough to get "
    "it). The exposed arm looks better than it is. Use --design new-user, landmark or time-varying."
)


# -- estimates -----------------------------------------------------------------------------------
def summarise_group(label: str, time: np.ndarray, event: np.ndarray, spec: SurvivalSpec) -> GroupSummary:
    curve = kaplan_meier(time, event, spec.conf_type)
    median, low, high = median_with_ci(curve)
    at_times = []
    for years in spec.survival_years:
        value = curve.value_at(years * DAYS_PER_YEAR)
        at_times.append({
            "years": years,
            "survival": None if value is None else value[0],
            "lower": None if value is None else value[1],
            "upper": None if value is None else value[2],
            "at_risk": curve.number_at_risk(years * DAYS_PER_YEAR),
        })
    return GroupSummary(label, len(time), int(np.sum(event)), int(len(event) - np.sum(event)),
                        median, low, high, at_times, curve)


def logrank(frame: pd.DataFrame, group_column: str = "group") -> dict | None:
    """Log-rank test across the groups (lifelines multivariate_logrank_test); None for < 2 groups."""
    from lifelines.statistics import multivariate_logrank_test

    if frame[group_column].nunique() < 2:
        return None
    result = multivariate_logrank_test(frame["time_days"], frame[group_column], frame["event"])
    return {
        "statistic": float(result.test_statistic),
        "df": int(result.degrees_of_freedom),
        "p_value": float(result.p_value),
        "groups": sorted(str(g) for g in frame[group_column].unique()),
    }


def cox_hazard_ratio(frame: pd.DataFrame, covariate: str = "exposed", strata: list[str] | None = None,
                     cluster: str | None = None) -> dict | None:
    """Cox PH (lifelines, Efron ties) HR of `covariate` (0/1) with 95 % CI; None if not estimable."""
    from lifelines import CoxPHFitter

    columns = ["time_days", "event", covariate] + (strata or []) + ([cluster] if cluster else [])
    data = frame[columns].dropna()
    # Each arm needs a death: without one the partial likelihood has no maximum (HR 0 or infinity).
    if data[covariate].nunique() < 2 or (data.groupby(covariate)["event"].sum() == 0).any():
        return None
    fitter = CoxPHFitter()
    with py_warnings.catch_warnings(record=True) as caught:
        py_warnings.simplefilter("always")
        fitter.fit(data, duration_col="time_days", event_col="event", strata=strata or None,
                   cluster_col=cluster, robust=cluster is not None)
    row = fitter.summary.loc[covariate]
    if not all(math.isfinite(float(row[name])) and float(row[name]) > 0
               for name in ("exp(coef)", "exp(coef) lower 95%", "exp(coef) upper 95%")):
        return None
    return _cox_dict(row, covariate, caught) | {
        "persons": int(len(data)),
        "events": int(data["event"].sum()),
        "model": "Cox PH (Efron ties)" + (f", stratified by {', '.join(strata)}" if strata else "")
                 + (", robust variance clustered by person" if cluster else ""),
    }


def _cox_dict(row, covariate: str, caught: list) -> dict:
    """The estimate, plus lifelines' convergence warnings (first line each) so they reach the user."""
    notes = convergence_notes(caught)
    return {
        "covariate": covariate,
        "hazard_ratio": float(row["exp(coef)"]),
        "lower": float(row["exp(coef) lower 95%"]),
        "upper": float(row["exp(coef) upper 95%"]),
        "p_value": float(row["p"]),
        "fit_warnings": notes,
    }


def cox_time_varying(long: pd.DataFrame, strata: list[str] | None = None) -> dict | None:
    """HR of `exposed` as a time-varying covariate; long = person_id, start, stop, exposed, event
    (+ the strata columns: rows with an unknown stratum are left out, as in the other designs)."""
    from lifelines import CoxTimeVaryingFitter

    long = long[["person_id", "start", "stop", "exposed", "event", *(strata or [])]].dropna()
    if long["exposed"].nunique() < 2 or long["event"].sum() == 0:
        return None
    fitter = CoxTimeVaryingFitter()
    with py_warnings.catch_warnings(record=True) as caught:
        py_warnings.simplefilter("always")
        fitter.fit(long, id_col="person_id", event_col="event", start_col="start", stop_col="stop",
                   strata=strata or None)
    row = fitter.summary.loc["exposed"]
    return _cox_dict(row, "exposed (time-varying)", caught) | {
        "persons": int(long["person_id"].nunique()),
        "events": int(long["event"].sum()),
        "model": "Cox with time-varying exposure (lifelines CoxTimeVaryingFitter)"
                 + (f", stratified by {', '.join(strata)}" if strata else ""),
    }


# -- cohorts and exposure ------------------------------------------------------------------------
def first_exposure_dates(db: Database, ingredient: str) -> pd.DataFrame:
    """person_id, exposure_date: first drug_exposure of the ingredient or a descendant."""
    ids = cohorts.drug_concepts(db, ingredient)
    frame = db.query_df(
        f"SELECT person_id, MIN(drug_exposure_start_date) AS exposure_date FROM {db.table('drug_exposure')} "
        f"WHERE drug_concept_id IN ({sql_ids(ids)}) GROUP BY person_id"
    )
    frame["exposure_date"] = pd.to_datetime(frame["exposure_date"])
    return frame


def _base_cohort(db: Database, spec: SurvivalSpec, written: list[str], vocabulary_warnings: list[str]
                 ) -> tuple[int, str, list[AttritionStep], Restrictions]:
    """Build the target cohort; returns id, name, attrition and restrictions still to apply."""
    if spec.circe_json:
        run = run_circe_cohort(db, spec.circe_json, cohort_id=spec.cohort_id)
        written.extend([run.id_source, run.written])
        vocabulary_warnings.extend(run.warnings)
        count = len(read_cohort_followup(db, run.cohort_id))
        return run.cohort_id, run.name, [AttritionStep(run.name, "persons in the Circe cohort", count, count)], spec.restrictions
    build = cohorts.build_cohort(db, cohorts.built_in(spec.cohort, spec.include_unconfirmed), spec.restrictions, spec.covariate_grace_days,
                                 spec.cohort_id)
    written.append(build.written)
    return build.cohort_definition_id, build.name, build.attrition, Restrictions()


def _followup(db: Database, spec: SurvivalSpec, cohort_id: int, label: str, restrictions: Restrictions,
              censor_on_exit: bool = False) -> tuple[pd.DataFrame, list[AttritionStep]]:
    raw = read_cohort_followup(db, cohort_id)
    frame, steps = time_to_death(raw, label, spec.admin_end, spec.min_survival_days, censor_on_exit)
    # the cohort builder already counted the observation-period step; repeat it only if it bites
    steps = [s for s in steps if s.dropped or s.step != "index date inside an observation period"]
    frame = covariates_at_index(db, frame, spec.covariate_grace_days, spec.include_unconfirmed)
    if restrictions.describe():  # Circe cohorts: our restrictions apply after Circe's own rules
        frame, more = cohorts.apply_restrictions(frame, restrictions, label)
        steps.extend(more)
    return frame, steps


# -- designs ---------------------------------------------------------------------------------------
def run_survival(db: Database, spec: SurvivalSpec) -> SurvivalResult:
    spec.check()
    written: list[str] = []
    warnings: list[str] = []
    cohort_id, name, attrition, pending = _base_cohort(db, spec, written, warnings)
    x = spec.compare
    if spec.design == "new-user":
        frame, steps = _new_user(db, spec, cohort_id, warnings, written)
        attrition.extend(steps)
    else:
        frame, steps = _followup(db, spec, cohort_id, name, pending)
        attrition.extend(steps)
        if spec.design in ("naive", "landmark", "time-varying"):
            assert x is not None  # spec.check(): every design but "none" names the exposure
            exposure = first_exposure_dates(db, x)
            frame = frame.merge(exposure, on="person_id", how="left")
            frame["exposure_day"] = (frame["exposure_date"] - frame["index_date"]).dt.days
        if spec.design == "naive":
            warnings.append(NAIVE_WARNING.format(x=x))
            frame["exposed"] = (frame["exposure_date"].notna() & (frame["exposure_date"] <= frame["end_date"])).astype(int)
        elif spec.design == "landmark":
            frame, step = _landmark(frame, spec, name)
            attrition.append(step)
        elif spec.design == "time-varying":
            frame["exposed"] = 0  # KM is of the whole cohort; the exposure enters the Cox model only
    if spec.adjust:
        frame = add_baseline_covariates(db, frame, spec.covariate_grace_days)
    if spec.design in ("naive", "landmark", "new-user"):
        assert x is not None  # spec.check(): every design but "none" names the exposure
        frame["group"] = np.where(frame["exposed"] == 1, x, _unexposed_label(spec))
    else:
        frame["group"] = "all"
    result = SurvivalResult(spec, name, spec.design, attrition, [], warnings=warnings, written=written, persons=frame)
    _estimate(result, frame, spec)
    return result


def _unexposed_label(spec: SurvivalSpec) -> str:
    if spec.design == "new-user":
        return f"{spec.comparator or 'other systemic line'} (no {spec.compare})"
    return f"no {spec.compare}"


def _landmark(frame: pd.DataFrame, spec: SurvivalSpec, name: str) -> tuple[pd.DataFrame, AttritionStep]:
    landmark = int(round(spec.landmark_months * DAYS_PER_MONTH))
    before = len(frame)
    kept = frame[frame["time_days"] > landmark].copy()
    kept["exposed"] = (kept["exposure_day"].notna() & (kept["exposure_day"] <= landmark)).astype(int)
    kept["time_days"] = kept["time_days"] - landmark
    step = AttritionStep(name, f"alive and under observation at the landmark (day {landmark})", before, len(kept),
                         "died or follow-up ended on or before the landmark")
    return kept.reset_index(drop=True), step


def _new_user(db: Database, spec: SurvivalSpec, base_id: int, warnings: list[str], written: list[str]
              ) -> tuple[pd.DataFrame, list[AttritionStep]]:
    x = spec.compare or ""
    target = cohorts.build_cohort(db, cohorts.line_definition(x, base_id), Restrictions(), spec.covariate_grace_days)
    comparator = cohorts.build_cohort(db, cohorts.comparator_definition(x, spec.comparator, base_id), Restrictions(),
                                      spec.covariate_grace_days)
    steps = target.attrition + comparator.attrition
    written.extend([target.written, comparator.written])
    exposed, s1 = _followup(db, spec, target.cohort_definition_id, target.name, Restrictions())
    unexposed, s2 = _followup(db, spec, comparator.cohort_definition_id, comparator.name, Restrictions(),
                              censor_on_exit=True)
    exposed["exposed"], unexposed["exposed"] = 1, 0
    frame = pd.concat([exposed, unexposed], ignore_index=True)
    both = int(frame["person_id"].duplicated().sum())
    if both:
        warnings.append(
            f"{both} person(s) contribute to both arms: comparator time before starting {x}, then {x} time; "
            "the Cox model uses a robust (clustered by person) variance."
        )
    return frame, steps + s1 + s2


_CATEGORY_ORDER = {value: rank for rank, value in enumerate(
    ("MF", "SS", "low", "intermediate", "high", "male", "female") + STAGE_ORDER)}


def _curve_order(group: pd.DataFrame, strata: list[str]) -> tuple:
    """Exposed arm first, then strata in their natural order (IA..IVB, low..high), unknown last."""
    first = group.iloc[0]
    key: list = [-int(first.get("exposed", 0) or 0)]
    for column in strata:
        value = first[column]
        key.append((_CATEGORY_ORDER.get(value, 90) if pd.notna(value) else 99, str(value)))
    return tuple(key)


def _estimate(result: SurvivalResult, frame: pd.DataFrame, spec: SurvivalSpec) -> None:
    strata = list(spec.strata)
    parts = [] if (frame["group"] == "all").all() else [frame["group"].astype(str)]
    parts += [column + "=" + frame[column].fillna("unknown").astype(str) for column in strata]
    label = parts[0] if parts else frame["group"].astype(str)
    for part in parts[1:]:
        label = label + " | " + part
    frame["curve"] = label
    if frame.empty:
        result.warnings.append("no persons left to analyse: see the attrition table")
        return
    for curve_label, grp in sorted(frame.groupby("curve", sort=False), key=lambda item: _curve_order(item[1], strata)):
        summary = summarise_group(str(curve_label), grp["time_days"].to_numpy(), grp["event"].to_numpy(), spec)
        result.groups.append(summary)
        if summary.events == 0:
            result.warnings.append(f"{curve_label}: no deaths observed; survival cannot be estimated below 1")
    compare = spec.design in ("naive", "landmark", "new-user")
    result.logrank = logrank(frame, "group" if compare else "curve")
    if compare:
        cluster = "person_id" if frame["person_id"].duplicated().any() else None
        result.cox = cox_hazard_ratio(frame, "exposed", strata or None, cluster)
        if result.cox is None:
            result.warnings.append("hazard ratio not estimable (one arm empty or no deaths)")
    elif spec.design == "time-varying":
        result.cox = cox_time_varying(time_varying_rows(frame, strata), strata or None)
        if result.cox is None:
            result.warnings.append("hazard ratio not estimable (nobody exposed during follow-up, or no deaths)")
    elif strata:
        result.strata_cox = strata_hazard_ratios(frame, [g.label for g in result.groups])
    if result.cox:
        result.warnings.extend(f"Cox model: {note}" for note in result.cox["fit_warnings"])
    if spec.adjust:
        if spec.design == "time-varying":
            result.adjusted = adjusted_time_varying(frame, spec.adjust, spec.missing, strata or None)
        else:
            result.adjusted = adjusted_comparison(frame, spec.adjust, spec.method, spec.missing, strata or None)
        result.warnings.extend(result.adjusted["warnings"])


def strata_hazard_ratios(frame: pd.DataFrame, order: list[str]) -> dict | None:
    """Without an exposure: Cox HR of each curve (stratum) against the first, as R's
    coxph(Surv(time, event) ~ group) with the first curve as the reference level."""
    from lifelines import CoxPHFitter

    levels = [label for label in order if (frame["curve"] == label).any()]
    if len(levels) < 2 or frame["event"].sum() == 0:
        return None
    reference = levels[0]
    names = {level: f"g{i}" for i, level in enumerate(levels[1:])}
    data = frame[["time_days", "event"]].copy()
    for level, name in names.items():
        data[name] = (frame["curve"] == level).astype(float)
    fitter = CoxPHFitter()
    with py_warnings.catch_warnings(record=True) as caught:
        py_warnings.simplefilter("always")
        fitter.fit(data, duration_col="time_days", event_col="event")
    rows = []
    for level, name in names.items():
        row = fitter.summary.loc[name]
        deaths = int(frame.loc[frame["curve"] == level, "event"].sum())
        finite = all(math.isfinite(float(row[c])) for c in ("exp(coef) lower 95%", "exp(coef) upper 95%"))
        rows.append({"group": level, "hazard_ratio": float(row["exp(coef)"]) if deaths else None,
                     "lower": float(row["exp(coef) lower 95%"]) if deaths and finite else None,
                     "upper": float(row["exp(coef) upper 95%"]) if deaths and finite else None,
                     "p_value": float(row["p"]) if deaths else None, "events": deaths})
    return {
        "reference": reference, "rows": rows,
        "likelihood_ratio": {"statistic": float(fitter.log_likelihood_ratio_test().test_statistic),
                             "df": len(names), "p_value": float(fitter.log_likelihood_ratio_test().p_value)},
        "model": "Cox PH (Efron ties), one indicator per stratum, reference = the first stratum "
                 "(as R coxph(Surv(time, event) ~ group))",
        "fit_warnings": convergence_notes(caught),
    }
