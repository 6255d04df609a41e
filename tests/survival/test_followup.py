"""Follow-up rules on a hand-made CDM: observation-period censoring, deaths outside it, attrition."""

from __future__ import annotations

from datetime import date

import pytest

from ctcl_map.survival import SurvivalSpec, run_survival

MF = 4040380  # Mycosis fungoides (SNOMED 118618005)

DX = date(2015, 1, 1)


def _followup_rules_cdm(cdm) -> None:
    """Eight MF patients diagnosed 2015-01-01; each exercises one follow-up rule."""
    cdm.person(1, death=date(2016, 1, 1))  # death inside the period: event at 365 days
    cdm.person(2, obs=(date(2010, 1, 1), date(2017, 1, 1)))  # alive: censored at period end, 731 days
    cdm.person(3, obs=(date(2010, 1, 1), date(2016, 7, 1)), death=date(2018, 1, 1))  # death after period end
    cdm.person(4, obs=(date(2010, 1, 1), date(2020, 12, 31)))  # diagnosed 2009: index outside the period
    cdm.person(5, death=date(2014, 12, 1))  # death recorded before the diagnosis
    cdm.person(6, death=DX)  # death on the index day: 0 days of follow-up
    cdm.person(7, death=date(2019, 1, 1))  # event at 1461 days, or censored by an administrative end
    cdm.person(8, death=date(2017, 1, 1))  # event at 731 days, tied with person 2's censoring
    for person_id in range(1, 9):
        cdm.condition(person_id, MF, date(2009, 6, 1) if person_id == 4 else DX)


def test_follow_up_ends_at_death_or_period_end_and_ignores_deaths_outside_the_period(cdm):
    _followup_rules_cdm(cdm)
    result = run_survival(cdm.db, SurvivalSpec(cohort="mf"))
    persons = result.persons.set_index("person_id")
    assert sorted(persons.index) == [1, 2, 3, 7, 8]
    # person 3: death 2018 lies after the period end 2016-07-01 -> censored at 365 + 182 = 547 days
    assert (persons.loc[3, "time_days"], persons.loc[3, "event"]) == (547, 0)
    # person 2: censored at 2017-01-01: 365 + 366 (2016 is a leap year) = 731 days
    assert (persons.loc[2, "time_days"], persons.loc[2, "event"]) == (731, 0)
    assert (persons.loc[1, "time_days"], persons.loc[1, "event"]) == (365, 1)
    assert (persons.loc[8, "time_days"], persons.loc[8, "event"]) == (731, 1)
    assert (persons.loc[7, "time_days"], persons.loc[7, "event"]) == (1461, 1)  # 365+366+365+365

    # KM: t=365 5 at risk, 1 death -> 0.8; t=547 censoring; t=731 3 at risk (the censoring at 731
    # is at risk), 1 death -> 0.8 * 2/3 = 0.5333; t=1461 1 at risk, 1 death -> 0. Median = 1461.
    (group,) = result.groups
    assert (group.persons, group.events, group.censored) == (5, 3, 2)
    assert group.curve.survival.tolist() == pytest.approx([1, 0.8, 0.8, 0.8 * 2 / 3, 0])
    assert group.median_days == 1461
    one_year = group.at_times[0]
    assert one_year["survival"] == pytest.approx(0.8) and one_year["at_risk"] == 4

    steps = {(a.step, a.persons_before, a.persons_after) for a in result.attrition}
    assert ("persons with a qualifying entry event", 8, 8) in steps
    assert ("index date inside an observation period", 8, 7) in steps  # person 4
    assert ("alive at the index date", 7, 6) in steps  # person 5
    assert ("follow-up of at least 1 day(s)", 6, 5) in steps  # person 6


def test_administrative_end_censors_later_deaths(cdm):
    _followup_rules_cdm(cdm)
    result = run_survival(cdm.db, SurvivalSpec(cohort="mf", admin_end=date(2018, 1, 1)))
    persons = result.persons.set_index("person_id")
    # person 7 died 2019-01-01, after the administrative end: censored at 365+366+365 = 1096 days
    assert (persons.loc[7, "time_days"], persons.loc[7, "event"]) == (1096, 0)
    (group,) = result.groups
    # S stays at 0.8 * 2/3 = 0.533 after day 731: the median is not reached
    assert group.events == 2 and group.median_days is None


def test_index_after_the_administrative_end_is_dropped_with_a_reason(cdm):
    _followup_rules_cdm(cdm)
    result = run_survival(cdm.db, SurvivalSpec(cohort="mf", admin_end=date(2014, 12, 31)))
    step = next(a for a in result.attrition if a.step.startswith("index date on/before the administrative end"))
    assert (step.persons_before, step.persons_after, step.reason) == (6, 0, "index date after the administrative end date")
    assert result.groups == [] and "no persons left to analyse" in result.warnings[0]
