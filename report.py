"""Terminal rendering of a run report (rich). Counts only: no identifiers reach the screen."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def print_run_report(report, db_label: str, console: Console | None = None) -> None:
    console = console or Console(stderr=False)
    data = report.to_dict()
    table = Table(title=f"ctcl-map run {data['run_id']} -> {db_label}", show_lines=False)
    table.add_column("OMOP table")
    table.add_column("rows written", justify="right")
    for name, count in data["rows_written"].items():
        table.add_row(name, f"{count:,}")
    for name, count in data["derived_rows"].items():
        table.add_row(f"{name} (derived)", f"{count:,}")
    console.print(table)

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
    console.print(summary)

    oncology = data.get("oncology")
    if oncology:
        console.print(
            f"[bold]oncology:[/bold] {oncology['diagnoses']:,} CTCL diagnoses, {oncology['staging_linked']:,} staging rows linked, "
            f"{oncology['stage_derived']:,} stage groups and {oncology['b_derived']:,} B categories derived, "
            f"{oncology['disease_episodes']:,} disease episodes, {oncology['treatment_lines']:,} lines of therapy, "
            f"CLIPI for {oncology['clipi_persons']:,} persons; {oncology['stage_disagreements']:,} given stage groups disagree with TNMB"
        )
        if oncology.get("stage_given_conflicts"):
            console.print(f"[bold]oncology:[/bold] {oncology['stage_given_conflicts']:,} dates with a stage group "
                          "given two ways that disagree")
        if oncology.get("unconfirmed_diagnoses_excluded"):
            console.print(
                f"[bold]oncology:[/bold] {oncology['unconfirmed_diagnoses_excluded']:,} provisional/differential/unconfirmed "
                f"CTCL diagnoses and {oncology['staging_of_unconfirmed_excluded']:,} staging rows linked to them left out "
                "(--include-unconfirmed counts them)"
            )
    for title, counts in (("excluded by reason", data["excluded"]), ("quarantined by reason", data["quarantined"]),
                          ("unmapped rows by vocabulary (concept_id 0)", data["unmapped_rows_by_vocabulary"]),
                          ("resource types not mapped to OMOP", data["not_mapped_resource_types"])):
        if counts:
            console.print(f"[bold]{title}:[/bold] " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    if data["quarantined"]:
        console.print("details: SELECT * FROM ctcl_quarantine WHERE run_id = " + str(data["run_id"]))
