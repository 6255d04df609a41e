"""Plausibility checks: value ranges, temporal order, events during life, dates within their visit,
overlapping observation periods."""

from __future__ import annotations

from datetime import date

from ctcl_map.quality.definitions import CheckInstance
from ctcl_map.quality.sqlparts import (
    CountSql,
    SqlContext,
    birth_date,
    date_literal,
    ident,
    number_literal,
    plausible_bound,
)

_DEATH_GRACE_DAYS = 60  # DQD tolerates events up to 60 days after death (claims run-out, late entry)
_VISIT_WINDOW_DAYS = 7  # DQD: events may lie one week before the visit start or after its end


def _non_null_rows(ctx: SqlContext, inst: CheckInstance) -> str:
    return f"SELECT COUNT(*) FROM {ctx.table(inst.table)} WHERE {ident(inst.field_name)} IS NOT NULL"


def _plausible_value(ctx: SqlContext, inst: CheckInstance, bound_column: str, operator: str) -> CountSql:
    bound = plausible_bound(inst.value(bound_column), ctx.today)
    column = f"t.{ident(inst.field_name)}"
    if isinstance(bound, date):
        condition = f"CAST({column} AS DATE) {operator} {date_literal(bound)}"
    else:
        condition = f"{column} {operator} {number_literal(bound)}"
    return CountSql(
        f"SELECT COUNT(*) FROM {ctx.table(inst.table)} t WHERE {condition}",
        _non_null_rows(ctx, inst),
    )


def plausible_value_low(ctx: SqlContext, inst: CheckInstance) -> CountSql:
    """field_plausible_value_low.sql: non-NULL values below plausibleValueLow."""
    return _plausible_value(ctx, inst, "plausibleValueLow", "<")


def plausible_value_high(ctx: SqlContext, inst: CheckInstance) -> CountSql:
    """field_plausible_value_high.sql: non-NULL values above plausibleValueHigh (dates: after tomorrow)."""
    return _plausible_value(ctx, inst, "plausibleValueHigh", ">")


def plausible_temporal_after(ctx: SqlContext, inst: CheckInstance) -> CountSql:
    """field_plausible_temporal_after.sql: the date lies before plausibleTemporalAfterFieldName, either
    in the same row or (for PERSON.BIRTH_DATETIME) the person's birth, June 1st of year_of_birth when
    birth_datetime is missing. The denominator is every row of the table, as in DQD."""
    table = ctx.table(inst.table)
    other_table = inst.value("plausibleTemporalAfterTableName").lower()
    other_name = inst.value("plausibleTemporalAfterFieldName").lower()
    other_field = ident(other_name)
    column = f"CAST(t.{ident(inst.field_name)} AS DATE)"
    if other_table == inst.table:
        join, earlier = "", f"CAST(t.{other_field} AS DATE)"
    elif other_table == "person":
        join = f" JOIN {ctx.table('person')} p ON t.person_id = p.person_id"
        if other_name != "birth_datetime":
            earlier = f"CAST(p.{other_field} AS DATE)"
        else:
            earlier = birth_date("p", mid_year_fallback=True)
    else:
        join = f" JOIN {ctx.table(other_table)} o ON t.person_id = o.person_id"
        earlier = f"CAST(o.{other_field} AS DATE)"
    return CountSql(
        f"SELECT COUNT(*) FROM {table} t{join} WHERE {earlier} > {column}",
        f"SELECT COUNT(*) FROM {table}",
    )


def plausible_during_life(ctx: SqlContext, inst: CheckInstance) -> CountSql:
    """field_plausible_during_life.sql: dates more than 60 days after death; the denominator is all
    rows of persons with a DEATH record."""
    table, death = ctx.table(inst.table), ctx.table("death")
    return CountSql(
        f"SELECT COUNT(*) FROM {table} t JOIN {death} de ON t.person_id = de.person_id "
        f"WHERE CAST(t.{ident(inst.field_name)} AS DATE) > CAST(de.death_date AS DATE) + {_DEATH_GRACE_DAYS}",
        f"SELECT COUNT(*) FROM {table} WHERE person_id IN (SELECT person_id FROM {death})",
    )


