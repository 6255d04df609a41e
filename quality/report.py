"""Results of a DQD run: one CheckResult per check instance, and the report that holds them."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field  # `field` is also a CheckResult attribute
from typing import Any

import orjson

STATUSES = ("pass", "fail", "not_applicable", "error")


@dataclass
class CheckResult:
    check_name: str
    level: str  # TABLE, FIELD, CONCEPT
    table: str
    field: str | None
    concept_id: str | None
    unit_concept_id: str | None
    status: str  # one of STATUSES
    num_violated: int | None  # violating rows (persons, distinct source values: see the description)
    num_denominator: int | None
    pct_violated: float | None  # percentage 0-100, comparable with threshold
    threshold: float | None  # DQD's threshold in percent; None means "any violation fails"
    description: str  # DQD's description with the placeholders filled
    severity: str  # DQD: fatal, convention, characterization
    category: str  # Kahn category: Conformance, Completeness, Plausibility
    subcategory: str
    context: str  # Verification or Validation
    not_applicable_reason: str | None = None
    error: str | None = None
    sql: str | None = dataclass_field(default=None, repr=False)
    seconds: float = 0.0
    sql_file: str = ""  # the DQD SQL template the check re-implements (Check_Descriptions.csv sqlFile)

    @property
    def where(self) -> str:
        parts = [self.table.upper()]
        if self.field:
            parts.append(self.field.upper())
        if self.concept_id:
            parts.append(f"concept {self.concept_id}" + (f" unit {self.unit_concept_id}" if self.unit_concept_id else ""))
        return ".".join(parts[:2]) + (f" [{parts[2]}]" if len(parts) > 2 else "")


@dataclass
class DqReport:
    database: str  # printable database label (never a password)
    results: list[CheckResult]
    seconds: float

    def _with_status(self, status: str) -> list[CheckResult]:
        return [r for r in self.results if r.status == status]

    @property
    def failed(self) -> list[CheckResult]:
        return self._with_status("fail")

    @property
    def errors(self) -> list[CheckResult]:
        return self._with_status("error")

    @property
    def passed(self) -> list[CheckResult]:
        return self._with_status("pass")

    @property
    def not_applicable(self) -> list[CheckResult]:
        return self._with_status("not_applicable")

    @property
    def exit_code(self) -> int:
        """1 when any check failed or could not run, else 0 (what `ctcl-map dq` should exit with)."""
        return 1 if self.failed or self.errors else 0

    def counts(self) -> dict[str, int]:
        counter = Counter(r.status for r in self.results)
        return {status: counter.get(status, 0) for status in STATUSES}

    def to_dict(self, include_sql: bool = False) -> dict[str, Any]:
        def one(result: CheckResult) -> dict[str, Any]:
            row = asdict(result)
            if not include_sql:
                row.pop("sql")
            return row

        return {
            "database": self.database,
            "seconds": round(self.seconds, 3),
            "counts": self.counts(),
            "results": [one(r) for r in self.results],
        }

    def to_json(self, include_sql: bool = False) -> str:
        return orjson.dumps(self.to_dict(include_sql), option=orjson.OPT_INDENT_2).decode()

    def render_table(self, include_passed: bool = False):
        """A rich renderable: a summary line, then one block per failed / errored check (every check
        with include_passed): status, check name and where on one unbroken line, the counts, and the
        description or error wrapped on its own lines. Legible at 80 columns and when piped; print
        it with ctcl_map.terminal.show (which keeps long names whole)."""
        from rich.console import Group

        from ctcl_map.terminal import items_line, prose, whole_line

        counts = self.counts()
        summary = prose(
            f"{len(self.results)} checks on {self.database} in {self.seconds:.1f}s: "
            f"{counts['pass']} passed, {counts['fail']} failed, {counts['error']} errors, "
            f"{counts['not_applicable']} not applicable", indent=0)
        shown = self.results if include_passed else [r for r in self.results if r.status in ("fail", "error")]
        styles = {"fail": "bold red", "error": "magenta", "pass": "green", "not_applicable": "dim"}
        blocks: list = [summary]
        for result in shown:
            blocks.append(whole_line(""))
            blocks.append(items_line((result.status, styles[result.status]), (result.check_name, "bold"),
                                     result.where))
            measured = _measured(result)
            if measured:
                blocks.append(whole_line(measured, indent=4))
            blocks.append(prose(result.error or result.not_applicable_reason or result.description))
        return Group(*blocks)


def _measured(result: CheckResult) -> str:
    """'2 of 7 violated (28.57 %), threshold 5 %': the counts of one check, '' when it has none."""
    parts = []
    if result.num_violated is not None:
        parts.append(f"{result.num_violated:,} violated" if result.num_denominator is None
                     else f"{result.num_violated:,} of {result.num_denominator:,} violated")
    if result.pct_violated is not None:
        parts.append(f"({result.pct_violated:.2f} %)")
    text = " ".join(parts)
    if result.threshold is not None:
        text += f"{', ' if text else ''}threshold {result.threshold:g} %"
    return text
