"""An ATLAS/Circe cohort definition JSON gives the same members as the equivalent built-in cohort."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from ctcl_map.errors import SurvivalSpecError
from ctcl_map.survival import SurvivalSpec, run_survival
from ctcl_map.survival.cohorts import build_cohort, built_in

FIXTURES = Path(__file__).parents[1] / "fixtures" / "survival"

MF = 4040380  # Mycosis fungoides (SNOMED 118618005)
MF_FOLLICULOTROPIC = 4301661  # descendant of MF
SS = 4041799  # Sezary's disease (SNOMED 118611004)

pytest.importorskip("circe", reason="ohdsi-circepy is not installed")


def _cohort_rows(db, cohort_id: int) -> list[tuple]:
    return db.query(
        f"SELECT subject_id, cohort_start_date, cohort_end_date FROM {db.results_table('cohort')} "
        "WHERE cohort_definition_id = ? ORDER BY subject_id", [cohort_id])


def test_circe_first_mf_diagnosis_equals_the_built_in_mf_cohort(cdm):
    cdm.person(1, death=date(2018, 3, 1), obs=(date(2010, 1, 1), date(2018, 3, 1)))
    cdm.condition(1, MF, date(2014, 5, 1))
    cdm.condition(1, MF, date(2013, 5, 1))  # earlier: the index
    cdm.person(2)
    cdm.condition(2, MF_FOLLICULOTROPIC, date(2015, 1, 1))  # descendant
    cdm.person(3)
    cdm.condition(3, SS, date(2015, 1, 1))  # not MF
    cdm.person(4, obs=(date(2015, 1, 1), date(2020, 1, 1)))
    cdm.condition(4, MF, date(2014, 1, 1))  # first diagnosis outside the period: dropped by both
    cdm.condition(4, MF, date(2016, 1, 1))
    cdm.person(5, obs=None)
    cdm.condition(5, MF, date(2015, 1, 1))  # no observation period at all
    built = build_cohort(cdm.db, built_in("mf"))
    result = run_survival(cdm.db, SurvivalSpec(circe_json=FIXTURES / "circe_first_mf_diagnosis.json"))
    circe_id = cdm.db.query(
        f"SELECT cohort_definition_id FROM {cdm.db.results_table('cohort_definition')} "
        "WHERE cohort_definition_name = 'circe:circe_first_mf_diagnosis'")[0][0]
    expected = [(1, date(2013, 5, 1), date(2018, 3, 1)), (2, date(2015, 1, 1), date(2020, 12, 31))]
    assert _cohort_rows(cdm.db, built.cohort_definition_id) == expected
    assert _cohort_rows(cdm.db, circe_id) == expected
    assert sorted(result.persons["person_id"]) == [1, 2]
    assert result.groups[0].events == 1


def test_circe_cohort_with_restrictions_applies_them_after_circe(cdm):
    cdm.person(1, year_of_birth=1940)
    cdm.condition(1, MF, date(2015, 1, 1))
    cdm.person(2, year_of_birth=1990)
    cdm.condition(2, MF, date(2015, 1, 1))
    from ctcl_map.survival import Restrictions

    result = run_survival(cdm.db, SurvivalSpec(circe_json=FIXTURES / "circe_first_mf_diagnosis.json",
                                               restrictions=Restrictions(age_min=60)))
    assert list(result.persons["person_id"]) == [1]
    assert any(a.step == "age at index >= 60" and a.dropped == 1 for a in result.attrition)


def test_circe_json_that_is_not_json_names_the_file_and_line(tmp_path, duckdb_cdm):
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "ConceptSets": [\n', encoding="utf-8")
    cdm = duckdb_cdm()
    with pytest.raises(SurvivalSpecError, match=r"broken.json: not valid JSON \(line 3"):
        run_survival(cdm.db, SurvivalSpec(circe_json=broken))
