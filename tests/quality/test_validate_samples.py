"""`ctcl-map validate` on the committed samples (must be fit) and on the real third-party test data."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from ctcl_map.quality.validate import validate_inputs

REPO = Path(__file__).parents[2]
TESTDATA = REPO.parent / "shared" / "testdata"


def test_committed_synthea_sample_is_fit():
    """Real Synthea bundles, not CTCL: no CTCL rule may raise an error for them."""
    files = sorted((REPO / "tests" / "data" / "synthea").glob("*.json.gz"))
    assert files
    report = validate_inputs(files)
    assert report.exit_code() == 0, [f for f in report.errors]
    assert report.ctcl_patients == 0
    assert {f.rule for f in report.findings} <= {"ctcl.event_after_death"}  # Synthea's post-mortem encounters (< 60 days)


def test_ctcl_sample_bundles_are_fit():
    files = sorted((REPO / "samples").glob("*.json"))
    if not files:
        pytest.skip("no samples/*.json yet (written by the samples helper)")
    report = validate_inputs(files)
    assert report.exit_code() == 0, [f for f in report.errors]
    assert report.ctcl_patients >= 1


def test_ctcl_cohort_has_no_errors():
    folder = REPO / "samples" / "cohort-500" / "fhir"
    if not folder.is_dir():
        pytest.skip("no samples/cohort-500/fhir yet (written by the samples helper)")
    report = validate_inputs([folder], mapping_dirs=[REPO / "samples" / "site-mappings"])
    assert report.exit_code() == 0, report.errors[:5]
    assert report.patients == 500 and report.ctcl_patients > 450


def _testdata(folder: str) -> Path:
    path = TESTDATA / folder
    if not path.is_dir():
        pytest.skip(f"real test data not present at {path}")
    return path


@pytest.mark.shared_data
def test_mcode_fixtures_invalid_resource_is_reported():
    folder = _testdata("mcode-extraction-fixtures")
    invalid = folder / "helpers" / "fixtures" / "invalid-resource.json"
    valid = folder / "helpers" / "fixtures" / "valid-resource.json"
    # The R4B models do not check code bindings; HL7's JSON schema does (gender enum). The "valid"
    # patient was born in 1848, before the plausible range (README, 'Conversion rules').
    born_1848 = ("conversion.implausible_date", "", "Patient/valid-patient")
    assert [(f.rule, f.path, f.resource) for f in validate_inputs([invalid, valid]).findings] == [born_1848]
    report = validate_inputs([invalid, valid], json_schema=True)
    assert [(f.rule, f.path, f.resource) for f in report.findings] == [("structure.schema", "gender", "Patient/invalid-patient"), born_1848]
    # The whole set: STU3-shaped Conditions and Bundles whose urn: references point at no entry.
    report = validate_inputs([folder])
    rules = Counter(f.rule for f in report.findings)
    assert rules["structure.model"] > 0 and rules["reference.broken_urn"] > 0
    assert report.exit_code() == 1
    condition_errors = {f.path for f in report.findings if f.file.endswith("extractors/fixtures/condition-bundle.json")
                        and f.rule == "structure.model"}
    assert "entry[0].resource.subject" in condition_errors  # mCODE STU1 wrote `patient`, R4 requires `subject`


@pytest.mark.shared_data
def test_us_core_examples():
    report = validate_inputs([_testdata("us-core-examples")])
    rules = Counter(f.rule for f in report.findings)
    # diagnosticreport-cbc.json has a narrative without div; two Encounters have no period.start;
    # two AllergyIntolerances (now mapped to observation) have no onset[x] nor recordedDate
    assert rules["structure.model"] == 1 and rules["conversion.missing_date"] == 4
    assert report.ctcl_patients == 0
