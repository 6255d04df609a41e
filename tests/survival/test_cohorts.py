"""Built-in cohorts: concept sets through CONCEPT_ANCESTOR/ICDO3, entry events, restrictions, tables."""

from __future__ import annotations

from datetime import date

import pytest

from ctcl_map.errors import SurvivalSpecError
from ctcl_map.survival import Restrictions
from ctcl_map.survival.cohorts import (
    build_cohort,
    built_in,
    comparator_definition,
    exposure_definition,
    line_definition,
)

MF = 4040380  # Mycosis fungoides (SNOMED 118618005)
MF_FOLLICULOTROPIC = 4301661  # descendant of MF
SS = 4041799  # Sezary's disease (SNOMED 118611004)
MF_ICDO3 = 36517657  # 9700/3-C44.8
SS_ICDO3 = 44505167  # 9701/3-C44.9
CTCL_NOS_ICDO3 = 44500230  # 9709/3-C44.5
MOGAMULIZUMAB = 35200202
BEXAROTENE = 1389888
FEMALE = 8532


def _members(build) -> dict[int, date]:
    return {int(r.person_id): r.index_date.date() for r in build.members.itertuples()}


def _diagnoses(cdm) -> None:
    cdm.person(1)
    cdm.condition(1, MF, date(2014, 3, 1))
    cdm.condition(1, MF, date(2013, 2, 1))  # the earlier diagnosis is the index
    cdm.person(2)
    cdm.condition(2, MF_FOLLICULOTROPIC, date(2015, 1, 1))  # a descendant of MF via CONCEPT_ANCESTOR
    cdm.person(3)
    cdm.condition(3, MF_ICDO3, date(2016, 1, 1))  # ICDO3 9700/3-C44.8
    cdm.person(4)
    cdm.condition(4, SS, date(2014, 1, 1))
    cdm.person(5)
    cdm.condition(5, SS_ICDO3, date(2015, 6, 1))  # ICDO3 9701/3-C44.9
    cdm.person(6)
    cdm.condition(6, CTCL_NOS_ICDO3, date(2017, 1, 1))  # ICDO3 9709/3: CTCL only


def test_diagnosis_cohorts_use_descendants_and_icdo3_codes(cdm):
    _diagnoses(cdm)
    mf = build_cohort(cdm.db, built_in("mf"))
    ss = build_cohort(cdm.db, built_in("ss"))
    ctcl = build_cohort(cdm.db, built_in("ctcl"))
    assert _members(mf) == {1: date(2013, 2, 1), 2: date(2015, 1, 1), 3: date(2016, 1, 1)}
    assert _members(ss) == {4: date(2014, 1, 1), 5: date(2015, 6, 1)}
    assert set(_members(ctcl)) == {1, 2, 3, 4, 5, 6}
    # the rows are in the standard cohort table; cohort_end_date = end of the observation period
    rows = cdm.db.query(
        f"SELECT subject_id, cohort_start_date, cohort_end_date FROM {cdm.db.results_table('cohort')} "
        "WHERE cohort_definition_id = ? ORDER BY subject_id", [ss.cohort_definition_id])
    assert rows == [(4, date(2014, 1, 1), date(2020, 12, 31)), (5, date(2015, 6, 1), date(2020, 12, 31))]
    names = cdm.db.query(f"SELECT cohort_definition_name FROM {cdm.db.results_table('cohort_definition')} "
                         "ORDER BY cohort_definition_id")
    assert names == [("mf",), ("ss",), ("ctcl",)]


def test_rebuilding_a_cohort_replaces_its_rows(cdm):
    _diagnoses(cdm)
    first = build_cohort(cdm.db, built_in("ss"))
    again = build_cohort(cdm.db, built_in("ss"))
    assert first.cohort_definition_id == again.cohort_definition_id
    count = cdm.db.query(f"SELECT COUNT(*) FROM {cdm.db.results_table('cohort')}")[0][0]
    assert count == 2


def test_index_outside_every_observation_period_is_dropped_with_attrition(cdm):
    cdm.person(1, obs=(date(2015, 1, 1), date(2020, 1, 1)))
    cdm.condition(1, MF, date(2014, 6, 1))  # first diagnosis before the period: Circe drops it too
    cdm.condition(1, MF, date(2016, 6, 1))
    cdm.person(2)
    cdm.condition(2, MF, date(2014, 6, 1))
    build = build_cohort(cdm.db, built_in("mf"))
    assert _members(build) == {2: date(2014, 6, 1)}
    step = build.attrition[1]
    assert (step.persons_before, step.persons_after, step.reason) == (
        2, 1, "index date outside any observation period")


