"""Person characteristics at an index date: age, sex, stage group, CLIPI risk group, MF vs SS.

Everything is read from standard CDM tables (plus ctcl_first_advanced) and resolved through the
vocabulary at run time: stage groups from the LOINC answer / CTCL-map STAGE-* concept names,
CLIPI from our CTCL-map concept codes. A value counts at the index date when it was recorded on
or before the index date plus a grace window (staging work-up lags diagnosis by days); the most
recent such value wins.
"""

from __future__ import annotations

import re

import pandas as pd

from ctcl_map.ctcl.olsen import ADVANCED_GROUPS, EARLY_GROUPS, GROUP_ORDER
from ctcl_map.derive.concept_sets import confirmed_condition_sql, not_of_unconfirmed_sql
from ctcl_map.store.database import Database
from ctcl_map.survival.concept_sets import resolve_concept_set, sql_ids

# The one stage order and early/advanced split are ctcl.olsen's; analyses take every group but the
# unsplit I and II, which are not strata of their own.
STAGE_ORDER = tuple(group for group in GROUP_ORDER if group not in ("I", "II"))
EARLY_STAGES = tuple(group for group in STAGE_ORDER if group in EARLY_GROUPS)
ADVANCED_STAGES = tuple(group for group in STAGE_ORDER if group in ADVANCED_GROUPS)
CLIPI_GROUPS = ("low", "intermediate", "high")
_CLIPI_ANSWER = {"CLIPI-LOW": "low", "CLIPI-INT": "intermediate", "CLIPI-HIGH": "high"}
_STAGE_TEXT = re.compile(r"^(?:STAGE[\s_-]*)?(I{1,3}V?|IV)([AB]?)([12]?)$")
# Gender concepts 8507 MALE / 8532 FEMALE: verified ids (shared/reference/vocab-concepts.csv).
_SEX = {8507: "male", 8532: "female"}


def parse_stage_group(text: str | None) -> str | None:
    """'Stage IVA1', 'STAGE-IIB', 'iiia' -> 'IVA1', 'IIB', 'IIIA'; anything else -> None."""
    if not text:
        return None
    match = _STAGE_TEXT.match(text.strip().upper().replace(" ", ""))
    if not match:
        return None
    label = "".join(match.groups())
    return label if label in STAGE_ORDER else None


def expand_stage_groups(groups: tuple[str, ...]) -> tuple[str, ...]:
    """'advanced' and 'early' stand for their stage groups; others are normalised."""
    out: list[str] = []
    for group in groups:
        key = group.strip().lower()
        if key == "advanced":
            out.extend(ADVANCED_STAGES)
        elif key == "early":
            out.extend(EARLY_STAGES)
        else:
            label = parse_stage_group(group)
            if label is None:
                raise ValueError(f"unknown stage group {group!r}: use IA..IVB, 'early' or 'advanced'")
            out.append(label)
    return tuple(dict.fromkeys(out))


def stage_answer_concepts(db: Database) -> dict[int, str]:
    """value_as_concept_id -> stage group label, for the stage answers present in the vocabulary."""
    rows = db.query(
        f"SELECT concept_id, concept_name, concept_code, vocabulary_id FROM {db.table('concept')} "
        "WHERE (vocabulary_id = 'LOINC' AND concept_name LIKE 'Stage %') "
        "OR (vocabulary_id = 'CTCL-map' AND concept_code LIKE 'STAGE-%')"
    )
    answers: dict[int, str] = {}
    for concept_id, name, code, vocabulary in rows:
        label = parse_stage_group(code if vocabulary == "CTCL-map" else name)
        if label:
            answers[int(concept_id)] = label
    return answers


def ctcl_concept_ids(db: Database, codes: tuple[str, ...]) -> dict[str, int]:
    """Our own CTCL-map concepts, looked up by concept_code (never by a written-down id)."""
    placeholders = ", ".join("?" for _ in codes)
    rows = db.query(
        f"SELECT concept_code, concept_id FROM {db.table('concept')} "
        f"WHERE vocabulary_id = 'CTCL-map' AND concept_code IN ({placeholders})",
        list(codes),
    )
    return {code: int(concept_id) for code, concept_id in rows}


