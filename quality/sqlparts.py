"""Shared pieces of the check SQL: the two-count query shape, names, literals and dialect differences.

Every DQD template computes two numbers, the violating rows and the denominator; we keep that shape
(`CountSql`) and run both counts in one statement. Identifiers come from the shipped DQD CSVs and are
still validated; literals (thresholds, domains, concept ids) are parsed and re-rendered, never pasted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from ctcl_map.errors import CheckSetupError
from ctcl_map.quality.catalog import Catalog
from ctcl_map.store.database import check_identifier


@dataclass(frozen=True)
class CountSql:
    violated: str  # SELECT returning one number: the violating rows (or persons / source values)
    denominator: str  # SELECT returning one number

    def statement(self) -> str:
        return f"SELECT ({self.violated}) AS num_violated, ({self.denominator}) AS num_denominator"


@dataclass(frozen=True)
class SqlContext:
    catalog: Catalog
    today: date  # DQD's GETDATE(), fixed per run so that one report is self-consistent

    def table(self, name: str) -> str:
        """Qualified name of a table a check reads; a missing one makes the check an error, as in DQD."""
        if not self.catalog.has_table(name):
            raise CheckSetupError(f"table {name} (read by this check) does not exist")
        return self.catalog.name(name)

    def regex_full_match(self, text_expr: str, pattern: str) -> str:
        if "?" in pattern or "%" in pattern:  # placeholders / psycopg escapes: keep patterns plain
            raise ValueError("regex pattern must not contain '?' or '%'")
        return self.catalog.engine.regex_full_match(text_expr, pattern)


def ident(name: str) -> str:
    """A column name, validated and double-quoted: CDM columns include SQL keywords (NOTE_NLP.OFFSET)."""
    return '"' + check_identifier(name.strip().lower()) + '"'


def text_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def date_literal(value: date) -> str:
    return f"DATE '{value.isoformat()}'"


def integer_list(text: str) -> str:
    """'8840, 8753' -> '8840, 8753' with every element checked to be an integer."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items or not all(re.fullmatch(r"-?\d+", item) for item in items):
        raise CheckSetupError(f"expected a comma-separated list of concept ids, got {text!r}")
    return ", ".join(str(int(item)) for item in items)


def plausible_bound(text: str, today: date) -> date | float:
    """DQD writes plausibleValueLow/High as SQL Server expressions; these are all the forms it uses.

    '19500101' (a quoted date), DATEADD(dd,1,GETDATE()) (tomorrow), YEAR(GETDATE())+1, or a number.
    """
    value = text.strip()
    quoted = re.fullmatch(r"'(\d{4})(\d{2})(\d{2})'", value)
    if quoted:
        return date(*(int(part) for part in quoted.groups()))
    dateadd = re.fullmatch(r"DATEADD\(\s*dd\s*,\s*(-?\d+)\s*,\s*GETDATE\(\)\s*\)", value, re.IGNORECASE)
    if dateadd:
        return today + timedelta(days=int(dateadd.group(1)))
    year = re.fullmatch(r"YEAR\(\s*GETDATE\(\)\s*\)\s*([+-])\s*(\d+)", value, re.IGNORECASE)
    if year:
        offset = int(year.group(2))
        return float(today.year + offset if year.group(1) == "+" else today.year - offset)
    try:
        return float(value)
    except ValueError:
        raise CheckSetupError(f"unsupported plausible value expression {text!r}") from None


def number_literal(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def birth_date(person_alias: str, mid_year_fallback: bool) -> str:
    """A person's birth date: CAST(birth_datetime AS DATE), else composed from the year of birth.

    DQD composes it two ways: plausibleTemporalAfter uses June 1st of year_of_birth, plausibleAfterBirth
    uses year/month/day of birth with January / the 1st for missing parts (`mid_year_fallback=False`).
    Out-of-range month/day values (reported by plausibleValueHigh) count as missing here instead of
    failing the whole check with a date conversion error.
    """
    p = person_alias
    if mid_year_fallback:
        composed = f"make_date({p}.year_of_birth, 6, 1)"
    else:
        month = f"CASE WHEN {p}.month_of_birth BETWEEN 1 AND 12 THEN {p}.month_of_birth ELSE 1 END"
        day_offset = f"(CASE WHEN {p}.day_of_birth BETWEEN 1 AND 31 THEN {p}.day_of_birth ELSE 1 END - 1)"
        composed = f"make_date({p}.year_of_birth, {month}, 1) + {day_offset}"
    return f"COALESCE(CAST({p}.birth_datetime AS DATE), {composed})"