def test_advanced_and_early_stage_cohorts(cdm):
    for person_id in (1, 2, 3):
        cdm.person(person_id)
        cdm.condition(person_id, MF, date(2012, 1, 1))
    cdm.stage(1, date(2012, 1, 10), "IA")  # first stage record early -> early cohort
    cdm.stage(1, date(2015, 5, 1), "IIB")
    cdm.first_advanced(1, date(2015, 5, 1), "IIB")
    cdm.stage(2, date(2012, 1, 5), "IVA1")  # advanced from the start -> not early
    cdm.first_advanced(2, date(2012, 1, 5), "IVA1")
    cdm.stage(3, date(2013, 2, 2), "IIA")
    assert _members(build_cohort(cdm.db, built_in("early"))) == {1: date(2012, 1, 10), 3: date(2013, 2, 2)}
    advanced = build_cohort(cdm.db, built_in("advanced"))
    assert _members(advanced) == {1: date(2015, 5, 1), 2: date(2012, 1, 5)}
    assert dict(zip(advanced.members["person_id"], advanced.members["stage_group"])) == {1: "IIB", 2: "IVA1"}


def test_advanced_cohort_without_the_staging_table_says_what_to_run(duckdb_cdm):
    cdm = duckdb_cdm()
    cdm.db.execute(f"DROP TABLE {cdm.db.table('ctcl_first_advanced')}")
    with pytest.raises(SurvivalSpecError, match="run the staging/episodes derivation"):
        build_cohort(cdm.db, built_in("advanced"))


def test_restrictions_at_the_index_date_each_with_an_attrition_step(cdm):
    # person: (birth year, sex, stage at dx, CLIPI at dx, diagnosis date)
    people = {
        1: (1950, None, "IIB", "CLIPI-HIGH", date(2015, 1, 1)),
        2: (1950, None, "IVA1", "CLIPI-LOW", date(2015, 1, 1)),
        3: (1980, None, "IIB", "CLIPI-HIGH", date(2015, 1, 1)),  # 35 at index: too young
        4: (1950, FEMALE, "IIB", "CLIPI-HIGH", date(2015, 1, 1)),  # female
        5: (1950, None, "IIB", "CLIPI-HIGH", date(2019, 1, 1)),  # index after the period
        6: (1950, None, None, "CLIPI-HIGH", date(2015, 1, 1)),  # no stage recorded
    }
    for person_id, (born, sex, stage, clipi, dx) in people.items():
        cdm.person(person_id, year_of_birth=born, **({"gender": sex} if sex else {}))
        cdm.condition(person_id, MF, dx)
        if stage:
            cdm.stage(person_id, date(dx.year, dx.month, 20), stage)  # within the 30-day grace window
        cdm.clipi(person_id, dx, clipi)
    restrictions = Restrictions(stage_groups=("IIB", "IIIA"), clipi_groups=("high",), age_min=60, sex="male",
                                index_to=date(2018, 12, 31))
    build = build_cohort(cdm.db, built_in("mf"), restrictions)
    assert set(_members(build)) == {1}
    dropped = {a.step: (a.persons_before, a.persons_after) for a in build.attrition}
    assert dropped["stage group at index in IIB,IIIA"] == (6, 4)  # persons 2 (IVA1) and 6 (none)
    assert dropped["CLIPI group in high"] == (4, 4)
    assert dropped["age at index >= 60"] == (4, 3)  # person 3
    assert dropped["sex male"] == (3, 2)  # person 4
    assert dropped["index on/before 2018-12-31"] == (2, 1)  # person 5
    assert "restricted to" in cdm.db.query(
        f"SELECT cohort_definition_description FROM {cdm.db.results_table('cohort_definition')}")[0][0]


def test_stage_recorded_after_the_grace_window_does_not_count(cdm):
    cdm.person(1)
    cdm.condition(1, MF, date(2015, 1, 1))
    cdm.stage(1, date(2015, 3, 1), "IIB")  # 59 days after the index, grace is 30
    build = build_cohort(cdm.db, built_in("mf"), Restrictions(stage_groups=("advanced",)))
    assert _members(build) == {}


def test_drug_and_line_of_therapy_cohorts(cdm):
    for person_id in (1, 2, 3, 4):
        cdm.person(person_id)
        cdm.condition(person_id, MF, date(2014, 1, 1))
    cdm.line(1, 1, date(2015, 1, 1), BEXAROTENE)
    cdm.line(1, 2, date(2015, 9, 1), MOGAMULIZUMAB)
    cdm.line(2, 1, date(2015, 3, 1), MOGAMULIZUMAB)
    cdm.drug(3, MOGAMULIZUMAB, date(2015, 2, 1))  # a bare exposure, no episode
    cdm.line(3, 1, date(2015, 4, 1), BEXAROTENE)  # after first mogamulizumab: not a comparator line
    cdm.line(4, 1, date(2013, 6, 1), BEXAROTENE)  # before the base cohort index
    cdm.line(4, 2, date(2016, 6, 1), BEXAROTENE)
    assert _members(build_cohort(cdm.db, exposure_definition("mogamulizumab"))) == {
        1: date(2015, 9, 1), 2: date(2015, 3, 1), 3: date(2015, 2, 1)}
    base = build_cohort(cdm.db, built_in("mf"))
    target = build_cohort(cdm.db, line_definition("mogamulizumab", base.cohort_definition_id))
    assert _members(target) == {1: date(2015, 9, 1), 2: date(2015, 3, 1)}
    comparator = build_cohort(cdm.db, comparator_definition("mogamulizumab", None, base.cohort_definition_id))
    assert _members(comparator) == {1: date(2015, 1, 1), 4: date(2016, 6, 1)}
    ends = dict(zip(comparator.members["person_id"], comparator.members["cohort_end_date"].dt.date))
    assert ends == {1: date(2015, 9, 1), 4: date(2020, 12, 31)}  # censored when mogamulizumab starts
    first_line = build_cohort(cdm.db, built_in("first-line"))
    assert _members(first_line) == {1: date(2015, 1, 1), 2: date(2015, 3, 1), 3: date(2015, 4, 1),
                                    4: date(2013, 6, 1)}


