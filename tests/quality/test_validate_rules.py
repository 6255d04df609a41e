"""`ctcl-map validate`: one fixture per rule (tests/fixtures/validate/<rule>.json), expected findings by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctcl_map.quality.validate import validate_inputs

FIXTURES = Path(__file__).parents[1] / "fixtures" / "validate"


def findings(name: str, **options):
    report = validate_inputs([FIXTURES / name], **options)
    return report, [(f.severity, f.rule, f.path, f.resource) for f in report.findings]


def test_structure_error_carries_its_path():
    report, found = findings("structure_invalid_resource_path.json")
    assert sorted(found) == [
        ("error", "structure.model", "entry[1].resource.code.coding[0].foo", "Condition/c-bad"),
        ("error", "structure.model", "entry[1].resource.subject.reference", "Condition/c-bad"),
    ]
    assert report.exit_code() == 1


def test_structure_json_schema_reports_the_same_paths():
    report, found = findings("structure_invalid_resource_path.json", json_schema=True)
    schema = sorted(path for severity, rule, path, _ in found if rule == "structure.schema")
    assert schema == ["entry[1].resource.code.coding[0]", "entry[1].resource.subject.reference"]
    messages = {f.path: f.message for f in report.findings if f.rule == "structure.schema"}
    assert messages["entry[1].resource.subject.reference"] == "should be of type string"
    assert "'foo' was unexpected" in messages["entry[1].resource.code.coding[0]"]


def test_references_resolved_external_and_broken():
    report, found = findings("reference_dangling_reported.json")
    assert sorted(found) == sorted([
        ("error", "reference.broken_urn", "entry[4].resource.subject", "Procedure/pr1"),
        ("error", "reference.broken_contained", "entry[5].resource.medicationReference", "MedicationRequest/mr1"),
        ("error", "reference.missing_patient", "entry[2].resource.subject", "Observation/o1"),
        ("warning", "reference.unresolved", "entry[3].resource.participant[0].individual", "Encounter/e1"),
    ])
    # c1.subject (urn), e1.subject (Patient/p1), mr1.subject, mr2.subject resolve; #med1 is contained;
    # the Organization is on another server; the Location is a conditional reference.
    assert dict(report.references) == {"resolved": 4, "contained": 1, "external": 1, "conditional": 1,
                                       "broken_urn": 1, "broken_contained": 1, "missing_patient": 1, "unresolved": 1}
    # the conditional reference's query holds an identifier: never shown
    assert "L-1" not in report.to_json()


def test_references_resolve_across_files(tmp_path):
    """A Patient in one file and its Condition in another (a bulk export) resolve."""
    import json

    (tmp_path / "Patient.ndjson").write_text(json.dumps({"resourceType": "Patient", "id": "p9", "birthDate": "1960-01-01"}) + "\n")
    (tmp_path / "Condition.ndjson").write_text(json.dumps({
        "resourceType": "Condition", "id": "c9", "subject": {"reference": "Patient/p9"}, "onsetDateTime": "2020-01-01",
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "C84.0"}]}}) + "\n")
    report = validate_inputs([tmp_path / "Condition.ndjson", tmp_path / "Patient.ndjson"])
    assert report.findings == []
    assert dict(report.references) == {"resolved": 1}


def test_event_after_death():
    report, found = findings("event_after_death_reported.json")
    assert found == [("error", "ctcl.event_after_death", "entry[1].resource", "Condition/c-late")]
    assert "2 records dated after death (latest: Condition, 152 days after" in report.findings[0].message


def test_event_after_death_within_tolerance_is_a_warning(tmp_path):
    import json

    document = json.loads((FIXTURES / "event_after_death_reported.json").read_text())
    del document["entry"][1]  # the condition 152 days after death; the observation 19 days after stays
    path = tmp_path / "within.json"
    path.write_text(json.dumps(document))
    report = validate_inputs([path])
    assert [(f.severity, f.rule, f.resource) for f in report.findings] == [
        ("warning", "ctcl.event_after_death", "Observation/o-late")]
    assert report.exit_code() == 0 and report.exit_code(strict=True) == 1


def test_event_before_birth_and_death_before_birth():
    _, found = findings("event_before_birth_reported.json")
    assert found == [("error", "ctcl.event_before_birth", "entry[1].resource", "Observation/o-early")]
    report, found = findings("death_before_birth_reported.json")
    assert found == [("error", "ctcl.death_before_birth", "entry[0].resource", "Patient/p-neg")]
    assert "366 days before birth" in report.findings[0].message


def test_stage_group_inconsistent_with_tnmb():
    report, found = findings("stage_group_inconsistent_with_tnmb.json")
    # 2020-02-01: T2 N0 M0 B0 is IB, IIB written -> error; 2020-06-01: T3 N0 M0 B0 is IIB as written -> nothing
    assert found == [("error", "ctcl.stage_group_inconsistent", "entry[6].resource", "Observation/s1")]
    assert "IIB given, but T2 N0 M0 B0 on the same date give IB" in report.findings[0].message
    assert report.ctcl_patients == 1


def test_b_category_inconsistent_with_counts():
    report, found = findings("b_category_inconsistent_with_counts.json")
    # 1500 Sezary cells/uL + positive clone: B2 (2007); CD4+CD26- 1800/uL + clone: B2 (2022). B0 given -> warning.
    assert found == [("warning", "ctcl.b_category_inconsistent", "entry[2].resource", "Observation/b-wrong")]
    assert "B0 given" in report.findings[0].message and "B2 (2007 rules), B2 (2022 rules)" in report.findings[0].message


def test_treatment_and_staging_before_diagnosis():
    report, found = findings("treatment_before_diagnosis.json")
    assert found == [
        ("warning", "ctcl.treatment_before_diagnosis", "entry[2].resource", "MedicationAdministration/ma-early"),
        ("warning", "ctcl.staging_before_diagnosis", "entry[4].resource", "Observation/t-early"),
    ]
    assert "61 days before" in report.findings[0].message  # 2021-03-01 -> 2021-05-01
    assert "30 days before" in report.findings[1].message  # 2021-04-01 -> 2021-05-01


def test_mogamulizumab_dosing():
    _, found = findings("mogamulizumab_dosing_implausible.json")
    # p-label follows the label (days 0,7,14,21,28 then every 14 days): no finding
    assert found == [
        ("warning", "ctcl.mogamulizumab_short_gap", "entry[13].resource", "MedicationAdministration/p-gap-d1"),
        ("warning", "ctcl.mogamulizumab_long_weekly", "entry[23].resource", "MedicationAdministration/p-weekly-d5"),
    ]


def test_ctcl_text_with_unrecognised_code_and_missing_diagnosis():
    report, found = findings("ctcl_code_unrecognised.json")
    # the local code is not mapped (warning); text-only 'Sézary syndrome' matches a TEXT row (recognised)
    assert found == [("warning", "ctcl.code_unrecognised", "entry[1].resource.code", "Condition/c-local")]
    assert "MF-01" in report.findings[0].message and "plaque" not in report.findings[0].message
    assert report.ctcl_patients == 1
    _, found = findings("diagnosis_missing.json")
    assert found == [("warning", "ctcl.diagnosis_missing", "entry[1].resource", "Observation/b-only")]


def test_unmapped_code_counts():
    report, found = findings("unmapped_code_counts.json")
    assert found == []
    rows = {(r["vocabulary"], r["resource_type"]): r for r in report.coverage["by_system"]}
    # SNOMED: 118618005 (diagnoses.csv) twice, 999999991 three times
    assert rows[("SNOMED", "Condition")] == {
        "vocabulary": "SNOMED", "resource_type": "Condition", "distinct_codes": 2, "distinct_mapped": 1,
        "occurrences": 5, "occurrences_mapped": 2, "occurrences_covered_by_other_coding": 0, "percent_mapped": 40.0}
    local = rows[("http://hospital.example.org/cs/dx", "Condition")]
    assert (local["distinct_codes"], local["occurrences"], local["occurrences_mapped"],
            local["occurrences_covered_by_other_coding"]) == (2, 2, 0, 1)  # DX-7 sits next to ICD10 C84.0
    assert report.coverage["unmapped"] == [
        {"vocabulary": "SNOMED", "code": "999999991", "resource_type": "Condition", "occurrences": 3,
         "reason": "code_not_in_vocabulary"},
        {"vocabulary": "http://hospital.example.org/cs/dx", "code": "DX-8", "resource_type": "Condition",
         "occurrences": 1, "reason": "unknown_system"},
    ]


def test_site_mapping_folder_maps_a_local_code(tmp_path):
    """The coverage list is what a site adds to its mapping file: once added, the code counts as mapped."""
    import csv

    from ctcl_map.mappings.tables import column_order, shipped_dir

    folder = tmp_path / "site"
    folder.mkdir()
    with (folder / "code_systems.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(column_order("code_systems"))
        writer.writerow(["http://hospital.example.org/cs/dx", "LOCAL-DX", "site"][: len(column_order("code_systems"))])
    header = column_order("diagnoses")
    row = dict.fromkeys(header, "")
    row.update(source_vocabulary_id="LOCAL-DX", source_code="DX-8", source_code_description="MF (local)",
               target_concept_id="4040380", target_domain_id="Condition", reference="site", ctcl_subtype="mf")
    with (folder / "diagnoses.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerow(row)
    assert shipped_dir().is_dir()
    report = validate_inputs([FIXTURES / "unmapped_code_counts.json"], mapping_dirs=[folder])
    codes = [(u["vocabulary"], u["code"]) for u in report.coverage["unmapped"]]
    assert codes == [("SNOMED", "999999991")]
    assert report.ctcl_patients == 1


def test_missing_input_is_an_error_not_a_traceback(tmp_path):
    report = validate_inputs([tmp_path / "absent.json"])
    assert [(f.rule, f.severity) for f in report.findings] == [("input.file_not_found", "error")]
    (tmp_path / "broken.json").write_text("{not json")
    report = validate_inputs([tmp_path / "broken.json"])
    assert [f.rule for f in report.findings] == ["input.not_json"]
    assert report.exit_code() == 1


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.json")))
def test_every_fixture_reports_only_its_own_rule_family(name):
    """Each fixture is named after its rule; no other rule fires (keeps the fixtures honest)."""
    report = validate_inputs([FIXTURES / name])
    families = {f.rule.split(".")[0] for f in report.findings}
    expected = {"structure_": {"structure"}, "reference_": {"reference"}, "unmapped_": set()}
    for prefix, family in expected.items():
        if name.startswith(prefix):
            assert families == family
            return
    assert families == {"ctcl"}
