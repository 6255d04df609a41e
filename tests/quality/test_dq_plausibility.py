"""Plausibility checks fail on deliberately broken CDMs (exact counts, boundaries on both sides) and
pass on the sound one. TODAY (DQD's GETDATE()) is 2025-01-01 in these tests."""

from __future__ import annotations

from datetime import date

from ctcl_map.store.database import Database

EHR = 32817  # Type Concept
SEZARY = 4041799


def set_condition_start(db: Database, condition_id: int, start: date) -> None:
    db.execute(f"UPDATE condition_occurrence SET condition_start_date = DATE '{start.isoformat()}' "
               f"WHERE condition_occurrence_id = {condition_id}")


def condition_for_person_3(condition_id: int, start: date) -> dict:
    return {"condition_occurrence_id": condition_id, "person_id": 3, "condition_concept_id": SEZARY,
            "condition_start_date": start, "condition_type_concept_id": EHR}


def test_plausible_value_low_for_numbers_and_dates(sound_db: Database, result, run) -> None:
    checks = ["plausibleValueLow"]
    assert {r.status for r in run(sound_db, checks, ["person", "condition_occurrence"]).results} <= {
        "pass", "not_applicable"}
    sound_db.execute("UPDATE person SET year_of_birth = 1849 WHERE person_id = 1")
    sound_db.execute("UPDATE person SET year_of_birth = 1850 WHERE person_id = 2")  # the bound itself is fine
    set_condition_start(sound_db, 1, date(1949, 12, 31))
    set_condition_start(sound_db, 2, date(1950, 1, 1))
    report = run(sound_db, checks, ["person", "condition_occurrence"])
    year = result(report, "plausibleValueLow", "person", "year_of_birth")
    start = result(report, "plausibleValueLow", "condition_occurrence", "condition_start_date")
    assert (year.status, year.num_violated, year.num_denominator, year.threshold) == ("fail", 1, 4, 1.0)
    assert (start.status, start.num_violated, start.num_denominator) == ("fail", 1, 4)
    assert "1850" in year.description


def test_plausible_value_high_uses_tomorrow_and_next_year(sound_db: Database, result, run) -> None:
    set_condition_start(sound_db, 1, date(2025, 1, 2))  # tomorrow: allowed
    set_condition_start(sound_db, 2, date(2025, 1, 3))
    sound_db.execute("UPDATE person SET year_of_birth = 2026 WHERE person_id = 1")  # YEAR(GETDATE())+1: allowed
    sound_db.execute("UPDATE person SET year_of_birth = 2027 WHERE person_id = 2")
    report = run(sound_db, ["plausibleValueHigh"], ["person", "condition_occurrence"])
    start = result(report, "plausibleValueHigh", "condition_occurrence", "condition_start_date")
    year = result(report, "plausibleValueHigh", "person", "year_of_birth")
    assert (start.status, start.num_violated, start.num_denominator) == ("fail", 1, 4)
    assert (year.status, year.num_violated, year.num_denominator) == ("fail", 1, 4)


def test_plausible_temporal_after_birth_and_start(sound_db: Database, result, run) -> None:
    # Person 4: born 1980, no birth_datetime -> DQD compares with 1980-06-01.
    set_condition_start(sound_db, 4, date(1980, 6, 1))
    report = run(sound_db, ["plausibleTemporalAfter"], ["condition_occurrence"])
    assert result(report, "plausibleTemporalAfter", "condition_occurrence", "condition_start_date").status == "pass"
    set_condition_start(sound_db, 4, date(1980, 5, 31))
    sound_db.execute("UPDATE condition_occurrence SET condition_end_date = DATE '2020-02-29' "
                     "WHERE condition_occurrence_id = 1")  # ends before it starts (2020-03-01)
    report = run(sound_db, ["plausibleTemporalAfter"], ["condition_occurrence"])
    start = result(report, "plausibleTemporalAfter", "condition_occurrence", "condition_start_date")
    end = result(report, "plausibleTemporalAfter", "condition_occurrence", "condition_end_date")
    assert (start.status, start.num_violated, start.num_denominator) == ("fail", 1, 4)
    assert (end.status, end.num_violated, end.num_denominator) == ("fail", 1, 4)


