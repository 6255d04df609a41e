"""The DQD v5.4 check definitions: which check runs on which table/field/concept, with which threshold.

Everything is read from the DataQualityDashboard CSVs shipped in `dqd/` (Apache-2.0, see dqd/NOTICE).
DQD decides which checks to run by evaluating each check's `evaluationFilter` (an R expression such as
`isForeignKey=='Yes' & fkDomain!= ''`) against every row of the table-, field- or concept-level CSV;
we evaluate the same expressions, so adding a row or flag to a CSV changes what runs, not the code.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field  # `field` is also a CheckInstance attribute
from functools import cache
from importlib import resources

CHECK_DESCRIPTIONS = "OMOP_CDMv5.4_Check_Descriptions.csv"
LEVEL_FILES = {
    "TABLE": "OMOP_CDMv5.4_Table_Level.csv",
    "FIELD": "OMOP_CDMv5.4_Field_Level.csv",
    "CONCEPT": "OMOP_CDMv5.4_Concept_Level.csv",
}
# One term of an evaluationFilter: name == 'value' or name != 'value' (DQD's filters use nothing else).
_FILTER_TERM = re.compile(r"^\s*(\w+)\s*(==|!=)\s*'([^']*)'\s*$")
_PLACEHOLDER = re.compile(r"@(\w+)")


@dataclass(frozen=True)
class CheckDescription:
    """One row of the Check_Descriptions CSV: a check family."""

    level: str  # TABLE, FIELD or CONCEPT
    name: str
    description: str  # with @placeholders
    kahn_context: str
    kahn_category: str
    kahn_subcategory: str
    sql_file: str  # the DQD template our SQL re-implements
    evaluation_filter: str
    severity: str

    def applies_to(self, row: Mapping[str, str]) -> bool:
        return all(_term_holds(term, row) for term in self.evaluation_filter.split("&"))


@dataclass(frozen=True)
class CheckInstance:
    """One check on one table / field / concept, as DQD would run it."""

    check: CheckDescription
    table: str  # lower case CDM table name
    field: str | None  # lower case; for concept checks the concept field (e.g. condition_concept_id)
    concept_id: str | None  # as written in the CSV (plausibleGenderUseDescendants may list several ids)
    unit_concept_id: str | None
    row: Mapping[str, str] = dataclass_field(repr=False, hash=False, compare=False)

    @property
    def name(self) -> str:
        return self.check.name

    @property
    def level(self) -> str:
        return self.check.level

    @property
    def field_name(self) -> str:
        """The field of a field- or concept-level check (a table-level check names none)."""
        if self.field is None:
            raise ValueError(f"{self.name} on {self.table} is a table-level check: it names no field")
        return self.field

    @property
    def threshold(self) -> float | None:
        """DQD's `<checkName>Threshold` column, as a percentage; None when the CSV gives none."""
        text = self.row.get(f"{self.check.name}Threshold", "").strip()
        if text in ("", "NA"):
            return None
        return float(text)

    def value(self, column: str) -> str:
        """A DQD CSV column of this instance's row, stripped; '' when absent or NA."""
        text = (self.row.get(column) or "").strip()
        return "" if text == "NA" else text

    @property
    def description(self) -> str:
        """The DQD description with its @placeholders filled the way DQD does (values upper-cased)."""

        def fill(match: re.Match[str]) -> str:
            value = self.row.get(match.group(1))
            return value.upper() if value not in (None, "") else match.group(0)

        return _PLACEHOLDER.sub(fill, self.check.description).strip()


def _term_holds(term: str, row: Mapping[str, str]) -> bool:
    match = _FILTER_TERM.match(term)
    if not match:
        raise ValueError(f"{CHECK_DESCRIPTIONS}: unsupported evaluationFilter term {term!r}")
    column, operator, expected = match.groups()
    # R's dplyr::filter drops rows where the column is NA; the CSVs read with NA as empty.
    actual = (row.get(column) or "").strip()
    if actual == "NA":
        actual = ""
    return actual == expected if operator == "==" else actual != expected


def _read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files("ctcl_map.quality").joinpath("dqd", name).read_text(encoding="utf-8-sig")
    return list(csv.DictReader(text.splitlines(keepends=True)))


@cache
def check_descriptions() -> tuple[CheckDescription, ...]:
    return tuple(
        CheckDescription(
            level=row["checkLevel"].strip(),
            name=row["checkName"].strip(),
            description=" ".join(row["checkDescription"].split()),
            kahn_context=row["kahnContext"].strip(),
            kahn_category=row["kahnCategory"].strip(),
            kahn_subcategory=row["kahnSubcategory"].strip(),
            sql_file=row["sqlFile"].strip(),
            evaluation_filter=row["evaluationFilter"].strip(),
            severity=row["severity"].strip(),
        )
        for row in _read_csv(CHECK_DESCRIPTIONS)
    )


@cache
def level_rows(level: str) -> tuple[dict[str, str], ...]:
    return tuple(_read_csv(LEVEL_FILES[level]))


@cache
def table_schema_kind() -> dict[str, str]:
    """Lower case table name -> DQD's schema column (cdm, vocab or cohort)."""
    return {row["cdmTableName"].strip().lower(): row["schema"].strip().lower() for row in level_rows("TABLE")}


def check_names() -> list[str]:
    return [check.name for check in check_descriptions()]


@cache
def _all_instances() -> tuple[CheckInstance, ...]:
    instances: list[CheckInstance] = []
    for check in check_descriptions():
        for row in level_rows(check.level):
            if not check.applies_to(row):
                continue
            instances.append(
                CheckInstance(
                    check=check,
                    table=row["cdmTableName"].strip().lower(),
                    field=(row.get("cdmFieldName") or "").strip().lower() or None,
                    concept_id=(row.get("conceptId") or "").strip() or None,
                    unit_concept_id=(row.get("unitConceptId") or "").strip() or None,
                    row=row,
                )
            )
    return tuple(instances)


def check_instances(
    checks: Sequence[str] | None = None, tables: Sequence[str] | None = None
) -> list[CheckInstance]:
    """All check instances DQD would run, optionally limited to some check names and tables."""
    known = set(check_names())
    wanted_checks = set(checks) if checks else known
    unknown = sorted(wanted_checks - known)
    if unknown:
        raise ValueError(f"unknown DQD check name(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    wanted_tables = {t.lower() for t in tables} if tables else set(table_schema_kind())
    unknown_tables = sorted(wanted_tables - set(table_schema_kind()))
    if unknown_tables:
        raise ValueError(f"unknown CDM table(s): {', '.join(unknown_tables)}")
    return [i for i in _all_instances() if i.name in wanted_checks and i.table in wanted_tables]
