"""OHDSI-style cohorts written to the standard COHORT / COHORT_DEFINITION tables.

A cohort here is, per person, one entry (the index date = cohort_start_date) that lies inside an
observation period; cohort_end_date is the end of that observation period (Circe's default exit),
or an earlier censoring date where the definition has one (the comparator arm of the new-user
design ends when the person starts the studied drug). Entry events are SQL (DuckDB and
PostgreSQL); restrictions judged at the index date (stage, CLIPI, age, sex, calendar period) are
applied to the entries with an attrition count per step, then the rows are inserted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

import pandas as pd

from ctcl_map.cdm.schema import create_table_sql
from ctcl_map.derive.concept_sets import confirmed_condition_sql, not_of_unconfirmed_sql
from ctcl_map.errors import CohortIdClash, DatabaseError, DatabaseUsageError, SurvivalSpecError
from ctcl_map.store.database import Database, check_identifier
from ctcl_map.survival.concept_sets import descendants, resolve_concept_set, sql_ids
from ctcl_map.survival.covariates import (
    EARLY_STAGES,
    covariates_at_index,
    expand_stage_groups,
    stage_answer_concepts,
)
from ctcl_map.survival.spec import AttritionStep, Restrictions

# Episode concept 'Treatment Regimen' (shared/reference/vocab-concepts.csv section 8).
TREATMENT_REGIMEN = 32531


@dataclass(frozen=True)
class CohortDefinition:
    name: str  # unique; the cohort_definition_name the id is allocated by
    description: str
    entry: str  # condition | advanced | early | drug | line | line_comparator | death
    concept_set: str | None = None  # condition entry: ctcl / mf / ss
    ingredient: str | None = None  # drug / line entries: RxNorm ingredient name or concept id
    comparator: str | None = None  # line_comparator: restrict to lines containing this ingredient
    after_cohort_id: int | None = None  # line entries: only lines starting on/after this cohort's index
    # provisional / differential / unconfirmed diagnoses (and stages linked to them) count too
    include_unconfirmed: bool = False


BUILT_IN: dict[str, CohortDefinition] = {
    d.name: d
    for d in (
        CohortDefinition("ctcl", "first MF/SS/CTCL diagnosis", "condition", concept_set="ctcl"),
        CohortDefinition("mf", "first mycosis fungoides diagnosis", "condition", concept_set="mf"),
        CohortDefinition("ss", "first Sezary syndrome diagnosis", "condition", concept_set="ss"),
        CohortDefinition("advanced", "first date at an advanced stage (IIB-IVB), ctcl_first_advanced", "advanced"),
        CohortDefinition("early", "first stage-group record, when it is early (IA-IIA)", "early"),
        CohortDefinition("first-line", "start of the first systemic line of therapy (episode 32531)", "line"),
        CohortDefinition("death", "death date", "death"),
    )
}


def exposure_definition(ingredient: str) -> CohortDefinition:
    return CohortDefinition(f"drug:{ingredient}", f"first exposure to {ingredient} (and descendants)", "drug", ingredient=ingredient)


def line_definition(ingredient: str, after_cohort_id: int | None) -> CohortDefinition:
    return CohortDefinition(
        f"line:{ingredient}" + (f" after cohort {after_cohort_id}" if after_cohort_id else ""),
        f"start of the first line of therapy containing {ingredient}",
        "line",
        ingredient=ingredient,
        after_cohort_id=after_cohort_id,
    )


def comparator_definition(ingredient: str, comparator: str | None, after_cohort_id: int | None) -> CohortDefinition:
    other = comparator or "another systemic therapy"
    return CohortDefinition(
        f"line:{other} not {ingredient}" + (f" after cohort {after_cohort_id}" if after_cohort_id else ""),
        f"start of the first line of {other} without {ingredient}, before any {ingredient}; "
        f"follow-up ends when {ingredient} starts",
        "line_comparator",
        ingredient=ingredient,
        comparator=comparator,
        after_cohort_id=after_cohort_id,
    )


@dataclass
class CohortBuild:
    cohort_definition_id: int
    name: str
    members: pd.DataFrame  # person_id, index_date, cohort_end_date, covariates
    attrition: list[AttritionStep]
    written: str = ""  # what was written where, for the user


def ensure_cohort_tables(db: Database) -> None:
    """Create cohort / cohort_definition (spec DDL) in the results schema when absent."""
    try:
        db.ensure_schema(db.results_schema)
        db.execute(create_table_sql("cohort", db.dialect, db.results_schema, check_identifier(db.cohort_table)))
        db.execute(create_table_sql("cohort_definition", db.dialect, db.results_schema,
                                    f"{db.cohort_table}_definition"))
    except DatabaseUsageError:
        raise  # a name that cannot be used: its message says which
    except DatabaseError as exc:  # read-only file, missing privileges: say what to change
        raise DatabaseError(
            f"cannot create {db.results_table('cohort')} in {db.label}: survival writes its cohorts there, so "
            f"open the database writable or give a results schema you may write to ({str(exc).splitlines()[0]})"
        ) from exc


def cohort_definition_id(db: Database, name: str, description: str, chosen_id: int | None = None) -> int:
    """The id cohort `name` is written under: `chosen_id` when given, else the id of the
    cohort_definition row with this name, else a new id above every id in cohort_definition and in
    the cohort table (rows other tools wrote have no definition row of ours). Raises CohortIdClash
    rather than take an id whose rows belong to another definition."""
    ensure_cohort_tables(db)
    definitions = db.results_table("cohort_definition")
    if chosen_id is None:
        rows = db.query(f"SELECT cohort_definition_id FROM {definitions} WHERE cohort_definition_name = ?", [name])
        chosen_id = int(rows[0][0]) if rows else next_free_cohort_id(db)
    claim_cohort_id(db, chosen_id, name, description)
    return chosen_id


def next_free_cohort_id(db: Database) -> int:
    return 1 + int(db.query(
        f"SELECT COALESCE(MAX(id), 0) FROM (SELECT MAX(cohort_definition_id) AS id FROM "
        f"{db.results_table('cohort_definition')} UNION ALL SELECT MAX(cohort_definition_id) FROM "
        f"{db.results_table('cohort')}) ids")[0][0])


def claim_cohort_id(db: Database, cohort_id: int, name: str, description: str) -> None:
    """Record `cohort_id` as definition `name`, unless its rows belong to another definition."""
    definitions, table = db.results_table("cohort_definition"), db.results_table("cohort")
    owner = db.query(f"SELECT cohort_definition_name FROM {definitions} WHERE cohort_definition_id = ?", [cohort_id])
    rows = int(db.query(f"SELECT COUNT(*) FROM {table} WHERE cohort_definition_id = ?", [cohort_id])[0][0])
    if owner and owner[0][0] != name:
        raise CohortIdClash(
            f"cohort_definition_id {cohort_id} is {owner[0][0]!r} in {definitions} ({rows} rows in {table}); "
            f"not overwritten: choose another --cohort-id, or --cohort-table for a table of your own")
    if not owner and rows:
        raise CohortIdClash(
            f"{table} already holds {rows} rows of cohort_definition_id {cohort_id} that no {definitions} row "
            f"describes (written by another tool, e.g. CohortGenerator); not overwritten: choose another "
            f"--cohort-id, or --cohort-table for a table of your own")
    if owner:
        db.execute(f"UPDATE {definitions} SET cohort_definition_description = ? WHERE cohort_definition_id = ?",
                   [description[:4000], cohort_id])
        return
    # definition_type / subject concept: 0 (no verified concept id for these metadata fields)
    db.execute(
        f"INSERT INTO {definitions} (cohort_definition_id, cohort_definition_name, cohort_definition_description, "
        "definition_type_concept_id, subject_concept_id, cohort_initiation_date) VALUES (?, ?, ?, 0, 0, ?)",
        [cohort_id, name, description[:4000], date.today()],
    )


def resolve_ingredient(db: Database, ingredient: str) -> tuple[int, str]:
    """An RxNorm ingredient given as concept_id or name -> (concept_id, name)."""
    text = ingredient.strip()
    concept = db.table("concept")
    if text.isdigit():
        rows = db.query(f"SELECT concept_id, concept_name FROM {concept} WHERE concept_id = ?", [int(text)])
        return (int(text), rows[0][1] if rows else text)
    rows = db.query(
        f"SELECT concept_id, concept_name FROM {concept} WHERE lower(concept_name) = lower(?) "
        "AND concept_class_id = 'Ingredient' AND vocabulary_id IN ('RxNorm', 'RxNorm Extension') "
        "AND standard_concept = 'S'",
        [text],
    )
    if not rows:
        raise SurvivalSpecError(
            f"no standard RxNorm ingredient named {text!r} in {concept}: give its name as in the vocabulary "
            "or its concept_id (e.g. mogamulizumab = 35200202)"
        )
    return int(rows[0][0]), str(rows[0][1])


def drug_concepts(db: Database, ingredient: str) -> set[int]:
    concept_id, _ = resolve_ingredient(db, ingredient)
    return descendants(db, {concept_id})


def entry_sql(db: Database, definition: CohortDefinition) -> str:
    """SELECT person_id, index_date, censor_date: one row per person, the cohort entry event."""
    t = db.table
    if definition.entry == "condition":
        ids = resolve_concept_set(db, definition.concept_set or "ctcl")
        confirmed = "" if definition.include_unconfirmed else f" AND {confirmed_condition_sql()}"
        return (
            f"SELECT person_id, MIN(condition_start_date) AS index_date, CAST(NULL AS DATE) AS censor_date "
            f"FROM {t('condition_occurrence')} WHERE condition_concept_id IN ({sql_ids(ids)}){confirmed} GROUP BY person_id"
        )
    if definition.entry == "advanced":
        if not db.table_exists("ctcl_first_advanced"):
            raise SurvivalSpecError(
                f"{t('ctcl_first_advanced')} does not exist: run the staging/episodes derivation before "
                "asking for the advanced-stage cohort"
            )
        return (
            f"SELECT person_id, MIN(first_advanced_date) AS index_date, CAST(NULL AS DATE) AS censor_date "
            f"FROM {t('ctcl_first_advanced')} GROUP BY person_id"
        )
    if definition.entry == "early":
        return _early_sql(db, definition.include_unconfirmed)
    if definition.entry == "death":
        return (
            f"SELECT person_id, MIN(death_date) AS index_date, CAST(NULL AS DATE) AS censor_date "
            f"FROM {t('death')} GROUP BY person_id"
        )
    if definition.entry == "drug":
        drug_ids = drug_concepts(db, definition.ingredient or "")
        return (
            f"SELECT person_id, MIN(drug_exposure_start_date) AS index_date, CAST(NULL AS DATE) AS censor_date "
            f"FROM {t('drug_exposure')} WHERE drug_concept_id IN ({sql_ids(drug_ids)}) GROUP BY person_id"
        )
    if definition.entry in ("line", "line_comparator"):
        return _line_sql(db, definition)
    raise ValueError(f"unknown cohort entry kind {definition.entry!r}")


def _early_sql(db: Database, include_unconfirmed: bool = False) -> str:
    answers = stage_answer_concepts(db)
    early = {cid for cid, label in answers.items() if label in EARLY_STAGES}
    m = db.table("measurement")
    def confirmed(alias: str) -> str:
        return "" if include_unconfirmed else f" AND {not_of_unconfirmed_sql(db, alias)}"

    return (
        f"SELECT m.person_id, m.measurement_date AS index_date, CAST(NULL AS DATE) AS censor_date FROM {m} m "
        f"JOIN (SELECT person_id, MIN(measurement_date) AS first_date FROM {m} s "
        f"      WHERE value_as_concept_id IN ({sql_ids(set(answers))}){confirmed('s')} GROUP BY person_id) f "
        f"  ON f.person_id = m.person_id AND f.first_date = m.measurement_date "
        f"WHERE m.value_as_concept_id IN ({sql_ids(early)}){confirmed('m')} "
        "GROUP BY m.person_id, m.measurement_date"
    )


def _contains_sql(db: Database, ids: set[int]) -> str:
    """SQL condition: episode `e` involves one of `ids` (object concept, HemOnc regimen, or linked drug)."""
    id_list = sql_ids(ids)
    return (
        f"(e.episode_object_concept_id IN ({id_list}) "
        f"OR EXISTS (SELECT 1 FROM {db.table('concept_relationship')} cr "
        f"  WHERE cr.concept_id_1 = e.episode_object_concept_id AND cr.relationship_id = 'Has antineoplastic' "
        f"  AND cr.concept_id_2 IN ({id_list})) "
        f"OR EXISTS (SELECT 1 FROM {db.table('episode_event')} ee "
        f"  JOIN {db.table('drug_exposure')} de ON de.drug_exposure_id = ee.event_id AND de.person_id = e.person_id "
        f"  WHERE ee.episode_id = e.episode_id AND de.drug_concept_id IN ({id_list})))"
    )


def _line_sql(db: Database, definition: CohortDefinition) -> str:
    where = f"e.episode_concept_id = {TREATMENT_REGIMEN}"
    if definition.after_cohort_id is not None:
        where += (
            f" AND EXISTS (SELECT 1 FROM {db.results_table('cohort')} b WHERE b.subject_id = e.person_id "
            f"AND b.cohort_definition_id = {int(definition.after_cohort_id)} "
            f"AND e.episode_start_date >= b.cohort_start_date)"
        )
    select = "SELECT e.person_id, MIN(e.episode_start_date) AS index_date"
    if definition.ingredient is None:
        return f"{select}, CAST(NULL AS DATE) AS censor_date FROM {db.table('episode')} e WHERE {where} GROUP BY e.person_id"
    exposure_ids = drug_concepts(db, definition.ingredient)
    if definition.entry == "line":
        return (
            f"{select}, CAST(NULL AS DATE) AS censor_date FROM {db.table('episode')} e "
            f"WHERE {where} AND {_contains_sql(db, exposure_ids)} GROUP BY e.person_id"
        )
    # comparator: a line without the drug, begun before the person's first contact with it (a
    # later line or a bare drug_exposure); follow-up is censored at that first contact
    if definition.comparator:
        where += f" AND {_contains_sql(db, drug_concepts(db, definition.comparator))}"
    first_exposure = (
        f"SELECT person_id, MIN(start_date) AS exposure_date FROM ("
        f"SELECT e.person_id, e.episode_start_date AS start_date FROM {db.table('episode')} e "
        f"WHERE e.episode_concept_id = {TREATMENT_REGIMEN} AND {_contains_sql(db, exposure_ids)} "
        f"UNION ALL SELECT person_id, drug_exposure_start_date AS start_date FROM {db.table('drug_exposure')} "
        f"WHERE drug_concept_id IN ({sql_ids(exposure_ids)})) x GROUP BY person_id"
    )
    return (
        f"{select}, MIN(fx.exposure_date) AS censor_date FROM {db.table('episode')} e "
        f"LEFT JOIN ({first_exposure}) fx ON fx.person_id = e.person_id "
        f"WHERE {where} AND NOT {_contains_sql(db, exposure_ids)} "
        f"AND (fx.exposure_date IS NULL OR e.episode_start_date < fx.exposure_date) GROUP BY e.person_id"
    )


def entries_in_observation(db: Database, definition: CohortDefinition) -> pd.DataFrame:
    """Entry events joined to the observation period that contains them (op_end NULL: none does)."""
    sql = (
        f"SELECT en.person_id, en.index_date, en.censor_date, "
        f"MAX(op.observation_period_end_date) AS op_end "
        f"FROM ({entry_sql(db, definition)}) en "
        f"LEFT JOIN {db.table('observation_period')} op ON op.person_id = en.person_id "
        f"AND en.index_date BETWEEN op.observation_period_start_date AND op.observation_period_end_date "
        f"GROUP BY en.person_id, en.index_date, en.censor_date"
    )
    frame = db.query_df(sql)
    for column in ("index_date", "censor_date", "op_end"):
        frame[column] = pd.to_datetime(frame[column])
    return frame.sort_values("person_id").reset_index(drop=True)


def apply_restrictions(
    members: pd.DataFrame, restrictions: Restrictions, cohort: str
) -> tuple[pd.DataFrame, list[AttritionStep]]:
    """Keep members meeting each restriction at the index date; one attrition step per restriction."""
    steps: list[AttritionStep] = []

    def keep(mask: pd.Series, step: str, reason: str) -> None:
        nonlocal members
        before = len(members)
        members = members[mask.fillna(False).astype(bool)].reset_index(drop=True)
        steps.append(AttritionStep(cohort, step, before, len(members), reason))

    r = restrictions
    if r.stage_groups:
        allowed = expand_stage_groups(r.stage_groups)
        unknown = int(members["stage_group"].isna().sum())
        keep(members["stage_group"].isin(allowed), f"stage group at index in {','.join(allowed)}",
             f"other stage group, or none recorded ({unknown} without a stage group)")
    if r.clipi_groups:
        allowed = tuple(g.strip().lower() for g in r.clipi_groups)
        keep(members["clipi_group"].isin(allowed), f"CLIPI group in {','.join(allowed)}", "other or no CLIPI group")
    if r.ctcl_types:
        allowed = tuple(g.strip().upper() for g in r.ctcl_types)
        keep(members["ctcl_type"].isin(allowed), f"CTCL type in {','.join(allowed)}", "other CTCL type")
    if r.age_min is not None:
        keep(members["age"] >= r.age_min, f"age at index >= {r.age_min:g}", "younger, or year of birth missing")
    if r.age_max is not None:
        keep(members["age"] <= r.age_max, f"age at index <= {r.age_max:g}", "older, or year of birth missing")
    if r.sex:
        keep(members["sex"] == r.sex.lower(), f"sex {r.sex.lower()}", "other or unknown sex")
    if r.index_from:
        keep(members["index_date"] >= pd.Timestamp(r.index_from), f"index on/after {r.index_from}", "earlier index date")
    if r.index_to:
        keep(members["index_date"] <= pd.Timestamp(r.index_to), f"index on/before {r.index_to}", "later index date")
    return members, steps


def build_cohort(
    db: Database,
    definition: CohortDefinition,
    restrictions: Restrictions = Restrictions(),
    grace_days: int = 30,
    chosen_id: int | None = None,
) -> CohortBuild:
    """Run the definition, apply the restrictions and (re)write its rows in the cohort table."""
    name = definition.name
    description = definition.description
    if restrictions.describe():
        name = f"{name} [{restrictions.describe()}]"
        description = f"{description}; restricted to {restrictions.describe()}"
    cohort_id = cohort_definition_id(db, name, description, chosen_id)
    entries = entries_in_observation(db, definition)
    attrition = [AttritionStep(name, "persons with a qualifying entry event", len(entries), len(entries))]
    before = len(entries)
    entries = entries[entries["op_end"].notna()].reset_index(drop=True)
    attrition.append(AttritionStep(name, "index date inside an observation period", before, len(entries),
                                   "index date outside any observation period"))
    members = covariates_at_index(db, entries, grace_days, definition.include_unconfirmed)
    members, steps = apply_restrictions(members, restrictions, name)
    attrition.extend(steps)
    members["cohort_end_date"] = members[["op_end", "censor_date"]].min(axis=1)
    replaced = write_cohort_rows(db, cohort_id, members)
    return CohortBuild(cohort_id, name, members, attrition, settle_definition(db, cohort_id, name, len(members), replaced))


def write_cohort_rows(db: Database, cohort_id: int, members: pd.DataFrame) -> int:
    """Replace the rows of cohort `cohort_id` (already claimed for this definition); returns how many
    earlier rows of the same definition were replaced."""
    table = db.results_table("cohort")
    rows = [
        (cohort_id, int(r.person_id), pd.Timestamp(r.index_date).date(), pd.Timestamp(r.cohort_end_date).date())
        for r in members.itertuples()
    ]
    with db.transaction():
        replaced = db.execute_count(f"DELETE FROM {table} WHERE cohort_definition_id = ?", [cohort_id])
        db.insert_rows(table, ["cohort_definition_id", "subject_id", "cohort_start_date", "cohort_end_date"], rows)
    return replaced


def settle_definition(db: Database, cohort_id: int, name: str, rows: int, replaced: int) -> str:
    """After a cohort is written: what was written, in words. An empty cohort keeps no cohort_definition
    row: a definition without cohort rows breaks COHORT_DEFINITION's foreign key to COHORT (the DQD
    isForeignKey check on cohort_definition_id)."""
    replacing = f", replacing {replaced} rows of the same definition" if replaced else ""
    if rows == 0:
        db.execute(f"DELETE FROM {db.results_table('cohort_definition')} WHERE cohort_definition_id = ?", [cohort_id])
        return (f"cohort {cohort_id} ({name}) is empty: no rows written to {db.results_table('cohort')}{replacing}, "
                f"and no {db.results_table('cohort_definition')} row kept")
    return f"cohort {cohort_id} ({name}): {rows} rows written to {db.results_table('cohort')}{replacing}"


def built_in(name: str, include_unconfirmed: bool = False) -> CohortDefinition:
    """A built-in cohort; with include_unconfirmed, a cohort of its own name that also counts
    provisional / differential / unconfirmed diagnoses (left out by default)."""
    if name not in BUILT_IN:
        raise SurvivalSpecError(f"unknown cohort {name!r}: built-in cohorts are {', '.join(BUILT_IN)}")
    definition = BUILT_IN[name]
    if include_unconfirmed:
        definition = replace(definition, name=f"{definition.name} [incl. unconfirmed diagnoses]",
                             description=f"{definition.description}, unconfirmed diagnoses included",
                             include_unconfirmed=True)
    return definition

