"""Golden CDM in -> derived measurement / episode / episode_event rows out (derive_oncology).

The input CDM is built by tests/derive/conftest.py; every expected row below was worked out
by hand from the rules in ctcl/README.md (comments give the reasoning).
"""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from ctcl_map.derive.oncology import derive_oncology
from ctcl_map.store.database import connect

TEST_MEASUREMENT_FIELD = 2000009003  # test-only field concept of tests/derive/conftest.py


D = date.fromisoformat
SRC_B = "derived:ISCL-2007"
SRC_STAGE = "derived:ISCL-EORTC-2007-table"
SRC_CLIPI = "derived:CLIPI-PROCLIPI-2025"

# Existing measurement ids end at 231, so derived rows are 232.. in the order B, stage, CLIPI.
EXPECTED_DERIVED_MEASUREMENTS = [
    # (id, person, concept, date, type, number, value concept, source, value source, event id, field)
    (232, 1, 2000000010, D("2020-06-10"), 32880, None, 2000000017, SRC_B, "B2", 101, 1147127),
    (233, 1, 3022698, D("2019-01-15"), 32880, None, 45876317, SRC_STAGE, "IB T2b N0 M0 B0", 101, 1147127),
    (234, 1, 3022698, D("2020-06-10"), 32880, None, 46238000, SRC_STAGE, "IVA1 T4 N1 M0 B2", 101, 1147127),
    # person 1 at 2020-06-10: age 70 (+1), N1 (0), LDH 400 > 250 (+1), LCT present (+1) = 3, high
    (235, 1, 2000000202, D("2020-06-10"), 32880, 3.0, None, SRC_CLIPI, "complete", 101, 1147127),
    (236, 1, 2000000203, D("2020-06-10"), 32880, None, 2000000206, SRC_CLIPI, "high", 101, 1147127),
    # person 2 at 2021-01-05: born 1961 (59 or 60: not > 60), N0, LDH and LCT unknown: 0-2 points
    (237, 2, 2000000202, D("2021-01-05"), 32880, None, None, SRC_CLIPI, "missing:LDH,LCT", 111, 1147127),
    (238, 2, 2000000203, D("2021-01-05"), 32880, None, 0, SRC_CLIPI, "undetermined; missing:LDH,LCT", 111, 1147127),
]

EXPECTED_EPISODES = [
    # (id, person, concept, start, end, parent, number, object, type, source value)
    (1, 1, 32533, D("2019-01-10"), D("2021-09-01"), None, None, 36517657, 32545, "CTCL disease"),
    (2, 1, 32531, D("2019-02-01"), D("2019-06-30"), 1, 1, 0, 32545, "combination: methotrexate+bexarotene"),
    (3, 1, 32531, D("2020-07-01"), D("2020-08-01"), 1, 2, 35804815, 32545, "mogamulizumab monotherapy"),
    (4, 1, 32531, D("2021-03-01"), D("2021-04-01"), 1, 3, 1389888, 32545, "bexarotene"),
    (5, 2, 32533, D("2021-01-05"), None, None, None, 4041799, 32545, "CTCL disease"),
]

EXPECTED_EVENTS = sorted([
    (1, 101, 1147127), (1, 102, 1147127),
    (1, 301, 1147094), (1, 302, 1147094), (1, 303, 1147094), (1, 304, 1147094), (1, 305, 1147094), (1, 306, 1147094),
    (2, 301, 1147094), (2, 302, 1147094),
    (3, 303, 1147094), (3, 304, 1147094), (3, 305, 1147094),
    (4, 306, 1147094),
    (5, 111, 1147127),
])


def _measurements(db, minimum_id=0):
    return db.query(
        "SELECT measurement_id, person_id, measurement_concept_id, measurement_date, measurement_type_concept_id, "
        "value_as_number, value_as_concept_id, measurement_source_value, value_source_value, measurement_event_id, "
        f"meas_event_field_concept_id FROM {db.table('measurement')} WHERE measurement_id >= ? ORDER BY measurement_id",
        [minimum_id],
    )


