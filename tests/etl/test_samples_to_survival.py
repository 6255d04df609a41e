"""The whole chain: generator cohort -> fhir2omop -> survival recovers the generator's known truth.

samples/cohort-500 was written by the generator with a fixed seed; truth.json holds the true
medians computed from the simulation's exact (uncensored) death times. The CDM only sees what a
hospital would export, censored at the end of follow-up, so the Kaplan-Meier medians must contain
the true medians in their 95 % confidence intervals, and the immortal-time-safe designs must
contain the true mogamulizumab hazard ratio, while the naive ever/never comparison does not.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from ctcl_map.survival import SurvivalSpec, run_survival

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
COHORT = SAMPLES / "cohort-500"
ADMIN_END = date(2024, 12, 31)  # the generator's administrative censoring date (truth.json parameters)


@pytest.fixture(scope="module")
def cohort_cdm(fresh_db, load):
    database = fresh_db()
    load(database, COHORT / "fhir", mapping_dirs=[SAMPLES / "site-mappings"], oncology=True)
    yield database
    database.close()


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads((COHORT / "truth.json").read_text())


def _medians_in_years(result) -> dict[str, tuple[float, float, float]]:
    return {g.label.split("=")[-1].lower(): (g.median_days / 365.25, g.median_lower_days / 365.25, g.median_upper_days / 365.25)
            for g in result.groups}


def test_truth_parameters_match_the_assumed_end_date(truth):
    assert truth["parameters"]["end_date"] == ADMIN_END.isoformat()


@pytest.mark.parametrize("cohort, strata, truth_path", [
    ("ctcl", (), ("true_os_from_diagnosis", "all")),
    ("ctcl", ("ctcl_type",), ("true_os_from_diagnosis", "by_subtype")),
    ("advanced", ("clipi_group",), ("true_os_from_first_advanced", "by_clipi_group")),
])
def test_kaplan_meier_medians_contain_the_true_medians(cohort_cdm, truth, cohort, strata, truth_path):
    result = run_survival(cohort_cdm, SurvivalSpec(cohort=cohort, strata=strata, admin_end=ADMIN_END))
    section = truth[truth_path[0]][truth_path[1]]
    expected = {"all": section["median_years"]} if "median_years" in section else {k: v["median_years"] for k, v in section.items()}
    found = _medians_in_years(result) if strata else {"all": _medians_in_years(result).popitem()[1]}
    assert set(found) == set(expected)
    for group, true_median in expected.items():
        median, lower, upper = found[group]
        assert lower <= true_median <= upper, f"{cohort} {group}: true {true_median:.2f} y outside [{lower:.2f}, {upper:.2f}] (KM {median:.2f})"


@pytest.mark.parametrize("design", ["time-varying", "new-user"])
def test_defensible_designs_contain_the_true_mogamulizumab_effect(cohort_cdm, truth, design):
    result = run_survival(cohort_cdm, SurvivalSpec(cohort="advanced", compare="mogamulizumab", design=design, admin_end=ADMIN_END))
    true_hr = truth["parameters"]["mogamulizumab_hr"]
    assert result.cox["lower"] <= true_hr <= result.cox["upper"]


def test_naive_ever_never_is_biased_and_warns(cohort_cdm, truth):
    result = run_survival(cohort_cdm, SurvivalSpec(cohort="advanced", compare="mogamulizumab", design="naive", admin_end=ADMIN_END))
    assert any("immortal" in warning.lower() for warning in result.warnings)
    assert result.cox["upper"] < truth["parameters"]["mogamulizumab_hr"]  # the bias makes the drug look better than it is