def stage_records(db: Database, include_unconfirmed: bool = False) -> pd.DataFrame:
    """person_id, record_date, stage_group: stage-group measurements plus ctcl_first_advanced.
    Stages of a provisional / differential / unconfirmed diagnosis count only with include_unconfirmed."""
    answers = stage_answer_concepts(db)
    frames = []
    if answers:
        confirmed = "" if include_unconfirmed else f" AND {not_of_unconfirmed_sql(db, 'm')}"
        measured = db.query_df(
            f"SELECT person_id, measurement_date AS record_date, value_as_concept_id "
            f"FROM {db.table('measurement')} m WHERE value_as_concept_id IN ({sql_ids(set(answers))}){confirmed}"
        )
        measured["stage_group"] = measured["value_as_concept_id"].map(lambda v: answers.get(int(v)))
        frames.append(measured[["person_id", "record_date", "stage_group"]])
    if db.table_exists("ctcl_first_advanced"):
        advanced = db.query_df(
            f"SELECT person_id, first_advanced_date AS record_date, stage_group "
            f"FROM {db.table('ctcl_first_advanced')}"
        )
        advanced["stage_group"] = advanced["stage_group"].map(lambda v: parse_stage_group(str(v)) if v else None)
        frames.append(advanced)
    return _concat(frames, ["person_id", "record_date", "stage_group"])


def clipi_records(db: Database) -> pd.DataFrame:
    """person_id, record_date, clipi_group from CLIPI-RISK answers, else the CLIPI-SCORE points."""
    ids = ctcl_concept_ids(db, ("CLIPI-RISK", "CLIPI-SCORE", *_CLIPI_ANSWER))
    frames = []
    if "CLIPI-RISK" in ids:
        answer_by_id = {ids[c]: g for c, g in _CLIPI_ANSWER.items() if c in ids}
        risk = db.query_df(
            f"SELECT person_id, measurement_date AS record_date, value_as_concept_id, 0 AS priority "
            f"FROM {db.table('measurement')} WHERE measurement_concept_id = ?",
            [ids["CLIPI-RISK"]],
        )
        risk["clipi_group"] = risk["value_as_concept_id"].map(lambda v: answer_by_id.get(int(v)) if pd.notna(v) else None)
        frames.append(risk[["person_id", "record_date", "clipi_group", "priority"]])
    if "CLIPI-SCORE" in ids:
        score = db.query_df(
            f"SELECT person_id, measurement_date AS record_date, value_as_number, 1 AS priority "
            f"FROM {db.table('measurement')} WHERE measurement_concept_id = ?",
            [ids["CLIPI-SCORE"]],
        )
        score["clipi_group"] = score["value_as_number"].map(_clipi_group_from_points)
        frames.append(score[["person_id", "record_date", "clipi_group", "priority"]])
    records = _concat(frames, ["person_id", "record_date", "clipi_group", "priority"])
    # the risk group answer wins over a score recorded the same day
    records = records.sort_values(["person_id", "record_date", "priority"], ascending=[True, True, False])
    return records[["person_id", "record_date", "clipi_group"]]


def _clipi_group_from_points(points: float | None) -> str | None:
    """PROCLIPI: 0-1 low, 2 intermediate, 3-4 high (shared/reference/ctcl-domain.md 2.3)."""
    if points is None or pd.isna(points):
        return None
    if points <= 1:
        return "low"
    return "intermediate" if points == 2 else "high"


def ctcl_type_records(db: Database, include_unconfirmed: bool = False) -> pd.DataFrame:
    """person_id, record_date, ctcl_type (MF / SS) from the diagnosis concept sets."""
    frames = []
    confirmed = "" if include_unconfirmed else f" AND {confirmed_condition_sql()}"
    for label, concept_set in (("MF", "mf"), ("SS", "ss")):
        ids = resolve_concept_set(db, concept_set)
        rows = db.query_df(
            f"SELECT person_id, condition_start_date AS record_date FROM {db.table('condition_occurrence')} "
            f"WHERE condition_concept_id IN ({sql_ids(ids)}){confirmed}"
        )
        rows["ctcl_type"] = label
        frames.append(rows)
    return _concat(frames, ["person_id", "record_date", "ctcl_type"])


