"""Treatment sequences: skin-directed first, systemic lines once advanced, mogamulizumab at a
pre-planned date (the same date the survival model used, so its effect is time-varying), ECP and
allogeneic SCT as procedures. Lines are monotherapies that never overlap: each new systemic
ingredient starts a new line, so the line numbers in the truth are unambiguous."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from ctcl_map.synthetic.model import DrugCourse, ProcedureCourse

SYSTEMIC_WEIGHTS = {
    "mf": {"bexarotene": 0.20, "interferon alfa-2b": 0.12, "methotrexate": 0.15, "brentuximab vedotin": 0.15,
           "gemcitabine": 0.13, "romidepsin": 0.13, "vorinostat": 0.12},
    "ss": {"bexarotene": 0.25, "interferon alfa-2b": 0.15, "methotrexate": 0.25, "romidepsin": 0.12,
           "brentuximab vedotin": 0.10, "gemcitabine": 0.08, "vorinostat": 0.05},
}
EARLY_SYSTEMIC = ("bexarotene", "interferon alfa-2b", "methotrexate")
MEAN_LINE_DAYS = {"mogamulizumab": 300, "brentuximab vedotin": 220, "romidepsin": 180, "gemcitabine": 120,
                  "bexarotene": 270, "interferon alfa-2b": 240, "methotrexate": 300, "vorinostat": 180}
RENEWAL_DAYS = 90  # oral/SC/topical prescriptions are renewed every 3 months
MAX_LINES = 8


@dataclass(frozen=True)
class TreatmentInputs:
    subtype: str
    stage_at_diagnosis: str
    t_at_diagnosis: str
    diagnosis_date: date
    first_advanced_date: date | None  # latent (may lie after follow-up end)
    mogamulizumab_date: date | None  # latent planned start
    followup_end: date
    alive_at_end: bool
    age_at_advanced: float | None
    weight_kg: float
    bsa_m2: float


def _days(rng: random.Random, low: int, high: int) -> timedelta:
    return timedelta(days=rng.randint(low, high))


def _iv_schedule(drug: str, start: date, end: date, weight_kg: float, bsa_m2: float) -> tuple[list[date], list[float]]:
    """Infusion days and doses (mg) per label-like schedule, up to ``end`` (exclusive)."""
    span = (end - start).days
    if drug == "mogamulizumab":  # 1 mg/kg weekly x4 (cycle 1), then days 1 and 15 of 28-day cycles
        offsets = [0, 7, 14, 21] + list(range(28, span, 14))
        dose = round(weight_kg * 1.0, 1)
    elif drug == "brentuximab vedotin":  # 1.8 mg/kg (max 180 mg) every 3 weeks, up to 16 doses
        offsets = list(range(0, 21 * 16, 21))
        dose = round(min(1.8 * weight_kg, 180.0), 1)
    elif drug == "romidepsin":  # 14 mg/m2 days 1, 8, 15 of 28
        offsets = [c * 28 + d for c in range(span // 28 + 1) for d in (0, 7, 14)]
        dose = round(14 * bsa_m2, 1)
    else:  # gemcitabine 1000 mg/m2 days 1, 8, 15 of 28
        offsets = [c * 28 + d for c in range(span // 28 + 1) for d in (0, 7, 14)]
        dose = round(1000 * bsa_m2, 0)
    days = [start + timedelta(days=o) for o in offsets if o < span]
    return days, [dose] * len(days)


def make_drug_course(drug: str, line_number: int, start: date, planned_end: date, horizon: date,
                     weight_kg: float, bsa_m2: float) -> DrugCourse | None:
    """A course truncated at ``horizon`` (death/censoring); None when nothing happens before it."""
    end = min(planned_end, horizon)
    if start >= end:
        return None
    from ctcl_map.synthetic.codes import DRUGS
    if DRUGS[drug]["route"] == "IV":
        days, doses = _iv_schedule(drug, start, end, weight_kg, bsa_m2)
        return DrugCourse(drug, line_number, start, end, tuple(days), tuple(doses))
    renewals = tuple(start + timedelta(days=d) for d in range(0, (end - start).days, RENEWAL_DAYS))
    return DrugCourse(drug, line_number, start, end, renewals, ())


def _phototherapy_or_gel(rng: random.Random, stage: str) -> str:
    if stage == "IA":
        return rng.choices(("chlormethine", "nbuvb", "puva"), (0.5, 0.35, 0.15))[0]
    return rng.choices(("nbuvb", "puva", "chlormethine"), (0.4, 0.35, 0.25))[0]


def _skin_directed(rng: random.Random, inputs: TreatmentInputs, horizon: date,
                   drugs: list[DrugCourse], procedures: list[ProcedureCourse]) -> None:
    start = inputs.diagnosis_date + _days(rng, 14, 60)
    advanced_at_dx = inputs.first_advanced_date == inputs.diagnosis_date
    if advanced_at_dx:
        if inputs.subtype == "mf" and inputs.t_at_diagnosis[:2] in ("T3", "T4") and rng.random() < 0.35:
            procedures.append(_procedure_course("tsebt", start, start + _days(rng, 42, 63), horizon))
        return
    kinds = [_phototherapy_or_gel(rng, inputs.stage_at_diagnosis)]
    if rng.random() < 0.4:
        second = "tsebt" if inputs.stage_at_diagnosis != "IA" and rng.random() < 0.3 else _phototherapy_or_gel(rng, "IB")
        if second != kinds[0]:
            kinds.append(second)
    for kind in kinds:
        if start >= horizon:
            return
        if kind == "chlormethine":
            course = make_drug_course("chlormethine", 0, start, start + _days(rng, 180, 365), horizon,
                                      inputs.weight_kg, inputs.bsa_m2)
            if course:
                drugs.append(course)
            start = start + _days(rng, 240, 540)
        else:
            length = (42, 63) if kind == "tsebt" else (60, 120)
            procedures.append(_procedure_course(kind, start, start + _days(rng, *length), horizon))
            start = start + _days(rng, 150, 540)


def _procedure_course(kind: str, start: date, end: date, horizon: date) -> ProcedureCourse:
    """A course documented as one Procedure with a performedPeriod (end cut at the horizon)."""
    return ProcedureCourse(kind, start, max(min(end, horizon), start), (start,))


def _ecp(rng: random.Random, inputs: TreatmentInputs, horizon: date) -> ProcedureCourse | None:
    """ECP for erythrodermic disease: every 2 weeks for 3 months, then every 4 weeks."""
    erythrodermic = inputs.subtype == "ss" or inputs.t_at_diagnosis.startswith("T4")
    if inputs.first_advanced_date is None or not erythrodermic or rng.random() > (0.6 if inputs.subtype == "ss" else 0.3):
        return None
    start = inputs.first_advanced_date + _days(rng, 30, 90)
    end = min(start + _days(rng, 180, 720), horizon)
    offsets = list(range(0, 84, 14)) + list(range(84, 3000, 28))
    sessions = tuple(start + timedelta(days=o) for o in offsets if start + timedelta(days=o) < end)
    return ProcedureCourse("ecp", start, end, sessions) if sessions else None


def plan_treatments(rng: random.Random, inputs: TreatmentInputs) -> tuple[list[DrugCourse], list[ProcedureCourse]]:
    """All courses that start before follow-up ends (``inputs.followup_end``, exclusive)."""
    horizon = inputs.followup_end
    drugs: list[DrugCourse] = []
    procedures: list[ProcedureCourse] = []
    _skin_directed(rng, inputs, horizon, drugs, procedures)
    used: set[str] = set()
    line = 0
    advanced = inputs.first_advanced_date
    if inputs.stage_at_diagnosis in ("IB", "IIA") and rng.random() < 0.2:
        start = inputs.diagnosis_date + _days(rng, 180, 1000)
        if advanced is None or start + timedelta(days=60) < advanced:
            drug = EARLY_SYSTEMIC[rng.randrange(3)]
            planned_end = start + timedelta(days=max(60, int(rng.expovariate(1 / MEAN_LINE_DAYS[drug]))))
            if advanced is not None:
                planned_end = min(planned_end, advanced - timedelta(days=14))
            course = make_drug_course(drug, line + 1, start, planned_end, horizon, inputs.weight_kg, inputs.bsa_m2)
            if course:
                line += 1
                used.add(drug)
                drugs.append(course)
    if advanced is None or advanced >= horizon:
        return drugs, procedures
    ecp = _ecp(rng, inputs, horizon)
    if ecp:
        procedures.append(ecp)
    moga_date = inputs.mogamulizumab_date
    sct_eligible = (inputs.age_at_advanced or 99) < 65 and rng.random() < 0.12
    cursor = advanced + _days(rng, 14, 60)
    while cursor < horizon and line < MAX_LINES:
        if moga_date is not None and "mogamulizumab" not in used and cursor >= moga_date - timedelta(days=30):
            drug, cursor = "mogamulizumab", moga_date
        else:
            weights = {d: w for d, w in SYSTEMIC_WEIGHTS[inputs.subtype].items() if d not in used}
            if not weights:
                break
            drug = rng.choices(list(weights), list(weights.values()))[0]
        duration = max(42 if drug == "mogamulizumab" else 60, int(rng.expovariate(1 / MEAN_LINE_DAYS[drug])))
        planned_end = cursor + timedelta(days=duration)
        if (drug != "mogamulizumab" and moga_date is not None and "mogamulizumab" not in used
                and planned_end > moga_date - timedelta(days=14)):
            planned_end = moga_date - timedelta(days=14)  # switch to mogamulizumab at its planned date
            if (planned_end - cursor).days < 30:
                cursor = moga_date
                continue
        course = make_drug_course(drug, line + 1, cursor, planned_end, horizon, inputs.weight_kg, inputs.bsa_m2)
        if course is None:
            break
        line += 1
        used.add(drug)
        drugs.append(course)
        cursor = course.end + _days(rng, 14, 60)
        moga_far = moga_date is None or "mogamulizumab" in used or moga_date > cursor + timedelta(days=240)
        if sct_eligible and line >= 2 and cursor < horizon and moga_far:  # SCT never delays mogamulizumab
            procedures.append(_procedure_course("allo_sct", cursor, cursor + timedelta(days=1), horizon))
            sct_eligible = False
            cursor = cursor + _days(rng, 150, 240)
    return drugs, procedures
