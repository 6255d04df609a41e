"""`run_dq`: run the DataQualityDashboard v5.4 checks on a CDM in DuckDB or PostgreSQL.

The flow mirrors DQD: list check instances from the CSVs, compute violated/denominator counts with
one SQL statement per instance, compare the percentage with DQD's threshold, then apply DQD's
'not applicable' rules (R/calculateNotApplicableStatus.R): checks on a missing or empty table, on a
field that does not exist or is NULL in every row, and concept checks whose concept never occurs,
are reported as not_applicable instead of pass/fail. We decide the table/field cases from one
COUNT statement per table before running anything, so empty tables cost no further queries.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import date

from ctcl_map.errors import CheckSetupError
from ctcl_map.quality import checks_completeness as completeness
from ctcl_map.quality import checks_concept as concept
from ctcl_map.quality import checks_conformance as conformance
from ctcl_map.quality import checks_plausibility as plausibility
from ctcl_map.quality.catalog import Catalog, count_rows, read_catalog
from ctcl_map.quality.definitions import CheckInstance, check_instances, level_rows, table_schema_kind
from ctcl_map.quality.report import CheckResult, DqReport
from ctcl_map.quality.sqlparts import CountSql, SqlContext, ident
from ctcl_map.store.database import Database

SqlBuilder = Callable[[SqlContext, CheckInstance], CountSql]

CHECK_SQL: dict[str, SqlBuilder] = {
    "isRequired": conformance.is_required,
    "cdmDatatype": conformance.cdm_datatype,
    "isPrimaryKey": conformance.is_primary_key,
    "isForeignKey": conformance.is_foreign_key,
    "fkDomain": conformance.fk_domain,
    "fkClass": conformance.fk_class,
    "isStandardValidConcept": conformance.is_standard_valid_concept,
    "standardConceptRecordCompleteness": completeness.concept_record_completeness,
    "sourceConceptRecordCompleteness": completeness.concept_record_completeness,
    "sourceValueCompleteness": completeness.source_value_completeness,
    "measurePersonCompleteness": completeness.measure_person_completeness,
    "measureConditionEraCompleteness": completeness.measure_condition_era_completeness,
    "plausibleValueLow": plausibility.plausible_value_low,
    "plausibleValueHigh": plausibility.plausible_value_high,
    "plausibleTemporalAfter": plausibility.plausible_temporal_after,
    "plausibleDuringLife": plausibility.plausible_during_life,
    "plausibleBeforeDeath": plausibility.plausible_before_death,
    "plausibleAfterBirth": plausibility.plausible_after_birth,
    "plausibleStartBeforeEnd": plausibility.plausible_start_before_end,
    "withinVisitDates": plausibility.within_visit_dates,
    "measureObservationPeriodOverlap": plausibility.measure_observation_period_overlap,
    "plausibleGender": concept.plausible_gender,
    "plausibleGenderUseDescendants": concept.plausible_gender_use_descendants,
    "plausibleUnitConceptIds": concept.plausible_unit_concept_ids,
}
# Answered from the catalog and the per-table counts, without a statement of their own.
CATALOG_CHECKS = ("cdmTable", "cdmField", "measureValueCompleteness")


def run_dq(
    db: Database,
    checks: Sequence[str] | None = None,
    tables: Sequence[str] | None = None,
    today: date | None = None,
) -> DqReport:
    """Run the DQD checks (all, or only the named checks / tables) and return the report.

    Raises ValueError for an unknown check or table name. `today` stands in for DQD's GETDATE() in
    the "not in the future" thresholds; tests fix it, the CLI leaves it to the current date.
    """
    started = time.perf_counter()
    instances = check_instances(checks, tables)
    catalog = read_catalog(db, table_schema_kind())
    count_errors = _count_tables(db, catalog, {i.table for i in instances} | {"condition_occurrence"})
    ctx = SqlContext(catalog, today or date.today())
    present = _PresentConcepts(db, catalog)
    results = [_evaluate(db, ctx, count_errors, present, instance) for instance in instances]
    return DqReport(db.label, results, time.perf_counter() - started)


def _count_tables(db: Database, catalog: Catalog, tables: set[str]) -> dict[str, str]:
    """Row and non-NULL counts for every DQD field of the given tables; returns count errors by table."""
    fields_by_table: dict[str, list[str]] = {}
    for row in level_rows("FIELD"):
        fields_by_table.setdefault(row["cdmTableName"].strip().lower(), []).append(row["cdmFieldName"].strip().lower())
    errors: dict[str, str] = {}
    for table in sorted(tables):
        if catalog.has_table(table):
            try:
                count_rows(db, catalog, table, fields_by_table.get(table, []))
            except Exception as exc:  # noqa: BLE001 - any driver error becomes a reported check error
                errors[table] = _first_line(exc)
    return errors


class _PresentConcepts:
    """The distinct concept ids of a concept field, read once per field and only when needed.

    Concept-level checks are most of DQD's statements (about 470), yet a CDM holds few of the
    listed concepts; a check whose concept does not occur has a zero denominator, which DQD reports
    as not applicable. One DISTINCT per field replaces a table scan per concept.
    """

    # Checks whose denominator is a subset of the records carrying exactly conceptId.
    CHECKS = ("plausibleGender", "plausibleUnitConceptIds")

    def __init__(self, db: Database, catalog: Catalog):
        self._db, self._catalog = db, catalog
        self._by_field: dict[tuple[str, str], set[int]] = {}

    def absent(self, inst: CheckInstance) -> bool:
        concept_id = (inst.concept_id or "").strip()
        if inst.name not in self.CHECKS or not concept_id.isdigit():
            return False
        key = (inst.table, inst.field_name)
        if key not in self._by_field:
            column = ident(inst.field_name)
            rows = self._db.query(
                f"SELECT DISTINCT {column} FROM {self._catalog.name(inst.table)} WHERE {column} IS NOT NULL"
            )
            self._by_field[key] = {int(row[0]) for row in rows}
        return int(concept_id) not in self._by_field[key]


def _evaluate(
    db: Database, ctx: SqlContext, count_errors: dict[str, str], present: _PresentConcepts, inst: CheckInstance
) -> CheckResult:
    result = _blank_result(inst)
    catalog = ctx.catalog
    started = time.perf_counter()
    try:
        if inst.name == "cdmTable":
            _set_counts(result, 0 if catalog.has_table(inst.table) else 1, 1)
        elif inst.name == "cdmField":
            _set_counts(result, 0 if catalog.has_field(inst.table, inst.field_name) else 1, 1)
        elif (reason := _not_applicable_before_running(catalog, inst)) is not None:
            result.status, result.not_applicable_reason = "not_applicable", reason
            return result
        elif inst.table in count_errors:
            result.status, result.error = "error", f"counting rows of {inst.table} failed: {count_errors[inst.table]}"
            return result
        elif present.absent(inst):
            _set_counts(result, 0, 0)
            result.status, result.not_applicable_reason = "not_applicable", _concept_missing_reason(inst)
            return result
        elif inst.name == "measureValueCompleteness":
            facts = catalog.tables[inst.table]
            assert facts.row_count is not None  # counted: a table whose count failed returned above
            _set_counts(result, facts.row_count - facts.non_null_counts.get(inst.field_name, 0), facts.row_count)
        else:
            builder = CHECK_SQL.get(inst.name)
            if builder is None:
                raise CheckSetupError(f"check {inst.name} is not implemented by ctcl-map")
            sql = builder(ctx, inst).statement()
            result.sql = sql
            violated, denominator = db.query(sql)[0]
            _set_counts(result, int(violated or 0), int(denominator or 0))
            if inst.level == "CONCEPT" and result.num_denominator == 0:
                result.status, result.not_applicable_reason = "not_applicable", _concept_missing_reason(inst)
                return result
    except CheckSetupError as exc:
        result.status, result.error = "error", str(exc)
        return result
    except Exception as exc:  # noqa: BLE001 - a failing statement is one failed check, not a crash
        result.status, result.error = "error", _first_line(exc)
        return result
    finally:
        result.seconds = time.perf_counter() - started
    result.status = "fail" if _exceeds_threshold(result) else "pass"
    return result


def _not_applicable_before_running(catalog: Catalog, inst: CheckInstance) -> str | None:
    """DQD's not-applicable reasons that depend only on table/field presence and emptiness."""
    table_upper = inst.table.upper()
    if inst.name == "measureConditionEraCompleteness":
        # DQD's special rule: judged by CONDITION_OCCURRENCE, the table eras are built from.
        if not catalog.has_table("condition_occurrence") or catalog.is_empty("condition_occurrence"):
            return "Table CONDITION_OCCURRENCE is empty."
        return None
    if not catalog.has_table(inst.table):
        return f"Table {table_upper} does not exist."
    if inst.name == "measurePersonCompleteness":
        # DQD 2.8: not applicable only when the table is missing; an empty table is judged (every
        # person lacks a record), so it passes where the threshold allows 100 % (e.g. DEATH).
        return None
    if inst.level != "TABLE" and not catalog.has_field(inst.table, inst.field_name):
        return f"Field {table_upper}.{inst.field_name.upper()} does not exist."
    if catalog.is_empty(inst.table):
        return f"Table {table_upper} is empty."
    if inst.name == "measureValueCompleteness" or inst.level == "TABLE":
        return None
    if catalog.field_is_empty(inst.table, inst.field_name):
        return f"Field {table_upper}.{inst.field_name.upper()} is not populated."
    return None


