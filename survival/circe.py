"""Run an OHDSI Circe cohort definition (the JSON ATLAS exports) against our CDM.

ohdsi-circepy generates the same OHDSI SQL as Java circe-be; its pure-Python SqlRender port
renders the parameters and translates to 'duckdb' or 'postgresql'. The statements run through our
own Database connection, so circepy's ibis executor (which needs duckdb<2) is not involved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ctcl_map.survival.cohorts import cohort_definition_id, ensure_cohort_tables, settle_definition
from ctcl_map.survival.spec import SurvivalSpecError
from ctcl_map.writers.db import Database, DatabaseError


class CirceUnavailable(SurvivalSpecError):
    """ohdsi-circepy is not installed."""


def circe_sql(db: Database, expression_json: str, cohort_id: int) -> list[str]:
    """The translated statements that (re)build cohort `cohort_id` in db.results_table('cohort')."""
    try:
        from circe.api import build_cohort_query, cohort_expression_from_json
        from circe.cohortdefinition import BuildExpressionQueryOptions
        from circe.sqlrender import split_sql, translate
    except ImportError as exc:
        raise CirceUnavailable(f"running Circe JSON needs the ohdsi-circepy package ({exc})") from None
    expression = cohort_expression_from_json(expression_json)
    default_schema = "main" if db.dialect == "duckdb" else "public"
    options = BuildExpressionQueryOptions()
    options.cdm_schema = db.cdm_schema or default_schema
    options.vocabulary_schema = db.cdm_schema or default_schema
    options.result_schema = db.results_schema or default_schema
    options.target_table = db.results_table("cohort") if db.results_schema else f"{default_schema}.{db.cohort_table}"
    options.cohort_id = cohort_id
    options.generate_stats = False
    sql = build_cohort_query(expression, options)
    translated = translate(sql, "duckdb" if db.dialect == "duckdb" else "postgresql")
    return [s for s in split_sql(translated) if s.strip()]


@dataclass
class CirceRun:
    cohort_id: int
    name: str
    written: str  # what was written where
    id_source: str  # where the id came from, in words


def published_identity(document: dict, json_path: Path) -> tuple[dict, int | None, str | None]:
    """(expression, published id, published name) of a Circe file.

    ATLAS/WebAPI exports wrap the expression: {"id": 622, "name": ..., "expression": {...}}; a bare
    expression may carry "id"; PhenotypeLibrary names its files by id (inst/cohorts/622.json)."""
    expression = document.get("expression") if isinstance(document.get("expression"), dict) else document
    published = document.get("id")
    if isinstance(published, int) and published > 0:
        return expression, published, document.get("name") if isinstance(document.get("name"), str) else None
    stem = Path(json_path).stem
    if stem.isdigit() and int(stem) > 0:
        return expression, int(stem), None
    return expression, None, None


def run_circe_cohort(db: Database, json_path: Path, name: str | None = None, cohort_id: int | None = None) -> CirceRun:
    """Build the cohort of a Circe JSON file under `cohort_id`, else the file's published id, else a
    new id; never over another definition's rows (CohortIdClash)."""
    try:
        text = Path(json_path).read_text(encoding="utf-8")
        document = json.loads(text)
    except OSError as exc:
        raise SurvivalSpecError(f"cannot read Circe cohort definition {json_path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise SurvivalSpecError(f"{json_path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(document, dict):
        raise SurvivalSpecError(f"{json_path}: not a Circe cohort definition (a JSON object is expected)")
    expression, published_id, published_name = published_identity(document, json_path)
    name = name or published_name or f"circe:{Path(json_path).stem}"
    if cohort_id is not None:
        id_source = f"cohort id {cohort_id} from --cohort-id"
    elif published_id is not None:
        cohort_id, id_source = published_id, f"published cohort id {published_id} kept"
    else:
        id_source = f"{Path(json_path).name} carries no cohort id: a new id was allocated (choose one with --cohort-id)"
    ensure_cohort_tables(db)
    cohort_id = cohort_definition_id(db, name, f"OHDSI Circe cohort definition from {Path(json_path).name}", cohort_id)
    try:
        statements = circe_sql(db, json.dumps(expression), cohort_id)
    except SurvivalSpecError:
        raise
    except Exception as exc:  # circepy's own validation errors
        raise SurvivalSpecError(f"{json_path}: not a usable Circe cohort definition: {exc}") from None
    before = db.query(f"SELECT COUNT(*) FROM {db.results_table('cohort')} WHERE cohort_definition_id = ?", [cohort_id])
    try:
        for statement in statements:
            db.execute(statement)
    except Exception as exc:
        raise DatabaseError(f"Circe SQL for {json_path} failed on {db.dialect}: {str(exc).splitlines()[0]}") from None
    rows = db.query(f"SELECT COUNT(*) FROM {db.results_table('cohort')} WHERE cohort_definition_id = ?", [cohort_id])
    written = settle_definition(db, cohort_id, name, int(rows[0][0]), int(before[0][0]))
    return CirceRun(cohort_id, name, written, id_source)
