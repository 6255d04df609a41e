"""B category under the 2007 and 2022 rules at the thresholds, with and without a clone."""

import pytest

from ctcl_map.ctcl.blood import derive_b_category


# 2022: CD4+CD26- (or CD4+CD7-) absolute counts: B0 < 250 <= B1 < 1000 <= B2 (with clone).
@pytest.mark.parametrize("count,clone,expected", [
    (249, None, "B0"), (249, False, "B0a"), (249, True, "B0b"),
    (250, None, "B1"), (250, False, "B1a"), (250, True, "B1b"),
    (999, None, "B1"), (999, False, "B1a"), (999, True, "B1b"),
    (1000, True, "B2"),
    (1000, False, "B1a"),  # count met, clone criterion not: B2 not met
    (1000, None, None),  # B1 or B2 undecidable without the clone
    (0, True, "B0b"),
])
@pytest.mark.parametrize("marker", ["cd4cd26neg_per_ul", "cd4cd7neg_per_ul"])
def test_2022_thresholds(marker, count, clone, expected):
    result = derive_b_category(**{marker: count}, clone_positive=clone, rules="2022")
    assert result.category == expected
    assert result.rules == "2022"
    assert ("clone_positive" in result.missing) == (clone is None)


def test_2022_uses_the_higher_of_the_two_counts():
    result = derive_b_category(cd4cd26neg_per_ul=200, cd4cd7neg_per_ul=1200, clone_positive=True, rules="2022")
    assert result.category == "B2"
    assert result.decided_by == ("cd4cd7neg_per_ul>=1000", "clone_positive")


def test_2022_ignores_morphological_sezary_counts_and_ratio():
    result = derive_b_category(sezary_per_ul=5000, cd4_cd8_ratio=30, clone_positive=True, rules="2022")
    assert result.category is None
    assert result.missing == ("cd4cd26neg_per_ul", "cd4cd7neg_per_ul")


def test_2022_reports_the_absent_count():
    result = derive_b_category(cd4cd26neg_per_ul=300, clone_positive=False, rules="2022")
    assert result.category == "B1a"
    assert result.missing == ("cd4cd7neg_per_ul",)


# 2007: B2 = clone AND >= 1000 Sezary cells/uL (or the alternatives); else B0/B1 by <= / > 5 %.
@pytest.mark.parametrize("sezary,clone,expected", [
    (999, True, "B1b"),  # 999/2000 = 50 % > 5 %: B1, count below B2
    (1000, True, "B2"),
    (999, False, "B1a"),
    (1000, False, "B1a"),  # count met without a clone: B2 not met
    (999, None, "B1"),
    (1000, None, None),
])
def test_2007_b2_threshold(sezary, clone, expected):
    result = derive_b_category(sezary_per_ul=sezary, lymphocytes_per_ul=2000, clone_positive=clone, rules="2007")
    assert result.category == expected
    assert result.rules == "2007"


@pytest.mark.parametrize("sezary,lymphocytes,clone,expected", [
    (249, 5000, None, "B0"),  # 4.98 %
    (250, 5000, None, "B0"),  # exactly 5 %: B0 is <= 5 %
    (251, 5000, None, "B1"),  # 5.02 %
    (249, 5000, True, "B0b"),
    (250, 5000, False, "B0a"),
    (250, 4999, True, "B1b"),  # 5.001 %
])
def test_2007_five_percent_boundary_from_counts(sezary, lymphocytes, clone, expected):
    assert derive_b_category(sezary_per_ul=sezary, lymphocytes_per_ul=lymphocytes, clone_positive=clone).category == expected


@pytest.mark.parametrize("pct,expected", [(5.0, "B0a"), (5.1, "B1a"), (0, "B0a")])
def test_2007_percentage_given_directly(pct, expected):
    assert derive_b_category(sezary_pct_lymphocytes=pct, clone_positive=False).category == expected


@pytest.mark.parametrize("kwargs,criterion", [
    ({"cd4_cd8_ratio": 10}, "cd4_cd8_ratio>=10"),
    ({"cd4cd7neg_per_ul": 400, "lymphocytes_per_ul": 1000}, "cd4cd7neg>=40%_of_lymphocytes"),
    ({"cd4cd26neg_per_ul": 300, "lymphocytes_per_ul": 1000}, "cd4cd26neg>=30%_of_lymphocytes"),
])
def test_2007_alternative_b2_criteria(kwargs, criterion):
    result = derive_b_category(sezary_per_ul=100, clone_positive=True, **kwargs)
    assert result.category == "B2"
    assert criterion in result.decided_by


@pytest.mark.parametrize("kwargs", [
    {"cd4_cd8_ratio": 9.99},
    {"cd4cd7neg_per_ul": 399, "lymphocytes_per_ul": 1000},
    {"cd4cd26neg_per_ul": 299, "lymphocytes_per_ul": 1000},
])
def test_2007_alternative_criteria_just_below(kwargs):
    kwargs.setdefault("lymphocytes_per_ul", 1000)
    result = derive_b_category(sezary_per_ul=100, clone_positive=True, **kwargs)
    assert result.category == "B1b"  # 100/1000 = 10 % Sezary cells


def test_2007_without_a_percentage_is_not_decided():
    result = derive_b_category(sezary_per_ul=500, clone_positive=True)
    assert result.category is None
    assert "sezary_pct_lymphocytes or sezary_per_ul+lymphocytes_per_ul" in result.missing


def test_2007_b2_does_not_need_lymphocytes():
    result = derive_b_category(sezary_per_ul=1500, clone_positive=True)
    assert (result.category, result.missing) == ("B2", ())


def test_unknown_rule_set():
    with pytest.raises(ValueError, match="unknown B rule set"):
        derive_b_category(sezary_per_ul=1, rules="2011")