def _episodes(db):
    return db.query(
        "SELECT episode_id, person_id, episode_concept_id, episode_start_date, episode_end_date, episode_parent_id, "
        "episode_number, episode_object_concept_id, episode_type_concept_id, episode_source_value "
        f"FROM {db.table('episode')} ORDER BY episode_id"
    )


def _events(db):
    return sorted(db.query(f"SELECT episode_id, event_id, episode_event_field_concept_id FROM {db.table('episode_event')}"))


def _links(db):
    return db.query(
        f"SELECT measurement_id, measurement_event_id, meas_event_field_concept_id FROM {db.table('measurement')} "
        "WHERE measurement_id < 232 AND measurement_concept_id IN (3008841, 3007727, 3006575, 3022698, 2000000010) "
        "ORDER BY measurement_id"
    )


EXPECTED_LINKS = [(mid, 101, 1147127) for mid in (201, 202, 203, 204, 205, 206, 207)] + [
    (mid, 111, 1147127) for mid in (220, 221, 222, 223, 224)] + [(230, None, None), (231, None, None)]


@pytest.fixture
def cdm(tmp_path, build_golden_cdm):
    db = connect(tmp_path / "golden.duckdb")
    build_golden_cdm(db)
    yield db
    db.close()


def _assert_golden(db, report, newly_linked=12):
    assert _measurements(db, 232) == EXPECTED_DERIVED_MEASUREMENTS
    assert _episodes(db) == EXPECTED_EPISODES
    assert _events(db) == EXPECTED_EVENTS
    assert _links(db) == EXPECTED_LINKS
    assert db.query(f"SELECT person_id, first_advanced_date, stage_group, measurement_id "
                    f"FROM {db.table('ctcl_first_advanced')} ORDER BY person_id") == [
        (1, D("2020-06-10"), "IVA1", 234), (2, D("2021-01-05"), "IIIA", 224)]
    assert report.stage_disagreements == [
        {"person_id": 2, "date": D("2021-01-05"), "given": "IIIA", "derived": "IVA1", "assumptions": []}]
    assert report.stage_not_derivable == [
        {"person_id": 3, "date": D("2022-01-01"), "reason": "M missing: IVB cannot be excluded"}]
    assert report.therapy_without_diagnosis == [3]
    assert (report.diagnoses, report.staging_linked, report.staging_without_diagnosis) == (3, newly_linked, 2)
    assert (report.b_derived, report.stage_derived, report.first_advanced) == (1, 2, 2)
    assert (report.disease_episodes, report.treatment_lines, report.clipi_persons) == (2, 3, 2)
    assert report.episodes_ended_by_death == 1
    assert report.clipi_incomplete == [
        {"person_id": 2, "date": D("2021-01-05"), "missing": ["ldh_raised", "large_cell_transformation"], "group": None}]
    assert any("measurement.measurement_id" in warning for warning in report.warnings)


def test_golden_cdm(cdm, golden_mappings):
    report = derive_oncology(cdm, mappings=golden_mappings)
    _assert_golden(cdm, report)
    assert report.to_dict()["stage_disagreements"][0]["date"] == "2021-01-05"


def test_rerun_is_idempotent(cdm, golden_mappings):
    derive_oncology(cdm, mappings=golden_mappings)
    report = derive_oncology(cdm, mappings=golden_mappings)
    # The links the first run made are undone and made again from the diagnoses: the same links.
    _assert_golden(cdm, report, newly_linked=12)
    assert cdm.query(f"SELECT COUNT(*) FROM {cdm.table('ctcl_derived')}")[0][0] == 7 + 5 + 12


def test_person_subset_leaves_others_alone(cdm, golden_mappings):
    derive_oncology(cdm, mappings=golden_mappings)
    before_person_1 = [row for row in _measurements(cdm, 232) if row[1] == 1]
    derive_oncology(cdm, person_ids=[2], mappings=golden_mappings)
    assert [row for row in _measurements(cdm, 232) if row[1] == 1] == before_person_1
    assert [row[1] for row in _episodes(cdm)].count(2) == 1


