"""Diagnosis certainty: a provisional / differential / unconfirmed CTCL Condition is loaded with its
status (golden: condition_differential_kept_with_status) but is not a CTCL case: the oncology
derivation leaves it and the staging linked to it out, `validate` warns, and both agree on it.
FHIR ConditionVerificationStatus: http://hl7.org/fhir/R4/valueset-condition-ver-status.html
"""

from __future__ import annotations

import json
from pathlib import Path

from ctcl_map.pipeline import RunOptions, run_fhir2omop
from ctcl_map.quality.validate import validate_inputs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

DIFFERENTIAL = FIXTURES / "golden" / "condition_differential_kept_with_status.json"


def _with_status(tmp_path, status: str):
    bundle = json.loads(DIFFERENTIAL.read_text())
    bundle["entry"][1]["resource"]["verificationStatus"]["coding"][0]["code"] = status
    path = tmp_path / f"condition_{status}.json"
    path.write_text(json.dumps(bundle))
    return path


def _derived(db):
    episodes = db.query(f"SELECT COUNT(*) FROM {db.table('episode')}")[0][0]
    linked = db.query(f"SELECT measurement_event_id FROM {db.table('measurement')}")
    return episodes, linked


def test_differential_mf_is_loaded_but_not_a_ctcl_diagnosis(db, load):
    report = load(db, DIFFERENTIAL, oncology=True)
    oncology = report.oncology
    assert (oncology.diagnoses, oncology.unconfirmed_diagnoses_excluded, oncology.staging_of_unconfirmed_excluded) == (0, 1, 1)
    assert (oncology.disease_episodes, oncology.first_advanced) == (0, 0)
    episodes, linked = _derived(db)
    # the stage stays linked to the condition it was recorded on; no episode, no first advanced stage
    assert episodes == 0 and linked == [(1,)]
    assert db.query(f"SELECT COUNT(*) FROM {db.table('ctcl_first_advanced')}")[0][0] == 0


def test_include_unconfirmed_counts_it(db):
    report = run_fhir2omop(db, RunOptions(inputs=[DIFFERENTIAL], include_unconfirmed=True))
    oncology = report.oncology
    assert (oncology.diagnoses, oncology.unconfirmed_diagnoses_excluded, oncology.disease_episodes) == (1, 0, 1)
    assert db.query(f"SELECT stage_group FROM {db.table('ctcl_first_advanced')}") == [("IVA1",)]


def test_each_unconfirmed_status_and_confirmed(db, tmp_path, load):
    for status, status_columns in (("provisional", (32899, "provisional")), ("unconfirmed", (32899, "unconfirmed")),
                                   ("confirmed", (None, None))):
        load(db, _with_status(tmp_path, status))
        rows = db.query(f"SELECT condition_status_concept_id, condition_status_source_value "
                        f"FROM {db.table('condition_occurrence')}")
        assert rows == [status_columns], status


def test_validate_warns_and_agrees_with_the_load(db, tmp_path, load):
    report = validate_inputs([DIFFERENTIAL])
    found = [(f.severity, f.rule, f.path) for f in report.findings]
    # the staging is not 'before diagnosis' nor a 'missing diagnosis' case: validate judges the
    # same diagnoses derive_oncology counts (none), and says why
    assert found == [("warning", "ctcl.diagnosis_unconfirmed", "entry[1].resource.verificationStatus")]
    included = validate_inputs([DIFFERENTIAL], include_unconfirmed=True)
    assert [f.rule for f in included.findings] == ["ctcl.diagnosis_unconfirmed"]
    assert "counted as a CTCL diagnosis" in included.findings[0].message
    assert load(db, _with_status(tmp_path, "confirmed"), oncology=True).oncology.diagnoses == 1
    assert validate_inputs([_with_status(tmp_path, "confirmed")]).findings == []