def covariates_at_index(db: Database, members: pd.DataFrame, grace_days: int,
                        include_unconfirmed: bool = False) -> pd.DataFrame:
    """members (person_id, index_date, ...) + age, sex, stage_group, clipi_group, ctcl_type."""
    out = members.copy()
    if out.empty:
        for column in ("age", "sex", "stage_group", "clipi_group", "ctcl_type"):
            out[column] = pd.Series(dtype=object)
        return out
    people = db.query_df(
        f"SELECT person_id, gender_concept_id, year_of_birth, month_of_birth, day_of_birth "
        f"FROM {db.table('person')} WHERE person_id IN ({sql_ids(set(out['person_id']))})"
    )
    out = out.merge(people, on="person_id", how="left")
    out["age"] = [_age(row) for row in out.itertuples()]
    out["sex"] = out["gender_concept_id"].map(lambda v: _SEX.get(int(v)) if pd.notna(v) else None)
    out = out.drop(columns=["gender_concept_id", "year_of_birth", "month_of_birth", "day_of_birth"])
    out["stage_group"] = latest_at_index(out, stage_records(db, include_unconfirmed), "stage_group", grace_days, prefer="max_stage")
    out["clipi_group"] = latest_at_index(out, clipi_records(db), "clipi_group", grace_days)
    types = ctcl_type_records(db, include_unconfirmed)
    # SS outranks MF: a person with an SS diagnosis by the index date is analysed as SS
    out["ctcl_type"] = latest_at_index(out, types, "ctcl_type", grace_days, winner="SS")
    return out


def _age(row) -> float | None:
    if pd.isna(row.year_of_birth):
        return None
    index = pd.Timestamp(row.index_date)
    month = int(row.month_of_birth) if pd.notna(row.month_of_birth) else 7
    day = int(row.day_of_birth) if pd.notna(row.day_of_birth) else 1
    birth = pd.Timestamp(year=int(row.year_of_birth), month=month, day=day)
    years = index.year - birth.year - ((index.month, index.day) < (birth.month, birth.day))
    return float(years)


def latest_at_index(
    members: pd.DataFrame, records: pd.DataFrame, column: str, grace_days: int, prefer: str | None = None,
    winner: object = None,
) -> pd.Series:
    """For each member row: the most recent non-null record dated <= index_date + grace_days.
    Ties on that date: the last record in `records` order, or the most advanced stage (max_stage).
    `winner`: this value is chosen whenever any eligible record has it (SS over MF, LCT yes over no)."""
    records = records.dropna(subset=[column])
    if records.empty or members.empty:
        return pd.Series([None] * len(members), index=members.index, dtype=object)
    records = records.assign(record_date=pd.to_datetime(records["record_date"]), order=range(len(records)))
    rows = pd.DataFrame({"row": range(len(members)), "person_id": members["person_id"].to_numpy(),
                         "limit": pd.to_datetime(members["index_date"]).to_numpy() + pd.Timedelta(days=grace_days)})
    eligible = rows.merge(records[["person_id", "record_date", column, "order"]], on="person_id")
    eligible = eligible[eligible["record_date"] <= eligible["limit"]]
    if winner is not None:
        eligible = eligible.assign(rank=(eligible[column] == winner).astype(int), record_date=0)
    elif prefer == "max_stage":
        eligible = eligible.assign(rank=eligible[column].map(STAGE_ORDER.index))
    else:
        eligible = eligible.assign(rank=eligible["order"])
    chosen = eligible.sort_values(["row", "record_date", "rank", "order"]).groupby("row").tail(1)
    values = pd.Series([None] * len(members), dtype=object)
    values.iloc[chosen["row"].to_numpy()] = chosen[column].to_numpy()
    values.index = members.index
    return values


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]