def test_2022_rules_ignore_morphological_counts(cdm, golden_mappings):
    # Under 2022 the 1500 Sezary cells/uL do not count: B stays unknown, T4 N1 M0 gives unsplit III.
    report = derive_oncology(cdm, b_rules="2022", mappings=golden_mappings)
    assert report.b_derived == 0
    assert report.b_not_derivable == [
        {"person_id": 1, "date": D("2020-06-10"), "missing": ["cd4cd26neg_per_ul", "cd4cd7neg_per_ul"]}]
    stage_rows = [row for row in _measurements(cdm, 232) if row[2] == 3022698]
    assert [(row[3], row[6], row[8]) for row in stage_rows] == [
        (D("2019-01-15"), 45876317, "IB T2b N0 M0 B0"), (D("2020-06-10"), 45878643, "III T4 N1 M0 B?")]
    assert cdm.query(f"SELECT stage_group FROM {cdm.table('ctcl_first_advanced')} WHERE person_id = 1") == [("III",)]
    notes = cdm.query(f"SELECT note FROM {cdm.table('ctcl_derived')} WHERE kind = 'stage_group' ORDER BY row_id")
    assert notes == [(None,), ("B missing: IVA1 not excluded; T4 without B0/B1: unsplit III",)]  # IB had B0


def test_2022_rules_with_flow_counts(cdm, golden_mappings):
    cdm.insert_rows(cdm.table("measurement"),
                    ("measurement_id", "person_id", "measurement_concept_id", "measurement_date",
                     "measurement_type_concept_id", "value_as_number", "unit_source_value"),
                    [(213, 1, 2000000103, D("2020-06-10"), 32856, 999.0, "/uL")])
    derive_oncology(cdm, b_rules="2022", mappings=golden_mappings)
    b_rows = cdm.query(f"SELECT value_source_value, measurement_source_value FROM {cdm.table('measurement')} "
                       "WHERE measurement_source_value LIKE 'derived:ISCL-2022'")
    assert b_rows == [("B1b", "derived:ISCL-2022")]  # 999 CD4+CD26- /uL with a clone


def test_type_concepts_fall_back_to_ehr(cdm, golden_mappings):
    cdm.execute(f"DELETE FROM {cdm.table('concept')} WHERE concept_id IN (32880, 32545)")
    report = derive_oncology(cdm, mappings=golden_mappings)
    assert (report.measurement_type_concept_id, report.episode_type_concept_id) == (32817, 32817)
    assert {row[4] for row in _measurements(cdm, 232)} == {32817}
    assert {row[8] for row in _episodes(cdm)} == {32817}


def test_measurement_field_concept_links_staging_when_present(cdm, golden_mappings):
    cdm.insert_rows(cdm.table("concept"),
                    ("concept_id", "concept_name", "domain_id", "vocabulary_id", "concept_class_id", "concept_code",
                     "valid_start_date", "valid_end_date"),
                    [(TEST_MEASUREMENT_FIELD, "measurement.measurement_id", "Metadata", "CDM", "Field",
                      "TEST-FIELD", D("1970-01-01"), D("2099-12-31"))])
    report = derive_oncology(cdm, mappings=golden_mappings)
    linked = sorted(event for episode, event, field in _events(cdm) if field == TEST_MEASUREMENT_FIELD)
    # person 1's disease episode: given 201-207 plus derived B 232 and stage groups 233, 234; person 2: 220-224
    assert linked == sorted([201, 202, 203, 204, 205, 206, 207, 232, 233, 234, 220, 221, 222, 223, 224])
    assert not any("measurement.measurement_id" in warning for warning in report.warnings)


