"""Lines of systemic therapy from drug exposures.

Rules (parameters in brackets; ctcl/README.md explains the choice):
1. Only exposures flagged `starts_systemic_line` (mappings/therapies.csv) are considered.
   Skin-directed therapy, ECP, radiotherapy etc. neither start nor end a line.
2. A line starts with the earliest exposure not yet in a line. Every ingredient that starts within
   [regimen_window_days = 28] days of the line start joins the regimen (combination therapy).
   This is the idea of OHDSI OncoRegimenFinder (ctcl-domain.md §5.2): ingredients started close
   together form one regimen. The 28 days (one treatment cycle) are our choice, a parameter.
3. After the window the regimen is fixed: an exposure to an ingredient outside it starts a new
   line (a switch or an add-on both count as progression to the next line). Dropping an
   ingredient does not.
4. A gap of more than [gap_days = 90] days between the end of the line so far (latest exposure
   end) and the next exposure ends the line; the next exposure starts a new line even when it is
   the same ingredient (a restart after a treatment-free interval is a new line).
5. An exposure without an end date lasts one day (its start date).
Lines are numbered 1, 2, ... by start date; a line's end is the latest end of its exposures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Exposure:
    exposure_id: int
    ingredient_concept_id: int
    start: date
    end: date | None = None
    starts_systemic_line: bool = True

    @property
    def last_day(self) -> date:
        return self.end if self.end is not None and self.end >= self.start else self.start


@dataclass(frozen=True)
class Line:
    line_number: int
    ingredients: tuple[int, ...]  # sorted ingredient concept ids
    start: date
    end: date
    exposure_ids: tuple[int, ...]  # sorted


def assign_lines(
    exposures: Sequence[Exposure], gap_days: int = 90, regimen_window_days: int = 28
) -> list[Line]:
    """Group systemic exposures into numbered lines of therapy by the rules in the module doc."""
    systemic = sorted(
        (e for e in exposures if e.starts_systemic_line),
        key=lambda e: (e.start, e.ingredient_concept_id, e.exposure_id),
    )
    lines: list[Line] = []
    current: list[Exposure] = []
    regimen: set[int] = set()
    line_start: date | None = None
    line_end: date | None = None
    for exposure in systemic:
        if current:
            # A non-empty `current` means a line was opened below, which set its start and end.
            assert line_start is not None and line_end is not None
            in_window = (exposure.start - line_start).days <= regimen_window_days
            gap = (exposure.start - line_end).days
            joins = gap <= gap_days and (in_window or exposure.ingredient_concept_id in regimen)
            if joins:
                current.append(exposure)
                regimen.add(exposure.ingredient_concept_id)
                line_end = max(line_end, exposure.last_day)
                continue
            lines.append(_close(len(lines) + 1, current, regimen, line_start, line_end))
        current = [exposure]
        regimen = {exposure.ingredient_concept_id}
        line_start, line_end = exposure.start, exposure.last_day
    if current:
        assert line_start is not None and line_end is not None  # set when `current` was opened
        lines.append(_close(len(lines) + 1, current, regimen, line_start, line_end))
    return lines


def _close(number: int, exposures: list[Exposure], regimen: set[int], start: date, end: date) -> Line:
    return Line(number, tuple(sorted(regimen)), start, end, tuple(sorted(e.exposure_id for e in exposures)))
