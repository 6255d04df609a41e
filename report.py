"""Terminal rendering of a run report (rich). Counts only: no identifiers reach the screen; codes,
vocabularies and resource types from the input are printed through ctcl_map.terminal (escaped)."""

from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table

from ctcl_map.terminal import console as make_console
from ctcl_map.terminal import items_line, plain, prose, show, whole_line


def print_run_report(report, db_label: str, console: Console | None = None) -> None:
    """db_label: a printable database label (Database.label: never a password)."""
    console = console or make_console()
    data = report.to_dict()
    table = Table(show_lines=False)
    table.add_column("OMOP table")
    table.add_column("rows written", justify="right")
    for name, count in data["rows_written"].items():
        table.add_row(plain(name), f"{count:,}")
    for name, count in data["derived_rows"].items():
        table.add_row(plain(f"{name} (derived)"), f"{count:,}")

    summary = Table(show_header=False, box=None)
    summary.add_column(style="bold")
    summary.add_column(justify="right")
    summary.add_row("files read", f"{data['files']:,}")
    summary.add_row("files unchanged (not read)", f"{data['files_skipped_unchanged']:,}")
    summary.add_row("resources read", f"{data['resources_read']:,}")
    summary.add_row("resources loaded", f"{sum(data['resources_loaded'].values()):,}")
    summary.add_row("unchanged (skipped)", f"{data['unchanged_skipped']:,}")
    summary.add_row("superseded by a newer version", f"{data['superseded_skipped']:,}")
    summary.add_row("deleted", f"{data['deleted']:,}")
    summary.add_row("  of which gone from their re-read file", f"{data['deleted_as_vanished']:,}")
    summary.add_row("excluded (did not happen)", f"{sum(data['excluded'].values()):,}")
    summary.add_row("quarantined", f"{sum(data['quarantined'].values()):,}")
    summary.add_row("seconds", str(data["seconds"]))
    blocks: list = [whole_line((f"ctcl-map run {data['run_id']} -> ", "bold"), (db_label, "bold")), table, summary]

    oncology = data.get("oncology")
    if oncology:
        blocks.append(prose(
            f"oncology: {oncology['diagnoses']:,} CTCL diagnoses, {oncology['staging_linked']:,} staging rows linked, "
            f"{oncology['stage_derived']:,} stage groups and {oncology['b_derived']:,} B categories derived, "
            f"{oncology['disease_episodes']:,} disease episodes, {oncology['treatment_lines']:,} lines of therapy, "
            f"CLIPI for {oncology['clipi_persons']:,} persons; {oncology['stage_disagreements']:,} given stage groups "
            "disagree with TNMB", indent=0))
        if oncology.get("stage_given_conflicts"):
            blocks.append(prose(f"oncology: {oncology['stage_given_conflicts']:,} dates with a stage group given two "
                                "ways that disagree", indent=0))
        if oncology.get("unconfirmed_diagnoses_excluded"):
            blocks.append(prose(
                f"oncology: {oncology['unconfirmed_diagnoses_excluded']:,} provisional/differential/unconfirmed CTCL "
                f"diagnoses and {oncology.get('staging_of_unconfirmed_excluded', 0):,} staging rows linked to them left "
                "out (--include-unconfirmed counts them)", indent=0))
    for title, counts in (("excluded by reason", data["excluded"]), ("quarantined by reason", data["quarantined"]),
                          ("unmapped rows by vocabulary (concept_id 0)", data["unmapped_rows_by_vocabulary"]),
                          ("resource types not mapped to OMOP", data["not_mapped_resource_types"])):
        if counts:
            blocks.append(whole_line((f"{title}:", "bold")))
            blocks.append(items_line(*(f"{name} {count:,}" for name, count in counts.items()), indent=2, continuation=0,
                                     sep="; "))
    blocks.extend(whole_line(line) for line in counter_lines(data))
    if data["quarantined"]:
        blocks.append(whole_line("details: SELECT * FROM ctcl_quarantine WHERE run_id = " + str(data["run_id"])))
    show(Group(*blocks), console)


# What the table, the summary and the lines above already show, and values that are not counts.
_SHOWN = frozenset({
    "run_id", "workers", "seconds", "files", "files_skipped_unchanged", "resources_read", "resources_loaded",
    "rows_written", "derived_rows", "rows_by_resource_type", "unchanged_skipped", "superseded_skipped", "deleted",
    "deleted_as_vanished", "excluded", "quarantined", "unmapped_rows_by_vocabulary", "not_mapped_resource_types",
    "top_unmapped_codes", "oncology",
})
_ONCOLOGY_SHOWN = frozenset({"persons", "diagnoses", "staging_linked", "stage_derived", "b_derived", "disease_episodes",
                             "treatment_lines", "clipi_persons", "stage_disagreements", "stage_given_conflicts",
                             "unconfirmed_diagnoses_excluded", "staging_of_unconfirmed_excluded"})


def counter_lines(data: dict) -> list[str]:
    """One line per non-zero counter of the report that the table and summary do not show, found
    generically (a counter added to the report later is printed without touching this module):
    an int is 'name: n', a dict of counts is 'name: key n, key n' (the notes one line each), a
    list counts its items; in the oncology summary, the same for its counters (not concept ids)."""
    lines: list[str] = []
    for name, value in data.items():
        if name in _SHOWN:
            continue
        if name == "notes":
            lines.extend(f"{_label(note)}: {count:,}" for note, count in value.items() if count)
        else:
            lines.extend(_line(_label(name), value))
    for name, value in (data.get("oncology") or {}).items():
        if name not in _ONCOLOGY_SHOWN and not name.endswith("_concept_id"):
            lines.extend(_line(f"oncology {_label(name)}", value))
    return lines


def _line(label: str, value) -> list[str]:
    if isinstance(value, bool) or isinstance(value, str) or value is None:
        return []
    if isinstance(value, (int, float)):
        return [f"{label}: {value:,}"] if value else []
    if isinstance(value, dict):
        counts = {k: v for k, v in value.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and v}
        return [f"{label}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items())] if counts else []
    if isinstance(value, list):
        return [f"{label}: {len(value):,}"] if value else []
    return []


def _label(name: str) -> str:
    return name.replace("_", " ")