def test_unknown_ingredient_gives_a_clear_error(duckdb_cdm):
    cdm = duckdb_cdm()
    with pytest.raises(SurvivalSpecError, match="no standard RxNorm ingredient named 'mogamulizumabb'"):
        build_cohort(cdm.db, exposure_definition("mogamulizumabb"))


def test_targets_of_the_diagnosis_mapping_table_join_their_subtype_set(duckdb_cdm):
    from ctcl_map.survival.concept_sets import diagnosis_mapping_targets

    targets = diagnosis_mapping_targets()
    if not targets:
        pytest.skip("mappings/diagnoses.csv is not shipped")
    # a site-specific MF target that the test vocabulary has no CONCEPT_ANCESTOR row for
    extra = sorted(targets.get("MF", set()) - {MF, MF_FOLLICULOTROPIC})
    if not extra:
        pytest.skip("mappings/diagnoses.csv has no MF target besides the MF root")
    cdm = duckdb_cdm()
    cdm.person(1)
    cdm.condition(1, extra[0], date(2016, 2, 2))
    assert _members(build_cohort(cdm.db, built_in("mf"))) == {1: date(2016, 2, 2)}
    assert _members(build_cohort(cdm.db, built_in("ss"))) == {}


def test_read_only_database_gets_a_message_not_a_traceback(tmp_path):
    from ctcl_map.errors import DatabaseError
    from ctcl_map.store.database import connect

    path = tmp_path / "omop.duckdb"
    duckdb_cdm_file = connect(path)
    duckdb_cdm_file.close()
    read_only = connect(path, read_only=True)
    with pytest.raises(DatabaseError, match="open the database writable"):
        build_cohort(read_only, built_in("mf"))


def _unconfirmed(cdm, person_id: int, concept_id: int, start: date, status: str = "differential") -> int:
    condition_id = 9000 + person_id
    cdm.db.insert_rows(cdm.db.table("condition_occurrence"),
                       ["condition_occurrence_id", "person_id", "condition_concept_id", "condition_start_date",
                        "condition_type_concept_id", "condition_status_concept_id", "condition_status_source_value"],
                       [(condition_id, person_id, concept_id, start, 32817, 32899, status)])
    return condition_id


def test_unconfirmed_diagnoses_and_their_stages_enter_no_cohort_unless_included(cdm):
    cdm.person(1)
    cdm.condition(1, MF, date(2014, 3, 1))
    _unconfirmed(cdm, 1, MF, date(2012, 1, 1))  # earlier, but only a differential diagnosis
    cdm.person(2)
    linked_to = _unconfirmed(cdm, 2, MF, date(2013, 1, 1), "provisional")
    cdm.stage(2, date(2013, 1, 2), "IA")
    cdm.db.execute(f"UPDATE {cdm.db.table('measurement')} SET measurement_event_id = ?, "
                   "meas_event_field_concept_id = 1147127 WHERE person_id = 2", [linked_to])
    cdm.person(3)
    _unconfirmed(cdm, 3, SS, date(2015, 1, 1), "unconfirmed")

    assert _members(build_cohort(cdm.db, built_in("mf"))) == {1: date(2014, 3, 1)}
    assert _members(build_cohort(cdm.db, built_in("ctcl"))) == {1: date(2014, 3, 1)}
    assert _members(build_cohort(cdm.db, built_in("ss"))) == {}
    assert _members(build_cohort(cdm.db, built_in("early"))) == {}

    mf = build_cohort(cdm.db, built_in("mf", include_unconfirmed=True))
    assert _members(mf) == {1: date(2012, 1, 1), 2: date(2013, 1, 1)}
    assert mf.name == "mf [incl. unconfirmed diagnoses]"
    assert _members(build_cohort(cdm.db, built_in("early", include_unconfirmed=True))) == {2: date(2013, 1, 2)}
    assert dict(zip(mf.members["person_id"], mf.members["stage_group"])) == {1: None, 2: "IA"}
