"""`ctcl-map survival`: OHDSI-style cohorts and overall-survival analyses over an OMOP CDM v5.4.

Entry points for the CLI: run_survival(db, spec) -> SurvivalResult, render(result, fmt, out),
plot(result, path_stem) -> [png, svg].
"""

from ctcl_map.survival.analysis import run_survival
from ctcl_map.survival.plot import plot
from ctcl_map.survival.report import render, result_dict
from ctcl_map.survival.spec import Restrictions, SurvivalResult, SurvivalSpec

__all__ = [
    "Restrictions",
    "SurvivalResult",
    "SurvivalSpec",
    "plot",
    "render",
    "result_dict",
    "run_survival",
]
