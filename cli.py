"""The `ctcl-map` command line. It only parses options, calls the library and prints.

Exit codes (all commands): 0 the job completed (quarantined records are reported, not fatal);
1 nothing could be loaded, a check failed, or the database failed; 2 usage or configuration error.
Every error reaches the user through one place, `_reported`: its message and its class's exit code
(see ctcl_map.errors).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

from ctcl_map import __version__
from ctcl_map.command_line import Argument, Group, option, typer_app
from ctcl_map.command_line import run as run_command
from ctcl_map.errors import (
    CtclMapError,
    DatabaseError,
    JobFailed,
    OutputPathError,
    OutputWriteError,
    UsageError,
)

_RED, _YELLOW = "31", "33"  # ANSI colours of errors and notes, on a terminal only


def _echo(text: str, err: bool = False, colour: str | None = None, nl: bool = True) -> None:
    stream = sys.stderr if err else sys.stdout
    if colour and stream.isatty() and not os.environ.get("NO_COLOR"):
        text = f"\x1b[{colour}m{text}\x1b[0m"
    print(text, file=stream, end="\n" if nl else "", flush=err)


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

            _echo(f"error: {clean(str(reported))}", err=True, colour=_RED)
            raise SystemExit(reported.exit_code) from None

    return cast(_Command, run)


# Every command below is declared once (command_line.Option / Argument annotations); a run reads its
# options with argparse, help and refused command lines are Typer's (see ctcl_map.command_line).
commands = Group(
    name="ctcl-map",
    version=__version__,
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
)


def __getattr__(name: str) -> Any:
    """`app`: the commands as a Typer app (help, and tests driving the CLI in-process), built on first use."""
    if name == "app":
        return typer_app(commands, _reported)
    raise AttributeError(name)


# Help panels: every option is shown under one of these, by name.
INPUT = "Input"
DATABASE = "Database"
BEHAVIOUR = "Behaviour"
OUTPUT = "Output"
PERFORMANCE = "Performance"

DbOption = Annotated[
    str,
    option("--db", metavar="PATH|URL", panel=DATABASE,
                 help="A DuckDB file, or a PostgreSQL URL: postgresql+psycopg://USER@HOST:5432/DB."),
]
ReadDbOption = Annotated[
    str,
    option("--db", metavar="PATH|URL|DIR", panel=DATABASE,
                 help="A DuckDB file, a PostgreSQL URL (postgresql+psycopg://USER@HOST:5432/DB), or a Parquet CDM folder."),
]
SchemaOption = Annotated[
    str | None, option("--cdm-schema", metavar="NAME", panel=DATABASE,
                                help="Schema of the CDM tables (default: the database's default).")
]
ResultsSchemaOption = Annotated[
    str | None, option("--results-schema", metavar="NAME", panel=DATABASE,
                                help="Schema of the cohort tables (default: the CDM schema).")
]
MappingsOption = Annotated[
    list[Path] | None, option("--mappings", metavar="DIR", panel=INPUT,
                                       help="Folder of site mapping CSVs, merged over the shipped tables (repeatable).")
]
InputsArgument = Annotated[
    list[Path], Argument(metavar="INPUT", show_default=False,
                               help="FHIR files or folders: Bundles (.json), bulk NDJSON (.ndjson), either gzipped (.gz).")
]
JsonOption = Annotated[bool, option("--json", metavar="", panel=OUTPUT,
                                          help="Print the result as JSON (stable keys) instead of text.")]


def _require_inputs(inputs: list[Path]) -> None:
    """A mistyped input path is a usage error, found before any database is opened or created."""
    from ctcl_map.readers.fhir_input import missing_paths

    missing = missing_paths(inputs)
    if missing:
        raise UsageError(f"no such file or directory: {', '.join(missing)}")


def _open(db: str, cdm_schema: str | None, results_schema: str | None = None, read_only: bool = False, parquet: bool = False):
    """The database `db`; with `parquet`, a Parquet CDM folder too (the commands that read a CDM)."""
    from ctcl_map.store.database import connect

    if parquet:
        from ctcl_map.store.parquet_cdm import is_parquet_cdm

        if is_parquet_cdm(db):
            from ctcl_map.store.parquet_database import open_parquet_cdm
            from ctcl_map.vocab.loader import load_shipped_vocabulary

            return open_parquet_cdm(Path(db), cdm_schema, results_schema, read_only, load_shipped_vocabulary)
    return connect(db, cdm_schema=cdm_schema, results_schema=results_schema, read_only=read_only)


def _fhir2omop_on_spark(inputs: list[Path], out: Path | None, master: str | None, mappings: list[Path], vocab_db: str | None,
                       key_file: Path | None, as_json: bool, strict: bool, derive_options: dict[str, Any]) -> None:
    """fhir2omop --engine spark (README, "Spark"): pyspark is imported only from here on."""
    from ctcl_map.spark.engine import SparkOptions, input_uri, print_spark_report, run_spark_fhir2omop
    from ctcl_map.spark.session import spark_session

    if out is None:
        raise UsageError("--engine spark writes a Parquet CDM folder: give it with --out CDM_DIR")
    uris = [input_uri(path) for path in inputs]
    _require_inputs([Path(uri) for uri in uris if "://" not in uri])
    spark = spark_session(master or "local[*]")
    try:
        report = run_spark_fhir2omop(spark, SparkOptions(inputs=uris, out=out, mapping_dirs=mappings, vocab_db=vocab_db,
                                                                key_file=key_file, **derive_options))
    finally:
        spark.stop()
    for notice in report.notices:
        _echo(f"note: {notice}", err=True, colour=_YELLOW)
    _echo(json.dumps(report.to_dict(), indent=2) if as_json else print_spark_report(report, out))
    if sum(report.resources_loaded.values()) == 0:
        raise JobFailed("nothing could be loaded from the input")
    if strict and report.quarantined:
        raise JobFailed(f"{sum(report.quarantined.values())} record(s) quarantined and --strict is set")


@commands.command()
def fhir2omop(
    inputs: InputsArgument,
    mappings: MappingsOption = None,
    validate: Annotated[bool, option("--validate", metavar="", panel=INPUT, help="Also check every mapped resource against the fhir.resources R4B models (slow: about 1-2 k resources/s).")] = False,
    db: DbOption = "omop.duckdb",
    cdm_schema: SchemaOption = None,
    incremental: Annotated[bool, option("--incremental/--full", metavar="", show_default=False, panel=BEHAVIOUR, help="Skip files unchanged since a completed run (default), or read every file.")] = True,
    delete_vanished: Annotated[bool, option("--delete-vanished/--keep-vanished", metavar="", show_default=False, panel=BEHAVIOUR, help="Delete resources gone from their re-read file (default), or keep them (delta feeds).")] = True,
    oncology: Annotated[bool, option("--oncology/--no-oncology", metavar="", show_default=False, panel=BEHAVIOUR, help="Derive staging, CLIPI, episodes and lines of therapy after the load (default), or not.")] = True,
    b_rules: Annotated[str, option("--b-rules", metavar="2007|2022", panel=INPUT, help="ISCL/EORTC criteria for reading blood counts as a B category.")] = "2007",
    workers: Annotated[int | None, option("--workers", min=1, metavar="N", panel=PERFORMANCE, help="Converting processes (default: one per core, fewer for small inputs). Same output for any N.")] = None,
    batch_size: Annotated[int, option("--batch-size", min=1, metavar="N", panel=PERFORMANCE, help="Resources per transaction.")] = 5000,
    strict: Annotated[bool, option("--strict", metavar="", panel=BEHAVIOUR, help="Exit 1 when any record was quarantined.")] = False,
    as_json: JsonOption = False,
    quiet: Annotated[bool, option("--quiet", "-q", metavar="", panel=OUTPUT, help="No progress bar (drawn only on a terminal).")] = False,
    max_resource_mb: Annotated[int, option("--max-resource-mb", min=1, metavar="MB", hidden=True, help="Quarantine a larger resource unread.")] = 64,
    max_decompressed_mb: Annotated[int, option("--max-decompressed-mb", min=0, metavar="MB", hidden=True, help="Stop reading a .gz past this (0: no limit).")] = 4096,
    log_file: Annotated[Path | None, option("--log-file", metavar="FILE", panel=OUTPUT, help="Append JSON lines for a scheduler: run start, progress per file, warnings, the report.")] = None,
    include_unconfirmed: Annotated[bool, option("--include-unconfirmed", metavar="", panel=BEHAVIOUR, help="Treat provisional, differential and unconfirmed CTCL diagnoses as cases in the oncology step (default: loaded, left out).")] = False,
    key_file: Annotated[Path | None, option("--key-file", metavar="FILE", panel=DATABASE, help="Pseudonym key file kept apart from the CDM (else $CTCL_MAP_KEY_FILE or ~/.config/ctcl-map/pseudonym.key; see README, Privacy).")] = None,
    engine: Annotated[str, option("--engine", metavar="single|spark", show_default=False, panel=PERFORMANCE, help="spark: Apache Spark, into --out DIR.")] = "single",
    out: Annotated[Path | None, option("--out", metavar="CDM_DIR", hidden=True, help="Spark: the Parquet CDM folder (README, Spark).")] = None,
    master: Annotated[str | None, option("--master", metavar="URL", hidden=True, help="Spark: local[*], spark://..., yarn.")] = None,
    vocab_db: Annotated[str | None, option("--vocab-db", metavar="DB", hidden=True, help="Spark: a CDM with a loaded vocabulary.")] = None,
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
        _fhir2omop_on_spark(inputs, out, master, mappings or [], vocab_db, key_file, as_json, strict,
                            {"b_rules": b_rules, "oncology": oncology, "include_unconfirmed": include_unconfirmed})
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
            _echo(f"note: {notice}", err=True, colour=_YELLOW)
        if as_json:
            _echo(json.dumps(report.to_dict(), indent=2))
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


vocab_app = Group(help="The OMOP vocabulary: load a full Athena download over the shipped CTCL subset.")
mappings_app = Group(help="The CTCL mapping tables (therapies, diagnoses, staging, procedures, labs).")
commands.add_group(vocab_app, "vocab")
commands.add_group(mappings_app, "mappings")


@vocab_app.command("load")
def vocab_load(
    athena_dir: Annotated[Path, Argument(metavar="ATHENA_DIR", help="Folder of an Athena download: tab-separated CONCEPT.csv, CONCEPT_RELATIONSHIP.csv, VOCABULARY.csv ...")],
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
        report = load_athena(database, athena_dir, progress=lambda name, rows: _echo(f"  {name}: {rows:,} rows", err=True))
    finally:
        database.close()
    _echo(report.summary())


@mappings_app.command("check")
def mappings_check(
    override_dirs: Annotated[list[Path] | None, Argument(metavar="DIR", help="Site override folders to check with the shipped tables.")] = None,
    db: Annotated[str | None, option("--db", metavar="PATH|URL|DIR", panel=DATABASE, help="Check targets against this database's (or Parquet CDM folder's) CONCEPT table instead of the shipped subset.")] = None,
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
    database = _open(db, cdm_schema, read_only=True, parquet=True) if db else None
    try:
        problems = check_mappings(dirs, db=database)
        try:
            for conflict in load_mappings(dirs).conflicts:
                _echo(f"note: {clean(conflict)}")
        except MappingError:
            pass  # already reported as a problem by check_mappings
    finally:
        if database is not None:
            database.close()
    for problem in problems:
        _echo(f"problem: {clean(problem)}")
    if problems:
        raise JobFailed(f"{len(problems)} problem(s) in the mapping tables")
    _echo("mapping tables OK")


@commands.command(short_help="Data-quality checks over the CDM (OHDSI DataQualityDashboard v5.4).")
def dq(
    db: ReadDbOption = "omop.duckdb",
    cdm_schema: SchemaOption = None,
    results_schema: ResultsSchemaOption = None,
    check: Annotated[list[str] | None, option("--check", metavar="NAME", panel=BEHAVIOUR, help="Run only this DQD check (repeatable), e.g. isRequired.")] = None,
    table: Annotated[list[str] | None, option("--table", metavar="TABLE", panel=BEHAVIOUR, help="Only checks on this CDM table (repeatable).")] = None,
    as_json: Annotated[bool, option("--json", metavar="", panel=OUTPUT, help="Print every check result as JSON.")] = False,
    show_passed: Annotated[bool, option("--show-passed", metavar="", panel=OUTPUT, help="List passing checks in the table too.")] = False,
    dqd_json: Annotated[Path | None, option("--dqd-json", metavar="FILE", panel=OUTPUT, help="Also write the results in DataQualityDashboard's results JSON format (for DQD's viewer) to this file.")] = None,
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

    database = _open(db, cdm_schema, results_schema, read_only=True, parquet=True)
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
            _echo("warning: CDM_SOURCE is empty; DQD's viewer shows no source metadata", err=True)
        try:
            dqd_json.write_bytes(to_dqd_json(dqd_results(report, cdm_source, started, datetime.now(), __version__)))
        except OSError as problem:
            raise OutputWriteError(f"cannot write {dqd_json}: {problem.strerror}") from None
        _echo(f"DQD results written: {dqd_json} ({len(report.results)} checks)", err=True)
    if as_json:
        _echo(report.to_json())
    else:
        show(report.render_table(include_passed=show_passed))
    raise SystemExit(report.exit_code)


def _csv_list(value: str | None) -> tuple[str, ...] | None:
    return tuple(part.strip() for part in value.split(",") if part.strip()) if value else None


def _survival_run(db: str, cdm_schema: str | None, results_schema: str | None, run):
    """run(database) on the opened CDM, what it wrote made durable (a Parquet CDM's cohort tables), closed afterwards."""
    database = _open(db, cdm_schema, results_schema, parquet=True)
    try:
        result = run(database)
        for line in database.persist():
            _echo(line, err=True)
        return result
    finally:
        database.close()


def _covariates(text: str | None) -> tuple[str, ...]:
    from ctcl_map.survival.adjust import parse_covariates

    try:
        return parse_covariates(text)
    except ValueError as problem:
        raise UsageError(str(problem)) from None


@commands.command()
def survival(
    db: ReadDbOption = "omop.duckdb",
    cdm_schema: SchemaOption = None,
    results_schema: ResultsSchemaOption = None,
    cohort: Annotated[str, option("--cohort", metavar="NAME", panel=INPUT, help="Built-in target cohort: ctcl, mf, ss, advanced, early, first-line.")] = "ctcl",
    circe: Annotated[Path | None, option("--circe", metavar="FILE", panel=INPUT, help="An ATLAS/Circe cohort definition JSON to use instead of --cohort.")] = None,
    cohort_id: Annotated[int | None, option("--cohort-id", metavar="N", panel=OUTPUT, help="Cohort id (default: a Circe file's own, else a free one); another definition's id is refused.")] = None,
    cohort_table: Annotated[str, option("--cohort-table", metavar="TABLE", panel=OUTPUT, help="Cohort table in the results schema (e.g. apart from CohortGenerator's).")] = "cohort",
    compare: Annotated[str | None, option("--compare", metavar="DRUG", panel=BEHAVIOUR, help="Drug: ingredient name or concept_id.")] = None,
    comparator: Annotated[str | None, option("--comparator", metavar="DRUG", panel=BEHAVIOUR, help="new-user: one comparator drug.")] = None,
    design: Annotated[str | None, option("--design", metavar="DESIGN", panel=BEHAVIOUR, help="new-user (default); naive warns.")] = None,
    landmark_months: Annotated[float, option("--landmark-months", metavar="MONTHS", panel=BEHAVIOUR, help="Landmark time for --design landmark.")] = 6.0,
    strata: Annotated[str | None, option("--strata", metavar="LIST", panel=BEHAVIOUR, help="stage_group,ctcl_type,clipi_group,sex")] = None,
    stage: Annotated[str | None, option("--stage", metavar="LIST", panel=INPUT, help="Restrict to stage groups at index, e.g. IIB,IIIA or advanced / early.")] = None,
    clipi: Annotated[str | None, option("--clipi", metavar="LIST", panel=INPUT, help="Restrict to CLIPI risk groups: low, intermediate, high.")] = None,
    ctcl_type: Annotated[str | None, option("--type", metavar="MF|SS", panel=INPUT, help="Restrict to MF or SS.")] = None,
    age_min: Annotated[float | None, option("--age-min", metavar="YEARS", panel=INPUT, help="Minimum age at index (years).")] = None,
    age_max: Annotated[float | None, option("--age-max", metavar="YEARS", panel=INPUT, help="Maximum age at index (years).")] = None,
    sex: Annotated[str | None, option("--sex", metavar="male|female", panel=INPUT, help="male or female.")] = None,
    index_from: Annotated[datetime | None, option("--index-from", metavar="YYYY-MM-DD", panel=INPUT, formats=["%Y-%m-%d"], help="Earliest index date.")] = None,
    index_to: Annotated[datetime | None, option("--index-to", metavar="YYYY-MM-DD", panel=INPUT, formats=["%Y-%m-%d"], help="Latest index date.")] = None,
    admin_end: Annotated[datetime | None, option("--admin-end", metavar="YYYY-MM-DD", panel=BEHAVIOUR, formats=["%Y-%m-%d"], help="Administrative censoring date.")] = None,
    years: Annotated[str, option("--years", metavar="LIST", panel=OUTPUT, help="Survival reported at these years.")] = "1,2,5",
    unit: Annotated[str, option("--unit", metavar="UNIT", panel=OUTPUT, help="Time unit shown: days, months or years.")] = "months",
    as_json: Annotated[bool, option("--json", metavar="", panel=OUTPUT, help="Print the result as JSON.")] = False,
    csv_out: Annotated[Path | None, option("--csv", metavar="FILE", panel=OUTPUT, help="Write the result table as CSV here.")] = None,
    plot_stem: Annotated[Path | None, option("--plot", metavar="STEM", panel=OUTPUT, help="Write a Kaplan-Meier plot as STEM.png and STEM.svg.")] = None,
    include_unconfirmed: Annotated[bool, option("--include-unconfirmed", metavar="", panel=INPUT, help="Let unconfirmed diagnoses (and their stages) enter the cohorts.")] = False,
    adjust: Annotated[str | None, option("--adjust", metavar="LIST", panel=BEHAVIOUR, help="Covariates: default (age, sex, MF/SS, stage, CLIPI, LDH, LCT) or a list.")] = None,
    method: Annotated[str, option("--method", metavar="METHOD", panel=BEHAVIOUR, help="cox, ps-match, ps-stratify or iptw.")] = "cox",
    missing: Annotated[str, option("--missing", metavar="HOW", panel=BEHAVIOUR, help="indicator or complete-case.")] = "indicator",
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
        _echo(line, err=True)
    _echo(render(result, "json")) if as_json else render(result, "table")
    if csv_out:
        render(result, "csv", csv_out)
    if plot_stem:
        for path in plot(result, plot_stem):
            _echo(f"plot written: {path}", err=True)
        if result.adjusted and result.adjusted.get("propensity"):
            from ctcl_map.survival.study import overlap_plot

            stem = plot_stem.with_name(plot_stem.name + "_ps_overlap")
            png = overlap_plot([(result.design, result.adjusted["propensity"])], spec.compare or "exposed", stem)
            _echo(f"plot written: {png} and {png.with_suffix('.svg')}", err=True)


@commands.command(short_help="A survival study in one command: one self-contained HTML report with its data.")
def study(
    out: Annotated[Path, option("--out", metavar="DIR", panel=OUTPUT, help="Folder for report.html, study.json, CSVs and figures (created).")],
    db: ReadDbOption = "omop.duckdb",
    cdm_schema: SchemaOption = None,
    results_schema: ResultsSchemaOption = None,
    compare: Annotated[str | None, option("--compare", metavar="DRUG", panel=BEHAVIOUR, help="Exposure to compare by every design and method, e.g. mogamulizumab.")] = None,
    cohort: Annotated[str, option("--cohort", metavar="NAME", panel=INPUT, help="Target cohort of the exposure comparison.")] = "advanced",
    adjust: Annotated[str, option("--adjust", metavar="LIST", panel=BEHAVIOUR, help="Adjustment covariates: 'default' or a list (see survival --adjust).")] = "default",
    missing: Annotated[str, option("--missing", metavar="HOW", panel=BEHAVIOUR, help="Missing covariates: indicator or complete-case.")] = "indicator",
    landmark_months: Annotated[float, option("--landmark-months", metavar="MONTHS", panel=BEHAVIOUR, help="Landmark time of the landmark design.")] = 6.0,
    admin_end: Annotated[datetime | None, option("--admin-end", metavar="YYYY-MM-DD", panel=BEHAVIOUR, formats=["%Y-%m-%d"], help="Administrative censoring date.")] = None,
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
        _echo(render_text(result), nl=False)
    for warning in result.warnings:
        _echo(f"WARNING: {warning}", err=True)
    _echo(f"report written: {out / 'report.html'} ({len(written)} files in {out})")


@commands.command(short_help="Apply the official CDM v5.4 indices and foreign keys to a loaded CDM.")
def constraints(
    db: DbOption = "omop.duckdb",
    cdm_schema: SchemaOption = None,
    indices: Annotated[bool, option("--indices/--no-indices", metavar="", show_default=False, panel=BEHAVIOUR, help="The official CommonDataModel v5.4 indices.")] = True,
    foreign_keys: Annotated[bool, option("--foreign-keys/--no-foreign-keys", metavar="", show_default=False, panel=BEHAVIOUR, help="The 176 official foreign keys (PostgreSQL; created deferrable).")] = True,
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
        _echo(f"{kind}: {len(report.created)} created, {len(report.present)} already present")
        for reason in report.skipped:
            _echo(f"{kind} not applied: {reason}", err=True)


@commands.command(short_help="Write every CDM table as Parquet or CSV, one file per table.")
def export(
    out_dir: Annotated[Path, Argument(metavar="OUT_DIR", help="Folder to write one file per CDM table into (created if absent).")],
    db: ReadDbOption = "omop.duckdb",
    cdm_schema: SchemaOption = None,
    file_format: Annotated[str, option("--format", metavar="parquet|csv|parquet-cdm", panel=OUTPUT, help="parquet, csv (with a header row), or parquet-cdm: a Parquet CDM (OUT_DIR/<table>/, published atomically) that --db OUT_DIR opens.")] = "parquet",
    table: Annotated[list[str] | None, option("--table", metavar="TABLE", panel=OUTPUT, help="Only this CDM table (repeatable); default: all 39.")] = None,
) -> None:
    """Write every CDM table to OUT_DIR as Parquet or CSV, one file per table (empty tables too).

    Files are named after the tables (person.parquet, ...); CSV files have a header row. With
    --format parquet-cdm, OUT_DIR becomes a Parquet CDM: a link to a new version folder holding
    OUT_DIR/<table>/part-00000.parquet, switched in one rename (a reader never sees half of it), which
    dq, survival, study and export open with --db OUT_DIR and `ctcl-map cdm load` copies into a database.

    Examples:

        ctcl-map export cdm-parquet/ --db omop.duckdb

        ctcl-map export cdm/ --format parquet-cdm --db omop.duckdb

        ctcl-map export cdm-csv/ --format csv --cdm-schema cdm \\
            --db postgresql+psycopg://postgres@127.0.0.1:5432/test
    """
    from ctcl_map.store.export import FORMATS, export_cdm

    if file_format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {file_format!r}")
    database = _open(db, cdm_schema, read_only=True, parquet=True)
    try:
        written = export_cdm(database, out_dir, file_format, table or None)
    except OSError as problem:
        raise OutputWriteError(f"cannot write to {out_dir}: {problem}") from None
    finally:
        database.close()
    _echo(f"{len(written)} tables, {sum(t.rows for t in written):,} rows written to {out_dir} as {file_format}")


cdm_app = Group(help="Parquet CDMs (written by fhir2omop --engine spark or export --format parquet-cdm).")
commands.add_group(cdm_app, "cdm")


@cdm_app.command("load")
def cdm_load(
    cdm_dir: Annotated[Path, Argument(metavar="CDM_DIR", help="A Parquet CDM folder: one folder of Parquet files per table.")],
    db: DbOption = "omop.duckdb",
    cdm_schema: SchemaOption = None,
) -> None:
    """Copy a Parquet CDM into PostgreSQL (COPY) or a DuckDB file, in one transaction.

    Creates the CDM v5.4 tables and ctcl-map's bookkeeping tables (the same DDL as fhir2omop), then
    loads every CDM and ctcl_ table the folder holds. Loading the same CDM again changes nothing;
    tables that already hold rows are refused (exit 2) before anything is written, so no row is
    loaded twice. Afterwards `ctcl-map constraints` adds the official indices and foreign keys.

    Example:

        ctcl-map cdm load cdm/ --cdm-schema cdm \\
            --db postgresql+psycopg://postgres@127.0.0.1:5432/test
    """
    from ctcl_map.store.parquet_cdm import is_parquet_cdm
    from ctcl_map.store.parquet_load import load_parquet_cdm

    if not is_parquet_cdm(cdm_dir):
        raise UsageError(f"{cdm_dir} is not a Parquet CDM (a folder holding one folder of Parquet files per table)")
    database = _open(db, cdm_schema)
    try:
        result = load_parquet_cdm(database, cdm_dir)
    finally:
        database.close()
    if result.already_loaded:
        _echo(f"{cdm_dir} is already loaded into {database.label}: nothing to do")
        return
    for name in result.skipped:
        _echo(f"note: {cdm_dir}/{name} skipped: not a CDM or ctcl_ table", err=True)
    _echo(f"{len(result.rows)} tables, {sum(result.rows.values()):,} rows loaded from {cdm_dir} into {database.label}")


samples_app = Group(help="Synthetic CTCL FHIR cohorts with a known truth (no public MF/SS data exists).")
commands.add_group(samples_app, "samples")


@samples_app.command("copy")
def samples_copy(
    out: Annotated[Path, option("--out", metavar="DIR", panel=OUTPUT, help="Folder to copy the samples into (created if absent).")],
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
    _echo(f"{len(copied)} files copied into {out}")


@samples_app.command("generate")
def samples_generate(
    out: Annotated[Path, option("--out", metavar="DIR", panel=OUTPUT, help="Folder to write: the FHIR in OUT/fhir/, the truth in OUT/.")],
    patients: Annotated[int, option("--patients", metavar="N", panel=BEHAVIOUR, min=1, help="Number of patients.")] = 100,
    seed: Annotated[int, option("--seed", metavar="N", panel=BEHAVIOUR, help="Random seed (same seed, same bytes).")] = 1,
    fmt: Annotated[str, option("--format", metavar="bundle|ndjson", panel=OUTPUT, help="bundle: a Bundle per patient; ndjson: bulk export.")] = "bundle",
    gzip: Annotated[bool, option("--gzip", metavar="", panel=OUTPUT, help="Write .gz files.")] = False,
    messy: Annotated[bool, option("--messy", metavar="", panel=BEHAVIOUR, help="Add realistic mess: partial dates, duplicates, unknown codes ...")] = False,
    mogamulizumab_hr: Annotated[float, option("--mogamulizumab-hr", metavar="HR", panel=BEHAVIOUR, min=0.01, help="True hazard ratio of death from mogamulizumab start.")] = 0.7,
    confounding: Annotated[bool, option("--confounding", metavar="", panel=BEHAVIOUR, help="Mogamulizumab goes to the sicker patients.")] = False,
    no_background: Annotated[bool, option("--no-background-mortality", metavar="", panel=BEHAVIOUR, help="No non-CTCL deaths (the HR holds exactly).")] = False,
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
    _echo(f"{patients} patients, {len(written)} files written under {out} (FHIR in {out / 'fhir'})")


@commands.command(short_help="Check a FHIR export before loading: structure, references, CTCL plausibility, mapping coverage.")
def validate(
    inputs: InputsArgument,
    mappings: MappingsOption = None,
    db: Annotated[str | None, option("--db", metavar="PATH|URL|DIR", panel=DATABASE, help="Read the vocabulary from this CDM (e.g. a loaded Athena download; a Parquet CDM folder too); default: the shipped subset. Nothing is written.")] = None,
    cdm_schema: SchemaOption = None,
    schema: Annotated[bool, option("--schema", metavar="", panel=BEHAVIOUR, help="Also validate against HL7's FHIR R4 JSON schema (about 250 resources/s).")] = False,
    as_json: Annotated[bool, option("--json", metavar="", panel=OUTPUT, help="Print every finding, the counts and the mapping coverage as JSON.")] = False,
    html: Annotated[Path | None, option("--html", metavar="FILE", panel=OUTPUT, help="Also write a self-contained HTML report to this file.")] = None,
    strict: Annotated[bool, option("--strict", metavar="", panel=BEHAVIOUR, help="Exit 1 on warnings too.")] = False,
    top: Annotated[int, option("--top", metavar="N", panel=OUTPUT, min=1, help="Problems and unmapped codes shown in the table.")] = 20,
    include_unconfirmed: Annotated[bool, option("--include-unconfirmed", metavar="", panel=BEHAVIOUR, help="Judge provisional, differential and unconfirmed CTCL diagnoses as diagnoses, as fhir2omop --include-unconfirmed does (they are still reported).")] = False,
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
    database = _open(db, cdm_schema, read_only=True, parquet=True) if db else None
    try:
        report = validate_inputs(inputs, mapping_dirs=mappings or (), db=database, json_schema=schema,
                                 include_unconfirmed=include_unconfirmed)
    finally:
        if database is not None:
            database.close()
    if html is not None:
        html.write_text(report.to_html(), encoding="utf-8")
    if as_json:
        _echo(report.to_json())
    else:
        show(report.render_table(top=top))
    raise SystemExit(report.exit_code(strict))


def main() -> None:
    try:
        run_command(commands, sys.argv[1:], _reported)
    except KeyboardInterrupt:
        _echo("interrupted: the last committed batch is kept; run again to complete", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
