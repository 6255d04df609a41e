"""CLIPI (PROCLIPI, Blood 2025) on hand-checked patients, missing components included."""

import pytest

from ctcl_map.ctcl.clipi import clipi


@pytest.mark.parametrize("patient,n,age,ldh,lct,score,group", [
    # all four known
    ("62y IIB, normal LDH, no LCT", "N0", 62, False, False, 1, "low"),
    ("55y, nothing", "N1", 55, False, False, 0, "low"),
    ("exactly 60 is not > 60", "N2a", 60, True, False, 1, "low"),
    ("60.5y with raised LDH", "N2", 60.5, True, False, 2, "intermediate"),
    ("N3 + LCT, 45y", "N3", 45, False, True, 2, "intermediate"),
    ("N3 + 70y + LDH", "N3", 70, True, False, 3, "high"),
    ("all four", "N3", 81, True, True, 4, "high"),
])
def test_complete_patients(patient, n, age, ldh, lct, score, group):
    result = clipi(n, age, ldh, lct)
    assert (result.score, result.group, result.missing) == (score, group, ())


def test_missing_ldh_with_three_points_is_still_high():
    result = clipi("N3", 72, None, True)
    assert (result.score, result.group, result.missing) == (None, "high", ("ldh_raised",))
    assert (result.min_score, result.max_score) == (3, 4)


def test_missing_lct_with_one_point_is_undetermined():
    result = clipi("N0", 65, False, None)  # 1 or 2 points: low or intermediate
    assert (result.score, result.group, result.missing) == (None, None, ("large_cell_transformation",))


def test_missing_one_with_zero_points_is_low():
    result = clipi("N1", 50, None, False)  # 0 or 1: low either way
    assert (result.score, result.group) == (None, "low")


def test_nx_makes_n3_unknown():
    result = clipi("NX", 70, True, None)
    assert result.missing == ("n3", "large_cell_transformation")
    assert result.group is None  # 2..4 points


def test_everything_missing():
    result = clipi(None, None, None, None)
    assert (result.score, result.group, result.min_score, result.max_score) == (None, None, 0, 4)
    assert result.missing == ("n3", "age_over_60", "ldh_raised", "large_cell_transformation")


def test_invalid_n():
    with pytest.raises(ValueError):
        clipi("N7", 50, False, False)


# Age at the index date as the CDM person row gives it (staging.clipi_step.age_at).
from datetime import date, datetime  # noqa: E402

from ctcl_map.derive.clipi_step import age_at  # noqa: E402


@pytest.mark.parametrize("birth,day,age", [
    ((1950, 3, 10, None), date(2010, 3, 9), 59.0),  # the day before the 60th birthday
    ((1950, 3, 10, None), date(2010, 3, 10), 60.0),
    ((1950, 3, 10, None), date(2011, 3, 10), 61.0),
    ((1950, None, None, datetime(1950, 3, 10, 8, 0)), date(2011, 3, 9), 60.0),
    ((1961, None, None, None), date(2021, 1, 5), 60.0),  # 59 or 60: not > 60 either way
    ((1960, None, None, None), date(2021, 1, 5), None),  # 60 or 61: undetermined
    ((1940, None, None, None), date(2021, 1, 5), 80.0),  # 80 or 81: > 60 either way
    ((None, None, None, None), date(2021, 1, 5), None),
    ((1950, 2, 30, None), date(2010, 6, 1), 60.0),  # impossible day: year only, 59 or 60: not > 60
    ((1950, 2, 30, None), date(2011, 6, 1), None),  # year only, 60 or 61: undetermined
    ((1940, 2, 30, None), date(2010, 6, 1), 69.0),  # year only, 69 or 70: > 60 either way
])
def test_age_at(birth, day, age):
    assert age_at(birth, day) == age
