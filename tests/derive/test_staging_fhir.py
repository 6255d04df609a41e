"""Golden FHIR -> measurement and episode rows for each staging input style, through the converter
and then derive_oncology (tests/fixtures/staging/staging_styles_bundle.json).

Input styles covered: valueString ('cT2b', 'N1', 'Stage IVA-1'), valueCodeableConcept with text
only ('T4', 'N0'), our coded B ('CTCL-map#B0a') and B as a string ('B2'), Condition.stage.summary
coded with a LOINC answer (LA3656-1 Stage IIIA), raw blood values (LOINC 34918-3 Sezary count +
CTCL-map clone) from which B is derived, LDH with a reference range, LCT, and therapies coded as
RxNorm, old ATC (L01XC25 mogamulizumab, L01XX25 bexarotene).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from ctcl_map.derive.oncology import derive_oncology

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

BUNDLE = Path(__file__).parents[1] / "fixtures" / "staging" / "staging_styles_bundle.json"
D = date.fromisoformat


def _person(db, year):
    return db.query(f"SELECT person_id FROM {db.table('person')} WHERE year_of_birth = ?", [year])[0][0]


def _condition(db, person_id):
    return db.query(f"SELECT condition_occurrence_id FROM {db.table('condition_occurrence')} WHERE person_id = ?",
                    [person_id])[0][0]


def test_staging_input_styles_to_derived_rows(db, load):
    load(db, BUNDLE)
    report = derive_oncology(db)
    a, b = _person(db, 1950), _person(db, 1961)
    ca, cb = _condition(db, a), _condition(db, b)

    # every T/N/M/B/stage row is linked to its person's CTCL diagnosis
    staging = db.query(
        f"SELECT person_id, measurement_date, value_source_value, measurement_event_id, meas_event_field_concept_id "
        f"FROM {db.table('measurement')} WHERE measurement_concept_id IN (3008841, 3007727, 3006575, 3022698, 2000000010) "
        "AND measurement_source_value NOT LIKE 'derived:%' ORDER BY person_id, measurement_date, value_source_value"
    )
    assert [(p, day, text, event) for p, day, text, event, field in staging] == [
        (a, D("2019-01-15"), "B0a", ca), (a, D("2019-01-15"), "M0", ca), (a, D("2019-01-15"), "N0", ca),
        (a, D("2019-01-15"), "cT2b", ca),
        (a, D("2020-06-10"), "M0", ca), (a, D("2020-06-10"), "N1", ca), (a, D("2020-06-10"), "T4", ca),
        (b, D("2021-01-05"), "B2", cb), (b, D("2021-01-05"), "LA3656-1", cb), (b, D("2021-01-05"), "M0", cb),
        (b, D("2021-01-05"), "N0", cb), (b, D("2021-01-05"), "T4", cb),
        (b, D("2022-02-01"), "Stage IVA-1", cb),
    ]
    assert {field for *_rest, field in staging} == {1147127}

    derived = db.query(
        f"SELECT person_id, measurement_concept_id, measurement_date, value_as_concept_id, value_as_number, "
        f"measurement_source_value, value_source_value, measurement_event_id FROM {db.table('measurement')} "
        "WHERE measurement_source_value LIKE 'derived:%' ORDER BY measurement_id"
    )
    assert derived == [
        # B2 from 1500 Sezary cells/uL with a clone (2007), then IB and IVA1 from T/N/M/B
        (a, 2000000010, D("2020-06-10"), 2000000017, None, "derived:ISCL-2007", "B2", ca),
        (a, 3022698, D("2019-01-15"), 45876317, None, "derived:ISCL-EORTC-2007-table", "IB T2b N0 M0 B0a", ca),
        (a, 3022698, D("2020-06-10"), 46238000, None, "derived:ISCL-EORTC-2007-table", "IVA1 T4 N1 M0 B2", ca),
        # CLIPI of A at 2020-06-10: age 70, N1, LDH 400 > 250, LCT present: 3 = high
        (a, 2000000202, D("2020-06-10"), None, 3.0, "derived:CLIPI-PROCLIPI-2025", "complete", ca),
        (a, 2000000203, D("2020-06-10"), 2000000206, None, "derived:CLIPI-PROCLIPI-2025", "high", ca),
        # CLIPI of B at 2021-01-05 (given IIIA): born 1961, N0, no LDH, no LCT: 0-2 points, undetermined
        (b, 2000000202, D("2021-01-05"), None, None, "derived:CLIPI-PROCLIPI-2025", "missing:LDH,LCT", cb),
        (b, 2000000203, D("2021-01-05"), 0, None, "derived:CLIPI-PROCLIPI-2025", "undetermined; missing:LDH,LCT", cb),
    ]
    assert report.stage_disagreements == [
        {"person_id": b, "date": D("2021-01-05"), "given": "IIIA", "derived": "IVA1", "assumptions": []}]
    assert db.query(f"SELECT person_id, first_advanced_date, stage_group FROM {db.table('ctcl_first_advanced')} "
                    "ORDER BY person_id") == sorted([(a, D("2020-06-10"), "IVA1"), (b, D("2021-01-05"), "IIIA")])

    episodes = db.query(
        f"SELECT person_id, episode_concept_id, episode_start_date, episode_end_date, episode_number, "
        f"episode_object_concept_id, episode_source_value FROM {db.table('episode')} ORDER BY episode_id"
    )
    assert episodes == [
        (a, 32533, D("2019-01-10"), None, None, 4040380, "CTCL disease"),
        (a, 32531, D("2020-07-01"), D("2020-07-15"), 1, 35804815, "mogamulizumab monotherapy"),  # RxNorm + old ATC
        (a, 32531, D("2021-03-01"), D("2021-04-01"), 2, 35804812, "bexarotene monotherapy"),  # > 90 days later
        (b, 32533, D("2021-01-05"), None, None, 4041799, "CTCL disease"),
    ]
    line_events = db.query(
        f"SELECT e.episode_number, de.drug_source_value FROM {db.table('episode_event')} ee "
        f"JOIN {db.table('episode')} e ON e.episode_id = ee.episode_id "
        f"JOIN {db.table('drug_exposure')} de ON de.drug_exposure_id = ee.event_id "
        "WHERE e.episode_concept_id = 32531 AND ee.episode_event_field_concept_id = 1147094 ORDER BY 1, 2"
    )
    assert line_events == [(1, "2054068"), (1, "L01XC25"), (2, "L01XX25")]


def test_derived_ids_are_registered_so_a_later_load_does_not_reuse_them(db, tmp_path, load):
    import json

    load(db, BUNDLE)
    derive_oncology(db)
    first = db.query(f"SELECT measurement_id, measurement_source_value, value_source_value FROM {db.table('measurement')} "
                     "WHERE measurement_source_value LIKE 'derived:%' ORDER BY measurement_id")
    registered = db.query(f"SELECT omop_id FROM {db.table('ctcl_id_map')} WHERE id_space = 'measurement' "
                          "AND row_key LIKE 'derived:%' ORDER BY omop_id")
    assert [row[0] for row in first] == [row[0] for row in registered]

    later = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
        "resourceType": "Observation", "id": "stg-a-n3", "status": "final", "subject": {"reference": "Patient/stg-a"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "21906-3"}]}, "effectiveDateTime": "2022-05-01",
        "valueString": "N3"}}]}
    path = tmp_path / "later.json"
    path.write_text(json.dumps(later))
    load(db, path)
    new_id = db.query(f"SELECT measurement_id FROM {db.table('measurement')} WHERE value_source_value = 'N3'")[0][0]
    assert new_id > max(row[0] for row in first)  # the converter did not hand out a derived row's id
    derive_oncology(db)
    again = db.query(f"SELECT measurement_id, measurement_source_value, value_source_value FROM {db.table('measurement')} "
                     "WHERE measurement_source_value LIKE 'derived:%' ORDER BY measurement_id")
    assert again == first  # same keys, same ids, same rows


def test_staging_measurements_never_keep_a_link_to_a_deleted_diagnosis(db, tmp_path, load):
    """The staging rows of observation_staging_text_value are linked to Condition/stv-c1; a transaction
    DELETE of it leaves them unlinked (no other diagnosis), and a diagnosis arriving later links them
    again, though the staging Observations themselves never change."""
    import json


    fixture = FIXTURES / "golden" / "observation_staging_text_value.json"
    links = (f"SELECT m.measurement_source_value, m.measurement_event_id, m.meas_event_field_concept_id, "
             f"m.measurement_event_id IN (SELECT condition_occurrence_id FROM {db.table('condition_occurrence')}) "
             f"FROM {db.table('measurement')} m WHERE m.measurement_source_value IN ('21905-5', 'ISCL-B') ORDER BY 1")
    load(db, fixture, oncology=True)
    first = db.query(links)
    assert [(source, field, exists) for source, _, field, exists in first] == [("21905-5", 1147127, True), ("ISCL-B", 1147127, True)]
    delete = tmp_path / "delete.json"
    delete.write_text(json.dumps({"resourceType": "Bundle", "type": "transaction",
                                  "entry": [{"request": {"method": "DELETE", "url": "Condition/stv-c1"}}]}))
    load(db, fixture, delete, oncology=True)
    assert [row[:3] for row in db.query(links)] == [("21905-5", None, None), ("ISCL-B", None, None)]
    again = tmp_path / "again.json"
    condition = next(e["resource"] for e in json.loads(fixture.read_text())["entry"] if e["resource"]["resourceType"] == "Condition")
    again.write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                                 "entry": [{"resource": {**condition, "id": "c9", "subject": {"reference": "Patient/p1"}}}]}))
    load(db, fixture, delete, again, oncology=True)
    assert [(source, field, exists) for source, _, field, exists in db.query(links)] == [("21905-5", 1147127, True), ("ISCL-B", 1147127, True)]
