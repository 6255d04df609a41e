"""PROCLIPI Cutaneous Lymphoma International Prognostic Index for advanced MF/SS.

Scarisbrick et al., Blood 2025 (commentary Blood 2025;146:1635; ctcl-domain.md §2.3, [V]):
one point each for lymphomatous nodes (N3), age > 60 years, raised serum LDH and large-cell
transformation in skin; 0-1 low, 2 intermediate, 3-4 high risk. The document gives one index for
advanced MF and SS together (no subtype-specific factors), which is what is implemented here.
(The older CLIC 2015 index used stage IV instead of N3; it is not this one, §2.1.)

A missing component is never scored as 0: the score is exact only when all four are known, and
the risk group is given only when every possible value of the missing components gives the
same group (e.g. 3 known points with LDH unknown is 'high' either way).
"""

from __future__ import annotations

from dataclasses import dataclass

from ctcl_map.ctcl.tnmb import base_category, parse_category

COMPONENTS = ("n3", "age_over_60", "ldh_raised", "large_cell_transformation")


@dataclass(frozen=True)
class ClipiResult:
    score: int | None  # exact score 0-4, None when a component is missing
    group: str | None  # 'low' | 'intermediate' | 'high', None when not determined
    missing: tuple[str, ...]  # components (from COMPONENTS) that were unknown
    min_score: int  # points from the known components
    max_score: int  # min_score + number of missing components


def risk_group(score: int) -> str:
    if score <= 1:
        return "low"
    if score == 2:
        return "intermediate"
    return "high"


def _n3(n_category: str | None) -> bool | None:
    if n_category is None:
        return None
    parsed = parse_category("N", n_category)
    if parsed is None:
        raise ValueError(f"{n_category!r} is not an ISCL/EORTC N category")
    if parsed == "NX":
        return None  # abnormal nodes without histology: N3 is neither shown nor excluded
    return base_category(parsed) == "N3"


def clipi(
    n_category: str | None,
    age_years: float | None,
    ldh_raised: bool | None,
    large_cell_transformation: bool | None,
) -> ClipiResult:
    """CLIPI score and risk group at the date of first advanced stage; None inputs are unknown."""
    components = {
        "n3": _n3(n_category),
        "age_over_60": None if age_years is None else age_years > 60,
        "ldh_raised": ldh_raised,
        "large_cell_transformation": large_cell_transformation,
    }
    missing = tuple(name for name in COMPONENTS if components[name] is None)
    min_score = sum(1 for name in COMPONENTS if components[name] is True)
    max_score = min_score + len(missing)
    group = risk_group(min_score) if risk_group(min_score) == risk_group(max_score) else None
    score = min_score if not missing else None
    return ClipiResult(score, group, missing, min_score, max_score)
