"""What every converter returns, and the FHIR value parsing they all share.

A converter is a pure function `(item, ctx) -> Conversion`: it reads one FHIR resource and returns
OMOP rows, never touching a file or a database. Identifiers in those rows are *keys*
("Patient/123", "Encounter/9"); the writer turns keys into stable integer ids through the lineage
table, so converters can run in any process and in any order.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from ctcl_map.model import Conversion

# Type concepts (Type Concept domain), verified ids: ../shared/reference/vocab-concepts.md section 8.
EHR = 32817
EHR_ADMINISTRATION = 32818
EHR_PRESCRIPTION = 32838
EHR_DISPENSING = 32825
LAB = 32856


class InvalidValue(ValueError):
    """A FHIR value that cannot be what it claims (a date like 2019-13-45). Quarantines the resource."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def excluded(reason: str) -> Conversion:
    return Conversion(excluded=reason)


def quarantined(reason: str, message: str) -> Conversion:
    return Conversion(quarantined=(reason, message))


_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")

# Plausible dates (README, 'Bad input'): nothing before 1850, nothing more than a year after the
# day the process started (a prescription may be dated ahead; an event in 9999 would push eras past
# the year 9999 and break every export). Resources with dates outside are quarantined.
EARLIEST_DATE = date(1850, 1, 1)
FUTURE_MARGIN = timedelta(days=366)
TODAY = date.today()
LATEST_DATE = TODAY + FUTURE_MARGIN
INT32_MAX = 2**31 - 1


@dataclass(frozen=True, slots=True)
class FhirTime:
    day: date
    moment: datetime | None  # None when the source had no time of day
    imputed: bool  # True when a partial date (YYYY or YYYY-MM) was completed to the first day


def parse_time(value: Any, field_name: str) -> FhirTime | None:
    """FHIR date/dateTime/instant -> date and wall-clock datetime.

    Datetimes keep the hospital's recorded wall-clock time and drop the UTC offset, so one site's
    data stays in one local time zone and a date is the date the hospital wrote down (f2o-072).
    Partial dates are completed to the first day of the month or year and flagged.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidValue("invalid_date", f"{field_name} is not a string date")
    match = _DATE.match(value)
    try:
        if match:
            year, month, day = match.groups()
            if day:
                time = FhirTime(date(int(year), int(month), int(day)), None, False)
            else:
                time = FhirTime(date(int(year), int(month or 1), 1), None, True)
        else:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is not None:
                moment = moment.replace(tzinfo=None)
            time = FhirTime(moment.date(), moment, False)
    except (ValueError, OverflowError):
        raise InvalidValue("invalid_date", f"{field_name} is not a valid FHIR date: {value[:40]!r}") from None
    return _plausible(time, field_name, value)


def _plausible(time: FhirTime, field_name: str, value: str) -> FhirTime:
    if not EARLIEST_DATE <= time.day <= LATEST_DATE:
        raise InvalidValue("implausible_date", f"{field_name} {value[:40]!r} is outside {EARLIEST_DATE.year} .. "
                                               f"{LATEST_DATE.isoformat()} (today plus {FUTURE_MARGIN.days} days)")
    return time


def add_days(time: FhirTime, days: int, field_name: str) -> FhirTime:
    """`time` plus whole days, within the plausible range (a supply duration may not push an end
    past it)."""
    try:
        day = time.day + timedelta(days=days)
    except OverflowError:
        day = date.max
    return _plausible(FhirTime(day, None, False), field_name, day.isoformat())


def period_times(period: Any, field_name: str) -> tuple[FhirTime | None, FhirTime | None]:
    if not isinstance(period, dict):
        return None, None
    return parse_time(period.get("start"), f"{field_name}.start"), parse_time(period.get("end"), f"{field_name}.end")


def first_time(resource: dict, names: tuple[str, ...]) -> tuple[FhirTime | None, FhirTime | None]:
    """Start and end from the first present of several [x] choices (xDateTime, xPeriod, xInstant...)."""
    for name in names:
        value = resource.get(name)
        if value is None:
            continue
        if name.endswith("Period"):
            return period_times(value, name)
        return parse_time(value, name), None
    return None, None


def start_with_fallback(resource: dict, names: tuple[str, ...], fallback: str, note: str,
                        conversion: Conversion) -> FhirTime | None:
    """The first present [x] date of `names`, else the `fallback` field (counted as `note`); a
    partial date is counted as 'date_imputed'. None when neither is there (the caller quarantines)."""
    start, _ = first_time(resource, names)
    if start is None:
        start = parse_time(resource.get(fallback), fallback)
        if start is not None:
            conversion.notes.append(note)
    if start is not None and start.imputed:
        conversion.notes.append("date_imputed")
    return start


def number(value: Any, field_name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidValue("invalid_value", f"{field_name} is not a number")
    try:
        result = float(value)
    except OverflowError:
        result = math.inf
    if not math.isfinite(result):
        raise InvalidValue("invalid_value", f"{field_name} is not a finite number")
    return result


def whole_number(value: Any, field_name: str, low: int = 0, high: int = INT32_MAX) -> int | None:
    """An integer column's value (refills, days supply): None when absent, quarantined when it does
    not fit (an INTEGER column would reject it on one backend and the whole batch with it)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidValue("invalid_value", f"{field_name} is not a whole number from {low} to {high}")
    return value


def as_list(value: Any) -> list | tuple:
    """A FHIR array as a list: absent, or a JSON value of another type (an object where an array
    belongs), reads as empty instead of being iterated by its keys or tripping the converter."""
    return value if isinstance(value, list) else ()


def text_of(value: Any) -> str | None:
    """A FHIR string or code; any other JSON type reads as absent."""
    return value if isinstance(value, str) else None


def code_of(concept: Any) -> str | None:
    """The first coding's code of a CodeableConcept (for status-like fields)."""
    if isinstance(concept, dict):
        for coding in as_list(concept.get("coding")):
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                return coding["code"]
    return None


def extension_value(resource: dict, url: str, value_name: str) -> Any:
    """The `value_name` (e.g. valueDateTime) of the first extension with this url, else None."""
    for extension in as_list(resource.get("extension")):
        if isinstance(extension, dict) and extension.get("url") == url and value_name in extension:
            return extension[value_name]
    return None
