"""Tables derived from the loaded events, recomputed only for the persons a run touched.

- observation_period: one period per person from the earliest to the latest event of any event
  table, extended to the death date (type 32880 'Standard algorithm').
- condition_era and drug_era: the OHDSI rules. Occurrences of the same concept (drugs: the same
  ingredient through CONCEPT_ANCESTOR) merge into one era while the next starts no more than 30 days
  after the latest end so far; an occurrence without an end lasts one day (conditions) or until its
  required end date (drugs). gap_days = era length minus the days actually covered by exposures.

All SQL here runs unchanged on DuckDB, PostgreSQL and Spark SQL (day differences are cast to
INTEGER: Spark's date minus date is a day interval, the others' an integer).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack

from ctcl_map.store.database import Database

PERSISTENCE_WINDOW_DAYS = 30
STANDARD_ALGORITHM = 32880  # Type Concept 'Standard algorithm' (vocab-concepts.md section 8)

_EVENT_DATES = """
    SELECT person_id, visit_start_date AS start_date, COALESCE(visit_end_date, visit_start_date) AS end_date FROM {visit_occurrence}
    UNION ALL SELECT person_id, condition_start_date, COALESCE(condition_end_date, condition_start_date) FROM {condition_occurrence}
    UNION ALL SELECT person_id, drug_exposure_start_date, COALESCE(drug_exposure_end_date, drug_exposure_start_date) FROM {drug_exposure}
    UNION ALL SELECT person_id, procedure_date, COALESCE(procedure_end_date, procedure_date) FROM {procedure_occurrence}
    UNION ALL SELECT person_id, device_exposure_start_date, COALESCE(device_exposure_end_date, device_exposure_start_date) FROM {device_exposure}
    UNION ALL SELECT person_id, measurement_date, measurement_date FROM {measurement}
    UNION ALL SELECT person_id, observation_date, observation_date FROM {observation}
    UNION ALL SELECT person_id, death_date, death_date FROM {death}
    UNION ALL SELECT person_id, episode_start_date, COALESCE(episode_end_date, episode_start_date) FROM {episode}
