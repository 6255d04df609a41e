"""The `ctcl-map` command line. It only parses options, calls the library and prints.

Exit codes (all commands): 0 the job completed (quarantined records are reported, not fatal);
1 nothing could be loaded, a check failed, or the database failed; 2 usage or configuration error.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer

from ctcl_map import __version__

app = typer.Typer(
    name="ctcl-map",
    help=(
        "FHIR R4 -> OMOP CDM v5.4 for cutaneous T-cell lymphoma research.\n\n"
        "Start here:  ctcl-map fhir2omop samples/ss_mogamulizumab_died.json  (writes ./omop.duckdb)."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)

DbOption = Annotated[
    str,
    typer.Option("--db", help="DuckDB file path, or a URL such as postgresql+psycopg://user@127.0.0.1:5432/test."),
]
SchemaOption = Annotated[
    Optional[str], typer.Option("--cdm-schema", help="Schema for the CDM tables (default: the database's default schema).")
]
ResultsSchemaOption = Annotated[
    Optional[str], typer.Option("--results-schema", help="Schema for cohort tables (default: the CDM schema).")
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ctcl-map {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """FHIR R4 -> OMOP CDM v5.4 with CTCL (mycosis fungoides / Sézary syndrome) knowledge."""


def _fail(message: str, code: int) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _open(db: str, cdm_schema: str | None, results_schema: str | None = None, read_only: bool = False):
    from ctcl_map.writers.db import DatabaseError, connect

    try:
        return connect(db, cdm_schema=cdm_schema, results_schema=results_schema, read_only=read_only)
    except DatabaseError as problem:
        _fail(str(problem), 1)


@app.command()
def fhir2omop(
    inputs: Annotated[list[Path], typer.Argument(help="FHIR files or folders: Bundles (.json), bulk NDJSON (.ndjson), either gzipped (.gz).")],
    db: DbOption = "omop.duckdb",
    cdm_schema: SchemaOption = None,
    mappings: Annotated[Optional[list[Path]], typer.Option("--mappings", help="Folder of site mapping CSVs merged over the shipped tables (repeatable).")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when any record was quarantined.")] = False,
    validate: Annotated[bool, typer.Option("--validate", help="Also validate every mapped resource with the fhir.resources R4B models (about 1-2 k resources/s).")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Resources per transaction.")] = 5000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run report as JSON instead of a table.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="Processes converting in parallel (default: one per available core; 1 when under 16 MB is left to read, and never more than the JSON files to read). The output is the same for any number.")] = None,
    oncology: Annotated[bool, typer.Option("--oncology/--no-oncology", help="Derive staging links, stage groups, B categories, CLIPI, episodes and lines of therapy after the load.")] = True,
    b_rules: Annotated[str, typer.Option("--b-rules", help="ISCL/EORTC criteria for deriving the B category from blood counts: 2007 or 2022.")] = "2007",
    incremental: Annotated[bool, typer.Option("--incremental/--full", help="Skip files unchanged since an earlier completed run without parsing them (default), or read every file (--full; unchanged resources are still skipped).")] = True,
    max_resource_mb: Annotated[int, typer.Option("--max-resource-mb", min=1, help="A resource (Bundle entry, NDJSON line, single-resource file) larger than this is quarantined unread as resource_too_large; memory follows this, not the file size.")] = 64,
    max_decompressed_mb: Annotated[int, typer.Option("--max-decompressed-mb", min=0, help="A .gz file that expands past this stops there (decompressed_too_large; what came before loads). 0: no limit.")] = 4096,
    delete_vanished: Annotated[bool, typer.Option("--delete-vanished/--keep-vanished", help="A resource gone from every file that held it, when such a file is read again cleanly, is deleted (default: a re-exported Bundle is the current state). --keep-vanished for delta feeds written over the same file names, where absence means unchanged.")] = True,
) -> None:
    """Load FHIR R4 data into an OMOP CDM v5.4 database (DuckDB by default).

    Loading the same input again changes nothing; a newer version of a resource replaces its rows;
    a transaction DELETE removes them, and so does a re-exported file that no longer holds the
    resource (--keep-vanished for delta feeds). Invalid records go to the ctcl_quarantine table with file,
    position and reason, and the rest of the file still loads. Files unchanged since an earlier
    completed run are skipped without being parsed (--full reads every file). A run killed at any
    moment is completed by running it again; PostgreSQL loaders may run concurrently.

    Examples:

      ctcl-map fhir2omop samples/mf_early_stage.json

      ctcl-map fhir2omop exports/ --db omop.duckdb --mappings site-mappings/

      ctcl-map fhir2omop bulk/ --db postgresql+psycopg://postgres@127.0.0.1:5432/test --cdm-schema cdm
    """
    from ctcl_map.pipeline import RunFailed, RunOptions, run_fhir2omop
    from ctcl_map.progress_display import load_progress_bar
    from ctcl_map.report import print_run_report

    if b_rules not in ("2007", "2022"):
        _fail(f"--b-rules must be 2007 or 2022, not {b_rules!r}", 2)
    database = _open(db, cdm_schema)
    options = RunOptions(inputs=inputs, mapping_dirs=mappings or (), batch_size=batch_size, validate=validate,
                         workers=workers, incremental=incremental, oncology=oncology, b_rules=b_rules,
                         delete_vanished=delete_vanished, max_resource_bytes=max_resource_mb << 20,
                         max_decompressed_bytes=(max_decompressed_mb << 20) or None)
    try:
        with load_progress_bar(enabled=not quiet and not as_json) as progress:
            report = run_fhir2omop(database, options, progress)
    except RunFailed as problem:
        _fail(str(problem), 2)
    except Exception as problem:  # database failures: report, never a traceback
        _fail(f"the load failed and was rolled back to the last committed batch: {problem.__class__.__name__}: {problem}", 1)
    finally:
        database.close()
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        print_run_report(report, db)
    # Up to date is not a failure: a re-run (or the run completing a killed one) may load nothing new.
    outcome = report.outcome
    up_to_date = report.files_skipped + outcome.skipped_unchanged + outcome.superseded + outcome.deleted
    if (report.resources_read == 0 or report.loaded_resources == 0) and up_to_date == 0:
        _fail("nothing could be loaded from the input", 1)
    if strict and report.quarantined:
        _fail(f"{report.quarantined} record(s) quarantined and --strict is set", 1)


vocab_app = typer.Typer(help="The OMOP vocabulary: load a full Athena download over the shipped CTCL subset.", no_args_is_help=True)
mappings_app = typer.Typer(help="The CTCL mapping tables (therapies, diagnoses, staging, procedures, labs).", no_args_is_help=True)
app.add_typer(vocab_app, name="vocab")
app.add_typer(mappings_app, name="mappings")


@vocab_app.command("load")
def vocab_load(
    athena_dir: Annotated[Path, typer.Argument(help="Folder of an Athena download: tab-separated CONCEPT.csv, CONCEPT_RELATIONSHIP.csv, VOCABULARY.csv ...")],
    db: DbOption = "omop.duckdb",
    cdm_schema: SchemaOption = None,
) -> None:
    """Bulk-load a full Athena vocabulary download; afterwards any code resolves through 'Maps to'.

    The CTCL mapping tables keep precedence where they are more specific. The vocabulary version is
    recorded and every later load re-converts resources under it. A malformed folder is refused
    before anything changes, with the file and line named.
    """
    from ctcl_map.cdm.schema import cdm_ddl
    from ctcl_map.vocab.loader import AthenaError, load_athena

    database = _open(db, cdm_schema)
    try:
        for statement in cdm_ddl(database.dialect, database.cdm_schema):
            database.execute(statement)
        report = load_athena(database, athena_dir, progress=lambda name, rows: typer.echo(f"  {name}: {rows:,} rows", err=True))
    except AthenaError as problem:
        _fail(str(problem), 2)
    finally:
        database.close()
    typer.echo(report.summary())


@mappings_app.command("check")
def mappings_check(
    override_dirs: Annotated[Optional[list[Path]], typer.Argument(help="Site override folders to check with the shipped tables.")] = None,
    db: Annotated[Optional[str], typer.Option("--db", help="Check targets against this database's CONCEPT table instead of the shipped subset.")] = None,
    cdm_schema: SchemaOption = None,
) -> None:
    """Validate the mapping tables: every row against its JSON Schema, every target concept present,
    standard and of the expected domain. Exit 1 when a problem is found."""
    from ctcl_map.mappings.check import check_mappings
    from ctcl_map.mappings.tables import MappingError, load_mappings

    dirs = override_dirs or []
    database = _open(db, cdm_schema, read_only=True) if db else None
    try:
        problems = check_mappings(dirs, db=database)
        try:
            for conflict in load_mappings(dirs).conflicts:
                typer.echo(f"note: {conflict}")
        except MappingError:
            pass  # already reported as a problem by check_mappings
    finally:
        if database is not None:
            database.close()
    for problem in problems:
        typer.echo(f"problem: {problem}")
    if problems:
        _fail(f"{len(problems)} problem(s) in the mapping tables", 1)
    typer.echo("mapping tables OK")


@app.command()
def dq(
    db: DbOption = "omop.duckdb",
    cdm_schema: SchemaOption = None,
    results_schema: ResultsSchemaOption = None,
    check: Annotated[Optional[list[str]], typer.Option("--check", help="Run only this DQD check (repeatable), e.g. isRequired.")] = None,
    table: Annotated[Optional[list[str]], typer.Option("--table", help="Only checks on this CDM table (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print every check result as JSON.")] = False,
    show_passed: Annotated[bool, typer.Option("--show-passed", help="List passing checks in the table too.")] = False,
) -> None:
    """Data-quality checks over the CDM, after the OHDSI DataQualityDashboard v5.4 definitions and
    thresholds. Exit 1 when a check fails (or cannot run)."""
    from rich.console import Console

    from ctcl_map.quality import run_dq

    database = _open(db, cdm_schema, results_schema, read_only=True)
    try:
        report = run_dq(database, checks=check or None, tables=table or None)
    except ValueError as problem:
        _fail(str(problem), 2)
    finally:
        database.close()
    if as_json:
        typer.echo(report.to_json())
    else:
        Console().print(report.render_table(include_passed=show_passed))
    raise typer.Exit(report.exit_code)


def _csv_list(value: str | None) -> tuple[str, ...] | None:
    return tuple(part.strip() for part in value.split(",") if part.strip()) if value else None


@app.command()
def survival(
    db: DbOption = "omop.duckdb",
    cdm_schema: SchemaOption = None,
    results_schema: ResultsSchemaOption = None,
    cohort: Annotated[str, typer.Option("--cohort", help="Built-in target cohort: ctcl, mf, ss, advanced, early, first-line.")] = "ctcl",
    circe: Annotated[Optional[Path], typer.Option("--circe", help="An ATLAS/Circe cohort definition JSON to use instead of --cohort.")] = None,
    compare: Annotated[Optional[str], typer.Option("--compare", help="Exposure to compare, an ingredient name or concept_id (e.g. mogamulizumab).")] = None,
    comparator: Annotated[Optional[str], typer.Option("--comparator", help="new-user design: a specific comparator ingredient (default: any other systemic line).")] = None,
    design: Annotated[Optional[str], typer.Option("--design", help="new-user (default with --compare), landmark, time-varying, or naive (immortal-time biased; warns).")] = None,
    landmark_months: Annotated[float, typer.Option("--landmark-months", help="Landmark time for --design landmark.")] = 6.0,
    strata: Annotated[Optional[str], typer.Option("--strata", help="Comma-separated: stage_group, ctcl_type, clipi_group, sex.")] = None,
    stage: Annotated[Optional[str], typer.Option("--stage", help="Restrict to stage groups at index, e.g. IIB,IIIA or advanced / early.")] = None,
    clipi: Annotated[Optional[str], typer.Option("--clipi", help="Restrict to CLIPI risk groups: low, intermediate, high.")] = None,
    ctcl_type: Annotated[Optional[str], typer.Option("--type", help="Restrict to MF or SS.")] = None,
    age_min: Annotated[Optional[float], typer.Option("--age-min", help="Minimum age at index (years).")] = None,
    age_max: Annotated[Optional[float], typer.Option("--age-max", help="Maximum age at index (years).")] = None,
    sex: Annotated[Optional[str], typer.Option("--sex", help="male or female.")] = None,
    index_from: Annotated[Optional[datetime], typer.Option("--index-from", formats=["%Y-%m-%d"], help="Earliest index date.")] = None,
    index_to: Annotated[Optional[datetime], typer.Option("--index-to", formats=["%Y-%m-%d"], help="Latest index date.")] = None,
    admin_end: Annotated[Optional[datetime], typer.Option("--admin-end", formats=["%Y-%m-%d"], help="Administrative censoring date.")] = None,
    years: Annotated[str, typer.Option("--years", help="Survival reported at these years.")] = "1,2,5",
    unit: Annotated[str, typer.Option("--unit", help="Time unit shown: days, months or years.")] = "months",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    csv_out: Annotated[Optional[Path], typer.Option("--csv", help="Write the result table as CSV here.")] = None,
    plot_stem: Annotated[Optional[Path], typer.Option("--plot", help="Write a Kaplan-Meier plot as STEM.png and STEM.svg.")] = None,
) -> None:
    """Overall survival the OHDSI way: cohorts in the cohort table, Kaplan-Meier, log-rank, Cox.

    Follow-up ends at death, at the end of the observation period containing the index date, or at
    --admin-end. Exposure comparisons avoid immortal-time bias (new-user, landmark, time-varying);
    'naive' ever/never is offered only with a warning.

    Examples:

      ctcl-map survival --cohort advanced --strata stage_group --plot km

      ctcl-map survival --cohort advanced --compare mogamulizumab --design new-user --json
    """
    from ctcl_map.survival import Restrictions, SurvivalSpec, SurvivalSpecError, plot, render, run_survival
    from ctcl_map.writers.db import DatabaseError

    spec = SurvivalSpec(
        cohort=cohort,
        circe_json=circe,
        restrictions=Restrictions(
            stage_groups=_csv_list(stage), clipi_groups=_csv_list(clipi), ctcl_types=_csv_list(ctcl_type),
            age_min=age_min, age_max=age_max, sex=sex,
            index_from=index_from.date() if index_from else None, index_to=index_to.date() if index_to else None,
        ),
        compare=compare,
        comparator=comparator,
        design=design or ("new-user" if compare else "none"),
        landmark_months=landmark_months,
        strata=_csv_list(strata) or (),
        admin_end=admin_end.date() if admin_end else None,
        survival_years=tuple(float(y) for y in _csv_list(years) or ()),
        time_unit=unit,
    )
    database = _open(db, cdm_schema, results_schema)
    try:
        result = run_survival(database, spec)
    except (SurvivalSpecError, DatabaseError) as problem:
        _fail(str(problem), 2)
    finally:
        database.close()
    typer.echo(render(result, "json")) if as_json else render(result, "table")
    if csv_out:
        render(result, "csv", csv_out)
    if plot_stem:
        for path in plot(result, plot_stem):
            typer.echo(f"plot written: {path}", err=True)


@app.command()
def export(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write one file per CDM table into (created if absent).")],
    db: DbOption = "omop.duckdb",
    cdm_schema: SchemaOption = None,
    file_format: Annotated[str, typer.Option("--format", help="parquet or csv (with a header row).")] = "parquet",
    table: Annotated[Optional[list[str]], typer.Option("--table", help="Only this CDM table (repeatable); default: all 39.")] = None,
) -> None:
    """Write every CDM table to OUT_DIR as Parquet or CSV, one file per table (empty tables too).

    Examples:

      ctcl-map export cdm-parquet/ --db omop.duckdb

      ctcl-map export cdm-csv/ --format csv --db postgresql+psycopg://postgres@127.0.0.1:5432/test --cdm-schema cdm
    """
    from ctcl_map.writers.db import DatabaseError
    from ctcl_map.writers.export import FORMATS, export_cdm

    if file_format not in FORMATS:
        _fail(f"--format must be one of {', '.join(FORMATS)}, not {file_format!r}", 2)
    database = _open(db, cdm_schema, read_only=True)
    try:
        written = export_cdm(database, out_dir, file_format, table or None)
    except DatabaseError as problem:
        _fail(str(problem), 1)
    except OSError as problem:
        _fail(f"cannot write to {out_dir}: {problem}", 1)
    except Exception as problem:  # database failures: report, never a traceback
        _fail(f"the export failed: {problem.__class__.__name__}: {problem}", 1)
    finally:
        database.close()
    typer.echo(f"{len(written)} tables, {sum(t.rows for t in written):,} rows written to {out_dir} as {file_format}")


samples_app = typer.Typer(help="Synthetic CTCL FHIR cohorts with a known truth (no public MF/SS data exists).", no_args_is_help=True)
app.add_typer(samples_app, name="samples")


@samples_app.command("generate")
def samples_generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write: FHIR into OUT/fhir/, truth.csv and truth.json into OUT/.")],
    patients: Annotated[int, typer.Option("--patients", min=1, help="Number of patients.")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same bytes.")] = 1,
    fmt: Annotated[str, typer.Option("--format", help="bundle (one transaction Bundle per patient) or ndjson (bulk export, one file per type).")] = "bundle",
    gzip: Annotated[bool, typer.Option("--gzip", help="Write .gz files.")] = False,
    messy: Annotated[bool, typer.Option("--messy", help="Inject realistic mess: partial dates, duplicates, unknown local codes, entered-in-error records ...")] = False,
    mogamulizumab_hr: Annotated[float, typer.Option("--mogamulizumab-hr", min=0.01, help="True hazard ratio of death from mogamulizumab start.")] = 0.7,
) -> None:
    """Generate a synthetic MF/SS cohort as FHIR R4 with its ground truth.

    Example (the committed samples/cohort-500):

      ctcl-map samples generate --patients 500 --seed 500 --out samples/cohort-500 --format ndjson --gzip
    """
    from ctcl_map.synthetic import GeneratorConfig, generate_cohort, write_cohort

    try:
        cohort = generate_cohort(GeneratorConfig(patients=patients, seed=seed, messy=messy, mogamulizumab_hr=mogamulizumab_hr))
        written = write_cohort(cohort, out, fmt, gzip)
    except ValueError as problem:
        _fail(str(problem), 2)
    typer.echo(f"{patients} patients, {len(written)} files written under {out} (FHIR in {out / 'fhir'})")


@app.command()
def validate(
    inputs: Annotated[list[Path], typer.Argument(help="FHIR files or folders: Bundles (.json), bulk NDJSON (.ndjson), either gzipped (.gz).")],
    mappings: Annotated[Optional[list[Path]], typer.Option("--mappings", help="Folder of site mapping CSVs merged over the shipped tables (repeatable).")] = None,
    db: Annotated[Optional[str], typer.Option("--db", help="Read the vocabulary from this CDM (e.g. a loaded Athena download); default: the shipped subset. Nothing is written.")] = None,
    cdm_schema: SchemaOption = None,
    schema: Annotated[bool, typer.Option("--schema", help="Also validate against HL7's FHIR R4 JSON schema (about 250 resources/s).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print every finding, the counts and the mapping coverage as JSON.")] = False,
    html: Annotated[Optional[Path], typer.Option("--html", help="Also write a self-contained HTML report to this file.")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on warnings too.")] = False,
    top: Annotated[int, typer.Option("--top", min=1, help="Problems and unmapped codes shown in the table.")] = 20,
) -> None:
    """Check a FHIR export before loading it: structure (fhir.resources R4B), references, CTCL
    plausibility (diagnosis before treatment, death after events, stage vs TNMB, B vs blood counts,
    mogamulizumab dosing) and mapping coverage with the unmapped codes a site must add.

    Exit 0 when fit, 1 on errors (and on warnings with --strict), 2 on a configuration error.
    """
    from rich.console import Console

    from ctcl_map.quality.validate import ValidationFailed, validate_inputs

    database = _open(db, cdm_schema, read_only=True) if db else None
    try:
        report = validate_inputs(inputs, mapping_dirs=mappings or (), db=database, json_schema=schema)
    except ValidationFailed as problem:
        _fail(str(problem), 2)
    finally:
        if database is not None:
            database.close()
    if html is not None:
        html.write_text(report.to_html(), encoding="utf-8")
    if as_json:
        typer.echo(report.to_json())
    else:
        Console().print(report.render_table(top=top))
    raise typer.Exit(report.exit_code(strict))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted: the last committed batch is kept; run again to complete", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