def test_plausible_during_life_and_before_death_allow_60_days(sound_db: Database, insert, result, run) -> None:
    # Person 3 died 2022-06-01; +60 days = 2022-07-31.
    insert(sound_db, "condition_occurrence", [condition_for_person_3(5, date(2022, 7, 31)),
                                              condition_for_person_3(6, date(2022, 8, 1))])
    report = run(sound_db, ["plausibleDuringLife", "plausibleBeforeDeath"], ["condition_occurrence"])
    during = result(report, "plausibleDuringLife", "condition_occurrence", "condition_start_date")
    before = result(report, "plausibleBeforeDeath", "condition_occurrence", "condition_start_date")
    # Denominator: person 3's 3 condition rows (only persons with a death record count).
    assert (during.status, during.num_violated, during.num_denominator) == ("fail", 1, 3)
    assert (before.status, before.num_violated, before.num_denominator) == ("fail", 1, 3)


def test_plausible_after_birth_uses_birth_datetime_then_year_month_day(sound_db: Database, result, run) -> None:
    sound_db.execute("UPDATE person SET birth_datetime = TIMESTAMP '1950-03-10 10:00:00' WHERE person_id = 1")
    sound_db.execute("UPDATE person SET month_of_birth = 7, day_of_birth = 15 WHERE person_id = 2")
    set_condition_start(sound_db, 1, date(1950, 3, 9))
    set_condition_start(sound_db, 2, date(1960, 7, 15))  # the birthday itself is fine
    report = run(sound_db, ["plausibleAfterBirth"], ["condition_occurrence"])
    assert result(report, "plausibleAfterBirth", "condition_occurrence", "condition_start_date").num_violated == 1
    set_condition_start(sound_db, 2, date(1960, 7, 14))
    check = result(run(sound_db, ["plausibleAfterBirth"], ["condition_occurrence"]), "plausibleAfterBirth",
                   "condition_occurrence", "condition_start_date")
    assert (check.status, check.num_violated, check.num_denominator) == ("fail", 2, 4)


def test_plausible_start_before_end(sound_db: Database, result, run) -> None:
    assert result(run(sound_db, ["plausibleStartBeforeEnd"], ["visit_occurrence"]), "plausibleStartBeforeEnd",
                  "visit_occurrence", "visit_start_date").status == "pass"
    sound_db.execute("UPDATE visit_occurrence SET visit_start_date = DATE '2020-03-05' WHERE visit_occurrence_id = 1")
    check = result(run(sound_db, ["plausibleStartBeforeEnd"], ["visit_occurrence"]), "plausibleStartBeforeEnd",
                   "visit_occurrence", "visit_start_date")
    assert (check.status, check.num_violated, check.num_denominator) == ("fail", 1, 4)


def test_within_visit_dates_allows_one_week_either_side(sound_db: Database, result, run) -> None:
    # Visits run 2020-03-01 .. 2020-03-02.
    set_condition_start(sound_db, 1, date(2020, 2, 22))  # 8 days before the start
    set_condition_start(sound_db, 2, date(2020, 2, 23))  # 7 days before: allowed
    set_condition_start(sound_db, 3, date(2020, 3, 10))  # 8 days after the end
    set_condition_start(sound_db, 4, date(2020, 3, 9))  # 7 days after: allowed
    check = result(run(sound_db, ["withinVisitDates"], ["condition_occurrence"]), "withinVisitDates",
                   "condition_occurrence", "condition_start_date")
    assert (check.status, check.num_violated, check.num_denominator, check.threshold) == ("fail", 2, 4, 5.0)


def test_observation_period_overlap_counts_persons_with_overlapping_or_adjacent_periods(
    sound_db: Database, insert, result, run,
) -> None:
    def period(period_id: int, person_id: int, start: date, end: date) -> dict:
        return {"observation_period_id": period_id, "person_id": person_id, "observation_period_start_date": start,
                "observation_period_end_date": end, "period_type_concept_id": EHR}

    assert result(run(sound_db, ["measureObservationPeriodOverlap"]), "measureObservationPeriodOverlap",
                  "observation_period").status == "pass"
    insert(sound_db, "observation_period", [
        period(11, 1, date(2024, 1, 1), date(2024, 6, 1)),  # back-to-back with 2015-01-01..2023-12-31
        period(12, 2, date(2024, 1, 2), date(2024, 6, 1)),  # one free day in between: fine
        period(13, 4, date(2020, 1, 1), date(2020, 6, 1)),  # inside the first period
    ])
    check = result(run(sound_db, ["measureObservationPeriodOverlap"]), "measureObservationPeriodOverlap",
                   "observation_period")
    assert (check.status, check.num_violated, check.num_denominator) == ("fail", 2, 4)
