"""ISCL/EORTC blood (B) category from raw blood values, under the 2007 or the 2022 rules.

2007 (Olsen, Blood 2007; ctcl-domain.md §1.2, B2 alternatives per the Blood 2024 letter):
  B2  = clonal TCR rearrangement in blood AND any of: >= 1000 Sezary cells/uL; CD4:CD8 >= 10;
        CD4+CD7- >= 40 % of lymphocytes; CD4+CD26- >= 30 % of lymphocytes.
  B1  = > 5 % of lymphocytes are Sezary cells, B2 not met.   B0 = <= 5 %.
  The table has no B2a/B2b (B2 requires a clone), so 2007 B2 carries no suffix.
2022 (Olsen, Blood 2022, per the 2018 EORTC proposal; ctcl-domain.md §1.4):
  absolute count of CD4+CD26- or CD4+CD7- cells ("either"): B0 < 250/uL; B1 250 to < 1000/uL;
  B2 >= 1000/uL with a relevant T-cell clone. The CD4:CD8 and percentage criteria are abolished,
  and morphological Sezary counts are not used.

Clone suffix: a = clone negative, b = clone positive (same clone as skin); none when unknown.
Policies the sources leave open (ctcl/README.md): a count that meets B2 but with a negative
clone is B1a (the B2 clone criterion fails; B1 is the "not B2" class); with an unknown clone the
category is not decided (None, 'clone_positive' listed as missing). With both CD4+CD26- and
CD4+CD7- counts the higher one is used ("either" criterion). B2 is returned without suffix in
both rule sets because B2 implies a positive clone (2022 B2a/B2b wording is [U], not retrieved).
"""

from __future__ import annotations

from dataclasses import dataclass

RULE_SETS = ("2007", "2022")


@dataclass(frozen=True)
class BResult:
    category: str | None  # B0 B0a B0b B1 B1a B1b B2, or None when not decidable
    rules: str  # '2007' or '2022'
    decided_by: tuple[str, ...]  # the inputs (and criteria) that decided it
    missing: tuple[str, ...]  # inputs that were absent and could have mattered


def _suffix(clone_positive: bool | None) -> str:
    if clone_positive is None:
        return ""
    return "b" if clone_positive else "a"


def derive_b_category(
    sezary_per_ul: float | None = None,
    cd4cd26neg_per_ul: float | None = None,
    cd4cd7neg_per_ul: float | None = None,
    cd4_cd8_ratio: float | None = None,
    clone_positive: bool | None = None,
    lymphocytes_per_ul: float | None = None,
    rules: str = "2007",
    sezary_pct_lymphocytes: float | None = None,
) -> BResult:
    """B category from blood values; counts in cells/uL, percentages of lymphocytes."""
    if rules == "2007":
        return _rules_2007(
            sezary_per_ul, cd4cd26neg_per_ul, cd4cd7neg_per_ul, cd4_cd8_ratio, clone_positive,
            lymphocytes_per_ul, sezary_pct_lymphocytes,
        )
    if rules == "2022":
        return _rules_2022(cd4cd26neg_per_ul, cd4cd7neg_per_ul, clone_positive)
    raise ValueError(f"unknown B rule set {rules!r}: expected one of {', '.join(RULE_SETS)}")


def _rules_2007(
    sezary_per_ul, cd4cd26neg_per_ul, cd4cd7neg_per_ul, cd4_cd8_ratio, clone_positive,
    lymphocytes_per_ul, sezary_pct_lymphocytes,
) -> BResult:
    # B2 criteria, each of which also needs the clone (ctcl-domain.md §1.2, Blood 2024 letter).
    b2_met: list[str] = []
    missing: list[str] = []
    if sezary_per_ul is not None:
        if sezary_per_ul >= 1000:
            b2_met.append("sezary_per_ul>=1000")
    else:
        missing.append("sezary_per_ul")
    if cd4_cd8_ratio is not None:
        if cd4_cd8_ratio >= 10:
            b2_met.append("cd4_cd8_ratio>=10")
    else:
        missing.append("cd4_cd8_ratio")
    for name, count, pct in (("cd4cd7neg", cd4cd7neg_per_ul, 40), ("cd4cd26neg", cd4cd26neg_per_ul, 30)):
        if count is not None and lymphocytes_per_ul:
            # count / lymphocytes >= pct %, compared without division so 40.0 % is exact
            if count * 100 >= pct * lymphocytes_per_ul:
                b2_met.append(f"{name}>={pct}%_of_lymphocytes")
        else:
            missing.append(f"{name}_per_ul" if count is None else "lymphocytes_per_ul")

    if b2_met:
        if clone_positive is True:
            return BResult("B2", "2007", tuple(b2_met + ["clone_positive"]), ())  # nothing else matters
        if clone_positive is None:
            return BResult(None, "2007", tuple(b2_met), tuple(sorted(set(missing + ["clone_positive"]))))
        # a B2 count criterion without a clone: B2 not met, fall through to B0/B1 by percentage

    # B0 / B1 by the percentage of Sezary cells among lymphocytes.
    if sezary_pct_lymphocytes is not None:
        above = sezary_pct_lymphocytes > 5
        basis = "sezary_pct_lymphocytes"
    elif sezary_per_ul is not None and lymphocytes_per_ul:
        above = sezary_per_ul * 100 > 5 * lymphocytes_per_ul
        basis = "sezary_per_ul/lymphocytes_per_ul"
    else:
        need = ["sezary_pct_lymphocytes or sezary_per_ul+lymphocytes_per_ul"]
        if clone_positive is None:
            need.append("clone_positive")
        return BResult(None, "2007", tuple(b2_met), tuple(sorted(set(missing + need))))
    decided = [f"{basis}{'>' if above else '<='}5%"]
    if b2_met:
        decided.append("clone_negative (B2 not met)")
    category = ("B1" if above else "B0") + _suffix(clone_positive)
    if clone_positive is None:
        missing.append("clone_positive")
    return BResult(category, "2007", tuple(decided), tuple(sorted(set(missing))))


def _rules_2022(cd4cd26neg_per_ul, cd4cd7neg_per_ul, clone_positive) -> BResult:
    counts = {name: value for name, value in (("cd4cd26neg_per_ul", cd4cd26neg_per_ul),
                                              ("cd4cd7neg_per_ul", cd4cd7neg_per_ul)) if value is not None}
    missing = [name for name in ("cd4cd26neg_per_ul", "cd4cd7neg_per_ul") if name not in counts]
    if not counts:
        return BResult(None, "2022", (), tuple(missing))
    name, count = max(counts.items(), key=lambda item: item[1])  # "either" count: the higher decides
    if clone_positive is None:
        missing.append("clone_positive")
    if count >= 1000:
        if clone_positive is True:
            return BResult("B2", "2022", (f"{name}>=1000", "clone_positive"), ())
        if clone_positive is None:
            return BResult(None, "2022", (f"{name}>=1000",), tuple(missing))
        return BResult("B1a", "2022", (f"{name}>=1000", "clone_negative (B2 not met)"), tuple(missing))
    if count >= 250:
        return BResult("B1" + _suffix(clone_positive), "2022", (f"{name} 250-999",), tuple(missing))
    return BResult("B0" + _suffix(clone_positive), "2022", (f"{name}<250",), tuple(missing))
