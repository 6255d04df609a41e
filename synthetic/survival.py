"""Hazards calibrated to published 5-year OS, and death times under a time-varying treatment effect.

Model (see synthetic/README.md): death = the earlier of a CTCL death and a background
(Gompertz, age-dependent) death. For the CTCL part, before progression an early-stage patient
(IA, IB, IIA) dies at a constant hazard per stage and progresses to advanced stage at a constant
rate per stage; from the date of first advanced stage the hazard is ``ADVANCED_HAZARD[CLIPI
group] x ADVANCED_STAGE_FACTOR[stage group at that date]``; mogamulizumab multiplies the CTCL
hazard by ``hr`` from its start on.

The constants below were fitted with ``python -m ctcl_map.synthetic.calibrate`` (20,000
patients, hr = 1, background mortality included) to PROCLIPI 5-year OS (ctcl-domain.md §2.4):
early stage from diagnosis, advanced stage at diagnosis from diagnosis, CLIPI group from first
advanced stage. The stage and CLIPI
margins share patients and cannot both be met exactly; the fit leaves them within about 5 points
(IA stays near 93 %: background mortality plus progression alone already cost more than the
published 5.2 %, in line with IA survival close to that of the general population).
"""

from __future__ import annotations

import math
import random

CLIPI_FIVE_YEAR_OS = {"low": 0.633, "intermediate": 0.447, "high": 0.183}
EARLY_FIVE_YEAR_OS = {"IA": 0.948, "IB": 0.837, "IIA": 0.734}
ADVANCED_STAGE_FIVE_YEAR_OS = {"IIB": 0.511, "IIIA": 0.623, "IIIB": 0.494, "IVA1": 0.507, "IVA2": 0.228, "IVB": 0.369}
# Yearly rate of progression to advanced stage (~11 %, 33 %, 50 % at 10 years; Agar 2010 order of magnitude).
EARLY_PROGRESSION_RATE = {"IA": 0.012, "IB": 0.04, "IIA": 0.07}
LOSS_TO_FOLLOW_UP_RATE = 0.02  # per year
# Background (non-CTCL) mortality, Gompertz h(age) = A exp(B age): roughly a Western life table
# (about 0.7 % a year at 60, 5 % at 80, 12 % at 90). An approximation, not a fitted table; it keeps
# latent death dates at plausible ages. The disease hazards below are fitted on top of it.
BACKGROUND_GOMPERTZ_A = 2.6e-5
BACKGROUND_GOMPERTZ_B = 0.094

# Fitted (calibrate.py); starting values were -ln(S5)/5 of the targets.
EARLY_HAZARD = {"IA": 0.00073, "IB": 0.01235, "IIA": 0.03516}
ADVANCED_HAZARD = {"low": 0.04227, "intermediate": 0.07698, "high": 0.16018}
ADVANCED_STAGE_FACTOR = {"IIB": 1.73537, "IIIA": 1.09506, "IIIB": 1.8784, "IVA1": 1.74912, "IVA2": 2.32835,
                         "IVB": 2.37494}


def advanced_hazard(clipi_group: str, stage_group: str) -> float:
    """Yearly hazard from first advanced stage: CLIPI-group hazard x stage factor."""
    return ADVANCED_HAZARD[clipi_group] * ADVANCED_STAGE_FACTOR[stage_group]


def sample_death_time(rng: random.Random, segments: list[tuple[float, float]],
                      treatment_start: float | None, hazard_ratio: float) -> float:
    return death_time(rng.expovariate(1.0), segments, treatment_start, hazard_ratio)


def death_time(target: float, segments: list[tuple[float, float]],
               treatment_start: float | None, hazard_ratio: float) -> float:
    """Death time (years) for piecewise-constant hazards at the Exp(1) draw ``target``.

    ``segments`` = [(start_time, hazard), ...] sorted, first start 0, last open-ended;
    from ``treatment_start`` on every hazard is multiplied by ``hazard_ratio``. Inverts the
    cumulative hazard exactly (no discretisation). The same draw with treatment_start=None gives
    the patient's counterfactual death time without treatment."""
    breakpoints = sorted({start for start, _ in segments} | ({treatment_start} if treatment_start is not None else set()))
    accumulated = 0.0
    for position, start in enumerate(breakpoints):
        hazard = [h for s, h in segments if s <= start][-1]
        if treatment_start is not None and start >= treatment_start:
            hazard *= hazard_ratio
        end = breakpoints[position + 1] if position + 1 < len(breakpoints) else math.inf
        if hazard > 0 and accumulated + hazard * (end - start) >= target:
            return start + (target - accumulated) / hazard
        accumulated += hazard * (end - start) if end != math.inf else 0.0
    return math.inf


def background_death_time(draw: float, age_years: float) -> float:
    """Years until death from background mortality for Exp(1) ``draw`` at ``age_years`` (exact
    inverse of the Gompertz cumulative hazard)."""
    scale = BACKGROUND_GOMPERTZ_A * math.exp(BACKGROUND_GOMPERTZ_B * age_years) / BACKGROUND_GOMPERTZ_B
    return math.log1p(draw / scale) / BACKGROUND_GOMPERTZ_B


def model_parameters() -> dict:
    """The calibrated numbers, for truth.json."""
    return {
        "advanced_hazard_per_year_by_clipi": ADVANCED_HAZARD,
        "advanced_hazard_factor_by_stage_at_first_advanced": ADVANCED_STAGE_FACTOR,
        "early_pre_progression_hazard_per_year": EARLY_HAZARD,
        "early_progression_rate_per_year": EARLY_PROGRESSION_RATE,
        "target_five_year_os_clipi": CLIPI_FIVE_YEAR_OS,
        "target_five_year_os_early_stage": EARLY_FIVE_YEAR_OS,
        "target_five_year_os_advanced_stage": ADVANCED_STAGE_FIVE_YEAR_OS,
        "loss_to_follow_up_rate_per_year": LOSS_TO_FOLLOW_UP_RATE,
        "background_mortality_gompertz": {"a_per_year": BACKGROUND_GOMPERTZ_A, "b_per_year_of_age": BACKGROUND_GOMPERTZ_B},
    }
