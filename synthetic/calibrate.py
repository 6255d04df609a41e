"""Re-derive the hazards in survival.py by fixed-point iteration on simulated cohorts.

Run ``python -m ctcl_map.synthetic.calibrate`` and paste the printed dictionaries into
survival.py. Each round simulates latent courses without the mogamulizumab effect (hr = 1, the
published figures are mostly pre-mogamulizumab) and scales every hazard by the
square root (damping: the margins share patients) of ln(target 5-year OS) / ln(simulated 5-year OS)
for its margin: early stage at diagnosis (from
diagnosis), advanced stage at diagnosis (from diagnosis), CLIPI group (from first advanced stage).
"""

from __future__ import annotations

import math

from ctcl_map.synthetic import survival
from ctcl_map.synthetic.course import simulate_course, years_between
from ctcl_map.synthetic.model import GeneratorConfig


def _five_year(times: list[float]) -> float:
    return sum(t > 5 for t in times) / len(times)


def _step(target: float, times: list[float]) -> float:
    return math.sqrt(math.log(target) / math.log(_five_year(times)))


def calibrate(patients: int = 20000, rounds: int = 10, seed: int = 20240601) -> None:
    config = GeneratorConfig(patients=patients, seed=seed, mogamulizumab_hr=1.0)
    for round_number in range(rounds):
        by_stage: dict[str, list[float]] = {}
        by_clipi: dict[str, list[float]] = {}
        for index in range(patients):
            course = simulate_course(config, index)
            by_stage.setdefault(course.stagings[0].stage_group, []).append(
                years_between(course.diagnosis_date, course.latent_death_date))
            advanced = course.latent_first_advanced_date
            if advanced is not None and advanced < course.latent_death_date:
                assert course.latent_clipi_group is not None  # scored when the first advanced stage is set
                by_clipi.setdefault(course.latent_clipi_group, []).append(years_between(advanced, course.latent_death_date))
        for stage, target in survival.EARLY_FIVE_YEAR_OS.items():
            survival.EARLY_HAZARD[stage] *= _step(target, by_stage[stage])
        for stage, target in survival.ADVANCED_STAGE_FIVE_YEAR_OS.items():
            survival.ADVANCED_STAGE_FACTOR[stage] *= _step(target, by_stage[stage])
        for group, target in survival.CLIPI_FIVE_YEAR_OS.items():
            survival.ADVANCED_HAZARD[group] *= _step(target, by_clipi[group])
        print(f"round {round_number}:",
              {s: round(_five_year(t), 3) for s, t in sorted(by_stage.items())},
              {g: round(_five_year(t), 3) for g, t in sorted(by_clipi.items())})
    for name in ("EARLY_HAZARD", "ADVANCED_STAGE_FACTOR", "ADVANCED_HAZARD"):
        print(name, "=", {k: round(v, 5) for k, v in getattr(survival, name).items()})


if __name__ == "__main__":
    calibrate()
