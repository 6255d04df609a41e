"""--adjust through run_survival on hand-made CDMs: baseline covariates read at the index date,
the time-varying design's strata, the hazard ratio between strata, the JSON/CSV keys, bad requests."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pandas as pd
import pytest
from lifelines import CoxPHFitter, CoxTimeVaryingFitter
from typer.testing import CliRunner

from ctcl_map.cli import app
from ctcl_map.errors import SurvivalSpecError
from ctcl_map.store.database import connect
from ctcl_map.survival import SurvivalSpec, render, result_dict, run_survival
from ctcl_map.survival.baseline import add_baseline_covariates
from ctcl_map.survival.followup import time_varying_rows

MF = 4040380  # Mycosis fungoides (SNOMED 118618005)
SS = 4041799  # Sezary's disease (SNOMED 118611004)
MOGAMULIZUMAB = 35200202
BEXAROTENE = 1389888
EHR = 32817
FEMALE = 8532

DX = date(2015, 1, 1)
LCT = 2000000950  # test-local CTCL-map concept; the code under test finds it by concept_code


def _day(n: int) -> date:
    return DX + timedelta(days=n)


def _ldh(cdm, person_id: int, when: date, value: float, upper: float | None) -> None:
    """An LDH row as an unmapped lab arrives: concept 0, LOINC 2532-0 as the source value."""
    cdm.db.insert_rows(cdm.db.table("measurement"),
                       ["measurement_id", "person_id", "measurement_concept_id", "measurement_date",
                        "measurement_type_concept_id", "value_as_number", "range_high", "measurement_source_value"],
                       [(900000 + person_id * 1000 + when.toordinal() % 1000, person_id, 0, when, EHR, value, upper, "2532-0")])


def _lct(cdm, person_id: int, when: date, answer: str) -> None:
    cdm.db.insert_rows(cdm.db.table("observation"),
                       ["observation_id", "person_id", "observation_concept_id", "observation_date",
                        "observation_type_concept_id", "value_as_string"],
                       [(800000 + person_id * 1000 + when.toordinal() % 1000, person_id, LCT, when, EHR, answer)])


def test_baseline_covariates_are_read_as_of_the_index_date(duckdb_cdm):
    cdm = duckdb_cdm()
    cdm.db.insert_rows(cdm.db.table("concept"),
                       ["concept_id", "concept_name", "domain_id", "vocabulary_id", "concept_class_id",
                        "standard_concept", "concept_code", "valid_start_date", "valid_end_date"],
                       [(LCT, "Large-cell transformation", "Observation", "CTCL-map", "Clinical Observation", "S",
                         "LCT", date(1970, 1, 1), date(2099, 12, 31))])
    for person_id in (1, 2, 3):
        cdm.person(person_id)
    _ldh(cdm, 1, _day(-20), 400, 250)  # raised ...
    _ldh(cdm, 1, _day(-5), 200, 250)  # ... but the latest value is normal
    _ldh(cdm, 2, _day(20), 300, 250)  # within the 30-day grace: raised
    _ldh(cdm, 3, _day(10), 300, None)  # no upper limit: unknown
    _lct(cdm, 1, _day(-100), "N")
    _lct(cdm, 1, _day(-10), "Y")  # any yes wins
    _lct(cdm, 2, _day(-10), "N")
    _lct(cdm, 3, _day(60), "Y")  # after the grace window: unknown
    cdm.line(1, 1, _day(-300), BEXAROTENE)
    cdm.line(1, 2, _day(-100), BEXAROTENE)
    cdm.line(1, 3, _day(0), MOGAMULIZUMAB)  # starts on the index date: not a prior line
    cdm.line(2, 1, _day(50), BEXAROTENE)
    frame = pd.DataFrame({"person_id": [1, 2, 3], "index_date": pd.to_datetime([DX] * 3)})
    out = add_baseline_covariates(cdm.db, frame, grace_days=30)
    assert out["ldh_raised"].tolist()[:2] == [0.0, 1.0] and pd.isna(out["ldh_raised"][2])
    assert out["lct"].tolist()[:2] == [1.0, 0.0] and pd.isna(out["lct"][2])
    assert out["prior_lines"].tolist() == [2.0, 0.0, 0.0]
    assert out["index_year"].tolist() == [2015.0] * 3


@pytest.fixture
def strata_cdm(duckdb_cdm):
    return _twelve_persons(duckdb_cdm())


def _twelve_persons(cdm):
    """Twelve persons, MF and SS, six with mogamulizumab at various days, deaths in both types."""
    plan = [  # person, type, moga day, death day (None = alive to the end of observation)
        (1, MF, 30, 400), (2, MF, None, 300), (3, MF, 200, None), (4, MF, None, 900), (5, MF, 100, 1500),
        (6, MF, None, None), (7, SS, 60, 250), (8, SS, None, 150), (9, SS, 90, 700), (10, SS, None, 500),
        (11, SS, 20, None), (12, SS, None, 350),
    ]
    for person_id, kind, moga, death in plan:
        cdm.person(person_id, gender=FEMALE if person_id % 3 else 8507, death=_day(death) if death else None,
                   obs=(date(2010, 1, 1), _day(2000)))
        cdm.condition(person_id, kind, DX)
        if moga is not None:
            cdm.drug(person_id, MOGAMULIZUMAB, _day(moga))
    return cdm


def test_time_varying_design_honours_the_strata_in_its_cox_fit(strata_cdm):
    result = run_survival(strata_cdm.db, SurvivalSpec(cohort="ctcl", compare="mogamulizumab", design="time-varying",
                                                      strata=("ctcl_type",)))
    long = time_varying_rows(result.persons, ["ctcl_type"])
    direct = CoxTimeVaryingFitter().fit(long, id_col="person_id", event_col="event", start_col="start",
                                        stop_col="stop", strata=["ctcl_type"])
    unstratified = CoxTimeVaryingFitter().fit(long.drop(columns="ctcl_type"), id_col="person_id", event_col="event",
                                              start_col="start", stop_col="stop")
    assert result.cox["hazard_ratio"] == pytest.approx(float(direct.hazard_ratios_["exposed"]), rel=1e-6)
    assert result.cox["hazard_ratio"] != pytest.approx(float(unstratified.hazard_ratios_["exposed"]), rel=1e-3)
    assert "stratified by ctcl_type" in result.cox["model"]


def test_strata_without_an_exposure_report_the_hazard_ratio_between_strata(strata_cdm, tmp_path):
    result = run_survival(strata_cdm.db, SurvivalSpec(cohort="ctcl", strata=("ctcl_type",)))
    frame = result.persons
    direct = CoxPHFitter().fit(pd.DataFrame({"time_days": frame["time_days"], "event": frame["event"],
                                             "ss": (frame["ctcl_type"] == "SS").astype(float)}), "time_days", "event")
    data = result_dict(result)
    assert data["cox"] is None  # unchanged: no exposure
    assert data["strata_cox"]["reference"] == "ctcl_type=MF"
    (row,) = data["strata_cox"]["rows"]
    assert row["group"] == "ctcl_type=SS"
    assert row["hazard_ratio"] == pytest.approx(float(direct.hazard_ratios_["ss"]), rel=1e-6)
    lower, upper = direct.confidence_intervals_.loc["ss"].map(float).map(__import__("math").exp)
    assert (row["lower"], row["upper"]) == pytest.approx((lower, upper), rel=1e-6)
    assert row["p_value"] == pytest.approx(float(direct.summary.loc["ss", "p"]), rel=1e-6)
    render(result, "csv", tmp_path / "os.csv")
    table = pd.read_csv(tmp_path / "os.csv")
    assert table["strata_hr"].tolist() == pytest.approx([1.0, row["hazard_ratio"]])
    assert "Hazard ratio ctcl_type=SS vs ctcl_type=MF" in render(result, "table", tmp_path / "os.txt")


KEYS_BEFORE_ADJUSTMENT = {"cohort", "design", "spec", "attrition", "groups", "logrank", "cox", "warnings"}


@pytest.mark.parametrize("design", ["naive", "landmark", "new-user", "time-varying"])
def test_adjust_runs_for_every_design_and_only_adds_json_keys(strata_cdm, design):
    if design == "new-user":
        for person_id in range(1, 13):
            start = _day(10 + person_id)
            cdm_line = strata_cdm.line(person_id, 1, start, BEXAROTENE)
            assert cdm_line
    spec = SurvivalSpec(cohort="ctcl", compare="mogamulizumab", design=design, landmark_months=1,
                        adjust=("age", "ctcl_type", "sex"))
    data = json.loads(render(run_survival(strata_cdm.db, spec), "json"))
    assert KEYS_BEFORE_ADJUSTMENT <= set(data)
    adjusted = data["adjusted"]
    assert adjusted["method"] == "cox" and adjusted["covariates"] == ["age", "ctcl_type", "sex"]
    assert adjusted["missing_handling"] == "indicator" and set(adjusted["missing"]) == {"age", "ctcl_type", "sex"}
    assert [r["term"] for r in adjusted["balance"]["before"]][:2] == ["age", "ctcl_type"]
    assert data["spec"]["adjust"] == ["age", "ctcl_type", "sex"] and data["spec"]["method"] == "cox"


def test_propensity_methods_report_balance_after_and_the_overlap(strata_cdm):
    spec = SurvivalSpec(cohort="ctcl", compare="mogamulizumab", design="naive", adjust=("ctcl_type", "sex"),
                        method="iptw")
    adjusted = run_survival(strata_cdm.db, spec).adjusted
    assert adjusted["balance"]["after"] is not None
    assert len(adjusted["propensity"]["exposed"]) == len(adjusted["propensity"]["bin_edges"]) - 1
    assert sum(adjusted["propensity"]["exposed"]) == 6 and sum(adjusted["propensity"]["unexposed"]) == 6


@pytest.mark.parametrize("spec, message", [
    (SurvivalSpec(adjust=("age",)), "--adjust needs an exposure"),
    (SurvivalSpec(compare="mogamulizumab", design="time-varying", adjust=("age",), method="iptw"),
     "use --method cox"),
    (SurvivalSpec(compare="mogamulizumab", design="naive", adjust=("age",), method="magic"), "unknown method"),
    (SurvivalSpec(compare="mogamulizumab", design="naive", adjust=("weight",)), "unknown covariate"),
    (SurvivalSpec(compare="mogamulizumab", design="naive", adjust=("age",), missing="impute"), "complete-case"),
])
def test_adjustment_requests_that_cannot_run_say_why(spec, message):
    with pytest.raises(SurvivalSpecError, match=message):
        spec.check()


def test_cli_rejects_an_unknown_covariate_with_exit_2(tmp_path):
    outcome = CliRunner().invoke(app, ["survival", "--db", str(tmp_path / "none.duckdb"), "--compare", "x",
                                       "--adjust", "default,shoe_size"])
    assert outcome.exit_code == 2
    assert "unknown covariate 'shoe_size'" in outcome.output


def test_study_writes_one_self_contained_report_with_its_data(tmp_path, duckdb_cdm):
    from ctcl_map.survival.study import StudyOptions, run_study, write_study

    cdm = duckdb_cdm()
    for person_id in range(1, 17):
        ss = person_id % 4 == 0
        death = _day(200 + 97 * person_id) if person_id % 3 else None
        cdm.person(person_id, year_of_birth=1940 + person_id, death=death, obs=(date(2010, 1, 1), _day(2500)))
        cdm.condition(person_id, SS if ss else MF, DX)
        cdm.stage(person_id, DX, "IVA1" if ss else ("IIB" if person_id % 2 else "IA"))
        if ss or person_id % 2:
            cdm.first_advanced(person_id, DX, "IVA1" if ss else "IIB")
            cdm.clipi(person_id, DX, ("CLIPI-LOW", "CLIPI-INT", "CLIPI-HIGH")[person_id % 3])
            cdm.line(person_id, 1, _day(20), BEXAROTENE)
            if person_id % 5 in (0, 1, 3):
                cdm.line(person_id, 2, _day(90 + person_id), MOGAMULIZUMAB)
    out = tmp_path / "study"
    study = run_study(cdm.db, StudyOptions(compare="mogamulizumab", covariates=("age", "ctcl_type"), landmark_months=2))
    written = write_study(study, out)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") >= 8 and "<script" not in page and 'src="http' not in page
    for heading in ("Cohorts and attrition", "Table 1", "by CTCL type", "by stage group", "by CLIPI group",
                    "exposure comparison", "Balance", "Propensity-score overlap", "Warnings"):
        assert heading in page, heading
    data = json.loads((out / "study.json").read_text())
    assert set(data["overall_survival"]) == {"os_by_type", "os_by_stage", "os_by_clipi"}
    pairs = {(r["design"], r["method"]) for r in data["comparison"]}
    assert ("new-user", "unadjusted") in pairs and ("time-varying", "cox") in pairs and ("naive", "iptw") in pairs
    assert ("time-varying", "iptw") not in pairs
    assert {"comparison.csv", "balance.csv", "table_one.csv", "os_by_type.csv", "report.html"} <= {p.name for p in written}
    assert pd.read_csv(out / "comparison.csv").shape[0] == len(data["comparison"])


def test_cli_adjusted_survival_prints_json_and_writes_the_overlap_plot(tmp_path, small_cdm):
    path = tmp_path / "registry.duckdb"  # not cdm.duckdb: the catalog would clash with schema cdm
    cdm = _twelve_persons(small_cdm(connect(str(path), cdm_schema="cdm", results_schema="results")))
    cdm.db.close()
    outcome = CliRunner().invoke(app, [
        "survival", "--db", str(path), "--cdm-schema", "cdm", "--results-schema", "results", "--cohort", "ctcl",
        "--compare", "mogamulizumab", "--design", "naive", "--adjust", "ctcl_type,sex", "--method", "ps-stratify",
        "--json", "--plot", str(tmp_path / "km")])
    assert outcome.exit_code == 0, outcome.output
    data = json.loads(outcome.stdout)
    assert data["adjusted"]["method"] == "ps-stratify" and data["adjusted"]["balance"]["after"]
    assert (tmp_path / "km_ps_overlap.png").read_bytes()[:4] == b"\x89PNG"
