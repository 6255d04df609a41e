"""The `ctcl-map` command line. It only parses options, calls the library and prints.

Exit codes (all commands): 0 the job completed (quarantined records are reported, not fatal);
1 nothing could be loaded, a check failed, or the database failed; 2 usage or configuration error.
Every error reaches the user through one place, `_reported`: its message and its class's exit code
(see ctcl_map.errors).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import typer

from ctcl_map import __version__
from ctcl_map.errors import (
    CtclMapError,
    DatabaseError,
    JobFailed,
    OutputPathError,
    OutputWriteError,
    UsageError,
)


def _with_driver_errors(*own: type[BaseException]) -> tuple[type[BaseException], ...]:
    """`own` error types and the database drivers' own error types, of the drivers this process has imported."""
    return (*own, *(sys.modules[name].Error for name in ("duckdb", "psycopg") if name in sys.modules))


def _as_reported(problem: BaseException) -> CtclMapError:
    """`problem`, a CtclMapError or a driver error, as the CtclMapError to report."""
    if isinstance(problem, CtclMapError):
        return problem
    # The store layer normally wraps driver errors as DatabaseError; one that slips through
    # still exits with the database exit code, not a traceback.
    first_line = (str(problem).splitlines() or [""])[0]
    return DatabaseError(f"{problem.__class__.__name__}: {first_line}")


_Command = TypeVar("_Command", bound=Callable[..., Any])


def _reported(command: _Command) -> _Command:
    """The one place errors meet the user: a CtclMapError (or a driver error) becomes its message
    on stderr and its exit code (see ctcl_map.errors), never a traceback."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except _with_driver_errors(CtclMapError) as problem:
            reported = _as_reported(problem)
            from ctcl_map.terminal import clean

            typer.secho(f"error: {clean(str(reported))}", fg=typer.colors.RED, err=True)
            raise typer.Exit(reported.exit_code) from None

    return cast(_Command, run)  # functools.wraps keeps the signature Typer reads


class _Typer(typer.Typer):
    """A Typer app whose every command reports its errors through `_reported`."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[_Command], _Command]:
        register = super().command(*args, **kwargs)
        return lambda command: register(_reported(command))


app = _Typer(
    name="ctcl-map",
    help=(
        "FHIR R4 -> OMOP CDM v5.4 for cutaneous T-cell lymphoma research.\n\n"
        "Start here (works in any folder after `pip install`):\n\n"
        "    ctcl-map samples copy --out demo\n"
        "    ctcl-map fhir2omop demo/ss_mogamulizumab_died.json\n"
        "    ctcl-map samples generate --patients 20 --out demo\n"
        "    ctcl-map validate demo/fhir\n"
        "    ctcl-map fhir2omop demo/fhir\n"
        "    ctcl-map dq\n"
        "    ctcl-map survival --strata ctcl_type\n\n"
        "`ctcl-map COMMAND --help` explains each command, with examples."
    ),
    no_args_is_help=True,
    add_completion=False,
    # Markdown: help paragraphs re-flow to the terminal width; indented examples stay as written.
    rich_markup_mode="markdown",
)

# Help panels: every option is shown under one of these, by name.
INPUT = "Input"
DATABASE = "Database"
BEHAVIOUR = "Behaviour"
OUTPUT = "Output"
PERFORMANCE = "Performance"

