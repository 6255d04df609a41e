"""ISCL/EORTC stage group from T, N, M and B by the Olsen 2007 table (ctcl-domain.md §1.3).

The table (identical in Olsen, Blood 2007;110:1713 and UICC TNM9; kept by the 2022 update):

    IA   T1     N0     M0  B0,B1        IVA1  any T  N0-N2  M0  B2
    IB   T2     N0     M0  B0,B1        IVA2  any T  N3     M0  any B
    IIA  T1,T2  N1,N2  M0  B0,B1        IVB   any T  any N  M1  any B
    IIB  T3     N0-N2  M0  B0,B1
    IIIA T4     N0-N2  M0  B0           (III: T4 with B0/B1 not known)
    IIIB T4     N0-N2  M0  B1

read as the precedence M1 -> IVB; N3 -> IVA2; B2 -> IVA1; T4 -> IIIA/IIIB; T3 -> IIB;
N1/N2 -> IIA; T2 -> IB; T1 -> IA. Clone suffixes (a/b) never change the group (§1.3, NDRS).

The table does not define NX, MX, BX or a missing category. The policies below are explicit and
every assumption made is returned in `StageResult.assumptions` (ctcl/README.md):
- M missing/MX: not derivable (IVB cannot be excluded) unless `assume_m0=True`, which is flagged.
  M1 alone decides IVB whatever else is missing.
- N missing: not derivable unless M1 decides. NX ("abnormal nodes, no histology"): treated as N1
  and flagged (default, as PROCLIPI groups N1 and Nx, §1.3), or not derivable with nx_as_n1=False.
- B missing/BX: for T1-T3 the group is given without B and flagged "IVA1 not excluded";
  for T4 the unsplit group 'III' is returned (flagged), since IIIA/IIIB need B0/B1.
- T missing/TX: derivable only when M1, N3 or B2 decide ("any T" rows); otherwise not derivable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ctcl_map.ctcl.tnmb import base_category, parse_category

ADVANCED_GROUPS = frozenset({"IIB", "III", "IIIA", "IIIB", "IV", "IVA", "IVA1", "IVA2", "IVB"})
EARLY_GROUPS = frozenset({"I", "IA", "IB", "IIA"})

# Ordered from least to most advanced; used to pick "the most advanced" of several groups.
GROUP_ORDER = ("I", "IA", "IB", "II", "IIA", "IIB", "III", "IIIA", "IIIB", "IV", "IVA", "IVA1", "IVA2", "IVB")


@dataclass(frozen=True)
class StageResult:
    group: str | None  # None = not derivable from what was given
    assumptions: tuple[str, ...] = field(default=())  # every policy applied, in words
    reason: str | None = None  # why group is None


def _normalise(axis: str, code: str | None) -> str | None:
    """Accept parse_category output (or any written form); reject what is not a category."""
    if code is None or str(code).strip() == "":
        return None
    parsed = parse_category(axis, code)
    if parsed is None:
        raise ValueError(f"{code!r} is not an ISCL/EORTC {axis} category")
    return base_category(parsed)


def derive_stage_group(
    t: str | None,
    n: str | None,
    m: str | None,
    b: str | None,
    *,
    assume_m0: bool = False,
    nx_as_n1: bool = True,
) -> StageResult:
    """Stage group from T, N, M, B categories (suffixes allowed, e.g. 'T2b', 'N1a', 'B0b')."""
    t_cat, n_cat, m_cat, b_cat = (_normalise(a, v) for a, v in (("T", t), ("N", n), ("M", m), ("B", b)))
    assumptions: list[str] = []

    if m_cat == "M1":
        return StageResult("IVB", tuple(assumptions))
    if m_cat in (None, "MX"):
        if not assume_m0:
            return StageResult(None, (), f"M {'missing' if m_cat is None else 'MX'}: IVB cannot be excluded")
        assumptions.append(f"M {'missing' if m_cat is None else 'MX'} assumed M0")

    if n_cat is None:
        return StageResult(None, tuple(assumptions), "N missing: IVA2 and IIA cannot be excluded")
    if n_cat == "NX":
        if not nx_as_n1:
            return StageResult(None, tuple(assumptions), "NX: nodal histology unknown")
        assumptions.append("NX treated as N1 (no nodal histology: N3/IVA2 not excluded)")
        n_cat = "N1"
    if n_cat == "N3":
        return StageResult("IVA2", tuple(assumptions))

    if b_cat == "B2":
        return StageResult("IVA1", tuple(assumptions))
    b_known = b_cat in ("B0", "B1")

    if t_cat in (None, "TX"):
        return StageResult(None, tuple(assumptions), f"T {'missing' if t_cat is None else 'TX'} and no M1/N3/B2")
    if not b_known:
        assumptions.append(f"B {'missing' if b_cat is None else 'BX'}: IVA1 not excluded")

    if t_cat == "T4":
        if not b_known:
            return StageResult("III", tuple(assumptions + ["T4 without B0/B1: unsplit III"]))
        return StageResult("IIIA" if b_cat == "B0" else "IIIB", tuple(assumptions))
    if t_cat == "T3":
        return StageResult("IIB", tuple(assumptions))
    if n_cat in ("N1", "N2"):
        return StageResult("IIA", tuple(assumptions))
    if t_cat == "T2":
        return StageResult("IB", tuple(assumptions))
    return StageResult("IA", tuple(assumptions))  # T1 N0 M0 B0/B1


def is_advanced(group: str | None) -> bool:
    """True when the group is certainly advanced (IIB-IVB, incl. unsplit III/IV/IVA).

    'II' is not known to be advanced (IIA is early, IIB advanced) and returns False, as does None.
    """
    if group is None:
        return False
    parsed = parse_category("stage", group)
    if parsed is None:
        raise ValueError(f"{group!r} is not an ISCL/EORTC stage group")
    return parsed in ADVANCED_GROUPS


def more_advanced(first: str, second: str) -> str:
    """The later of two groups in GROUP_ORDER (for 'stage at the date', several rows)."""
    return first if GROUP_ORDER.index(first) >= GROUP_ORDER.index(second) else second


# Unsplit stage groups and the split groups they stand for (Olsen 2007 table).
UNSPLIT_GROUPS = {"I": {"IA", "IB"}, "II": {"IIA", "IIB"}, "III": {"IIIA", "IIIB"},
                  "IV": {"IVA", "IVA1", "IVA2", "IVB"}, "IVA": {"IVA1", "IVA2"}}


def groups_compatible(given: str, derived: str) -> bool:
    """'III' and 'IIIA', 'IV' and 'IVA1' agree; 'I' and 'IIA', 'II' and 'IIIA' do not.

    A prefix test would wrongly accept the last two ('IIA' starts with 'I').
    """
    return given == derived or derived in UNSPLIT_GROUPS.get(given, ()) or given in UNSPLIT_GROUPS.get(derived, ())


def given_group_conflict(groups: list[str]) -> list[str]:
    """Stage groups given for one date in several ways (Condition.stage, an Observation, another
    coding) that contradict each other, sorted; [] when they agree ('IV' and 'IVA1' do)."""
    distinct = sorted(set(groups))
    if all(groups_compatible(a, b) for a in distinct for b in distinct):
        return []
    return distinct
