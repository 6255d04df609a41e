"""Exposure designs (naive with warning, landmark, time-varying, new user), strata and outputs."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pandas as pd
import pytest
from lifelines import CoxTimeVaryingFitter

from ctcl_map.errors import SurvivalSpecError
from ctcl_map.survival import SurvivalSpec, plot, render, result_dict, run_survival
from ctcl_map.survival.followup import time_varying_rows

MF = 4040380  # Mycosis fungoides (SNOMED 118618005)
SS = 4041799  # Sezary's disease (SNOMED 118611004)
MOGAMULIZUMAB = 35200202
BEXAROTENE = 1389888

DX = date(2015, 1, 1)
START = date(2010, 1, 1)


def _day(n: int) -> date:
    return DX + timedelta(days=n)


@pytest.fixture
def exposure_cdm(duckdb_cdm):
    """Six MF patients diagnosed on DX; mogamulizumab days and outcomes chosen per design rule."""
    cdm = duckdb_cdm()
    cdm.person(1, death=_day(400))  # A: moga day 30, dies day 400
    cdm.drug(1, MOGAMULIZUMAB, _day(30))
    cdm.person(2, death=_day(500))  # B: moga day 300 (after a 183-day landmark), dies day 500
    cdm.drug(2, MOGAMULIZUMAB, _day(300))
    cdm.person(3, death=_day(100))  # C: dies day 100, before the landmark
    cdm.person(4, obs=(START, _day(183)))  # D: follow-up ends on the landmark day
    cdm.person(5, obs=(START, _day(1000)))  # E: alive, censored day 1000
    cdm.person(6, obs=(START, _day(2000)))  # F: alive, censored day 2000
    for person_id in range(1, 7):
        cdm.condition(person_id, MF, DX)
    yield cdm
    cdm.db.close()


def _by_group(result) -> dict[str, list[tuple[int, int, int]]]:
    out: dict[str, list] = {}
    for r in result.persons.sort_values("person_id").itertuples():
        out.setdefault(r.group, []).append((int(r.person_id), int(r.time_days), int(r.event)))
    return out


def test_naive_ever_vs_never_is_flagged_as_immortal_time_biased(exposure_cdm):
    result = run_survival(exposure_cdm.db, SurvivalSpec(cohort="mf", compare="mogamulizumab", design="naive"))
    assert any("IMMORTAL-TIME BIAS" in w for w in result.warnings)
    assert _by_group(result) == {
        "mogamulizumab": [(1, 400, 1), (2, 500, 1)],
        "no mogamulizumab": [(3, 100, 1), (4, 183, 0), (5, 1000, 0), (6, 2000, 0)],
    }


def test_landmark_keeps_those_alive_and_observed_and_fixes_exposure_at_the_landmark(exposure_cdm):
    # 6 months = round(6 * 365.25 / 12) = round(182.625) = 183 days
    result = run_survival(exposure_cdm.db, SurvivalSpec(cohort="mf", compare="mogamulizumab", design="landmark",
                                                        landmark_months=6))
    assert not any("IMMORTAL" in w for w in result.warnings)
    # C died on day 100 and D's follow-up ended on day 183: both dropped. B starts moga on day 300,
    # after the landmark, so B is unexposed. Times restart at the landmark: A 400-183 = 217, ...
    assert _by_group(result) == {
        "mogamulizumab": [(1, 217, 1)],
        "no mogamulizumab": [(2, 317, 1), (5, 817, 0), (6, 1817, 0)],
    }
    step = result.attrition[-1]
    assert (step.step, step.persons_before, step.persons_after) == (
        "alive and under observation at the landmark (day 183)", 6, 4)
    medians = {g.label: g.median_days for g in result.groups}
    assert medians == {"mogamulizumab": 217.0, "no mogamulizumab": None}  # unexposed: S = 2/3 at the end


@pytest.mark.filterwarnings("ignore::lifelines.exceptions.ConvergenceWarning")
def test_time_varying_exposure_splits_follow_up_at_first_exposure(exposure_cdm):
    result = run_survival(exposure_cdm.db, SurvivalSpec(cohort="mf", compare="mogamulizumab",
                                                        design="time-varying"))
    rows = time_varying_rows(result.persons).sort_values(["person_id", "start"])
    expected = [(1, 0, 30, 0, 0), (1, 30, 400, 1, 1), (2, 0, 300, 0, 0), (2, 300, 500, 1, 1),
                (3, 0, 100, 0, 1), (4, 0, 183, 0, 0), (5, 0, 1000, 0, 0), (6, 0, 2000, 0, 0)]
    assert [tuple(int(v) for v in r) for r in rows.itertuples(index=False)] == expected
    direct = CoxTimeVaryingFitter().fit(
        pd.DataFrame(expected, columns=["person_id", "start", "stop", "exposed", "event"]),
        id_col="person_id", event_col="event", start_col="start", stop_col="stop")
    assert result.cox["hazard_ratio"] == pytest.approx(float(direct.hazard_ratios_["exposed"]), rel=1e-6)
    assert (result.cox["persons"], result.cox["events"]) == (6, 3)
    assert [g.label for g in result.groups] == ["all"]


def test_new_user_active_comparator_indexes_at_line_start_and_censors_at_switch(duckdb_cdm):
    cdm = duckdb_cdm()
    for person_id in range(1, 6):
        cdm.person(person_id, death={1: date(2016, 8, 1), 2: date(2015, 12, 1), 3: date(2017, 1, 15)}.get(person_id))
        cdm.condition(person_id, MF, DX)
    cdm.line(1, 1, date(2015, 2, 1), BEXAROTENE)  # comparator line, then switches to moga
    cdm.line(1, 2, date(2015, 8, 1), MOGAMULIZUMAB)
    cdm.line(2, 1, date(2015, 3, 1), MOGAMULIZUMAB)
    cdm.line(3, 1, date(2015, 1, 15), BEXAROTENE)  # comparator only, dies 2017-01-15
    cdm.drug(4, MOGAMULIZUMAB, date(2015, 5, 1))  # moga before its only line: in neither arm
    cdm.line(4, 1, date(2015, 6, 1), BEXAROTENE)
    cdm.line(5, 1, date(2014, 6, 1), BEXAROTENE)  # line before the MF index: in neither arm
    result = run_survival(cdm.db, SurvivalSpec(cohort="mf", compare="mogamulizumab", design="new-user"))
    comparator = "other systemic line (no mogamulizumab)"
    assert _by_group(result) == {
        # person 1: 2015-08-01 -> death 2016-08-01 = 366 days (leap year); person 2: 2015-03-01 ->
        # 2015-12-01 = 31+30+31+30+31+31+30+31+30 = 275 days
        "mogamulizumab": [(1, 366, 1), (2, 275, 1)],
        # person 1: 2015-02-01 -> switch 2015-08-01 = 28+31+30+31+30+31 = 181 days, censored;
        # person 3: 2015-01-15 -> death 2017-01-15 = 365 + 366 (2016 is a leap year) = 731 days
        comparator: [(1, 181, 0), (3, 731, 1)],
    }
    assert any("1 person(s) contribute to both arms" in w for w in result.warnings)
    # both arms have a death, so the HR is estimable; person 1 is in both arms: robust variance
    assert "robust variance" in result.cox["model"]


def test_strata_split_the_curves_and_the_logrank_compares_them(duckdb_cdm):
    cdm = duckdb_cdm()
    for person_id in range(1, 7):
        ss = person_id > 3
        cdm.person(person_id, death=_day(100 * person_id) if person_id != 3 else None)
        cdm.condition(person_id, SS if ss else MF, DX)
    result = run_survival(cdm.db, SurvivalSpec(cohort="ctcl", strata=("ctcl_type",)))
    assert [(g.label, g.persons, g.events) for g in result.groups] == [
        ("ctcl_type=MF", 3, 2), ("ctcl_type=SS", 3, 3)]
    assert result.logrank["groups"] == ["ctcl_type=MF", "ctcl_type=SS"]


def test_strata_curves_come_in_natural_order_low_intermediate_high_unknown(duckdb_cdm):
    cdm = duckdb_cdm()
    for person_id, answer in ((1, "CLIPI-HIGH"), (2, "CLIPI-LOW"), (3, None), (4, "CLIPI-INT")):
        cdm.person(person_id, death=_day(100 * person_id))
        cdm.condition(person_id, MF, DX)
        if answer:
            cdm.clipi(person_id, DX, answer)
    result = run_survival(cdm.db, SurvivalSpec(cohort="mf", strata=("clipi_group",)))
    assert [g.label for g in result.groups] == [
        "clipi_group=low", "clipi_group=intermediate", "clipi_group=high", "clipi_group=unknown"]


@pytest.mark.parametrize("spec, message", [
    (SurvivalSpec(design="landmark"), "needs an exposure"),
    (SurvivalSpec(compare="mogamulizumab"), "--compare needs a design"),
    (SurvivalSpec(strata=("colour",)), "unknown stratum 'colour'"),
    (SurvivalSpec(cohort="lymphoma"), "unknown cohort 'lymphoma'"),
])
def test_requests_that_cannot_run_say_why(spec, message, duckdb_cdm):
    cdm = duckdb_cdm()
    with pytest.raises(SurvivalSpecError, match=message):
        run_survival(cdm.db, spec)


def test_outputs_json_csv_table_and_plot(exposure_cdm, tmp_path):
    result = run_survival(exposure_cdm.db, SurvivalSpec(cohort="mf", compare="mogamulizumab", design="naive"))
    data = json.loads(render(result, "json"))
    assert data == json.loads(json.dumps(result_dict(result), default=str))
    assert [g["group"] for g in data["groups"]] == ["mogamulizumab", "no mogamulizumab"]
    # deaths at 400 and 500: S = 1/2 on [400, 500), then 0: the R midpoint rule gives 450
    assert data["groups"][0]["median_days"] == 450.0
    assert data["groups"][0]["curve"]["survival"] == [1.0, 0.5, 0.0]
    assert data["warnings"] and data["cox"]["hazard_ratio"] > 0
    csv_path = tmp_path / "os.csv"
    render(result, "csv", csv_path)
    table = pd.read_csv(csv_path)
    assert list(table["group"]) == ["mogamulizumab", "no mogamulizumab"]
    assert list(table["persons"]) == [2, 4] and "survival_1y" in table.columns
    text = render(result, "table", tmp_path / "os.txt")
    assert "Attrition" in text and "IMMORTAL-TIME BIAS" in text
    written = plot(result, tmp_path / "km")
    assert [p.suffix for p in written] == [".png", ".svg"]
    assert written[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in written[1].read_text(encoding="utf-8")[:400]


def test_hazard_ratio_not_estimable_when_an_arm_has_no_death():
    """One exposed survivor: lifelines would return HR 0 with CI [0, inf]; we report 'not estimable'."""
    import pandas as pd

    from ctcl_map.survival.analysis import cox_hazard_ratio

    frame = pd.DataFrame({"time_days": [100, 200, 300, 400, 500], "event": [0, 1, 1, 0, 1], "exposed": [1, 0, 0, 0, 0]})
    assert cox_hazard_ratio(frame) is None
    both_arms_die = pd.DataFrame({"time_days": [100, 200, 300, 400, 500, 600], "event": [1, 1, 0, 0, 1, 1],
                                  "exposed": [1, 0, 0, 1, 0, 0]})
    estimate = cox_hazard_ratio(both_arms_die)
    assert estimate is not None and 0 < estimate["lower"] < estimate["hazard_ratio"] < estimate["upper"]
