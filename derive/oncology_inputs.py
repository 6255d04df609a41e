"""The rows the oncology derivation reads, as one SQL definition for every engine.

`input_queries` gives one SELECT per kind of input row (CTCL conditions, staging measurements,
blood values, LDH results, large-cell transformation findings, births, systemic exposures, deaths).
The database path runs them for a chunk of persons (`read_inputs`); the Spark path
(ctcl_map.spark.derive) runs the same text over temp views and groups the rows by person. Either
way the derivation itself (`oncology.derive_rows`) sees the same tuples, in INPUT_COLUMNS order,
sorted here by INPUT_ORDER: it never depends on the order an engine returned them in.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ctcl_map.derive.concept_sets import FIELD_CONDITION, LDH_CODES, OncologyConcepts
from ctcl_map.store.database import Database
from ctcl_map.store.statements import int_list

InputRows = dict[str, list[tuple]]

INPUT_COLUMNS: dict[str, tuple[str, ...]] = {
    "conditions": ("condition_occurrence_id", "person_id", "condition_concept_id", "condition_start_date",
                   "condition_status_source_value"),
    "staging": ("measurement_id", "person_id", "measurement_date", "measurement_concept_id", "value_as_concept_id",
                "value_source_value", "concept_code", "concept_name", "measurement_event_id", "meas_event_field_concept_id",
                "condition_occurrence_id"),
    "blood": ("measurement_id", "person_id", "measurement_date", "measurement_concept_id", "value_as_number",
              "value_as_concept_id", "unit_source_value", "unit_code", "measurement_source_value", "value_source_value"),
    "ldh": ("measurement_id", "person_id", "measurement_date", "value_as_number", "range_high"),
    "lct": ("observation_id", "person_id", "observation_date", "value_as_string", "value_source_value", "value_as_number"),
    "births": ("person_id", "year_of_birth", "month_of_birth", "day_of_birth", "birth_datetime"),
    "exposures": ("drug_exposure_id", "person_id", "ingredient_concept_id", "drug_exposure_start_date",
                  "drug_exposure_end_date", "drug_source_value"),
    "deaths": ("person_id", "death_date"),
}
# Positions (in INPUT_COLUMNS) each kind is sorted by: person, date, then the row's own id.
INPUT_ORDER: dict[str, tuple[int, ...]] = {
    "conditions": (1, 3, 0), "staging": (1, 2, 0), "blood": (1, 2, 0), "ldh": (1, 2, 0), "lct": (1, 2, 0),
    "births": (0,), "exposures": (1, 3, 0, 2), "deaths": (0,),
}


def input_queries(table: Callable[[str], str], concepts: OncologyConcepts, persons_in: Callable[[str], str]) -> dict[str, str]:
    """One SELECT per input kind. `table(name)` names a table; `persons_in(column)` is the SQL
    condition that limits a person_id column to the persons wanted (e.g. `x IN (1, 2)`, or TRUE)."""
    axis_of = {cid for cids in concepts.questions.values() for cid in cids}
    blood_ids = {cid for cids in concepts.blood.values() for cid in cids}
    ldh_codes = ", ".join(f"'{code}'" for _vocabulary, code in LDH_CODES)
    ingredients = int_list(concepts.systemic)
    lct = concepts.ours.get("LCT")
    queries = {
        # Conditions are filtered to the CTCL set in Python: it is hundreds of ids, and parsing
        # them as an SQL IN-list costs more than the few conditions of a chunk of persons.
        "conditions": "SELECT condition_occurrence_id, person_id, condition_concept_id, condition_start_date, "
                      f"condition_status_source_value FROM {table('condition_occurrence')} WHERE {persons_in('person_id')}",
        "staging": (
            "SELECT m.measurement_id, m.person_id, m.measurement_date, m.measurement_concept_id, m.value_as_concept_id, "
            "m.value_source_value, c.concept_code, c.concept_name, m.measurement_event_id, m.meas_event_field_concept_id, "
            f"co.condition_occurrence_id FROM {table('measurement')} m "
            f"LEFT JOIN {table('concept')} c ON c.concept_id = m.value_as_concept_id "
            f"LEFT JOIN {table('condition_occurrence')} co ON co.condition_occurrence_id = m.measurement_event_id "
            f"AND m.meas_event_field_concept_id = {FIELD_CONDITION} "
            f"WHERE {persons_in('m.person_id')} AND m.measurement_concept_id IN {int_list(axis_of)}"),
        "blood": (
            "SELECT m.measurement_id, m.person_id, m.measurement_date, m.measurement_concept_id, m.value_as_number, "
            "m.value_as_concept_id, m.unit_source_value, u.concept_code AS unit_code, m.measurement_source_value, "
            f"m.value_source_value FROM {table('measurement')} m LEFT JOIN {table('concept')} u ON u.concept_id = m.unit_concept_id "
            f"WHERE {persons_in('m.person_id')} AND m.measurement_concept_id IN {int_list(blood_ids)}"),
        # LDH rows: a mapped LDH concept, or concept 0 with the LDH LOINC code as source value (the
        # vocabulary may lack an LDH concept; the source code still says what was measured).
        "ldh": (
            f"SELECT measurement_id, person_id, measurement_date, value_as_number, range_high FROM {table('measurement')} "
            f"WHERE {persons_in('person_id')} AND (measurement_concept_id IN {int_list(concepts.ldh_ids)} "
            f"OR (measurement_concept_id = 0 AND measurement_source_value IN ({ldh_codes}))) AND value_as_number IS NOT NULL"),
        "lct": (
            "SELECT observation_id, person_id, observation_date, value_as_string, value_source_value, value_as_number "
            f"FROM {table('observation')} WHERE {persons_in('person_id')} AND observation_concept_id = {int(lct) if lct else 'NULL'}"),
        "births": (
            "SELECT person_id, year_of_birth, month_of_birth, day_of_birth, birth_datetime "
            f"FROM {table('person')} WHERE {persons_in('person_id')}"),
        "exposures": (
            "SELECT de.drug_exposure_id, de.person_id, de.drug_concept_id AS ingredient_concept_id, de.drug_exposure_start_date, "
            f"de.drug_exposure_end_date, de.drug_source_value FROM {table('drug_exposure')} de "
            f"WHERE {persons_in('de.person_id')} AND de.drug_concept_id IN {ingredients} "
            "UNION SELECT de.drug_exposure_id, de.person_id, ca.ancestor_concept_id, de.drug_exposure_start_date, "
            f"de.drug_exposure_end_date, de.drug_source_value FROM {table('drug_exposure')} de "
            f"JOIN {table('concept_ancestor')} ca ON ca.descendant_concept_id = de.drug_concept_id "
            f"WHERE {persons_in('de.person_id')} AND ca.ancestor_concept_id IN {ingredients}"),
        "deaths": f"SELECT person_id, MIN(death_date) AS death_date FROM {table('death')} WHERE {persons_in('person_id')} GROUP BY person_id",
    }
    return queries


def sorted_inputs(rows: InputRows) -> InputRows:
    """Each kind's rows in INPUT_ORDER (every kind present, empty when it has no rows)."""
    return {kind: sorted(rows.get(kind, []), key=partial(_sort_key, INPUT_ORDER[kind])) for kind in INPUT_COLUMNS}


def _sort_key(positions: tuple[int, ...], row: tuple) -> tuple:
    return tuple(row[i] for i in positions)


def read_inputs(db: Database, concepts: OncologyConcepts, persons: list[int]) -> InputRows:
    """The input rows of a chunk of persons, from the database."""
    persons_sql = int_list(persons)
    queries = input_queries(db.table, concepts, lambda column: f"{column} IN {persons_sql}")
    return sorted_inputs({kind: [tuple(row) for row in db.query(sql)] for kind, sql in queries.items()})
