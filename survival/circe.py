"""Run an OHDSI Circe cohort definition (the JSON ATLAS exports) against our CDM.

ohdsi-circepy generates the same OHDSI SQL as Java circe-be; its pure-Python SqlRender port
renders the parameters and translates to 'duckdb' or 'postgresql'. The statements run through our
own Database connection, so circepy's ibis executor (which needs duckdb<2) is not involved.
"""

from __future__ import annotations

import json
from pathlib import Path

from ctcl_map.survival.cohorts import cohort_definition_id, ensure_cohort_tables
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
    options.target_table = db.results_table("cohort") if db.results_schema else f"{default_schema}.cohort"
    options.cohort_id = cohort_id
    options.generate_stats = False
    sql = build_cohort_query(expression, options)
    translated = translate(sql, "duckdb" if db.dialect == "duckdb" else "postgresql")
    return [s for s in split_sql(translated) if s.strip()]


def run_circe_cohort(db: Database, json_path: Path, name: str | None = None) -> tuple[int, str]:
    """Build the cohort of a Circe JSON file; returns (cohort_definition_id, name)."""
    try:
        text = Path(json_path).read_text(encoding="utf-8")
        json.loads(text)
    except OSError as exc:
        raise SurvivalSpecError(f"cannot read Circe cohort definition {json_path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise SurvivalSpecError(f"{json_path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    name = name or f"circe:{Path(json_path).stem}"
    ensure_cohort_tables(db)
    cohort_id = cohort_definition_id(db, name, f"OHDSI Circe cohort definition from {Path(json_path).name}")
    try:
        statements = circe_sql(db, text, cohort_id)
    except SurvivalSpecError:
        raise
    except Exception as exc:  # circepy's own validation errors
        raise SurvivalSpecError(f"{json_path}: not a usable Circe cohort definition: {exc}") from None
    try:
        for statement in statements:
            db.execute(statement)
    except Exception as exc:
        raise DatabaseError(f"Circe SQL for {json_path} failed on {db.dialect}: {str(exc).splitlines()[0]}") from None
    return cohort_id, name