def test_existing_links_are_kept(cdm, golden_mappings):
    cdm.execute(f"UPDATE {cdm.table('measurement')} SET measurement_event_id = 102, meas_event_field_concept_id = "
                "1147127 WHERE measurement_id = 205")
    report = derive_oncology(cdm, mappings=golden_mappings)
    assert cdm.query(f"SELECT measurement_event_id FROM {cdm.table('measurement')} WHERE measurement_id = 205") == [(102,)]
    assert report.staging_linked == 11


def test_unknown_rule_set_is_refused(cdm, golden_mappings):
    with pytest.raises(ValueError, match="unknown B rule set"):
        derive_oncology(cdm, b_rules="2011", mappings=golden_mappings)


def test_shipped_mapping_tables_give_the_systemic_therapies(cdm):
    from ctcl_map.derive.concept_sets import resolve_concepts
    from ctcl_map.derive.mapping_rows import load_mapping_rows

    rows = load_mapping_rows()
    if not rows["therapies"]:
        pytest.skip("mappings/therapies.csv not shipped yet")
    concepts = resolve_concepts(cdm, rows)
    assert concepts.systemic[35200202]["hemonc_regimen_concept_id"] == "35804815"  # mogamulizumab
    assert 4040380 in concepts.diagnosis_ids and 4041799 in concepts.diagnosis_ids
    assert 36517657 in concepts.diagnosis_ids  # ICDO3 9700/3-C44.8 found by its code


@pytest.mark.postgres
def test_golden_cdm_postgresql(build_golden_cdm, golden_mappings):
    try:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test", connect_timeout=3):
            pass
    except Exception as problem:  # no server: nothing to test against
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432: {str(problem).strip()[:200]}")
    schema = f"t_staging_{uuid.uuid4().hex[:10]}"
    db = connect("postgresql+psycopg://postgres@127.0.0.1:5432/test", cdm_schema=schema)
    try:
        build_golden_cdm(db)
        derive_oncology(db, mappings=golden_mappings)
        report = derive_oncology(db, mappings=golden_mappings)  # and idempotent there too
        _assert_golden(db, report, newly_linked=12)
    finally:
        db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        db.close()


def test_b_from_counts_in_thousands_per_ul_and_negative_clone_text(cdm, golden_mappings):
    measurement = ("measurement_id", "person_id", "measurement_concept_id", "measurement_date",
                   "measurement_type_concept_id", "value_as_number", "value_as_concept_id", "unit_source_value",
                   "value_source_value", "measurement_source_value")
    cdm.insert_rows(cdm.table("measurement"), measurement, [
        # 2019-09-01: 300 Sezary/uL of 2.0 x10^3 lymphocytes/uL = 15 % > 5 %, clone "not detected" -> B1a
        (240, 1, 2000000101, D("2019-09-01"), 32856, 300.0, None, "/uL", "300", "SEZARY-ABS"),
        (241, 1, 3004327, D("2019-09-01"), 32856, 2.0, None, "10*3/uL", "2.0", "731-0"),
        (242, 1, 2000000105, D("2019-09-01"), 32856, None, None, None, "not detected", "TCR-CLONE-BLOOD"),
        # 2019-10-01: a lymphocyte count without a unit cannot be used -> no percentage -> not derivable
        (243, 1, 2000000101, D("2019-10-01"), 32856, 300.0, None, None, "300", "SEZARY-ABS"),
        (244, 1, 3004327, D("2019-10-01"), 32856, 2000.0, None, None, "2000", "731-0"),
        # person 3: an unparseable T value is reported, not guessed
        (245, 3, 3008841, D("2022-03-01"), 32817, None, None, None, "tumour", None),
    ])
    cdm.insert_rows(cdm.table("concept"),
                    ("concept_id", "concept_name", "domain_id", "vocabulary_id", "concept_class_id", "concept_code",
                     "valid_start_date", "valid_end_date"),
                    [(3004327, "Lymphocytes [#/volume] in Blood by Automated count", "Measurement", "LOINC",
                      "Lab Test", "731-0", D("1970-01-01"), D("2099-12-31"))])
    report = derive_oncology(cdm, mappings=golden_mappings)
    assert cdm.query(f"SELECT measurement_date, value_as_concept_id, value_source_value FROM {cdm.table('measurement')} "
                     "WHERE measurement_source_value = 'derived:ISCL-2007' ORDER BY measurement_date") == [
        (D("2019-09-01"), 0, "B1a"), (D("2020-06-10"), 2000000017, "B2")]  # B1a has no value row in MAPPINGS
    assert "no value concept for B category B1a: value_as_concept_id 0, category kept in value_source_value" in report.warnings
    assert report.b_not_derivable == [{"person_id": 1, "date": D("2019-10-01"), "missing": [
        "cd4_cd8_ratio", "cd4cd26neg_per_ul", "cd4cd7neg_per_ul", "clone_positive",
        "sezary_pct_lymphocytes or sezary_per_ul+lymphocytes_per_ul"]}]
    notes = cdm.query(f"SELECT note FROM {cdm.table('ctcl_derived')} WHERE kind = 'b_category' ORDER BY row_id")
    assert notes[0][0].startswith("decided_by=sezary_per_ul/lymphocytes_per_ul>5%;")
    assert report.unparseable_values == [{"measurement_id": 245, "axis": "T", "value_source_value": "tumour"}]


