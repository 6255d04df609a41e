"""ISCL/EORTC 2007 (Olsen) stage group from T, N, M, B categories.

Written independently of ``ctcl_map.ctcl`` on purpose: the tests cross-check the two
implementations on every staging set the generator writes, so one bug cannot hide in both.
Categories are given in normalised form with optional clone suffix (``T2b``, ``N1a``, ``B0b``);
the suffix never changes the group (ctcl-domain.md §1.3).
"""

from __future__ import annotations

ADVANCED_GROUPS = frozenset({"IIB", "III", "IIIA", "IIIB", "IVA1", "IVA2", "IVB"})
STAGE_GROUPS = ("IA", "IB", "IIA", "IIB", "IIIA", "IIIB", "IVA1", "IVA2", "IVB")


def base_category(category: str) -> str:
    """'T2b' -> 'T2', 'B0a' -> 'B0', 'N3' -> 'N3' (clone suffix dropped for grouping)."""
    return category[:2]


def derive_stage_group(t: str, n: str, m: str, b: str) -> str:
    """Olsen 2007 rule order: M1 -> IVB; N3 -> IVA2; B2 -> IVA1; T4 -> IIIA/IIIB; T3 -> IIB;
    N1/N2 -> IIA; T2 -> IB; T1 -> IA. Raises ValueError for categories the generator never writes
    (Nx, Bx, Mx): the generator must not produce a set it cannot stage."""
    t0, n0, m0, b0 = (base_category(c) for c in (t, n, m, b))
    if t0 not in ("T1", "T2", "T3", "T4") or n0 not in ("N0", "N1", "N2", "N3"):
        raise ValueError(f"cannot stage T={t} N={n}")
    if m0 not in ("M0", "M1") or b0 not in ("B0", "B1", "B2"):
        raise ValueError(f"cannot stage M={m} B={b}")
    if m0 == "M1":
        return "IVB"
    if n0 == "N3":
        return "IVA2"
    if b0 == "B2":
        return "IVA1"
    if t0 == "T4":
        return "IIIA" if b0 == "B0" else "IIIB"
    if t0 == "T3":
        return "IIB"
    if n0 in ("N1", "N2"):
        return "IIA"
    return "IB" if t0 == "T2" else "IA"


def is_advanced(stage_group: str) -> bool:
    """Advanced stage = IIB..IVB (PROCLIPI's population)."""
    return stage_group in ADVANCED_GROUPS
