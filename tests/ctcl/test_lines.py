"""Lines of therapy on hand-made exposure sequences."""

from datetime import date, timedelta

from ctcl_map.ctcl.lines import Exposure, Line, assign_lines

MOGA, BEXA, MTX, ROMI = 35200202, 1001, 1002, 1003
D0 = date(2020, 1, 1)


def day(n: int) -> date:
    return D0 + timedelta(days=n)


def test_single_ingredient_repeated_cycles_is_one_line():
    exposures = [Exposure(i, MOGA, day(i * 14), day(i * 14)) for i in range(1, 6)]
    assert assign_lines(exposures) == [Line(1, (MOGA,), day(14), day(70), (1, 2, 3, 4, 5))]


def test_gap_of_90_days_continues_gap_of_91_starts_new_line():
    continued = assign_lines([Exposure(1, MOGA, day(0), day(10)), Exposure(2, MOGA, day(100), day(100))])
    assert [line.exposure_ids for line in continued] == [(1, 2)]
    restarted = assign_lines([Exposure(1, MOGA, day(0), day(10)), Exposure(2, MOGA, day(101), day(101))])
    assert restarted == [
        Line(1, (MOGA,), day(0), day(10), (1,)),
        Line(2, (MOGA,), day(101), day(101), (2,)),
    ]


def test_combination_started_within_28_days_is_one_regimen():
    lines = assign_lines([Exposure(1, BEXA, day(0), day(60)), Exposure(2, MTX, day(28), day(60))])
    assert lines == [Line(1, (MTX, BEXA) if MTX < BEXA else (BEXA, MTX), day(0), day(60), (1, 2))]


def test_add_on_after_28_days_is_a_new_line_even_when_overlapping():
    lines = assign_lines([Exposure(1, BEXA, day(0), day(120)), Exposure(2, MOGA, day(29), day(29))])
    assert lines == [
        Line(1, (BEXA,), day(0), day(120), (1,)),
        Line(2, (MOGA,), day(29), day(29), (2,)),
    ]


def test_switch_and_back_counts_three_lines():
    exposures = [
        Exposure(1, BEXA, day(0), day(50)),
        Exposure(2, MOGA, day(60), day(60)),
        Exposure(3, MOGA, day(74), day(74)),
        Exposure(4, BEXA, day(100), day(150)),  # back to bexarotene 40 days into the mogamulizumab line
    ]
    assert [(line.line_number, line.ingredients, line.exposure_ids) for line in assign_lines(exposures)] == [
        (1, (BEXA,), (1,)), (2, (MOGA,), (2, 3)), (3, (BEXA,), (4,)),
    ]


def test_dropping_an_ingredient_keeps_the_line():
    exposures = [
        Exposure(1, BEXA, day(0), day(30)), Exposure(2, MTX, day(0), day(30)),
        Exposure(3, BEXA, day(40), day(80)),  # methotrexate stopped
    ]
    assert [line.exposure_ids for line in assign_lines(exposures)] == [(1, 2, 3)]


def test_gap_counts_from_latest_end_of_the_line():
    # long first exposure ends at day 200; the next starts at day 280 (80 days later): same line
    exposures = [Exposure(1, BEXA, day(0), day(200)), Exposure(2, BEXA, day(10), day(20)), Exposure(3, BEXA, day(280))]
    assert [line.exposure_ids for line in assign_lines(exposures)] == [(1, 2, 3)]


def test_non_systemic_exposures_are_ignored_and_missing_end_is_one_day():
    exposures = [
        Exposure(1, 9999, day(0), day(400), starts_systemic_line=False),
        Exposure(2, MOGA, day(5), None),
        Exposure(3, ROMI, day(200), day(210)),
    ]
    assert assign_lines(exposures) == [
        Line(1, (MOGA,), day(5), day(5), (2,)),
        Line(2, (ROMI,), day(200), day(210), (3,)),
    ]


def test_custom_windows():
    exposures = [Exposure(1, BEXA, day(0), day(0)), Exposure(2, MTX, day(10), day(10)), Exposure(3, BEXA, day(50))]
    assert [line.exposure_ids for line in assign_lines(exposures, gap_days=30, regimen_window_days=7)] == [(1,), (2,), (3,)]


def test_empty():
    assert assign_lines([]) == []


def test_ingredient_added_inside_the_window_of_a_second_line_joins_it():
    exposures = [Exposure(1, BEXA, day(0), day(50)), Exposure(2, MOGA, day(60), day(60)), Exposure(3, BEXA, day(80), day(90))]
    assert [(line.ingredients, line.exposure_ids) for line in assign_lines(exposures)] == [
        ((BEXA,), (1,)), (tuple(sorted((BEXA, MOGA))), (2, 3)),
    ]
