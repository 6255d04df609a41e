"""Results of a DQD run: one CheckResult per check instance, and the report that holds them."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
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
    sql: str | None = field(default=None, repr=False)
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
        """A rich renderable: a summary line plus one row per failed / errored check (all checks
        with include_passed). Print it with rich.console.Console().print(report.render_table())."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        counts = self.counts()
        summary = Text(
            f"{len(self.results)} checks on {self.database} in {self.seconds:.1f}s: "
            f"{counts['pass']} passed, {counts['fail']} failed, {counts['error']} errors, "
            f"{counts['not_applicable']} not applicable"
        )
        shown = self.results if include_passed else [r for r in self.results if r.status in ("fail", "error")]
        table = Table(show_lines=False)
        for column, justify in (
            ("status", "left"),
            ("check", "left"),
            ("where", "left"),
            ("violated", "right"),
            ("denominator", "right"),
            ("%", "right"),
            ("threshold %", "right"),
            ("description / error", "left"),
        ):
            table.add_column(column, justify=justify, overflow="fold")
        styles = {"fail": "bold red", "error": "magenta", "pass": "green", "not_applicable": "dim"}
        for result in shown:
            table.add_row(
                Text(result.status, style=styles[result.status]),
                result.check_name,
                result.where,
                _number(result.num_violated),
                _number(result.num_denominator),
                "" if result.pct_violated is None else f"{result.pct_violated:.2f}",
                "" if result.threshold is None else f"{result.threshold:g}",
                result.error or result.not_applicable_reason or result.description,
            )
        return Group(summary, table) if shown else summary


def _number(value: int | None) -> str:
    return "" if value is None else str(value)