def test_skin_directed_code_of_a_systemic_ingredient_starts_no_line(cdm, golden_mappings):
    # A site maps its bexarotene GEL code to the bexarotene ingredient; its therapies row says
    # starts_systemic_line=false, so the gel between line 1 and line 2 changes nothing.
    cdm.insert_rows(cdm.table("drug_exposure"),
                    ("drug_exposure_id", "person_id", "drug_concept_id", "drug_exposure_start_date",
                     "drug_exposure_end_date", "drug_type_concept_id", "drug_source_value"),
                    [(309, 1, 1389888, D("2020-01-01"), D("2020-03-01"), 32817, "BEXA-GEL")])
    mappings = dict(golden_mappings)
    mappings["therapies"] = golden_mappings["therapies"] + [
        {"source_vocabulary_id": "LOCAL-DRUGS", "source_code": "BEXA-GEL", "target_concept_id": "1389888",
         "ingredient": "bexarotene", "starts_systemic_line": "false", "hemonc_regimen_concept_id": ""}]
    report = derive_oncology(cdm, mappings=mappings)
    assert _episodes(cdm) == EXPECTED_EPISODES
    assert _events(cdm) == EXPECTED_EVENTS
    assert report.treatment_lines == 3


def test_clipi_takes_n_recorded_within_30_days_after_the_index_date(cdm, golden_mappings):
    # person 2: the N0 of 2021-01-05 is replaced by an N3 recorded 15 days later -> N3 scores 1 point
    cdm.execute(f"DELETE FROM {cdm.table('measurement')} WHERE measurement_id = 221")
    cdm.insert_rows(cdm.table("measurement"),
                    ("measurement_id", "person_id", "measurement_concept_id", "measurement_date",
                     "measurement_type_concept_id", "value_source_value"),
                    [(225, 2, 3007727, D("2021-01-20"), 32817, "N3")])
    derive_oncology(cdm, mappings=golden_mappings)
    notes = cdm.query(f"SELECT note FROM {cdm.table('ctcl_derived')} WHERE kind = 'clipi_score' AND person_id = 2")
    assert notes == [("missing:LDH,LCT; N of 2021-01-20; points=1-3",)]


def test_chunks_of_one_person_give_the_same_rows(cdm, monkeypatch, golden_mappings):
    import ctcl_map.derive.oncology as derive_module

    monkeypatch.setattr(derive_module, "CHUNK", 1)
    report = derive_oncology(cdm, mappings=golden_mappings)
    # person 1 derives all its rows before person 2, as in one chunk, so ids and rows are unchanged
    _assert_golden(cdm, report)
