"""Values keep their meaning beyond the golden fixtures: a code with several 'Maps to' targets gives
one row per target (OMOP vocabulary convention; HL7 FHIR-to-OMOP IG), each in its domain's table,
and the same rows on a re-run."""

from __future__ import annotations

import json
from datetime import date

SOURCE_ID = 2099000001  # a test-only source concept (our id range): the targets are verified ids
MF, MF_MORPHOLOGY = 4040380, 4233385  # Condition / Observation domain (vocab/CONCEPT.csv)


def _two_targets(db) -> None:
    db.insert_rows(db.table("concept"), (
        "concept_id", "concept_name", "domain_id", "vocabulary_id", "concept_class_id", "standard_concept",
        "concept_code", "valid_start_date", "valid_end_date"),
        [(SOURCE_ID, "Mycosis fungoides, skin (test source code)", "Condition", "ICD10CM", "5-char billing code",
          None, "C84.0Z", date(1970, 1, 1), date(2099, 12, 31))])
    db.insert_rows(db.table("concept_relationship"), (
        "concept_id_1", "concept_id_2", "relationship_id", "valid_start_date", "valid_end_date"),
        [(SOURCE_ID, target, "Maps to", date(1970, 1, 1), date(2099, 12, 31)) for target in (MF, MF_MORPHOLOGY)])


def _bundle(tmp_path):
    path = tmp_path / "two_targets.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:p1", "resource": {"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "1960-01-01"}},
        {"fullUrl": "urn:uuid:c1", "resource": {
            "resourceType": "Condition", "id": "c1", "subject": {"reference": "urn:uuid:p1"}, "onsetDateTime": "2020-02-03",
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C84.0Z"}]}}},
    ]}))
    return path


def test_a_code_with_two_maps_to_gives_a_row_per_target(db, tmp_path, load):
    _two_targets(db)
    bundle = _bundle(tmp_path)
    load(db, bundle)
    conditions = db.query(f"SELECT condition_concept_id, condition_start_date, condition_source_value, "
                          f"condition_source_concept_id FROM {db.table('condition_occurrence')}")
    observations = db.query(f"SELECT observation_concept_id, observation_date, observation_source_value, "
                            f"observation_source_concept_id FROM {db.table('observation')}")
    assert conditions == [(MF, date(2020, 2, 3), "C84.0Z", SOURCE_ID)]
    assert observations == [(MF_MORPHOLOGY, date(2020, 2, 3), "C84.0Z", SOURCE_ID)]
    report = load(db, bundle)  # unchanged input: nothing new, nothing duplicated
    assert db.query(f"SELECT COUNT(*) FROM {db.table('observation')}")[0][0] == 1
    assert db.query(f"SELECT COUNT(*) FROM {db.table('condition_occurrence')}")[0][0] == 1
    assert report.outcome.unmapped == {}


def test_a_new_version_replaces_every_target_row(db, tmp_path, load):
    _two_targets(db)
    bundle = _bundle(tmp_path)
    load(db, bundle)
    changed = json.loads(bundle.read_text())
    changed["entry"][1]["resource"]["code"]["coding"][0] = {"system": "http://hl7.org/fhir/sid/icd-10", "code": "C84.0"}
    bundle.write_text(json.dumps(changed))
    load(db, bundle)  # C84.0 has one target (mappings/diagnoses.csv): the morphology row goes
    assert db.query(f"SELECT condition_concept_id FROM {db.table('condition_occurrence')}") == [(MF,)]
    assert db.query(f"SELECT COUNT(*) FROM {db.table('observation')}")[0][0] == 0
