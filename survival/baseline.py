"""Baseline covariates for adjusted comparisons, judged at each row's index date.

On top of covariates.covariates_at_index (age, sex, stage_group, clipi_group, ctcl_type) this adds
the CLIPI components that are recorded as such, the number of prior lines and the calendar year:
- ldh_raised: the most recent LDH value (LOINC 2532-0 / 14804-9, by concept or, on concept 0, by
  source value) dated up to index + grace days, as for stage and CLIPI (LDH is measured at staging,
  not at every line start), raised when value_as_number > range_high (no range_high: unknown; the
  upper limit is the lab's own);
- lct: large-cell transformation, observation rows of our CTCL-map LCT concept dated up to index +
  grace days, read yes/no as the CLIPI step reads them (any yes wins; no row: unknown);
- prior_lines: Treatment Regimen episodes (32531) that started before the index date;
- index_year: calendar year of the index date.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ctcl_map.derive.clipi_step import finding_status
from ctcl_map.derive.concept_sets import LDH_CODES
from ctcl_map.store.database import Database
from ctcl_map.survival.cohorts import TREATMENT_REGIMEN
from ctcl_map.survival.concept_sets import sql_ids
from ctcl_map.survival.covariates import ctcl_concept_ids, latest_at_index


def add_baseline_covariates(db: Database, frame: pd.DataFrame, grace_days: int) -> pd.DataFrame:
    """frame (person_id, index_date, covariates_at_index columns) + ldh_raised, lct, prior_lines, index_year."""
    out = frame.copy()
    out["index_year"] = pd.to_datetime(out["index_date"]).dt.year.astype(float)
    if out.empty:
        for column in ("ldh_raised", "lct", "prior_lines"):
            out[column] = pd.Series(dtype=float)
        return out
    persons = sql_ids({int(p) for p in out["person_id"]})
    out["ldh_raised"] = _ldh_raised(db, out, persons, grace_days)
    out["lct"] = _lct(db, out, persons, grace_days)
    out["prior_lines"] = _prior_lines(db, out, persons)
    return out


def _ldh_raised(db: Database, frame: pd.DataFrame, persons: str, grace_days: int) -> pd.Series:
    codes = [code for _vocabulary, code in LDH_CODES]
    marks = ", ".join("?" for _ in codes)
    rows = db.query_df(
        f"SELECT m.person_id, m.measurement_date AS record_date, m.value_as_number, m.range_high "
        f"FROM {db.table('measurement')} m WHERE m.person_id IN ({persons}) AND m.value_as_number IS NOT NULL "
        f"AND (m.measurement_concept_id IN (SELECT concept_id FROM {db.table('concept')} "
        f"WHERE vocabulary_id = 'LOINC' AND concept_code IN ({marks})) "
        f"OR (m.measurement_concept_id = 0 AND m.measurement_source_value IN ({marks})))",
        codes + codes,
    )
    rows["value"] = [None if pd.isna(high) else float(value > high)
                     for value, high in zip(rows["value_as_number"], rows["range_high"])]
    return _latest(frame, rows, grace_days)


def _lct(db: Database, frame: pd.DataFrame, persons: str, grace_days: int) -> pd.Series:
    concept = ctcl_concept_ids(db, ("LCT",)).get("LCT")
    if concept is None:
        return pd.Series(np.nan, index=frame.index)
    rows = db.query_df(
        f"SELECT person_id, observation_date AS record_date, value_as_string, value_source_value, value_as_number "
        f"FROM {db.table('observation')} WHERE person_id IN ({persons}) AND observation_concept_id = ?",
        [concept],
    )
    statuses = [finding_status((text, source), None if pd.isna(number) else number)
                for text, source, number in zip(rows["value_as_string"], rows["value_source_value"],
                                                 rows["value_as_number"])]
    rows["value"] = [None if s is None else float(s) for s in statuses]
    found = latest_at_index(frame, rows.dropna(subset=["value"]), "value", grace_days, winner=1.0)  # any yes -> yes
    return pd.to_numeric(found, errors="coerce").astype(float)


def _prior_lines(db: Database, frame: pd.DataFrame, persons: str) -> pd.Series:
    if not db.table_exists("episode"):
        return pd.Series(0.0, index=frame.index)
    lines = db.query_df(
        f"SELECT person_id, episode_start_date FROM {db.table('episode')} "
        f"WHERE person_id IN ({persons}) AND episode_concept_id = ?",
        [TREATMENT_REGIMEN],
    )
    starts = {pid: pd.to_datetime(grp["episode_start_date"]).to_numpy() for pid, grp in lines.groupby("person_id")}
    index_dates = pd.to_datetime(frame["index_date"]).to_numpy()
    return pd.Series([float(np.sum(starts[p] < d)) if p in starts else 0.0
                      for p, d in zip(frame["person_id"], index_dates)], index=frame.index)


def _latest(frame: pd.DataFrame, rows: pd.DataFrame, grace_days: int) -> pd.Series:
    """Per frame row: the value of the latest record dated up to index + grace_days (same day: raised wins)."""
    rows = rows.dropna(subset=["value"]).sort_values(["record_date", "value"])
    return pd.to_numeric(latest_at_index(frame, rows, "value", grace_days), errors="coerce").astype(float)