def plausible_before_death(ctx: SqlContext, inst: CheckInstance) -> CountSql:
    """field_plausible_before_death.sql: like plausibleDuringLife, but the denominator only counts
    non-NULL dates (of persons who died, once per death record)."""
    table, death = ctx.table(inst.table), ctx.table("death")
    column = f"t.{ident(inst.field_name)}"
    return CountSql(
        f"SELECT COUNT(*) FROM {table} t JOIN {death} de ON t.person_id = de.person_id "
        f"WHERE {column} IS NOT NULL AND CAST({column} AS DATE) > CAST(de.death_date AS DATE) + {_DEATH_GRACE_DAYS}",
        f"SELECT COUNT(*) FROM {table} t JOIN {death} de ON t.person_id = de.person_id WHERE {column} IS NOT NULL",
    )


def plausible_after_birth(ctx: SqlContext, inst: CheckInstance) -> CountSql:
    """field_plausible_after_birth.sql: dates before birth (birth_datetime, else year/month/day of
    birth with January / the 1st for missing parts)."""
    table = ctx.table(inst.table)
    column = f"t.{ident(inst.field_name)}"
    return CountSql(
        f"SELECT COUNT(*) FROM {table} t JOIN {ctx.table('person')} p ON t.person_id = p.person_id "
        f"WHERE {column} IS NOT NULL AND CAST({column} AS DATE) < {birth_date('p', mid_year_fallback=False)}",
        _non_null_rows(ctx, inst),
    )


def plausible_start_before_end(ctx: SqlContext, inst: CheckInstance) -> CountSql:
    """field_plausible_start_before_end.sql: start date after the end date (both non-NULL)."""
    start = f"t.{ident(inst.field_name)}"
    end = f"t.{ident(inst.value('plausibleStartBeforeEndFieldName'))}"
    both = f"{start} IS NOT NULL AND {end} IS NOT NULL"
    table = ctx.table(inst.table)
    return CountSql(
        f"SELECT COUNT(*) FROM {table} t WHERE {both} AND CAST({start} AS DATE) > CAST({end} AS DATE)",
        f"SELECT COUNT(*) FROM {table} t WHERE {both}",
    )


def within_visit_dates(ctx: SqlContext, inst: CheckInstance) -> CountSql:
    """field_within_visit_dates.sql: dates more than a week before the visit start or after its end;
    the denominator is the rows linked to a visit."""
    table, visits = ctx.table(inst.table), ctx.table("visit_occurrence")
    join = f"{table} t JOIN {visits} vo ON t.visit_occurrence_id = vo.visit_occurrence_id"
    column = f"CAST(t.{ident(inst.field_name)} AS DATE)"
    return CountSql(
        f"SELECT COUNT(*) FROM {join} WHERE {column} < CAST(vo.visit_start_date AS DATE) - {_VISIT_WINDOW_DAYS} "
        f"OR {column} > CAST(vo.visit_end_date AS DATE) + {_VISIT_WINDOW_DAYS}",
        f"SELECT COUNT(*) FROM {join}",
    )


def measure_observation_period_overlap(ctx: SqlContext, inst: CheckInstance) -> CountSql:
    """table_observation_period_overlap.sql: persons with overlapping or back-to-back periods."""
    periods = ctx.table("observation_period")
    return CountSql(
        f"SELECT COUNT(DISTINCT a.person_id) FROM {periods} a JOIN {periods} b "
        "ON a.person_id = b.person_id AND a.observation_period_id <> b.observation_period_id "
        "WHERE (a.observation_period_start_date <= b.observation_period_end_date "
        "AND a.observation_period_end_date >= b.observation_period_start_date) "
        "OR CAST(a.observation_period_end_date AS DATE) + 1 = CAST(b.observation_period_start_date AS DATE) "
        "OR CAST(b.observation_period_end_date AS DATE) + 1 = CAST(a.observation_period_start_date AS DATE)",
        f"SELECT COUNT(DISTINCT person_id) FROM {periods}",
    )