def _concept_missing_reason(inst: CheckInstance) -> str:
    field_upper, table_upper = inst.field_name.upper(), inst.table.upper()
    if inst.unit_concept_id:
        return (
            f"Combination of {field_upper}={inst.concept_id}, unitConceptId={inst.unit_concept_id} and "
            f"VALUE_AS_NUMBER IS NOT NULL is missing from the {table_upper} table."
        )
    return f"{field_upper}={inst.concept_id} is missing from the {table_upper} table."


def _exceeds_threshold(result: CheckResult) -> bool:
    """DQD (R/evaluateThresholds.R): no threshold or 0 -> any violation fails; else percent > threshold."""
    if not result.num_violated:
        return False
    if result.threshold is None or result.threshold == 0:
        return True
    assert result.pct_violated is not None  # _set_counts sets it with num_violated
    return result.pct_violated > result.threshold


def _set_counts(result: CheckResult, violated: int, denominator: int) -> None:
    result.num_violated = violated
    result.num_denominator = denominator
    result.pct_violated = 0.0 if denominator == 0 else 100.0 * violated / denominator


def _blank_result(inst: CheckInstance) -> CheckResult:
    return CheckResult(
        check_name=inst.name,
        level=inst.level,
        table=inst.table,
        field=inst.field,
        concept_id=inst.concept_id,
        unit_concept_id=inst.unit_concept_id,
        status="error",
        num_violated=None,
        num_denominator=None,
        pct_violated=None,
        threshold=inst.threshold,
        description=inst.description,
        severity=inst.check.severity,
        category=inst.check.kahn_category,
        subcategory=inst.check.kahn_subcategory,
        context=inst.check.kahn_context,
        sql_file=inst.check.sql_file,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