"""

# Gaps and islands: an occurrence opens a new era when it starts more than the persistence window
# after the latest end of the earlier occurrences of the same concept.
_ERAS = """
    WITH ordered AS (
        SELECT person_id, concept_id, start_date, end_date,
               MAX(end_date) OVER (PARTITION BY person_id, concept_id ORDER BY start_date, end_date
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS previous_end
        FROM ({targets}) targets
    ), flagged AS (
        SELECT *, CASE WHEN previous_end IS NULL OR start_date > previous_end + {window} THEN 1 ELSE 0 END AS opens_era
        FROM ordered
    ), numbered AS (
        SELECT *, SUM(opens_era) OVER (PARTITION BY person_id, concept_id ORDER BY start_date, end_date
                                       ROWS UNBOUNDED PRECEDING) AS era_number
        FROM flagged
    )
    SELECT person_id, concept_id, MIN(start_date) AS era_start, MAX(end_date) AS era_end, COUNT(*) AS occurrences,
           era_number
    FROM numbered GROUP BY person_id, concept_id, era_number
"""

# Days covered by exposures inside each drug era: overlapping exposures are merged first so a day
# covered twice counts once.
_COVERED_DAYS = """
    WITH ordered AS (
        SELECT person_id, concept_id, start_date, end_date,
               MAX(end_date) OVER (PARTITION BY person_id, concept_id ORDER BY start_date, end_date
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS previous_end
        FROM ({targets}) targets
    ), flagged AS (
        SELECT *, CASE WHEN previous_end IS NULL OR start_date > previous_end THEN 1 ELSE 0 END AS opens_span
        FROM ordered
    ), spans AS (
        SELECT person_id, concept_id, MIN(start_date) AS span_start, MAX(end_date) AS span_end
        FROM (SELECT *, SUM(opens_span) OVER (PARTITION BY person_id, concept_id ORDER BY start_date, end_date
                                              ROWS UNBOUNDED PRECEDING) AS span_number FROM flagged) s
        GROUP BY person_id, concept_id, span_number
    )
    SELECT e.person_id, e.concept_id, e.era_start, e.era_end, e.occurrences,
           CAST((e.era_end - e.era_start) - SUM(s.span_end - s.span_start) AS INTEGER) AS gap_days
    FROM ({eras}) e
    JOIN spans s ON s.person_id = e.person_id AND s.concept_id = e.concept_id
               AND s.span_start >= e.era_start AND s.span_end <= e.era_end
    GROUP BY e.person_id, e.concept_id, e.era_start, e.era_end, e.occurrences
"""


def cap_drug_ends_at_death(db: Database, person_ids: Iterable[int]) -> int:
    """A drug exposure cannot outlast the person: its end date is capped at the death date.

    A prescription's days supply often runs past a death (written the week before); left as is it
    would carry observation periods, drug eras and lines of therapy beyond death (DQD
    plausibleBeforeDeath). The end the source gave stays in verbatim_end_date, as the CDM intends.
    Exposures that start after death are data errors and are left for `dq` to report.
    """
    persons = sorted(set(person_ids))
    if not persons:
        return 0
    drug, death = db.table("drug_exposure"), db.table("death")
    with db.temp_relation("ctcl_cap_persons", ("person_id",), [(p,) for p in persons]) as relation:
        where = f"FROM {death} d WHERE d.person_id = {drug}.person_id AND {drug}.person_id IN (SELECT person_id FROM {relation}) AND {outlasts_death(drug, 'd')}"
        return db.execute_count(f"UPDATE {drug} SET verbatim_end_date = COALESCE({drug}.verbatim_end_date, {drug}.drug_exposure_end_date), "
                                f"drug_exposure_end_date = d.death_date, drug_exposure_end_datetime = NULL {where}")


def outlasts_death(drug: str, death: str) -> str:
    """SQL condition: the exposure `drug` ends after the death `death` it started before (or on)."""
    return f"{drug}.drug_exposure_end_date > {death}.death_date AND {drug}.drug_exposure_start_date <= {death}.death_date"


def derive_for_persons(db: Database, person_ids: Iterable[int] | None, condition_persons: Iterable[int] | None = None,
                       drug_persons: Iterable[int] | None = None) -> dict[str, int]:
    """Rebuild observation_period for `person_ids` (None = everyone), condition_era for
    `condition_persons` and drug_era for `drug_persons` (each None = the same as `person_ids`):
    a run that changed only a person's measurements leaves their eras as they are."""
    t = _tables(db)
    if person_ids is None:
        everyone = f"SELECT person_id FROM {t['person']}"
        return _rebuild(db, t, {"observation_period": everyone, "condition_era": everyone, "drug_era": everyone})
    scopes = {"observation_period": person_ids, "condition_era": condition_persons, "drug_era": drug_persons}
    wanted = {table: sorted(set(person_ids if persons is None else persons)) for table, persons in scopes.items()}
    relations = {}
    with ExitStack() as stack:
        for table, persons in wanted.items():
            if persons:
                relation = stack.enter_context(db.temp_relation(f"ctcl_{table}_persons", ("person_id",), [(p,) for p in persons]))
                relations[table] = f"SELECT person_id FROM {relation} scope"
        return {table: 0 for table in wanted} | _rebuild(db, t, relations)


def _rebuild(db: Database, t: dict[str, str], scopes: dict[str, str]) -> dict[str, int]:
    """Delete and re-derive each table in `scopes` for the persons its scope (a SELECT of person_id) names."""
    counts = {}
    with db.transaction():
        for table, scope in scopes.items():
            db.execute(f"DELETE FROM {t[table]} WHERE person_id IN ({scope})")
        if "observation_period" in scopes:
            # One period per person, so its id is the person's: stable whichever persons a run re-derives.
            counts["observation_period"] = db.execute_count(
                f"INSERT INTO {t['observation_period']} ({', '.join(OBSERVATION_PERIOD_COLUMNS)}) "
                + observation_period_select(t, scopes["observation_period"]))
        for table, select in (("condition_era", condition_era_select), ("drug_era", drug_era_select)):
            if table in scopes:
                counts[table] = _insert(db, t[table], ERA_COLUMNS[table], select(t, scopes[table]), ERA_ORDER[table])
    return counts


# The SELECTs below are the one definition of each derived table: the database path inserts their
# rows, the Spark path (ctcl_map.spark.derive) runs the same text over temp views of the same names.
OBSERVATION_PERIOD_COLUMNS = ("observation_period_id", "person_id", "observation_period_start_date",
                              "observation_period_end_date", "period_type_concept_id")
ERA_COLUMNS = {
    "condition_era": ("condition_era_id", "person_id", "condition_concept_id", "condition_era_start_date",
                      "condition_era_end_date", "condition_occurrence_count"),
    "drug_era": ("drug_era_id", "person_id", "drug_concept_id", "drug_era_start_date", "drug_era_end_date",
                 "drug_exposure_count", "gap_days"),
}
# The order era ids are numbered in (after the table's largest id): unique per era, the same on every engine.
ERA_ORDER = {
    "condition_era": ("person_id", "condition_concept_id", "condition_era_start_date"),
    "drug_era": ("person_id", "drug_concept_id", "drug_era_start_date"),
}


def observation_period_select(t: dict[str, str], scope: str) -> str:
    """Every OBSERVATION_PERIOD column, for the persons `scope` (a SELECT of person_id) names."""
    return (f"SELECT e.person_id AS observation_period_id, e.person_id AS person_id, MIN(e.start_date) AS observation_period_start_date, "
            f"MAX(e.end_date) AS observation_period_end_date, {STANDARD_ALGORITHM} AS period_type_concept_id "
            f"FROM ({_EVENT_DATES.format(**t)}) e WHERE e.person_id IN ({scope}) AND e.person_id IN (SELECT person_id FROM {t['person']}) "
            "GROUP BY e.person_id")


def condition_era_select(t: dict[str, str], scope: str) -> str:
    """CONDITION_ERA without its id, for the persons `scope` names."""
    targets = (
        f"SELECT person_id, condition_concept_id AS concept_id, condition_start_date AS start_date, "
        f"COALESCE(condition_end_date, condition_start_date + 1) AS end_date FROM {t['condition_occurrence']} "
        f"WHERE condition_concept_id <> 0 AND person_id IN ({scope})"
    )
    eras = _ERAS.format(targets=targets, window=PERSISTENCE_WINDOW_DAYS)
    return (f"SELECT person_id, concept_id AS condition_concept_id, era_start AS condition_era_start_date, "
            f"era_end AS condition_era_end_date, occurrences AS condition_occurrence_count FROM ({eras}) eras")


def drug_era_select(t: dict[str, str], scope: str) -> str:
    """DRUG_ERA without its id, for the persons `scope` names."""
    # Drug eras are per ingredient: each exposure counts for every ingredient it descends from.
    targets = (
        f"SELECT d.person_id, a.ancestor_concept_id AS concept_id, d.drug_exposure_start_date AS start_date, "
        f"COALESCE(d.drug_exposure_end_date, d.drug_exposure_start_date) AS end_date "
        f"FROM {t['drug_exposure']} d JOIN {t['concept_ancestor']} a ON a.descendant_concept_id = d.drug_concept_id "
        f"JOIN {t['concept']} c ON c.concept_id = a.ancestor_concept_id AND c.concept_class_id = 'Ingredient' "
        f"WHERE d.drug_concept_id <> 0 AND d.person_id IN ({scope})"
    )
    covered = _COVERED_DAYS.format(targets=targets, eras=_ERAS.format(targets=targets, window=PERSISTENCE_WINDOW_DAYS))
    return (f"SELECT person_id, concept_id AS drug_concept_id, era_start AS drug_era_start_date, era_end AS drug_era_end_date, "
            f"occurrences AS drug_exposure_count, gap_days FROM ({covered}) eras")


def _insert(db: Database, table: str, columns: tuple[str, ...], select: str, order: tuple[str, ...]) -> int:
    """Insert `select` (every column but the first, the id) with new ids continuing after the
    table's largest id, in a stable order."""
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) "
        f"SELECT (SELECT COALESCE(MAX({columns[0]}), 0) FROM {table}) + ROW_NUMBER() OVER (ORDER BY {', '.join(order)}), * "
        f"FROM ({select}) rows_to_insert"
    )
    return db.execute_count(sql)


def _tables(db: Database) -> dict[str, str]:
    names = ("person", "visit_occurrence", "condition_occurrence", "drug_exposure", "procedure_occurrence",
             "device_exposure", "measurement", "observation", "death", "episode", "observation_period",
             "condition_era", "drug_era", "concept_ancestor", "concept")
    return {name: db.table(name) for name in names}
