"""Cohort ids and tables: a chosen or published id is kept, another definition's rows are never
overwritten, the table can be chosen, and an empty cohort leaves COHORT_DEFINITION consistent."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from ctcl_map.errors import CohortIdClash
from ctcl_map.survival import SurvivalSpec, run_survival
from ctcl_map.survival.cohorts import build_cohort, built_in

FIXTURES = Path(__file__).parents[1] / "fixtures" / "survival"

MF = 4040380  # Mycosis fungoides (SNOMED 118618005)
SS = 4041799  # Sezary's disease (SNOMED 118611004)

pytest.importorskip("circe", reason="ohdsi-circepy is not installed")
CIRCE = FIXTURES / "circe_first_mf_diagnosis.json"


def _rows(db, cohort_id: int, table: str | None = None) -> list[tuple]:
    return db.query(f"SELECT subject_id, cohort_start_date FROM {table or db.results_table('cohort')} "
                    "WHERE cohort_definition_id = ? ORDER BY subject_id", [cohort_id])


def _two_mf_patients(cdm) -> None:
    cdm.person(1)
    cdm.condition(1, MF, date(2014, 5, 1))
    cdm.person(2)
    cdm.condition(2, SS, date(2015, 1, 1))


def _cohort_generator_rows(db, cohort_id: int) -> None:
    """Rows another tool (CohortGenerator) wrote into COHORT, with no cohort_definition row."""
    from ctcl_map.survival.cohorts import ensure_cohort_tables

    ensure_cohort_tables(db)
    db.execute(f"INSERT INTO {db.results_table('cohort')} VALUES (?, 77, DATE '2019-01-01', DATE '2019-12-31')",
               [cohort_id])


def test_a_circe_file_keeps_its_published_id(cdm, tmp_path):
    _two_mf_patients(cdm)
    wrapped = tmp_path / "atlas-export.json"  # WebAPI's export: id and name around the expression
    wrapped.write_text(json.dumps({"id": 1215, "name": "first MF", "expression": json.loads(CIRCE.read_text())}))
    result = run_survival(cdm.db, SurvivalSpec(circe_json=wrapped))
    assert _rows(cdm.db, 1215) == [(1, date(2014, 5, 1))]
    assert result.written[0] == "published cohort id 1215 kept"
    assert result.written[1] == f"cohort 1215 (first MF): 1 rows written to {cdm.db.results_table('cohort')}"
    named = tmp_path / "622.json"  # PhenotypeLibrary names its files by cohort id
    shutil.copy(CIRCE, named)
    run_survival(cdm.db, SurvivalSpec(circe_json=named))
    assert _rows(cdm.db, 622) == [(1, date(2014, 5, 1))]


def test_a_file_without_id_says_so_and_cohort_id_chooses(cdm):
    _two_mf_patients(cdm)
    result = run_survival(cdm.db, SurvivalSpec(circe_json=CIRCE))
    assert "carries no cohort id" in result.written[0]
    result = run_survival(cdm.db, SurvivalSpec(circe_json=CIRCE, cohort_id=500))
    assert result.written == ["cohort id 500 from --cohort-id", "cohort 500 (circe:circe_first_mf_diagnosis): "
                              f"1 rows written to {cdm.db.results_table('cohort')}"]
    # the same definition again under the same id replaces its own rows, and says so
    result = run_survival(cdm.db, SurvivalSpec(circe_json=CIRCE, cohort_id=500))
    assert result.written[1].endswith("replacing 1 rows of the same definition")
    assert _rows(cdm.db, 500) == [(1, date(2014, 5, 1))]


def test_rows_of_another_tool_or_definition_are_never_overwritten(cdm):
    _two_mf_patients(cdm)
    _cohort_generator_rows(cdm.db, 3)
    with pytest.raises(CohortIdClash, match="already holds 1 rows of cohort_definition_id 3 .* not overwritten"):
        run_survival(cdm.db, SurvivalSpec(circe_json=CIRCE, cohort_id=3))
    assert _rows(cdm.db, 3) == [(77, date(2019, 1, 1))]
    # an id allocated by name skips ids other tools used
    built = build_cohort(cdm.db, built_in("mf"))
    assert built.cohort_definition_id == 4
    with pytest.raises(CohortIdClash, match="cohort_definition_id 4 is 'mf' .* not overwritten"):
        run_survival(cdm.db, SurvivalSpec(circe_json=CIRCE, cohort_id=4))
    assert _rows(cdm.db, 4) == [(1, date(2014, 5, 1))]


def test_cohort_table_option_and_refusal_exit_code(tmp_path, small_cdm):
    from ctcl_map.store.database import connect

    work = small_cdm(connect(str(tmp_path / "cdm.duckdb")))
    _two_mf_patients(work)
    _cohort_generator_rows(work.db, 1)
    work.db.close()
    command = [sys.executable, "-m", "ctcl_map.cli", "survival", "--db", str(tmp_path / "cdm.duckdb"),
               "--circe", str(CIRCE)]
    refused = subprocess.run(command + ["--cohort-id", "1"], capture_output=True, text=True)
    assert refused.returncode == 2 and "not overwritten" in refused.stderr and "Traceback" not in refused.stderr
    done = subprocess.run(command + ["--cohort-id", "1", "--cohort-table", "ctcl_cohort"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "cohort 1 (circe:circe_first_mf_diagnosis): 1 rows written to ctcl_cohort" in done.stderr
    from ctcl_map.store.database import connect

    db = connect(str(tmp_path / "cdm.duckdb"), read_only=True)
    assert _rows(db, 1, "ctcl_cohort") == [(1, date(2014, 5, 1))]
    assert _rows(db, 1) == [(77, date(2019, 1, 1))]  # CohortGenerator's row untouched
    assert db.query("SELECT cohort_definition_id FROM ctcl_cohort_definition") == [(1,)]
    db.close()