DbOption = Annotated[
    str,
    typer.Option("--db", metavar="PATH|URL", rich_help_panel=DATABASE,
                 help="A DuckDB file, or a PostgreSQL URL: postgresql+psycopg://USER@HOST:5432/DB."),
]
SchemaOption = Annotated[
    str | None, typer.Option("--cdm-schema", metavar="NAME", rich_help_panel=DATABASE,
                                help="Schema of the CDM tables (default: the database's default).")
]
ResultsSchemaOption = Annotated[
    str | None, typer.Option("--results-schema", metavar="NAME", rich_help_panel=DATABASE,
                                help="Schema of the cohort tables (default: the CDM schema).")
]
MappingsOption = Annotated[
    list[Path] | None, typer.Option("--mappings", metavar="DIR", rich_help_panel=INPUT,
                                       help="Folder of site mapping CSVs, merged over the shipped tables (repeatable).")
]
InputsArgument = Annotated[
    list[Path], typer.Argument(metavar="INPUT", show_default=False,
                               help="FHIR files or folders: Bundles (.json), bulk NDJSON (.ndjson), either gzipped (.gz).")
]
JsonOption = Annotated[bool, typer.Option("--json", metavar="", rich_help_panel=OUTPUT,
                                          help="Print the result as JSON (stable keys) instead of text.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ctcl-map {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", metavar="", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """FHIR R4 -> OMOP CDM v5.4 with CTCL (mycosis fungoides / Sézary syndrome) knowledge."""


def _require_inputs(inputs: list[Path]) -> None:
    """A mistyped input path is a usage error, found before any database is opened or created."""
    from ctcl_map.readers.fhir_input import missing_paths

    missing = missing_paths(inputs)
    if missing:
        raise UsageError(f"no such file or directory: {', '.join(missing)}")


def _open(db: str, cdm_schema: str | None, results_schema: str | None = None, read_only: bool = False):
    from ctcl_map.store.database import connect

    return connect(db, cdm_schema=cdm_schema, results_schema=results_schema, read_only=read_only)


def _fhir2omop_on_spark(inputs: list[Path], out: Path | None, master: str | None, mappings: list[Path], vocab_db: str | None,
                       key_file: Path | None, as_json: bool, strict: bool) -> None:
    """fhir2omop --engine spark (README, "Spark"): pyspark is imported only from here on."""
    from ctcl_map.spark.engine import SparkOptions, input_uri, print_spark_report, run_spark_fhir2omop
    from ctcl_map.spark.session import spark_session

    if out is None:
        raise UsageError("--engine spark writes a Parquet CDM folder: give it with --out CDM_DIR")
    uris = [input_uri(path) for path in inputs]
    _require_inputs([Path(uri) for uri in uris if "://" not in uri])
    spark = spark_session(master or "local[*]")
    try:
        report = run_spark_fhir2omop(spark, SparkOptions(inputs=uris, out=out, mapping_dirs=mappings, vocab_db=vocab_db, key_file=key_file))
    finally:
        spark.stop()
    for notice in report.notices:
        typer.secho(f"note: {notice}", fg=typer.colors.YELLOW, err=True)
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else print_spark_report(report, out))
    if sum(report.resources_loaded.values()) == 0:
        raise JobFailed("nothing could be loaded from the input")
    if strict and report.quarantined:
        raise JobFailed(f"{sum(report.quarantined.values())} record(s) quarantined and --strict is set")


@app.command()
def fhir2omop(
    inputs: InputsArgument,
    mappings: MappingsOption = None,
    validate: Annotated[bool, typer.Option("--validate", metavar="", rich_help_panel=INPUT, help="Also check every mapped resource against the fhir.resources R4B models (slow: about 1-2 k resources/s).")] = False,
    db: DbOption = "omop.duckdb",
    cdm_schema: SchemaOption = None,
    incremental: Annotated[bool, typer.Option("--incremental/--full", metavar="", show_default=False, rich_help_panel=BEHAVIOUR, help="Skip files unchanged since a completed run (default), or read every file.")] = True,
    delete_vanished: Annotated[bool, typer.Option("--delete-vanished/--keep-vanished", metavar="", show_default=False, rich_help_panel=BEHAVIOUR, help="Delete resources gone from their re-read file (default), or keep them (delta feeds).")] = True,
    oncology: Annotated[bool, typer.Option("--oncology/--no-oncology", metavar="", show_default=False, rich_help_panel=BEHAVIOUR, help="Derive staging, CLIPI, episodes and lines of therapy after the load (default), or not.")] = True,
    b_rules: Annotated[str, typer.Option("--b-rules", metavar="2007|2022", rich_help_panel=INPUT, help="ISCL/EORTC criteria for reading blood counts as a B category.")] = "2007",
    workers: Annotated[int | None, typer.Option("--workers", min=1, metavar="N", rich_help_panel=PERFORMANCE, help="Converting processes (default: one per core, fewer for small inputs). Same output for any N.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, metavar="N", rich_help_panel=PERFORMANCE, help="Resources per transaction.")] = 5000,
    strict: Annotated[bool, typer.Option("--strict", metavar="", rich_help_panel=BEHAVIOUR, help="Exit 1 when any record was quarantined.")] = False,
    as_json: JsonOption = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", metavar="", rich_help_panel=OUTPUT, help="No progress bar (drawn only on a terminal).")] = False,
    max_resource_mb: Annotated[int, typer.Option("--max-resource-mb", min=1, metavar="MB", hidden=True, help="Quarantine a larger resource unread.")] = 64,
    max_decompressed_mb: Annotated[int, typer.Option("--max-decompressed-mb", min=0, metavar="MB", hidden=True, help="Stop reading a .gz past this (0: no limit).")] = 4096,
    log_file: Annotated[Path | None, typer.Option("--log-file", metavar="FILE", rich_help_panel=OUTPUT, help="Append JSON lines for a scheduler: run start, progress per file, warnings, the report.")] = None,
    include_unconfirmed: Annotated[bool, typer.Option("--include-unconfirmed", metavar="", rich_help_panel=BEHAVIOUR, help="Treat provisional, differential and unconfirmed CTCL diagnoses as cases in the oncology step (default: loaded, left out).")] = False,
    key_file: Annotated[Path | None, typer.Option("--key-file", metavar="FILE", rich_help_panel=DATABASE, help="Pseudonym key file kept apart from the CDM (else $CTCL_MAP_KEY_FILE or ~/.config/ctcl-map/pseudonym.key; see README, Privacy).")] = None,
    engine: Annotated[str, typer.Option("--engine", metavar="single|spark", show_default=False, rich_help_panel=PERFORMANCE, help="spark: Apache Spark, into --out DIR.")] = "single",
    out: Annotated[Path | None, typer.Option("--out", metavar="CDM_DIR", hidden=True, help="Spark: the Parquet CDM folder (README, Spark).")] = None,
    master: Annotated[str | None, typer.Option("--master", metavar="URL", hidden=True, help="Spark: local[*], spark://..., yarn.")] = None,
    vocab_db: Annotated[str | None, typer.Option("--vocab-db", metavar="DB", hidden=True, help="Spark: a CDM with a loaded vocabulary.")] = None,
) -> None:
    """Load FHIR R4 data into an OMOP CDM v5.4 database (DuckDB by default).

    Loading the same input again changes nothing; a newer version of a resource replaces its
    rows; a transaction DELETE removes them, and so does a re-exported file that no longer holds
    the resource (--keep-vanished for delta feeds). Invalid records go to the ctcl_quarantine
    table with file, position and reason, and the rest of the file still loads. Files unchanged
    since a completed run are skipped without being parsed (--full reads every file). A run
    killed at any moment is completed by running it again; PostgreSQL loaders may run
    concurrently.

    Examples:

        ctcl-map samples generate --patients 20 --out demo
        ctcl-map fhir2omop demo/fhir

        ctcl-map fhir2omop exports/ --mappings site-mappings/ --log-file load.jsonl

        ctcl-map fhir2omop bulk/ --cdm-schema cdm \\
            --db postgresql+psycopg://postgres@127.0.0.1:5432/test
    """
    from ctcl_map.pipeline import LoadProgress, RunOptions, run_fhir2omop
    from ctcl_map.progress_display import load_progress_bar
    from ctcl_map.report import print_run_report
    from ctcl_map.run_log import RunLog
    from ctcl_map.terminal import is_terminal

    if b_rules not in ("2007", "2022"):
        raise UsageError(f"--b-rules must be 2007 or 2022, not {b_rules!r}")
    if engine not in ("single", "spark"):
        raise UsageError(f"--engine must be single or spark, not {engine!r}")
    if engine == "spark":
        _fhir2omop_on_spark(inputs, out, master, mappings or [], vocab_db, key_file, as_json, strict)
        return
    if out is not None or master is not None or vocab_db is not None:
        raise UsageError("--out, --master and --vocab-db go with --engine spark")
    _require_inputs(inputs)
    try:
        log = RunLog.open(log_file)
    except OSError as problem:
        raise OutputPathError(f"cannot write the log file {log_file}: {problem.strerror or problem}") from None
    try:
        database = _open(db, cdm_schema)
        options = RunOptions(inputs=inputs, mapping_dirs=mappings or (), batch_size=batch_size, validate=validate,
                             workers=workers, incremental=incremental, oncology=oncology, b_rules=b_rules,
                             delete_vanished=delete_vanished, include_unconfirmed=include_unconfirmed,
                             key_file=key_file, max_resource_bytes=max_resource_mb << 20,
                             max_decompressed_bytes=(max_decompressed_mb << 20) or None)
        log.start(database.dialect, len(inputs), {
            "batch_size": batch_size, "workers": workers, "incremental": incremental, "delete_vanished": delete_vanished,
            "oncology": oncology, "b_rules": b_rules, "validate": validate, "strict": strict, "site_mappings": len(options.mapping_dirs)})
        # The bar is for a person at a terminal; a pipe or a scheduler's log gets none (see --log-file).
        bar_enabled = not quiet and not as_json and is_terminal(sys.stderr)
        try:
            with load_progress_bar(enabled=bar_enabled) as bar:
                progress = [show for show in (bar, log.progress if log.stream else None) if show]

                def show_progress(state: LoadProgress) -> None:
                    for show in progress:
                        show(state)

                report = run_fhir2omop(database, options, show_progress if progress else None)
        except _with_driver_errors(DatabaseError) as problem:
            failure = _as_reported(problem)
            raise type(failure)(f"the load failed and was rolled back to the last committed batch: {failure}") from problem
        finally:
            database.close()
        log.report(report.to_dict())
        for notice in report.notices:
            typer.secho(f"note: {notice}", fg=typer.colors.YELLOW, err=True)
        if as_json:
            typer.echo(json.dumps(report.to_dict(), indent=2))
        else:
            print_run_report(report, database.label)
        # Up to date is not a failure: a re-run (or the run completing a killed one) may load nothing new.
        outcome = report.outcome
        up_to_date = report.files_skipped + outcome.skipped_unchanged + outcome.superseded + outcome.deleted
        if (report.resources_read == 0 or report.loaded_resources == 0) and up_to_date == 0:
            log.end(JobFailed.exit_code, "nothing_loaded")
            raise JobFailed("nothing could be loaded from the input")
        if strict and report.quarantined:
            log.end(JobFailed.exit_code, "quarantined_with_strict")
            raise JobFailed(f"{report.quarantined} record(s) quarantined and --strict is set")
        log.end(0)
    except _with_driver_errors(CtclMapError) as problem:
        failure = _as_reported(problem)  # the run log records what `_reported` tells the user; log.end keeps its first call
        log.end(failure.exit_code, "configuration" if failure.exit_code == 2 else failure.__class__.__name__)
        raise
    finally:
        log.close()


vocab_app = _Typer(help="The OMOP vocabulary: load a full Athena download over the shipped CTCL subset.", no_args_is_help=True)
mappings_app = _Typer(help="The CTCL mapping tables (therapies, diagnoses, staging, procedures, labs).", no_args_is_help=True)
app.add_typer(vocab_app, name="vocab")
app.add_typer(mappings_app, name="mappings")


@vocab_app.command("load")
def vocab_load(
    athena_dir: Annotated[Path, typer.Argument(metavar="ATHENA_DIR", help="Folder of an Athena download: tab-separated CONCEPT.csv, CONCEPT_RELATIONSHIP.csv, VOCABULARY.csv ...")],
    db: DbOption = "omop.duckdb",
    cdm_schema: SchemaOption = None,
) -> None:
    """Bulk-load a full Athena vocabulary download; afterwards any code resolves through 'Maps to'.

    The CTCL mapping tables keep precedence where they are more specific. The vocabulary version is
    recorded and every later load re-converts resources under it. A malformed folder is refused
    before anything changes, with the file and line named.

    Example (an unzipped download from athena.ohdsi.org):

        ctcl-map vocab load athena-download/ --db omop.duckdb
    """
    from ctcl_map.cdm.schema import cdm_ddl
    from ctcl_map.vocab.athena import load_athena

    database = _open(db, cdm_schema)
    try:
        for statement in cdm_ddl(database.dialect, database.cdm_schema):
            database.execute(statement)
        report = load_athena(database, athena_dir, progress=lambda name, rows: typer.echo(f"  {name}: {rows:,} rows", err=True))
    finally:
        database.close()
    typer.echo(report.summary())


@mappings_app.command("check")
def mappings_check(
    override_dirs: Annotated[list[Path] | None, typer.Argument(metavar="DIR", help="Site override folders to check with the shipped tables.")] = None,
    db: Annotated[str | None, typer.Option("--db", metavar="PATH|URL", rich_help_panel=DATABASE, help="Check targets against this database's CONCEPT table instead of the shipped subset.")] = None,
    cdm_schema: SchemaOption = None,
) -> None:
    """Validate the mapping tables: every row against its JSON Schema, every target concept present,
    standard and of the expected domain. Exit 1 when a problem is found.

    Without a folder the shipped tables are checked; with one, the site's rows merged over them
    (a site row overriding a shipped one is noted).

    Examples:

        ctcl-map mappings check

        ctcl-map mappings check site-mappings/ --db omop.duckdb
    """
    from ctcl_map.errors import MappingError
    from ctcl_map.mappings.check import check_mappings
    from ctcl_map.mappings.tables import load_mappings
    from ctcl_map.terminal import clean

    dirs = override_dirs or []
    database = _open(db, cdm_schema, read_only=True) if db else None
    try:
        problems = check_mappings(dirs, db=database)
        try:
            for conflict in load_mappings(dirs).conflicts:
                typer.echo(f"note: {clean(conflict)}")
        except MappingError:
            pass  # already reported as a problem by check_mappings
    finally:
        if database is not None:
            database.close()
    for problem in problems:
        typer.echo(f"problem: {clean(problem)}")
    if problems:
        raise JobFailed(f"{len(problems)} problem(s) in the mapping tables")
    typer.echo("mapping tables OK")


@app.command(short_help="Data-quality checks over the CDM (OHDSI DataQualityDashboard v5.4).")
def dq(
    db: DbOption = "omop.duckdb",
    cdm_schema: SchemaOption = None,
    results_schema: ResultsSchemaOption = None,
    check: Annotated[list[str] | None, typer.Option("--check", metavar="NAME", rich_help_panel=BEHAVIOUR, help="Run only this DQD check (repeatable), e.g. isRequired.")] = None,
    table: Annotated[list[str] | None, typer.Option("--table", metavar="TABLE", rich_help_panel=BEHAVIOUR, help="Only checks on this CDM table (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", metavar="", rich_help_panel=OUTPUT, help="Print every check result as JSON.")] = False,
    show_passed: Annotated[bool, typer.Option("--show-passed", metavar="", rich_help_panel=OUTPUT, help="List passing checks in the table too.")] = False,
    dqd_json: Annotated[Path | None, typer.Option("--dqd-json", metavar="FILE", rich_help_panel=OUTPUT, help="Also write the results in DataQualityDashboard's results JSON format (for DQD's viewer) to this file.")] = None,
) -> None:
    """Data-quality checks over the CDM, after the OHDSI DataQualityDashboard v5.4 definitions and
    thresholds. Exit 1 when a check fails (or cannot run).

    Each failed check is one block: status, check name and where (TABLE.FIELD), the rows violated
    against DQD's threshold, and DQD's description.

    Examples (after `ctcl-map fhir2omop demo/fhir`, see `ctcl-map --help`):

        ctcl-map dq

        ctcl-map dq --check isRequired --table person --show-passed

        ctcl-map dq --json > dq.json
    """
    from ctcl_map.quality import run_dq
    from ctcl_map.quality.dqd_results import dqd_json as to_dqd_json
    from ctcl_map.quality.dqd_results import dqd_results
    from ctcl_map.terminal import show

    database = _open(db, cdm_schema, results_schema, read_only=True)
    started = datetime.now()
    try:
        report = run_dq(database, checks=check or None, tables=table or None)
        cdm_source = (database.query_df(f"SELECT * FROM {database.table('cdm_source')}").to_dict("records")
                      if dqd_json and database.table_exists("cdm_source") else [])
    except ValueError as problem:  # an unknown --check or --table name
        raise UsageError(str(problem)) from None
    finally:
        database.close()
    if dqd_json:
        if not cdm_source:
            typer.echo("warning: CDM_SOURCE is empty; DQD's viewer shows no source metadata", err=True)
        try:
            dqd_json.write_bytes(to_dqd_json(dqd_results(report, cdm_source, started, datetime.now(), __version__)))
        except OSError as problem:
            raise OutputWriteError(f"cannot write {dqd_json}: {problem.strerror}") from None
        typer.echo(f"DQD results written: {dqd_json} ({len(report.results)} checks)", err=True)
    if as_json:
        typer.echo(report.to_json())
    else:
        show(report.render_table(include_passed=show_passed))
    raise typer.Exit(report.exit_code)


def _csv_list(value: str | None) -> tuple[str, ...] | None:
    return tuple(part.strip() for part in value.split(",") if part.strip()) if value else None


def _survival_run(db: str, cdm_schema: str | None, results_schema: str | None, run):
    """run(database) on the opened CDM, closed afterwards."""
    database = _open(db, cdm_schema, results_schema)
    try:
        return run(database)
    finally:
        database.close()


def _covariates(text: str | None) -> tuple[str, ...]:
    from ctcl_map.survival.adjust import parse_covariates

    try:
        return parse_covariates(text)
    except ValueError as problem:
        raise UsageError(str(problem)) from None


@app.command()
def survival(
    db: DbOption = "omop.duckdb",
    cdm_schema: SchemaOption = None,
    results_schema: ResultsSchemaOption = None,
    cohort: Annotated[str, typer.Option("--cohort", metavar="NAME", rich_help_panel=INPUT, help="Built-in target cohort: ctcl, mf, ss, advanced, early, first-line.")] = "ctcl",
    circe: Annotated[Path | None, typer.Option("--circe", metavar="FILE", rich_help_panel=INPUT, help="An ATLAS/Circe cohort definition JSON to use instead of --cohort.")] = None,
    cohort_id: Annotated[int | None, typer.Option("--cohort-id", metavar="N", rich_help_panel=OUTPUT, help="Cohort id (default: a Circe file's own, else a free one); another definition's id is refused.")] = None,
    cohort_table: Annotated[str, typer.Option("--cohort-table", metavar="TABLE", rich_help_panel=OUTPUT, help="Cohort table in the results schema (e.g. apart from CohortGenerator's).")] = "cohort",
    compare: Annotated[str | None, typer.Option("--compare", metavar="DRUG", rich_help_panel=BEHAVIOUR, help="Drug: ingredient name or concept_id.")] = None,
    comparator: Annotated[str | None, typer.Option("--comparator", metavar="DRUG", rich_help_panel=BEHAVIOUR, help="new-user: one comparator drug.")] = None,
    design: Annotated[str | None, typer.Option("--design", metavar="DESIGN", rich_help_panel=BEHAVIOUR, help="new-user (default); naive warns.")] = None,
    landmark_months: Annotated[float, typer.Option("--landmark-months", metavar="MONTHS", rich_help_panel=BEHAVIOUR, help="Landmark time for --design landmark.")] = 6.0,
    strata: Annotated[str | None, typer.Option("--strata", metavar="LIST", rich_help_panel=BEHAVIOUR, help="stage_group,ctcl_type,clipi_group,sex")] = None,
    stage: Annotated[str | None, typer.Option("--stage", metavar="LIST", rich_help_panel=INPUT, help="Restrict to stage groups at index, e.g. IIB,IIIA or advanced / early.")] = None,
    clipi: Annotated[str | None, typer.Option("--clipi", metavar="LIST", rich_help_panel=INPUT, help="Restrict to CLIPI risk groups: low, intermediate, high.")] = None,
    ctcl_type: Annotated[str | None, typer.Option("--type", metavar="MF|SS", rich_help_panel=INPUT, help="Restrict to MF or SS.")] = None,
    age_min: Annotated[float | None, typer.Option("--age-min", metavar="YEARS", rich_help_panel=INPUT, help="Minimum age at index (years).")] = None,
    age_max: Annotated[float | None, typer.Option("--age-max", metavar="YEARS", rich_help_panel=INPUT, help="Maximum age at index (years).")] = None,
    sex: Annotated[str | None, typer.Option("--sex", metavar="male|female", rich_help_panel=INPUT, help="male or female.")] = None,
    index_from: Annotated[datetime | None, typer.Option("--index-from", metavar="YYYY-MM-DD", rich_help_panel=INPUT, formats=["%Y-%m-%d"], help="Earliest index date.")] = None,
    index_to: Annotated[datetime | None, typer.Option("--index-to", metavar="YYYY-MM-DD", rich_help_panel=INPUT, formats=["%Y-%m-%d"], help="Latest index date.")] = None,
    admin_end: Annotated[datetime | None, typer.Option("--admin-end", metavar="YYYY-MM-DD", rich_help_panel=BEHAVIOUR, formats=["%Y-%m-%d"], help="Administrative censoring date.")] = None,
    years: Annotated[str, typer.Option("--years", metavar="LIST", rich_help_panel=OUTPUT, help="Survival reported at these years.")] = "1,2,5",
    unit: Annotated[str, typer.Option("--unit", metavar="UNIT", rich_help_panel=OUTPUT, help="Time unit shown: days, months or years.")] = "months",
    as_json: Annotated[bool, typer.Option("--json", metavar="", rich_help_panel=OUTPUT, help="Print the result as JSON.")] = False,
    csv_out: Annotated[Path | None, typer.Option("--csv", metavar="FILE", rich_help_panel=OUTPUT, help="Write the result table as CSV here.")] = None,
    plot_stem: Annotated[Path | None, typer.Option("--plot", metavar="STEM", rich_help_panel=OUTPUT, help="Write a Kaplan-Meier plot as STEM.png and STEM.svg.")] = None,
    include_unconfirmed: Annotated[bool, typer.Option("--include-unconfirmed", metavar="", rich_help_panel=INPUT, help="Let unconfirmed diagnoses (and their stages) enter the cohorts.")] = False,
    adjust: Annotated[str | None, typer.Option("--adjust", metavar="LIST", rich_help_panel=BEHAVIOUR, help="Covariates: default (age, sex, MF/SS, stage, CLIPI, LDH, LCT) or a list.")] = None,
    method: Annotated[str, typer.Option("--method", metavar="METHOD", rich_help_panel=BEHAVIOUR, help="cox, ps-match, ps-stratify or iptw.")] = "cox",
    missing: Annotated[str, typer.Option("--missing", metavar="HOW", rich_help_panel=BEHAVIOUR, help="indicator or complete-case.")] = "indicator",
) -> None:
    """Overall survival the OHDSI way: cohorts in the cohort table, Kaplan-Meier, log-rank, Cox.

    Follow-up ends at death, at the end of the observation period containing the index date, or at
    --admin-end. Exposure comparisons avoid immortal-time bias (new-user, landmark, time-varying);
    'naive' ever/never is offered only with a warning.

    Examples (on a CDM loaded from `ctcl-map samples generate --patients 200 --out demo`):

        ctcl-map survival --strata ctcl_type

        ctcl-map survival --cohort advanced --strata stage_group --plot km

        ctcl-map survival --cohort advanced --compare mogamulizumab \\
            --design new-user --json

        ctcl-map survival --cohort advanced --compare mogamulizumab \\
            --adjust default --method ps-match
    """
    from ctcl_map.store.database import check_identifier
    from ctcl_map.survival import Restrictions, SurvivalSpec, plot, render, run_survival

    spec = SurvivalSpec(
        cohort=cohort,
        circe_json=circe,
        cohort_id=cohort_id,
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
        include_unconfirmed=include_unconfirmed,
        adjust=_covariates(adjust),
        method=method,
        missing=missing,
    )

    def run(database):
        database.cohort_table = check_identifier(cohort_table)
        return run_survival(database, spec)

    result = _survival_run(db, cdm_schema, results_schema, run)
    for line in result.written:
        typer.echo(line, err=True)
    typer.echo(render(result, "json")) if as_json else render(result, "table")
    if csv_out:
        render(result, "csv", csv_out)
    if plot_stem:
        for path in plot(result, plot_stem):
            typer.echo(f"plot written: {path}", err=True)
        if result.adjusted and result.adjusted.get("propensity"):
            from ctcl_map.survival.study import overlap_plot

            stem = plot_stem.with_name(plot_stem.name + "_ps_overlap")
            png = overlap_plot([(result.design, result.adjusted["propensity"])], spec.compare or "exposed", stem)
            typer.echo(f"plot written: {png} and {png.with_suffix('.svg')}", err=True)


@app.command(short_help="A survival study in one command: one self-contained HTML report with its data.")
def study(
    out: Annotated[Path, typer.Option("--out", metavar="DIR", rich_help_panel=OUTPUT, help="Folder for report.html, study.json, CSVs and figures (created).")],
    db: DbOption = "omop.duckdb",
    cdm_schema: SchemaOption = None,
    results_schema: ResultsSchemaOption = None,
    compare: Annotated[str | None, typer.Option("--compare", metavar="DRUG", rich_help_panel=BEHAVIOUR, help="Exposure to compare by every design and method, e.g. mogamulizumab.")] = None,
    cohort: Annotated[str, typer.Option("--cohort", metavar="NAME", rich_help_panel=INPUT, help="Target cohort of the exposure comparison.")] = "advanced",
    adjust: Annotated[str, typer.Option("--adjust", metavar="LIST", rich_help_panel=BEHAVIOUR, help="Adjustment covariates: 'default' or a list (see survival --adjust).")] = "default",
    missing: Annotated[str, typer.Option("--missing", metavar="HOW", rich_help_panel=BEHAVIOUR, help="Missing covariates: indicator or complete-case.")] = "indicator",
    landmark_months: Annotated[float, typer.Option("--landmark-months", metavar="MONTHS", rich_help_panel=BEHAVIOUR, help="Landmark time of the landmark design.")] = 6.0,
    admin_end: Annotated[datetime | None, typer.Option("--admin-end", metavar="YYYY-MM-DD", rich_help_panel=BEHAVIOUR, formats=["%Y-%m-%d"], help="Administrative censoring date.")] = None,
) -> None:
    """A survival study in one command: one self-contained HTML report plus its JSON and CSV.

    Attrition, Table 1, OS by CTCL type, stage and CLIPI group (Kaplan-Meier with risk tables), and
    with --compare the exposure comparison by every design, unadjusted and adjusted, with balance.

    Example:

        ctcl-map study --db omop.duckdb --compare mogamulizumab --out study/
    """
    from ctcl_map.survival.study import StudyOptions, render_text, run_study, write_study

    options = StudyOptions(compare=compare, cohort=cohort, covariates=_covariates(adjust), missing=missing,
                           landmark_months=landmark_months, admin_end=admin_end.date() if admin_end else None)
    result = _survival_run(db, cdm_schema, results_schema, lambda database: run_study(database, options))
    written = write_study(result, out)
    if result.comparison:
        typer.echo(render_text(result), nl=False)
    for warning in result.warnings:
        typer.echo(f"WARNING: {warning}", err=True)
    typer.echo(f"report written: {out / 'report.html'} ({len(written)} files in {out})")


@app.command(short_help="Apply the official CDM v5.4 indices and foreign keys to a loaded CDM.")
def constraints(
    db: DbOption = "omop.duckdb",
    cdm_schema: SchemaOption = None,
    indices: Annotated[bool, typer.Option("--indices/--no-indices", metavar="", show_default=False, rich_help_panel=BEHAVIOUR, help="The official CommonDataModel v5.4 indices.")] = True,
    foreign_keys: Annotated[bool, typer.Option("--foreign-keys/--no-foreign-keys", metavar="", show_default=False, rich_help_panel=BEHAVIOUR, help="The 176 official foreign keys (PostgreSQL; created deferrable).")] = True,
) -> None:
    """Apply the official OMOP CDM v5.4 indices and foreign keys to a loaded CDM (idempotent).

    Later loads, updates and deletes keep working: ctcl-map's transactions defer the foreign keys
    to commit. Exit 1 when a foreign key cannot be added because rows break it.

    Example:

      ctcl-map constraints --db postgresql+psycopg://postgres@127.0.0.1:5432/test --cdm-schema cdm
    """
    from ctcl_map.store.constraints import apply_foreign_keys, apply_indices

    database = _open(db, cdm_schema)
    try:
        reports = ([("indices", apply_indices(database))] if indices else []) + \
                  ([("foreign keys", apply_foreign_keys(database))] if foreign_keys else [])
    finally:
        database.close()
    for kind, report in reports:
        typer.echo(f"{kind}: {len(report.created)} created, {len(report.present)} already present")
        for reason in report.skipped:
            typer.echo(f"{kind} not applied: {reason}", err=True)


@app.command(short_help="Write every CDM table as Parquet or CSV, one file per table.")
def export(
    out_dir: Annotated[Path, typer.Argument(metavar="OUT_DIR", help="Folder to write one file per CDM table into (created if absent).")],
    db: DbOption = "omop.duckdb",
    cdm_schema: SchemaOption = None,
    file_format: Annotated[str, typer.Option("--format", metavar="parquet|csv", rich_help_panel=OUTPUT, help="parquet or csv (with a header row).")] = "parquet",
    table: Annotated[list[str] | None, typer.Option("--table", metavar="TABLE", rich_help_panel=OUTPUT, help="Only this CDM table (repeatable); default: all 39.")] = None,
) -> None:
    """Write every CDM table to OUT_DIR as Parquet or CSV, one file per table (empty tables too).

    Files are named after the tables (person.parquet, ...); CSV files have a header row.

    Examples:

        ctcl-map export cdm-parquet/ --db omop.duckdb

        ctcl-map export cdm-csv/ --format csv --cdm-schema cdm \\
            --db postgresql+psycopg://postgres@127.0.0.1:5432/test
    """
    from ctcl_map.store.export import FORMATS, export_cdm

    if file_format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {file_format!r}")
    database = _open(db, cdm_schema, read_only=True)
    try:
        written = export_cdm(database, out_dir, file_format, table or None)
    except OSError as problem:
        raise OutputWriteError(f"cannot write to {out_dir}: {problem}") from None
    finally:
        database.close()
    typer.echo(f"{len(written)} tables, {sum(t.rows for t in written):,} rows written to {out_dir} as {file_format}")


samples_app = _Typer(help="Synthetic CTCL FHIR cohorts with a known truth (no public MF/SS data exists).", no_args_is_help=True)
app.add_typer(samples_app, name="samples")


@samples_app.command("copy")
def samples_copy(
    out: Annotated[Path, typer.Option("--out", metavar="DIR", rich_help_panel=OUTPUT, help="Folder to copy the samples into (created if absent).")],
) -> None:
    """Copy the sample bundles shipped with ctcl-map into DIR.

    Three single-patient Bundles that each show a feature (Sézary syndrome treated with
    mogamulizumab who died; early-stage MF; a messy record), their truth rows, and an example
    folder of site mappings. They are part of the installed package, so this works after a
    plain `pip install`, without the repository.

    Example:

        ctcl-map samples copy --out demo
        ctcl-map fhir2omop demo/ss_mogamulizumab_died.json
    """
    from ctcl_map.synthetic.shipped import copy_shipped_samples

    try:
        copied = copy_shipped_samples(out)
    except OSError as problem:
        raise OutputPathError(f"cannot write the samples to {out}: {problem.strerror or problem}") from None
    typer.echo(f"{len(copied)} files copied into {out}")


@samples_app.command("generate")
def samples_generate(
    out: Annotated[Path, typer.Option("--out", metavar="DIR", rich_help_panel=OUTPUT, help="Folder to write: the FHIR in OUT/fhir/, the truth in OUT/.")],
    patients: Annotated[int, typer.Option("--patients", metavar="N", rich_help_panel=BEHAVIOUR, min=1, help="Number of patients.")] = 100,
    seed: Annotated[int, typer.Option("--seed", metavar="N", rich_help_panel=BEHAVIOUR, help="Random seed (same seed, same bytes).")] = 1,
    fmt: Annotated[str, typer.Option("--format", metavar="bundle|ndjson", rich_help_panel=OUTPUT, help="bundle: a Bundle per patient; ndjson: bulk export.")] = "bundle",
    gzip: Annotated[bool, typer.Option("--gzip", metavar="", rich_help_panel=OUTPUT, help="Write .gz files.")] = False,
    messy: Annotated[bool, typer.Option("--messy", metavar="", rich_help_panel=BEHAVIOUR, help="Add realistic mess: partial dates, duplicates, unknown codes ...")] = False,
    mogamulizumab_hr: Annotated[float, typer.Option("--mogamulizumab-hr", metavar="HR", rich_help_panel=BEHAVIOUR, min=0.01, help="True hazard ratio of death from mogamulizumab start.")] = 0.7,
    confounding: Annotated[bool, typer.Option("--confounding", metavar="", rich_help_panel=BEHAVIOUR, help="Mogamulizumab goes to the sicker patients.")] = False,
    no_background: Annotated[bool, typer.Option("--no-background-mortality", metavar="", rich_help_panel=BEHAVIOUR, help="No non-CTCL deaths (the HR holds exactly).")] = False,
) -> None:
    """Generate a synthetic MF/SS cohort as FHIR R4 with its ground truth.

    The same seed gives the same bytes. The FHIR goes into OUT/fhir/ (one transaction Bundle per
    patient, or bulk NDJSON), the truth each patient was drawn from into OUT/truth.csv and
    OUT/truth.json, to check what a load and an analysis recover.

    Examples:

        ctcl-map samples generate --patients 20 --out demo

        ctcl-map samples generate --patients 500 --seed 500 --format ndjson \\
            --gzip --out cohort-500

        ctcl-map samples generate --patients 4000 --seed 1 --confounding \\
            --no-background-mortality --out confounded
    """
    from ctcl_map.synthetic import GeneratorConfig, generate_cohort, write_cohort

    try:
        cohort = generate_cohort(GeneratorConfig(patients=patients, seed=seed, messy=messy, mogamulizumab_hr=mogamulizumab_hr,
                                                 confounding=confounding, background_mortality=not no_background))
        written = write_cohort(cohort, out, fmt, gzip)
    except ValueError as problem:  # an unknown --format, a configuration the generator refuses
        raise UsageError(str(problem)) from None
    typer.echo(f"{patients} patients, {len(written)} files written under {out} (FHIR in {out / 'fhir'})")


@app.command(short_help="Check a FHIR export before loading: structure, references, CTCL plausibility, mapping coverage.")
def validate(
    inputs: InputsArgument,
    mappings: MappingsOption = None,
    db: Annotated[str | None, typer.Option("--db", metavar="PATH|URL", rich_help_panel=DATABASE, help="Read the vocabulary from this CDM (e.g. a loaded Athena download); default: the shipped subset. Nothing is written.")] = None,
    cdm_schema: SchemaOption = None,
    schema: Annotated[bool, typer.Option("--schema", metavar="", rich_help_panel=BEHAVIOUR, help="Also validate against HL7's FHIR R4 JSON schema (about 250 resources/s).")] = False,
    as_json: Annotated[bool, typer.Option("--json", metavar="", rich_help_panel=OUTPUT, help="Print every finding, the counts and the mapping coverage as JSON.")] = False,
    html: Annotated[Path | None, typer.Option("--html", metavar="FILE", rich_help_panel=OUTPUT, help="Also write a self-contained HTML report to this file.")] = None,
    strict: Annotated[bool, typer.Option("--strict", metavar="", rich_help_panel=BEHAVIOUR, help="Exit 1 on warnings too.")] = False,
    top: Annotated[int, typer.Option("--top", metavar="N", rich_help_panel=OUTPUT, min=1, help="Problems and unmapped codes shown in the table.")] = 20,
    include_unconfirmed: Annotated[bool, typer.Option("--include-unconfirmed", metavar="", rich_help_panel=BEHAVIOUR, help="Judge provisional, differential and unconfirmed CTCL diagnoses as diagnoses, as fhir2omop --include-unconfirmed does (they are still reported).")] = False,
) -> None:
    """Check a FHIR export before loading it: structure (fhir.resources R4B), references, CTCL
    plausibility (diagnosis before treatment, death after events, stage vs TNMB, B vs blood counts,
    mogamulizumab dosing) and mapping coverage with the unmapped codes a site must add.

    Exit 0 when fit, 1 on errors (and on warnings with --strict), 2 on a configuration error.
    Values from the export (codes, systems, paths) are printed with control characters escaped.

    Examples:

        ctcl-map validate demo/fhir

        ctcl-map validate exports/ --mappings site-mappings/ --html report.html
    """
    from ctcl_map.quality.validate import validate_inputs
    from ctcl_map.terminal import show

    _require_inputs(inputs)
    database = _open(db, cdm_schema, read_only=True) if db else None
    try:
        report = validate_inputs(inputs, mapping_dirs=mappings or (), db=database, json_schema=schema,
                                 include_unconfirmed=include_unconfirmed)
    finally:
        if database is not None:
            database.close()
    if html is not None:
        html.write_text(report.to_html(), encoding="utf-8")
    if as_json:
        typer.echo(report.to_json())
    else:
        show(report.render_table(top=top))
    raise typer.Exit(report.exit_code(strict))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted: the last committed batch is kept; run again to complete", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
