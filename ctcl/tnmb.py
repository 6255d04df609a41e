"""Parse written ISCL/EORTC T, N, M, B categories and stage groups into normalised codes.

Hospitals write staging in many ways ("Stage IVA1", "4A1", "IVA-1", "cT2b", "Nx", "B0b",
"AJCC/UICC T2 Category", our own "STAGE-IIB"). The converter and the derivation step both call
`parse_category`, so every written form is normalised in one place. Anything not an ISCL/EORTC
category (T0, N4, M2, B3, "IVC", "IIIA1", free prose) returns None rather than a guess.
"""

from __future__ import annotations

import re

AXES = ("T", "N", "M", "B", "stage")

# The complete set of codes parse_category can return, per axis (ctcl-domain.md §1.2-1.4).
T_CODES = ("T1", "T1a", "T1b", "T2", "T2a", "T2b", "T3", "T4", "TX")
N_CODES = ("N0", "N0a", "N0b", "N1", "N1a", "N1b", "N2", "N2a", "N2b", "N3", "NX")
M_CODES = ("M0", "M1", "MX")
B_CODES = ("B0", "B0a", "B0b", "B1", "B1a", "B1b", "B2", "B2a", "B2b", "BX")
# Split groups of the Olsen 2007 table, then the unsplit forms a source may send.
STAGE_GROUPS = ("IA", "IB", "IIA", "IIB", "III", "IIIA", "IIIB", "IVA1", "IVA2", "IVB")
UNSPLIT_GROUPS = ("I", "II", "III", "IV", "IVA")

_VALID = {
    "T": set(T_CODES),
    "N": set(N_CODES),
    "M": set(M_CODES),
    "B": set(B_CODES),
    "stage": set(STAGE_GROUPS) | set(UNSPLIT_GROUPS),
}

_ROMAN = {"1": "I", "2": "II", "3": "III", "4": "IV"}

# Words and qualifiers that carry no category information. Removed before matching.
_NOISE = re.compile(
    r"ISCL\s*/\s*EORTC|ISCL|EORTC|AJCC\s*/\s*UICC|AJCC|UICC|TNMB|STAGE|GROUP|CATEGORY|CLINICAL|PATHOLOGICAL"
)
# Cancer Modifier concept codes start with e.g. "c-8th_" (OncologyWG conventions, ctcl-domain.md §5.2).
_EDITION_PREFIX = re.compile(r"^[CPY]-\d+(ST|ND|RD|TH)_")
_SEPARATORS = re.compile(r"[\s\-_.:,/]+")

_TNMB = re.compile(r"^(?:[CPY]?(?P<axis>[TNMB]))?(?P<value>[0-4X])(?P<suffix>[AB])?$")
_STAGE = re.compile(r"^[CPY]?(?P<numeral>IV|III|II|I|[1-4])(?P<letter>[AB])?(?P<sub>[12])?$")


def _clean(text: str) -> str:
    upper = text.strip().upper()
    upper = re.sub(r"\(.*?\)", " ", upper)  # "(ISCL/EORTC)", "(plaque)": comments, not categories
    upper = _EDITION_PREFIX.sub("", upper)
    upper = _NOISE.sub(" ", upper)
    return _SEPARATORS.sub("", upper)


def parse_category(axis: str, text: str | None) -> str | None:
    """Normalise a written category for `axis` ('T', 'N', 'M', 'B' or 'stage'); None if not one.

    Examples: ('T', 'cT2b') -> 'T2b'; ('N', 'Nx') -> 'NX'; ('stage', 'Stage IV A1') -> 'IVA1';
    ('stage', '4A1') -> 'IVA1'; ('B', 'B3') -> None; ('T', 'N1') -> None (wrong axis).
    """
    if axis not in AXES:
        raise ValueError(f"unknown staging axis {axis!r}: expected one of {', '.join(AXES)}")
    if text is None:
        return None
    cleaned = _clean(str(text))
    if not cleaned:
        return None
    code = _parse_stage(cleaned) if axis == "stage" else _parse_tnmb(axis, cleaned)
    return code if code in _VALID[axis] else None


def _parse_tnmb(axis: str, cleaned: str) -> str | None:
    match = _TNMB.match(cleaned)
    if not match:
        return None
    written_axis = match.group("axis")
    if written_axis is not None and written_axis != axis:
        return None
    value = match.group("value")
    suffix = (match.group("suffix") or "").lower()
    return f"{axis}{value}{suffix}"


def _parse_stage(cleaned: str) -> str | None:
    match = _STAGE.match(cleaned)
    if not match:
        return None
    numeral = _ROMAN.get(match.group("numeral"), match.group("numeral"))
    return f"{numeral}{match.group('letter') or ''}{match.group('sub') or ''}"


def base_category(code: str) -> str:
    """The category without its clone suffix: 'T2b' -> 'T2', 'B0a' -> 'B0', 'NX' -> 'NX'."""
    return code[:-1] if len(code) == 3 and code[-1] in "ab" else code


def one_category(categories: list[str]) -> tuple[str | None, bool]:
    """The category of one axis on one date: (code, conflict). T2 and T2b agree (T2b kept)."""
    distinct = sorted(set(categories), key=len, reverse=True)
    if not distinct:
        return None, False
    if len({base_category(c) for c in distinct}) > 1:
        return None, True
    return distinct[0], False
