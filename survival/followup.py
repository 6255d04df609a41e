"""Time-to-death from a cohort's index date, with the OHDSI CohortSurvival follow-up rules.

Follow-up starts at cohort_start_date and ends at the first of: death; the end of the observation
period that contains the index date; the administrative end date; cohort_end_date when the arm
asks for it (censor_on_exit). A death counts only inside that observation period and on or after
the index (a death recorded after the observation period ended is not an event: the person is
censored at the period's end). Dropped, each with an attrition step: an index date outside every
observation period, a death before the index date (CohortSurvival outcomeWashout = Inf), an index
date after the administrative end, and follow-up shorter than min_survival_days (CohortSurvival
minimumSurvivalDays = 1, which drops deaths on the index day).
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from ctcl_map.store.database import Database
from ctcl_map.survival.spec import AttritionStep


def read_cohort_followup(db: Database, cohort_definition_id: int) -> pd.DataFrame:
    """person_id, index_date, cohort_end_date, op_end (NULL: index outside every period), death_date."""
    sql = (
        f"SELECT c.subject_id AS person_id, c.cohort_start_date AS index_date, c.cohort_end_date, "
        f"MAX(op.observation_period_end_date) AS op_end, MIN(d.death_date) AS death_date "
        f"FROM {db.results_table('cohort')} c "
        f"LEFT JOIN {db.table('observation_period')} op ON op.person_id = c.subject_id "
        f"AND c.cohort_start_date BETWEEN op.observation_period_start_date AND op.observation_period_end_date "
        f"LEFT JOIN {db.table('death')} d ON d.person_id = c.subject_id "
        f"WHERE c.cohort_definition_id = ? "
        f"GROUP BY c.subject_id, c.cohort_start_date, c.cohort_end_date"
    )
    frame = db.query_df(sql, [cohort_definition_id])
    for column in ("index_date", "cohort_end_date", "op_end", "death_date"):
        frame[column] = pd.to_datetime(frame[column])
    return frame.sort_values(["person_id", "index_date"]).reset_index(drop=True)


def time_to_death(
    cohort: pd.DataFrame,
    label: str,
    admin_end: date | None = None,
    min_survival_days: int = 1,
    censor_on_exit: bool = False,
) -> tuple[pd.DataFrame, list[AttritionStep]]:
    """Adds end_date, event (1 = death observed) and time_days; drops ineligible rows with attrition."""
    steps: list[AttritionStep] = []
    frame = cohort.copy()

    def keep(mask: pd.Series, step: str, reason: str) -> None:
        nonlocal frame
        before = len(frame)
        frame = frame[mask.fillna(False).astype(bool)].reset_index(drop=True)
        steps.append(AttritionStep(label, step, before, len(frame), reason))

    keep(frame["op_end"].notna(), "index date inside an observation period", "index date outside any observation period")
    keep(~(frame["death_date"] < frame["index_date"]), "alive at the index date",
         "death recorded before the index date")
    admin = pd.Timestamp(admin_end) if admin_end else None
    if admin is not None:
        keep(frame["index_date"] <= admin, f"index date on/before the administrative end {admin_end}",
             "index date after the administrative end date")
    end = frame["op_end"].copy()
    if admin is not None:
        end = end.where(end <= admin, admin)
    if censor_on_exit:
        end = end.where(end <= frame["cohort_end_date"], frame["cohort_end_date"])
    death_in_window = frame["death_date"].notna() & (frame["death_date"] <= end)
    frame["event"] = death_in_window.astype(int)
    frame["end_date"] = frame["death_date"].where(death_in_window, end)
    frame["time_days"] = (frame["end_date"] - frame["index_date"]).dt.days.astype(int)
    keep(frame["time_days"] >= min_survival_days, f"follow-up of at least {min_survival_days} day(s)",
         f"death or censoring before day {min_survival_days:d} (CohortSurvival minimumSurvivalDays)")
    return frame, steps


def time_varying_rows(frame: pd.DataFrame, extra: list[str] | None = None) -> pd.DataFrame:
    """Split each person's follow-up at first exposure: [0, x) unexposed, [x, end] exposed.
    `extra` columns (strata, baseline covariates) are copied onto both pieces."""
    extra = list(extra or [])
    rows = []
    carried_rows = frame[extra].to_numpy(dtype=object).tolist() if extra else [[]] * len(frame)
    for r, carried in zip(frame.itertuples(), carried_rows):
        x = r.exposure_day
        if pd.isna(x) or x >= r.time_days:
            rows.append((r.person_id, 0, r.time_days, 0, r.event, *carried))
        elif x <= 0:
            rows.append((r.person_id, 0, r.time_days, 1, r.event, *carried))
        else:
            rows.append((r.person_id, 0, int(x), 0, 0, *carried))
            rows.append((r.person_id, int(x), r.time_days, 1, r.event, *carried))
    return pd.DataFrame(rows, columns=["person_id", "start", "stop", "exposed", "event", *extra])
