"""The hand-built sound CDM (tests/quality/conftest.py) passes every DQD check on DuckDB and on PostgreSQL."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import pytest

from ctcl_map.quality import run_dq
from ctcl_map.store.database import Database, connect
from ctcl_map.survival import SurvivalSpec, run_survival

TODAY = date(2025, 1, 1)  # DQD's GETDATE() in these tests (tests/quality/conftest.py)
B_CELL = Path(__file__).resolve().parents[3] / "shared" / "reference" / "ohdsi-cohorts" / "phenotypelibrary_567.json"


def test_sound_cdm_passes_every_dqd_check(sound_db: Database, run, problems) -> None:
    started = time.perf_counter()
    report = run(sound_db)
    elapsed = time.perf_counter() - started
    assert problems(report) == []
    counts = report.counts()
    # Every check family that has data in this CDM actually ran and passed (not just not_applicable).
    passed_families = {r.check_name for r in report.passed}
    expected_families = {
        "cdmTable", "cdmField", "isRequired", "cdmDatatype", "isPrimaryKey", "isForeignKey", "fkDomain",
        "fkClass", "isStandardValidConcept", "measureValueCompleteness", "standardConceptRecordCompleteness",
        "sourceValueCompleteness", "plausibleValueLow", "plausibleValueHigh", "plausibleTemporalAfter",
        "plausibleDuringLife", "plausibleAfterBirth", "plausibleBeforeDeath", "plausibleStartBeforeEnd",
        "withinVisitDates", "measurePersonCompleteness", "measureConditionEraCompleteness",
        "measureObservationPeriodOverlap", "plausibleUnitConceptIds",
    }
    assert expected_families - passed_families == set()
    assert report.exit_code == 0
    print(f"\nDQD on the sound CDM ({sound_db.dialect}): {len(report.results)} checks, {counts}, {elapsed:.2f}s")


@pytest.mark.postgres
def test_sound_cdm_with_keys_passes_every_dqd_check_on_postgresql(postgres_schema, build_sound_cdm, run, problems) -> None:
    with postgres_schema() as db:
        build_sound_cdm(db, constraints=True)
        started = time.perf_counter()
        report = run(db)
        elapsed = time.perf_counter() - started
        assert problems(report) == []
        assert len(report.passed) == len(run(build_sound_cdm(connect(":memory:"))).passed)
        print(f"\nDQD on the sound CDM (PostgreSQL): {len(report.results)} checks, {report.counts()}, {elapsed:.2f}s")


@pytest.mark.skipif(not B_CELL.exists(), reason="shared/reference/ohdsi-cohorts is not beside the repository")
def test_an_empty_circe_cohort_leaves_the_cdm_passing_dqd(build_sound_cdm, problems):
    db = build_sound_cdm(connect(":memory:"))
    result = run_survival(db, SurvivalSpec(circe_json=B_CELL))  # MF/SS are T-cell: nobody
    assert result.persons.empty
    assert "is empty: no rows written to cohort, and no cohort_definition row kept" in result.written[1]
    assert problems(run_dq(db, today=TODAY)) == []
