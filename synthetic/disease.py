"""Stage categories, blood values, LDH and LCT for one staging assessment.

T/N/M/B are drawn first; the stage group is then derived (olsen.py), never drawn directly,
so every written set is consistent unless the messy mode deliberately breaks it.
"""

from __future__ import annotations

import random
from datetime import date

from ctcl_map.synthetic.model import StagingSet
from ctcl_map.synthetic.olsen import derive_stage_group

# Stage group at diagnosis (MF roughly PROCLIPI: 77 % early; SS is T4 B2 by definition).
DIAGNOSIS_STAGE_WEIGHTS = {
    "mf": {"IA": 0.30, "IB": 0.33, "IIA": 0.10, "IIB": 0.11, "IIIA": 0.04, "IIIB": 0.03,
           "IVA1": 0.03, "IVA2": 0.04, "IVB": 0.02},
    "ss": {"IVA1": 0.75, "IVA2": 0.17, "IVB": 0.08},
}
# Stage group reached at first progression of early-stage MF.
PROGRESSION_STAGE_WEIGHTS = {"IIB": 0.45, "IIIA": 0.10, "IIIB": 0.08, "IVA1": 0.12, "IVA2": 0.15, "IVB": 0.10}


def weighted_choice(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _pick(rng: random.Random, options: tuple[str, ...]) -> str:
    return options[rng.randrange(len(options))]


def _t_at_least(rng: random.Random, options: tuple[str, ...], min_t: int) -> str:
    allowed = tuple(o for o in options if int(o[1]) >= min_t)
    return _pick(rng, allowed or (f"T{min_t}",))


def _with_t_suffix(rng: random.Random, t: str) -> str:
    return t + _pick(rng, ("a", "b")) if t in ("T1", "T2") else t


def _with_n_suffix(rng: random.Random, n: str) -> str:
    return n + _pick(rng, ("a", "b")) if n in ("N1", "N2") else n


def sample_categories(rng: random.Random, group: str, subtype: str, min_t: int = 1) -> tuple[str, str, str, str]:
    """T, N, M, B (with clone suffixes) that stage as ``group``; T never below ``min_t``."""
    clone_b = lambda base: base + ("b" if rng.random() < 0.3 else "a")  # noqa: E731
    if subtype == "ss":
        t, b = "T4", "B2"
    elif group in ("IA", "IB"):
        t, b = ("T1" if group == "IA" else "T2"), clone_b("B0" if rng.random() < 0.93 else "B1")
    elif group == "IIA":
        t, b = _t_at_least(rng, ("T1", "T2"), min_t), clone_b("B0" if rng.random() < 0.85 else "B1")
    elif group == "IIB":
        t, b = "T3", clone_b("B0" if rng.random() < 0.8 else "B1")
    elif group in ("IIIA", "IIIB"):
        t, b = "T4", clone_b("B0" if group == "IIIA" else "B1")
    elif group == "IVA1":
        t, b = _t_at_least(rng, ("T2", "T3", "T4", "T4"), min_t), "B2"
    else:  # IVA2, IVB: any T, any B
        t = _t_at_least(rng, ("T2", "T3", "T3", "T4"), min_t)
        b = "B2" if rng.random() < 0.2 else clone_b("B0" if rng.random() < 0.7 else "B1")
    if group == "IVB":
        n, m = _pick(rng, ("N0", "N1", "N2", "N3")), "M1"
    elif group == "IVA2":
        n, m = "N3", "M0"
    elif group in ("IA", "IB"):
        n, m = "N0", "M0"
    elif group == "IIA":
        n, m = _pick(rng, ("N1", "N1", "N2")), "M0"
    else:
        n, m = _pick(rng, ("N0", "N0", "N1", "N2")), "M0"
    return _with_t_suffix(rng, t), _with_n_suffix(rng, n), m, b


def blood_values(rng: random.Random, b: str) -> tuple[int, int, float, bool, int, float]:
    """Sezary cells/uL, CD4+CD26- cells/uL, CD4:CD8 ratio, blood clone, lymphocytes/uL and Sezary
    cells % of lymphocytes, consistent with B under both rule sets:
    2007: B0 <= 5 % Sezary cells, B1 > 5 %, B2 clone plus >= 1000 Sezary cells/uL (or CD4:CD8 >= 10,
    or CD4+CD26- >= 30 % of lymphocytes); 2022: CD4+CD26- < 250 / 250-999 / >= 1000 with clone.
    B0/B1 values stay clear of every B2 criterion (ratio < 10, CD4+CD26- < 25 % of lymphocytes)."""
    base = b[:2]
    clone = b.endswith("b") or base == "B2"
    if base == "B0":
        lymphocytes = rng.randrange(1200, 4000, 10)
        percent = round(rng.uniform(0.0, 5.0), 1)
        count = int(percent * lymphocytes / 100)
        cd26 = min(int(count * rng.uniform(0.9, 1.0)), 240)
        ratio = round(rng.uniform(0.8, 4.0), 1)
    elif base == "B1":
        count = rng.randint(260, 980)
        cd26 = max(255, min(int(count * rng.uniform(0.9, 1.0)), 990))
        lymphocytes = rng.randrange(max(1200, cd26 * 4 + 10), 4010, 10)
        percent = round(count * 100 / lymphocytes, 1)
        ratio = round(rng.uniform(2.0, 8.5), 1)
    else:
        count = int(rng.lognormvariate(8.0, 0.8)) + 1000
        cd26 = count + rng.randint(0, 300)
        lymphocytes = count + rng.randrange(300, 2500, 10)
        percent = round(count * 100 / lymphocytes, 1)
        ratio = round(rng.uniform(10.5, 60.0), 1)
    return count, cd26, ratio, clone, lymphocytes, percent


def ldh_value(rng: random.Random, upper_limit: int, advanced: bool, n3_or_m1: bool) -> int:
    raised_probability = 0.55 if n3_or_m1 else (0.35 if advanced else 0.08)
    if rng.random() < raised_probability:
        return rng.randint(upper_limit + 5, upper_limit * 3)
    return rng.randint(upper_limit // 2, upper_limit - 5)


def make_staging(rng: random.Random, staging_date: date, categories: tuple[str, str, str, str],
                 ldh_upper_limit: int, lct: bool) -> StagingSet:
    t, n, m, b = categories
    group = derive_stage_group(t, n, m, b)
    sezary, cd26, ratio, clone, lymphocytes, percent = blood_values(rng, b)
    advanced = group not in ("IA", "IB", "IIA")
    ldh = ldh_value(rng, ldh_upper_limit, advanced, n == "N3" or m == "M1")
    return StagingSet(staging_date, t, n, m, b, group, sezary, cd26, ratio, clone, ldh, ldh_upper_limit, lct,
                      lymphocytes, percent)
