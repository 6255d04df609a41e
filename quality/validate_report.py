"""What `ctcl-map validate` found: findings, counts, mapping coverage, and their three renderings.

Privacy: a Finding holds a rule id, a file name, a path inside the file (entry[3].resource.subject),
a resource key (Type/id) and a message built by our own code from codes, categories and day
counts. Nothing from names, addresses, identifiers or free text of the input is ever copied into
it, so the JSON, the table and the HTML can be shared with the project team.
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

SEVERITIES = ("error", "warning")


@dataclass(frozen=True, slots=True)
class Finding:
    severity: str  # 'error' (unfit for loading or impossible) or 'warning' (suspicious, loads)
    rule: str  # e.g. 'structure.model', 'reference.unresolved', 'ctcl.event_after_death'
    file: str
    path: str  # where in the file: 'entry[3].resource.subject', 'line 17', '' for patient-level findings
    message: str
    resource: str | None = None  # 'Condition/abc' (resource ids are not identifiers of persons)


@dataclass
class ValidationReport:
    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    resources: int = 0
    resources_by_type: Counter = field(default_factory=Counter)
    patients: int = 0
    ctcl_patients: int = 0  # patients with a CTCL diagnosis
    references: Counter = field(default_factory=Counter)  # outcome -> count (resolved, contained, external ...)
    coverage: dict[str, Any] = field(default_factory=dict)  # see validate_coverage.CoverageCounter.summary
    seconds: float = 0.0
    json_schema: bool = False
    vocabulary: str = ""  # 'shipped subset' or the database label
    non_fhir_files_skipped: Counter = field(default_factory=Counter)  # 'package.json (FHIR package manifest)' -> files

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def exit_code(self, strict: bool = False) -> int:
        """0 when the input is fit; 1 on any error, and with strict=True also on any warning."""
        if self.errors or (strict and self.warnings):
            return 1
        return 0

    def rule_counts(self) -> list[tuple[str, str, int]]:
        """(severity, rule, findings) sorted: errors first, then by count."""
        counts = Counter((f.severity, f.rule) for f in self.findings)
        return sorted(((s, r, n) for (s, r), n in counts.items()), key=lambda t: (SEVERITIES.index(t[0]), -t[2], t[1]))

    def rate(self) -> float:
        return self.resources / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "fit": self.exit_code() == 0,
            "files": self.files,
            "non_fhir_files_skipped": dict(sorted(self.non_fhir_files_skipped.items())),
            "resources": self.resources,
            "resources_by_type": dict(sorted(self.resources_by_type.items())),
            "patients": self.patients,
            "ctcl_patients": self.ctcl_patients,
            "seconds": round(self.seconds, 3),
            "resources_per_second": round(self.rate(), 1),
            "json_schema": self.json_schema,
            "vocabulary": self.vocabulary,
            "counts": {"error": len(self.errors), "warning": len(self.warnings)},
            "rules": [{"severity": s, "rule": r, "findings": n} for s, r, n in self.rule_counts()],
            "references": dict(sorted(self.references.items())),
            "coverage": self.coverage,
            "findings": [asdict(f) for f in self.findings],
        }

    def to_json(self) -> str:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2).decode()

    # -- rich table --------------------------------------------------------------------------------

    def summary_line(self) -> str:
        verdict = "FIT" if self.exit_code() == 0 else "NOT FIT"
        return (f"{verdict}: {self.files} files, {self.resources} resources, {self.patients} patients "
                f"({self.ctcl_patients} with a CTCL diagnosis) in {self.seconds:.1f}s: "
                f"{len(self.errors)} errors, {len(self.warnings)} warnings")

    def render_table(self, top: int = 20):
        """A rich renderable: summary, findings per rule, the first `top` findings (one block each:
        rule and resource, then file and path on unbroken lines, then the message), mapping coverage
        and the most frequent unmapped codes. Legible at 80 columns and when piped; print it with
        ctcl_map.terminal.show (which keeps long paths whole)."""
        from rich.console import Group

        from ctcl_map.terminal import items_line, prose, whole_line

        parts: list[Any] = [prose(self.summary_line(), indent=0,
                                  style="bold green" if self.exit_code() == 0 else "bold red")]
        if self.non_fhir_files_skipped:
            parts.append(prose(skipped_files_note(self.non_fhir_files_skipped), indent=0))
        if self.findings:
            parts += [whole_line(""), whole_line(("Findings per rule", "bold"))]
            width = max(len(str(count)) for _, _, count in self.rule_counts())
            for severity, rule, count in self.rule_counts():
                parts.append(whole_line((f"{severity:<8}", _STYLE[severity]), f"{count:>{width}}  ", rule, indent=2))
            shown = sorted(self.findings, key=lambda f: SEVERITIES.index(f.severity))[:top]
            parts += [whole_line(""), whole_line((f"Top problems (first {len(shown)} of {len(self.findings)})", "bold"))]
            for finding in shown:
                parts.append(items_line((finding.severity, _STYLE[finding.severity]), (finding.rule, "bold"),
                                        finding.resource, indent=2))
                parts.append(whole_line("file: ", finding.file, indent=6))
                if finding.path:
                    parts.append(whole_line("at:   ", finding.path, indent=6))
                parts.append(prose(finding.message, indent=6))
        parts.extend(_coverage_blocks(self.coverage, top))
        return Group(*parts)

    # -- HTML --------------------------------------------------------------------------------------

    def to_html(self, top_unmapped: int = 100) -> str:
        """One self-contained page: inline CSS, no scripts, no external assets; every value escaped."""
        e = html.escape
        out = [
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
            "<title>ctcl-map validate</title><style>",
            "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
            "td,th{border:1px solid #bbb;padding:.25em .5em;text-align:left;vertical-align:top}"
            "th{background:#eee}.error{color:#b00020;font-weight:bold}.warning{color:#a06000}"
            ".fit{color:#006400}.num{text-align:right}",
            "</style></head><body>",
            "<h1>ctcl-map validate</h1>",
            f"<p class=\"{'fit' if self.exit_code() == 0 else 'error'}\">{e(self.summary_line())}</p>",
            f"<p>Vocabulary: {e(self.vocabulary)}; FHIR JSON schema: {'yes' if self.json_schema else 'no'}; "
            f"{self.rate():.0f} resources/s.</p>",
        ]
        out.append(_html_table(("resource type", "resources"),
                               [(t, n) for t, n in sorted(self.resources_by_type.items())], "Resources"))
        out.append(_html_table(("reference outcome", "references"), sorted(self.references.items()), "References"))
        out.append(_html_table(("severity", "rule", "findings"), self.rule_counts(), "Findings per rule"))
        rows = [(f.severity, f.rule, f.file, f.path, f.resource or "", f.message) for f in
                sorted(self.findings, key=lambda f: SEVERITIES.index(f.severity))]
        out.append(_html_table(("severity", "rule", "file", "path", "resource", "message"), rows, "Findings"))
        coverage_rows = [(c["vocabulary"], c["resource_type"], c["distinct_codes"], c["distinct_mapped"],
                          c["occurrences"], c["occurrences_mapped"], f"{c['percent_mapped']:.1f}")
                         for c in self.coverage.get("by_system", [])]
        out.append(_html_table(("code system", "resource type", "distinct codes", "distinct mapped", "occurrences",
                                "occurrences mapped", "% mapped"), coverage_rows, "Mapping coverage"))
        unmapped = [(u["vocabulary"], u["code"], u["resource_type"], u["occurrences"], u["reason"])
                    for u in self.coverage.get("unmapped", [])[:top_unmapped]]
        out.append(_html_table(("code system", "code", "resource type", "occurrences", "reason"), unmapped,
                               "Most frequent unmapped codes (extend the site mapping file with these)"))
        out.append("</body></html>")
        return "\n".join(out)


_STYLE = {"error": "bold red", "warning": "yellow"}


def skipped_files_note(skipped: dict[str, int]) -> str:
    """One line naming the standard non-FHIR files skipped (their names are standard, never a patient's)."""
    return "skipped, not FHIR resources: " + ", ".join(f"{name} x{count}" if count > 1 else name for name, count in skipped.items())


def _html_table(header: tuple[str, ...], rows, title: str) -> str:
    e = html.escape
    if not rows:
        return f"<h2>{e(title)}</h2><p>none</p>"
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for value in row:
            text = e(str(value))
            if value in SEVERITIES:
                cells.append(f"<td class=\"{value}\">{text}</td>")
            elif isinstance(value, (int, float)):
                cells.append(f"<td class=\"num\">{text}</td>")
            else:
                cells.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<h2>{e(title)}</h2><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _coverage_blocks(coverage: dict[str, Any], top: int) -> list[Any]:
    """Coverage per code system and the most frequent unmapped codes: the system, code and resource
    type on one unbroken line, the counts (and reason) under it."""
    from ctcl_map.terminal import items_line, prose, whole_line

    if not coverage.get("by_system"):
        return []
    blocks: list[Any] = [whole_line(""), whole_line(("Mapping coverage (codes resolved by the mapping tables or the vocabulary)", "bold"))]
    for row in coverage["by_system"]:
        blocks.append(items_line(row["vocabulary"], f"({row['resource_type']})", indent=2))
        blocks.append(whole_line(f"{row['occurrences_mapped']:,} of {row['occurrences']:,} occurrences mapped "
                                 f"({row['percent_mapped']:.1f} %); {row['distinct_mapped']:,} of "
                                 f"{row['distinct_codes']:,} distinct codes", indent=6))
    unmapped = coverage.get("unmapped", [])[:top]
    if unmapped:
        blocks += [whole_line(""), whole_line((f"Most frequent unmapped codes (top {len(unmapped)} of "
                                               f"{len(coverage['unmapped'])})", "bold"))]
        for row in unmapped:
            blocks.append(items_line(row["vocabulary"], (row["code"], "bold"), f"({row['resource_type']})", indent=2))
            blocks.append(prose(f"{row['occurrences']:,} occurrences: {row['reason']}", indent=6))
    return blocks
