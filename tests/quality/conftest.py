"""Fixtures of the quality tests: a small, sound OMOP CDM built by hand, which the tests of each DQD
check family break on purpose (tests/quality/test_dq_sound_cdm.py proves it passes every check).
Helpers a test calls with arguments are fixtures that return the function.

Concept ids: from ../shared/reference/vocab-concepts.csv, except those marked DQD, which come from
OHDSI/DataQualityDashboard inst/csv/OMOP_CDMv5.4_Concept_Level.csv (shipped as
ctcl_map/quality/dqd/OMOP_CDMv5.4_Concept_Level.csv): 26662 Testicular hypofunction (plausibleGender
Male), 3013721 AST measurement with approved units 8645, 8923, and 8840 milligram per deciliter.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

import pytest

from ctcl_map.cdm.schema import cdm_ddl
from ctcl_map.errors import DatabaseError
from ctcl_map.quality import DqReport, run_dq
from ctcl_map.store.database import Database, connect

TODAY = date(2025, 1, 1)  # DQD's GETDATE(), fixed so "future date" thresholds do not drift
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

MALE, FEMALE = 8507, 8532
WHITE, NOT_HISPANIC = 8527, 38003564
EHR = 32817  # Type Concept
OUTPATIENT_VISIT = 9202
MYCOSIS_FUNGOIDES, SEZARY = 4040380, 4041799
MOGAMULIZUMAB = 35200202  # RxNorm Ingredient
UVA_THERAPY = 4039592  # SNOMED Procedure
MF_MORPHOLOGY = 4233385  # SNOMED Morph Abnormality, Observation domain
STAGE_GROUP = 3022698  # LOINC, Measurement domain
TESTICULAR_HYPOFUNCTION = 26662  # DQD: plausibleGender Male
AST_MEASUREMENT = 3013721  # DQD: plausibleUnitConceptIds 8645,8923
AST_UNIT, MG_PER_DL = 8645, 8840  # DQD

# concept_id, name, domain, vocabulary, class, standard
CONCEPTS: list[tuple[int, str, str, str, str, str | None]] = [
    (0, "No matching concept", "Metadata", "None", "Undefined", None),
    (MALE, "MALE", "Gender", "Gender", "Gender", "S"),
    (FEMALE, "FEMALE", "Gender", "Gender", "Gender", "S"),
    (WHITE, "White", "Race", "Race", "Race", "S"),
    (NOT_HISPANIC, "Not Hispanic or Latino", "Ethnicity", "Ethnicity", "Ethnicity", "S"),
    (EHR, "EHR", "Type Concept", "Type Concept", "Type Concept", "S"),
    (OUTPATIENT_VISIT, "Outpatient Visit", "Visit", "Visit", "Visit", "S"),
    (MYCOSIS_FUNGOIDES, "Mycosis fungoides (clinical)", "Condition", "SNOMED", "Disorder", "S"),
    (SEZARY, "Sezary's disease", "Condition", "SNOMED", "Disorder", "S"),
    (TESTICULAR_HYPOFUNCTION, "Testicular hypofunction", "Condition", "SNOMED", "Disorder", "S"),
    (MOGAMULIZUMAB, "mogamulizumab", "Drug", "RxNorm", "Ingredient", "S"),
    (UVA_THERAPY, "Ultraviolet A therapy", "Procedure", "SNOMED", "Procedure", "S"),
    (MF_MORPHOLOGY, "Mycosis fungoides", "Observation", "SNOMED", "Morph Abnormality", "S"),
    (STAGE_GROUP, "Stage group.clinical Cancer", "Measurement", "LOINC", "Clinical Observation", "S"),
    (AST_MEASUREMENT, "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
     "Measurement", "LOINC", "Lab Test", "S"),
    (AST_UNIT, "unit 8645 (DQD approved unit for 3013721)", "Unit", "UCUM", "Unit", "S"),
    (MG_PER_DL, "milligram per deciliter", "Unit", "UCUM", "Unit", "S"),
]

D = date  # short for the many dates below


def cdm_ddl_statements(dialect: str, schema: str | None, constraints: bool) -> list[str]:
    """cdm_ddl, optionally without NOT NULL / PRIMARY KEY so that broken CDMs can be stored at all
    (OHDSI's own DDL also creates the tables without keys; DQD exists to find what keys would catch)."""
    statements = cdm_ddl(dialect, schema)
    if constraints:
        return statements
    return [re.sub(r",\n    PRIMARY KEY \([^)]*\)", "", s).replace(" NOT NULL", "") for s in statements]


def sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def _insert(db: Database, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """One multi-row INSERT per call; every row must have the same columns, in the same order."""
    columns = list(rows[0])
    assert all(list(row) == columns for row in rows), f"{table}: rows with different columns"
    values = ", ".join("(" + ", ".join(sql_literal(v) for v in row.values()) + ")" for row in rows)
    db.execute(f"INSERT INTO {db.table(table)} ({', '.join(columns)}) VALUES {values}")


def load_vocabulary(db: Database) -> None:
    _insert(db, "concept", [
        {"concept_id": cid, "concept_name": name, "domain_id": domain, "vocabulary_id": vocab,
         "concept_class_id": klass, "standard_concept": std, "concept_code": str(cid),
         "valid_start_date": D(1970, 1, 1), "valid_end_date": D(2099, 12, 31), "invalid_reason": None}
        for cid, name, domain, vocab, klass, std in CONCEPTS
    ])
    # Metadata rows point at concept 0: the real vocabulary/domain concept ids are not in our verified list.
    _insert(db, "vocabulary", [{"vocabulary_id": v, "vocabulary_name": v, "vocabulary_concept_id": 0}
                              for v in sorted({c[3] for c in CONCEPTS})])
    _insert(db, "domain", [{"domain_id": d, "domain_name": d, "domain_concept_id": 0}
                          for d in sorted({c[2] for c in CONCEPTS})])
    _insert(db, "concept_class", [{"concept_class_id": k, "concept_class_name": k, "concept_class_concept_id": 0}
                                 for k in sorted({c[4] for c in CONCEPTS})])


def load_clinical(db: Database) -> None:
    """Four persons, each observed, with one outpatient visit and a CTCL diagnosis; person 3 died."""
    persons = [(1, MALE, 1950), (2, FEMALE, 1960), (3, MALE, 1970), (4, FEMALE, 1980)]
    _insert(db, "person", [
        {"person_id": pid, "gender_concept_id": gender, "year_of_birth": year, "race_concept_id": WHITE,
         "ethnicity_concept_id": NOT_HISPANIC, "gender_source_value": "M" if gender == MALE else "F",
         "race_source_value": "2106-3", "ethnicity_source_value": "2186-5"}
        for pid, gender, year in persons
    ])
    _insert(db, "observation_period", [
        {"observation_period_id": pid, "person_id": pid, "observation_period_start_date": D(2015, 1, 1),
         "observation_period_end_date": D(2022, 6, 1) if pid == 3 else D(2023, 12, 31),
         "period_type_concept_id": EHR}
        for pid, _, _ in persons
    ])
    _insert(db, "visit_occurrence", [
        {"visit_occurrence_id": pid, "person_id": pid, "visit_concept_id": OUTPATIENT_VISIT,
         "visit_start_date": D(2020, 3, 1), "visit_end_date": D(2020, 3, 2), "visit_type_concept_id": EHR,
         "visit_source_value": "AMB"}
        for pid, _, _ in persons
    ])
    diagnoses = {1: MYCOSIS_FUNGOIDES, 2: MYCOSIS_FUNGOIDES, 3: SEZARY, 4: MYCOSIS_FUNGOIDES}
    _insert(db, "condition_occurrence", [
        {"condition_occurrence_id": pid, "person_id": pid, "condition_concept_id": concept,
         "condition_start_date": D(2020, 3, 1), "condition_type_concept_id": EHR, "visit_occurrence_id": pid,
         "condition_source_value": "C84.1" if concept == SEZARY else "C84.0"}
        for pid, concept in diagnoses.items()
    ])
    _insert(db, "condition_era", [
        {"condition_era_id": pid, "person_id": pid, "condition_concept_id": concept,
         "condition_era_start_date": D(2020, 3, 1), "condition_era_end_date": D(2020, 3, 1),
         "condition_occurrence_count": 1}
        for pid, concept in diagnoses.items()
    ])
    _insert(db, "drug_exposure", [
        {"drug_exposure_id": 1, "person_id": 1, "drug_concept_id": MOGAMULIZUMAB,
         "drug_exposure_start_date": D(2020, 3, 1), "drug_exposure_end_date": D(2020, 3, 1),
         "drug_type_concept_id": EHR, "visit_occurrence_id": 1, "drug_source_value": "mogamulizumab"}
    ])
    _insert(db, "drug_era", [
        {"drug_era_id": 1, "person_id": 1, "drug_concept_id": MOGAMULIZUMAB, "drug_era_start_date": D(2020, 3, 1),
         "drug_era_end_date": D(2020, 3, 1), "drug_exposure_count": 1, "gap_days": 0}
    ])
    _insert(db, "procedure_occurrence", [
        {"procedure_occurrence_id": 1, "person_id": 2, "procedure_concept_id": UVA_THERAPY,
         "procedure_date": D(2020, 3, 1), "procedure_type_concept_id": EHR, "visit_occurrence_id": 2,
         "procedure_source_value": "229587005"}
    ])
    _insert(db, "measurement", [
        {"measurement_id": 1, "person_id": 1, "measurement_concept_id": AST_MEASUREMENT,
         "measurement_date": D(2020, 3, 1), "measurement_type_concept_id": EHR, "value_as_number": 30.0,
         "unit_concept_id": AST_UNIT, "unit_source_value": "U/L", "measurement_source_value": "1920-8",
         "visit_occurrence_id": 1}
    ])
    _insert(db, "observation", [
        {"observation_id": 1, "person_id": 4, "observation_concept_id": MF_MORPHOLOGY,
         "observation_date": D(2020, 3, 1), "observation_type_concept_id": EHR, "visit_occurrence_id": 4,
         "observation_source_value": "9700/3"}
    ])
    _insert(db, "death", [{"person_id": 3, "death_date": D(2022, 6, 1), "death_type_concept_id": EHR}])


def _build_sound_cdm(db: Database, constraints: bool = False) -> Database:
    for statement in cdm_ddl_statements(db.dialect, db.cdm_schema, constraints):
        db.execute(statement)
    load_vocabulary(db)
    load_clinical(db)
    return db


def _run(db: Database, checks: Sequence[str] | None = None, tables: Sequence[str] | None = None) -> DqReport:
    return run_dq(db, checks=checks, tables=tables, today=TODAY)


def _result(report: DqReport, check: str, table: str, field: str | None = None, concept: str | None = None):
    """The one result of `check` on table[.field][concept]; fails the test when absent or ambiguous."""
    found = [
        r for r in report.results
        if r.check_name == check and r.table == table and (field is None or r.field == field)
        and (concept is None or r.concept_id == concept)
    ]
    assert len(found) == 1, f"expected one {check} result on {table}.{field} {concept}, found {len(found)}"
    return found[0]


@contextmanager
def _postgres_schema() -> Iterator[Database]:
    """A fresh, uniquely named schema on the local PostgreSQL (search_path set to it, so that test SQL
    can use bare table names), dropped afterwards; skips when the server is unreachable."""
    schema = f"dq_test_{uuid.uuid4().hex[:10]}"
    try:
        db = connect(PG_URL, cdm_schema=schema)
    except DatabaseError as exc:
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432: {exc}")
    try:
        db.execute(f"SET search_path TO {schema}")
        yield db
    finally:
        db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        db.close()


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sound_db(request: pytest.FixtureRequest) -> Iterator[Database]:
    """The sound CDM without keys or NOT NULL (so tests can break it), on each backend in turn."""
    if request.param == "duckdb":
        db = _build_sound_cdm(connect(":memory:"))
        yield db
        db.close()
        return
    with _postgres_schema() as db:
        yield _build_sound_cdm(db)


def _problems(report: DqReport) -> list[str]:
    return [f"{r.status} {r.check_name} {r.where}: {r.num_violated}/{r.num_denominator} {r.error or ''}"
            for r in report.failed + report.errors]


@pytest.fixture(scope="session")
def build_sound_cdm():
    """build_sound_cdm(db, constraints=False) -> db: the sound CDM written into `db`."""
    return _build_sound_cdm


@pytest.fixture(scope="session")
def insert():
    """insert(db, table, rows): rows (dicts) into a CDM table."""
    return _insert


@pytest.fixture(scope="session")
def run():
    """run(db, checks=None, tables=None) -> DqReport, with TODAY as DQD's GETDATE()."""
    return _run


@pytest.fixture(scope="session")
def result():
    """result(report, check, table, field=None, concept=None): the one result of that check."""
    return _result


@pytest.fixture(scope="session")
def problems():
    """problems(report): the failed and erroneous checks, one line each."""
    return _problems


@pytest.fixture(scope="session")
def postgres_schema():
    """postgres_schema(): context manager, a fresh PostgreSQL schema dropped afterwards (skips without a server)."""
    return _postgres_schema
