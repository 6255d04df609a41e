"""Synthetic CTCL cohort generator (issue 6): FHIR validity, determinism, truth = FHIR, samples.

The FHIR side is read back here with deliberately simple code, independent of the generator's
builders, so a builder bug shows up as a disagreement with the truth file."""

from __future__ import annotations

import csv
import gzip
import json
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from fhir.resources.R4B import get_fhir_model_class

from ctcl_map.synthetic import GeneratorConfig, codes, generate_cohort, messy, survival, write_cohort
from ctcl_map.synthetic.olsen import derive_stage_group

REPO = Path(__file__).resolve().parents[2]
ROMAN_BY_LOINC_ANSWER = {answer: group for group, answer in codes.STAGE_LOINC_ANSWERS.items()}
ROMAN_BY_ARABIC = {arabic: group for group, arabic in codes.ARABIC_STAGE.items()}
DRUG_BY_CODE = {(system, code): drug for drug, props in codes.DRUGS.items()
                for system, key in ((codes.RXNORM, "rxnorm"), (codes.ATC, "atc"), (codes.ATC, "atc_old"),
                                    (codes.LOCAL_DRUGS, "local"))
                for code in [props[key]] if code}
DRUG_BY_BRAND = {props["brand"]: drug for drug, props in codes.DRUGS.items()}
VALID_DRUG_STATUSES = {"completed", "active", "in-progress", "stopped"}


# ---------------------------------------------------------------- helpers reading what was written

@pytest.fixture(scope="module")
def clean_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    write_cohort(generate_cohort(GeneratorConfig(patients=60, seed=11)), out, "bundle")
    return out


@pytest.fixture(scope="module")
def messy_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("messy")
    write_cohort(generate_cohort(GeneratorConfig(patients=60, seed=12, messy=True)), out, "bundle")
    return out


def read_truth(folder: Path) -> dict[str, dict[str, str]]:
    with open(folder / "truth.csv", newline="", encoding="utf-8") as handle:
        return {row["patient_id"]: row for row in csv.DictReader(handle)}


def read_bundle(path: Path) -> list[dict]:
    return [entry["resource"] for entry in json.loads(path.read_text(encoding="utf-8"))["entry"]]


def bundles(folder: Path) -> dict[str, list[dict]]:
    """patient id -> resources of its main bundle (re-sent files excluded)."""
    result = {}
    for path in sorted((folder / "fhir").glob("ctcl-*.json")):
        if path.name.endswith(".resent.json"):
            continue
        resources = read_bundle(path)
        result[resources[0]["id"]] = resources
    return result


def anomaly_resources(row: dict[str, str], kinds: set[str] | None = None) -> set[str]:
    """'Type/id' of the resources the truth lists as anomalies (of ``kinds`` when given)."""
    found = set()
    for item in filter(None, row["anomalies"].split(";")):
        kind, resource = item.split("@")
        if kinds is None or kind in kinds:
            found.add(resource)
    return found


def strip_reference_style(resource: dict) -> str:
    """JSON text with 'urn:uuid:<id>' and 'Type/<id>' references both reduced to '<id>'."""
    return re.sub(r'"reference": "(urn:uuid:|[A-Za-z]+/)', '"reference": "', json.dumps(resource))


def code_of(resource: dict) -> tuple[str, str]:
    coding = resource["code"].get("coding", [{}])[0]
    return coding.get("system", ""), coding.get("code", "")


def normalise_group(observation: dict) -> str:
    """Read a stage group in any style the generator writes (an independent mini-parser)."""
    if "valueString" in observation:
        text = observation["valueString"]
    else:
        concept = observation["valueCodeableConcept"]
        for coding in concept.get("coding", []):
            if coding["code"] in ROMAN_BY_LOINC_ANSWER:
                return ROMAN_BY_LOINC_ANSWER[coding["code"]]
        text = concept["text"]
    text = text.upper().replace("STAGE", "").replace("-", "").replace(" ", "")
    return ROMAN_BY_ARABIC.get(text, text)


def category_text(observation: dict) -> str:
    if "valueString" in observation:
        text = observation["valueString"]
        return text[1:] if text[:1] in "cp" else text
    return observation["valueCodeableConcept"]["text"]


def drug_of(resource: dict, resources_by_ref: dict[str, dict]) -> str | None:
    if "medicationReference" in resource:
        reference = resource["medicationReference"]["reference"]
        if reference.startswith("#"):
            concept = next(c for c in resource["contained"] if c["id"] == reference[1:])["code"]
        else:
            concept = resources_by_ref[reference]["code"]
    else:
        concept = resource["medicationCodeableConcept"]
    for coding in concept.get("coding", []):
        if (coding["system"], coding["code"]) in DRUG_BY_CODE:
            return DRUG_BY_CODE[(coding["system"], coding["code"])]
    return DRUG_BY_BRAND.get(concept.get("text", ""))


def first_drug_dates(resources: list[dict]) -> dict[str, str]:
    """Ingredient -> first date of a valid administration or prescription."""
    by_ref = {f"urn:uuid:{r['id']}": r for r in resources}
    first: dict[str, str] = {}
    for resource in resources:
        if resource["resourceType"] not in ("MedicationAdministration", "MedicationRequest"):
            continue
        if resource["status"] not in VALID_DRUG_STATUSES:
            continue
        drug = drug_of(resource, by_ref)
        if drug is None:
            continue
        when = resource.get("authoredOn") or resource.get("effectiveDateTime") or resource["effectivePeriod"]["start"]
        first[drug] = min(first.get(drug, when[:10]), when[:10])
    return first


# ---------------------------------------------------------------- Olsen derivation (hand-checked)

@pytest.mark.parametrize("t, n, m, b, expected", [
    ("T1a", "N0", "M0", "B0a", "IA"), ("T1b", "N0", "M0", "B1b", "IA"), ("T2a", "N0", "M0", "B0b", "IB"),
    ("T1a", "N1a", "M0", "B0a", "IIA"), ("T2b", "N2b", "M0", "B1a", "IIA"), ("T3", "N0", "M0", "B0a", "IIB"),
    ("T3", "N2a", "M0", "B1b", "IIB"), ("T4", "N0", "M0", "B0a", "IIIA"), ("T4", "N1b", "M0", "B1a", "IIIB"),
    ("T4", "N0", "M0", "B2", "IVA1"), ("T1a", "N2a", "M0", "B2", "IVA1"), ("T1a", "N3", "M0", "B0a", "IVA2"),
    ("T4", "N3", "M0", "B2", "IVA2"), ("T2a", "N0", "M1", "B0a", "IVB"), ("T4", "N3", "M1", "B2", "IVB"),
])
def test_olsen_rule_order_on_table_rows(t, n, m, b, expected):
    assert derive_stage_group(t, n, m, b) == expected


def test_olsen_refuses_categories_the_generator_must_not_write():
    with pytest.raises(ValueError, match="Nx"):
        derive_stage_group("T2", "Nx", "M0", "B0")


# ---------------------------------------------------------------- FHIR validity

def _validate_all(folder: Path) -> tuple[set[str], set[str]]:
    """Validate every resource (main and re-sent files) one by one; returns (failed, all) refs."""
    failed, seen = set(), set()
    for path in sorted((folder / "fhir").glob("ctcl-*.json")):
        for resource in read_bundle(path):
            reference = f"{resource['resourceType']}/{resource['id']}"
            seen.add(reference)
            try:
                get_fhir_model_class(resource["resourceType"]).model_validate(resource)
            except Exception:  # noqa: BLE001 - pydantic ValidationError and friends
                failed.add(reference)
    return failed, seen


def test_clean_cohort_resources_all_validate_with_fhir_resources_r4b(clean_dir):
    failed, seen = _validate_all(clean_dir)
    assert len(seen) > 1000
    assert failed == set()


def test_messy_cohort_fails_validation_exactly_on_the_declared_invalid_items(messy_dir):
    failed, _ = _validate_all(messy_dir)
    declared = json.loads((messy_dir / "truth.json").read_text())["anomalies"]
    declared_invalid = {a["resource"] for a in declared if a["fhir_invalid"]}
    assert declared_invalid, "the messy cohort must contain invalid items"
    assert failed == declared_invalid


def test_whole_bundles_validate_as_r4b_transaction_bundles(clean_dir):
    bundle_model = get_fhir_model_class("Bundle")
    for path in sorted((clean_dir / "fhir").glob("ctcl-*.json"))[:10]:
        bundle = bundle_model.model_validate(json.loads(path.read_text()))
        assert bundle.type == "transaction"
        assert all(entry.request.method == "POST" and entry.fullUrl.startswith("urn:uuid:") for entry in bundle.entry)


# ---------------------------------------------------------------- determinism

def _all_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fmt, compress", [("bundle", False), ("ndjson", True)])
def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path, fmt, compress):
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        write_cohort(generate_cohort(GeneratorConfig(patients=25, seed=seed, messy=True)), tmp_path / name, fmt, compress)
    first, second, other = (_all_bytes(tmp_path / name) for name in "abc")
    assert first == second
    assert first["truth.csv"] != other["truth.csv"]
    assert first.keys() - {"truth.csv", "truth.json"}, "FHIR files were written"


def test_gzip_output_is_plain_ndjson_inside(tmp_path):
    files = write_cohort(generate_cohort(GeneratorConfig(patients=5, seed=3)), tmp_path, "ndjson", gzip=True)
    patient_file = next(p for p in files if p.name == "Patient.ndjson.gz")
    lines = gzip.decompress(patient_file.read_bytes()).decode().splitlines()
    assert len(lines) == 5 and all(json.loads(line)["resourceType"] == "Patient" for line in lines)


# ---------------------------------------------------------------- references

def test_bundle_references_are_urn_uuid_and_resolve_except_declared_dangling(messy_dir):
    truth = read_truth(messy_dir)
    for patient_id, resources in bundles(messy_dir).items():
        full_urls = {f"urn:uuid:{r['id']}" for r in resources}
        dangling = anomaly_resources(truth[patient_id], {"dangling_subject"})
        for resource in resources:
            reference = resource.get("subject", {}).get("reference")
            if reference is None:
                continue
            assert reference.startswith("urn:uuid:")
            is_dangling = f"{resource['resourceType']}/{resource['id']}" in dangling
            assert (reference not in full_urls) == is_dangling


def test_ndjson_uses_relative_references(tmp_path):
    write_cohort(generate_cohort(GeneratorConfig(patients=8, seed=4)), tmp_path, "ndjson")
    patient_ids = {json.loads(line)["id"] for line in (tmp_path / "fhir" / "Patient.ndjson").read_text().splitlines()}
    for line in (tmp_path / "fhir" / "Observation.ndjson").read_text().splitlines():
        subject = json.loads(line)["subject"]["reference"]
        assert subject.startswith("Patient/") and subject.removeprefix("Patient/") in patient_ids


# ---------------------------------------------------------------- truth agrees with the FHIR

def test_death_and_diagnosis_dates_agree_with_patient_and_condition(clean_dir):
    truth = read_truth(clean_dir)
    deaths = 0
    for patient_id, resources in bundles(clean_dir).items():
        row = truth[patient_id]
        patient = resources[0]
        assert patient.get("deceasedDateTime", "")[:10] == row["death_date"]
        deaths += bool(row["death_date"])
        condition = next(r for r in resources if r["resourceType"] == "Condition")
        assert condition["onsetDateTime"][:10] == row["diagnosis_date"]
        assert patient["birthDate"] == row["birth_date"]
    assert deaths > 0


def test_messy_onset_is_partial_or_missing_only_where_declared(messy_dir):
    truth = read_truth(messy_dir)
    for patient_id, resources in bundles(messy_dir).items():
        row = truth[patient_id]
        condition = next(r for r in resources if r["resourceType"] == "Condition")
        kinds = {item.split("@")[0] for item in filter(None, row["anomalies"].split(";"))}
        onset = condition.get("onsetDateTime")
        if "missing_onset" in kinds:
            assert onset is None
        elif "partial_onset" in kinds:
            assert onset == row["diagnosis_date"][:7]
        else:
            assert onset[:10] == row["diagnosis_date"]


@pytest.mark.parametrize("cohort", ["clean_dir", "messy_dir"])
def test_line_and_topical_starts_equal_first_valid_drug_record(cohort, request):
    folder = request.getfixturevalue(cohort)
    truth = read_truth(folder)
    moga_patients = 0
    for patient_id, resources in bundles(folder).items():
        row = truth[patient_id]
        expected = {}
        for item in filter(None, row["lines"].split(";")):
            _, drug, start = item.split(":")
            expected[drug] = start
        for item in filter(None, row["topical_drugs"].split(";")):
            drug, start = item.split(":")
            expected[drug] = start
        assert first_drug_dates(resources) == expected, row["patient_key"]
        if row["mogamulizumab_start"]:
            moga_patients += 1
            assert expected["mogamulizumab"] == row["mogamulizumab_start"]
    assert moga_patients > 0 or cohort == "messy_dir"


def test_every_staging_set_in_the_truth_is_olsen_consistent(clean_dir, messy_dir):
    checked = 0
    for folder in (clean_dir, messy_dir):
        for row in read_truth(folder).values():
            for staging in row["stagings"].split(";"):
                _, categories, group = staging.split(":")
                assert derive_stage_group(*categories.split("/")) == group
                checked += 1
            assert row["stagings"].split(";")[0].split(":", 1)[1] == row["stage_at_diagnosis"]
            assert row["stage_at_diagnosis"].endswith(":" + row["dx_stage_group"])
    assert checked > 120


def test_staging_observations_read_back_equal_truth_except_declared_disagreements(clean_dir, messy_dir):
    loinc_axis = {codes.LOINC_T: "T", codes.LOINC_N: "N", codes.LOINC_M: "M"}
    disagreements = 0
    for folder in (clean_dir, messy_dir):
        truth = read_truth(folder)
        for patient_id, resources in bundles(folder).items():
            row = truth[patient_id]
            declared = anomaly_resources(row, {"disagreeing_stage_group"})
            by_date: dict[str, dict[str, tuple[str, str]]] = {}
            for resource in resources:
                if resource["resourceType"] != "Observation" or "effectiveDateTime" not in resource:
                    continue
                system, code = code_of(resource)
                day = resource["effectiveDateTime"][:10]
                if (system, code) == (codes.LOINC, codes.LOINC_STAGE):
                    by_date.setdefault(day, {})["group"] = (normalise_group(resource), f"Observation/{resource['id']}")
                elif code in loinc_axis and system == codes.LOINC:
                    by_date.setdefault(day, {})[loinc_axis[code]] = (category_text(resource), "")
                elif (system, code) == (codes.CTCL, "ISCL-B"):
                    by_date.setdefault(day, {})["B"] = (category_text(resource), "")
            expected = [s.split(":") for s in row["stagings"].split(";")]
            assert sorted(by_date) == sorted(day for day, _, _ in expected)
            for day, categories, group in expected:
                found = by_date[day]
                assert "/".join(found[axis][0] for axis in "TNMB") == categories
                written_group, reference = found["group"]
                if reference in declared:
                    assert written_group != group
                    disagreements += 1
                else:
                    assert written_group == group, (row["patient_key"], day)
    assert disagreements >= 1


def test_blood_values_give_the_truth_b_category_under_2007_and_2022_rules(clean_dir):
    """2022: CD4+CD26- <250 B0, 250-999 B1, >=1000 with clone B2; 2007: >=1000 Sezary with clone B2."""
    for resources in bundles(clean_dir).values():
        values: dict[str, dict[str, object]] = {}
        for resource in resources:
            if resource["resourceType"] != "Observation":
                continue
            day, (_, code) = resource["effectiveDateTime"][:10], code_of(resource)
            slot = values.setdefault(day, {})
            if code == "34918-3":
                slot["sezary"] = resource["valueQuantity"]["value"]
            elif code == "CD4CD26NEG-ABS":
                slot["cd26"] = resource["valueQuantity"]["value"]
            elif code == "TCR-CLONE-BLOOD":
                slot["clone"] = resource["valueCodeableConcept"]["coding"][0]["code"] == "CLONE-POS"
            elif code == "ISCL-B":
                slot["b"] = category_text(resource)
        for slot in values.values():
            if "b" not in slot:
                continue
            cd26, clone = slot["cd26"], slot["clone"]
            rule_2022 = "B2" if cd26 >= 1000 and clone else ("B1" if cd26 >= 250 else "B0")
            assert rule_2022 == slot["b"][:2]
            assert (slot["sezary"] >= 1000 and clone) == (slot["b"] == "B2")


def test_clipi_in_truth_follows_its_components(clean_dir):
    rows = [r for r in read_truth(clean_dir).values() if r["clipi_score"]]
    assert rows
    for row in rows:
        score = sum(int(row[c]) for c in ("clipi_n3", "clipi_age_over_60", "clipi_ldh_raised", "clipi_lct"))
        assert int(row["clipi_score"]) == score
        assert row["clipi_group"] == ("low" if score <= 1 else "intermediate" if score == 2 else "high")
        advanced = next(s for s in row["stagings"].split(";") if s.startswith(row["first_advanced_date"]))
        assert int(row["clipi_n3"]) == (advanced.split(":")[1].split("/")[1] == "N3")


# ---------------------------------------------------------------- clinical shape of the simulation

def test_mogamulizumab_is_1_mg_per_kg_weekly_four_times_then_every_two_weeks(clean_dir):
    checked = 0
    for resources in bundles(clean_dir).values():
        weight = next(r["valueQuantity"]["value"] for r in resources if r["resourceType"] == "Observation"
                      and code_of(r) == (codes.LOINC, "29463-7"))
        by_ref = {f"urn:uuid:{r['id']}": r for r in resources}
        infusions = sorted(
            (r for r in resources if r["resourceType"] == "MedicationAdministration" and drug_of(r, by_ref) == "mogamulizumab"),
            key=lambda r: (r.get("effectiveDateTime") or r["effectivePeriod"]["start"]))
        if len(infusions) < 6:
            continue
        days = [date.fromisoformat((r.get("effectiveDateTime") or r["effectivePeriod"]["start"])[:10]) for r in infusions]
        gaps = [(b - a).days for a, b in zip(days, days[1:])]
        assert gaps[:4] == [7, 7, 7, 7] and set(gaps[4:]) == {14}
        assert all(r["dosage"]["dose"] == {"value": round(weight, 1), "unit": "mg", "system": codes.UCUM, "code": "mg"}
                   for r in infusions)
        assert all(r["dosage"]["route"]["coding"][0]["code"] == "47625008" for r in infusions)
        checked += 1
    assert checked >= 1


def test_mogamulizumab_starts_after_first_advanced_stage_in_patients_alive_then(tmp_path):
    cohort = generate_cohort(GeneratorConfig(patients=400, seed=21))
    treated = [r.course for r in cohort.records if r.course.mogamulizumab_start]
    assert len(treated) >= 10
    for course in treated:
        assert course.first_advanced_date + timedelta(days=90) <= course.mogamulizumab_start
        assert course.mogamulizumab_start < course.followup_end
        assert course.mogamulizumab_start >= date(2018, 8, 8)
        line = next(c for c in course.drug_courses if c.drug == "mogamulizumab").line_number
        assert line >= 2  # never first line: it comes later in the course, to survivors only


def test_lines_are_numbered_in_time_order_and_never_overlap():
    cohort = generate_cohort(GeneratorConfig(patients=300, seed=22))
    for record in cohort.records:
        lines = [c for c in record.course.drug_courses if c.line_number > 0]
        assert [c.line_number for c in lines] == list(range(1, len(lines) + 1))
        for earlier, later in zip(lines, lines[1:]):
            assert earlier.end < later.start
        assert len({c.drug for c in lines}) == len(lines)


def test_death_time_inverts_the_piecewise_cumulative_hazard_exactly():
    """Hazard 0.1 on [0, 2), 0.3 after; treatment from 1 halves it. Cumulative hazard at t = 3:
    0.1*1 + 0.05*1 + 0.15*1 = 0.30, so the Exp(1) draw 0.30 dies at exactly 3.0 years; without
    treatment 0.1*2 = 0.2, remaining 0.1 at 0.3/yr -> 2 + 1/3 years."""
    segments = [(0.0, 0.1), (2.0, 0.3)]
    assert survival.death_time(0.30, segments, 1.0, 0.5) == pytest.approx(3.0)
    assert survival.death_time(0.30, segments, None, 1.0) == pytest.approx(2.0 + 1 / 3)


def test_mogamulizumab_effect_in_the_counterfactual_truth():
    """Same random draws with and without treatment: with HR 1 the latent death dates coincide;
    with HR 0.5 no treated patient dies earlier and some live longer."""
    neutral = generate_cohort(GeneratorConfig(patients=300, seed=23, mogamulizumab_hr=1.0))
    for record in neutral.records:
        assert record.course.latent_death_date == record.course.latent_death_date_without_mogamulizumab
    strong = generate_cohort(GeneratorConfig(patients=300, seed=23, mogamulizumab_hr=0.5))
    courses = [r.course for r in strong.records]
    assert all(c.latent_death_date >= c.latent_death_date_without_mogamulizumab for c in courses)
    longer = [c for c in courses if c.latent_death_date > c.latent_death_date_without_mogamulizumab]
    assert longer and all(c.latent_mogamulizumab_start < c.latent_death_date_without_mogamulizumab for c in longer)


def test_truth_json_has_parameters_medians_and_anomalies(messy_dir):
    summary = json.loads((messy_dir / "truth.json").read_text())
    assert summary["parameters"] == {"patients": 60, "seed": 12, "messy": True, "mogamulizumab_hr": 0.7,
                                     "start_year": 2005, "end_date": "2024-12-31"}
    assert set(summary["true_os_from_first_advanced"]["by_clipi_group"]) <= {"low", "intermediate", "high"}
    assert summary["true_os_from_diagnosis"]["all"]["n"] == 60
    assert summary["true_os_from_diagnosis"]["all"]["median_years"] > 0
    assert {a["kind"] for a in summary["anomalies"]} == set(messy.KINDS)


def test_clean_cohort_has_no_anomalies_and_no_resent_files(clean_dir):
    assert all(row["anomalies"] == "" for row in read_truth(clean_dir).values())
    assert not list((clean_dir / "fhir").glob("*.resent.json"))


def test_messy_resent_files_hold_same_ids_same_content_or_newer_version(messy_dir):
    truth = read_truth(messy_dir)
    main = {f"{r['resourceType']}/{r['id']}": r for resources in bundles(messy_dir).values() for r in resources}
    resent_files = sorted((messy_dir / "fhir").glob("*.resent.json"))
    assert resent_files
    for path in resent_files:
        bundle = json.loads(path.read_text())
        for entry in bundle["entry"]:
            resource, reference = entry["resource"], entry["request"]["url"]
            assert entry["request"]["method"] == "PUT" and reference in main
            original = main[reference]
            patient_id = original["subject"]["reference"].removeprefix("urn:uuid:")
            if resource["meta"]["versionId"] == "2":
                assert reference in anomaly_resources(truth[patient_id], {"duplicate_newer_version"})
                assert original["status"] == "preliminary" and resource["status"] == "final"
            else:
                assert reference in anomaly_resources(truth[patient_id], {"duplicate_same_content"})
                assert strip_reference_style(resource) == strip_reference_style(original)


def test_invalid_config_is_rejected_with_a_clear_message():
    with pytest.raises(ValueError, match="mogamulizumab_hr"):
        generate_cohort(GeneratorConfig(patients=1, seed=1, mogamulizumab_hr=0))
    with pytest.raises(ValueError, match="format"):
        write_cohort(generate_cohort(GeneratorConfig(patients=1, seed=1)), Path("/tmp/unused"), "csv")


# ---------------------------------------------------------------- cross-check with the staging module

@pytest.fixture(scope="module")
def cross_check_cohort():
    return generate_cohort(GeneratorConfig(patients=500, seed=31))


def test_staging_module_derives_the_same_group_on_every_generated_set(cross_check_cohort):
    """Two independent Olsen implementations must agree on every staging set written."""
    olsen = pytest.importorskip("ctcl_map.ctcl.olsen", reason="ctcl_map.staging not available")
    checked = 0
    for record in cross_check_cohort.records:
        for staging in record.course.stagings:
            result = olsen.derive_stage_group(staging.t, staging.n, staging.m, staging.b)
            assert (result.group, result.assumptions) == (staging.stage_group, ()), staging
            checked += 1
    assert checked > 600


def test_staging_module_derives_the_truth_b_from_the_raw_blood_values(cross_check_cohort):
    """Raw values are generated so that both rule sets give the B category in the truth."""
    blood = pytest.importorskip("ctcl_map.ctcl.blood", reason="ctcl_map.staging not available")
    for record in cross_check_cohort.records:
        for staging in record.course.stagings:
            for rules in ("2007", "2022"):
                result = blood.derive_b_category(
                    sezary_per_ul=staging.sezary_per_ul, cd4cd26neg_per_ul=staging.cd4cd26neg_per_ul,
                    cd4_cd8_ratio=staging.cd4_cd8_ratio, clone_positive=staging.blood_clone,
                    lymphocytes_per_ul=staging.lymphocytes_per_ul,
                    sezary_pct_lymphocytes=staging.sezary_pct_lymphocytes, rules=rules)
                assert result.category == staging.b, (rules, staging)


def test_staging_parser_reads_every_written_stage_form(clean_dir):
    """Each T/N/M/B/group value as written (string, text, 'Stage IVA1', '4A1', 'IVA-1', 'cT2b')
    parses to the truth category with ctcl_map.ctcl.tnmb.parse_category."""
    tnmb = pytest.importorskip("ctcl_map.ctcl.tnmb", reason="ctcl_map.staging not available")
    axes = {codes.LOINC_T: "T", codes.LOINC_N: "N", codes.LOINC_M: "M", codes.LOINC_STAGE: "stage", "ISCL-B": "B"}
    truth = read_truth(clean_dir)
    forms = set()
    for patient_id, resources in bundles(clean_dir).items():
        expected = {day: dict(zip(("T", "N", "M", "B"), cats.split("/")), stage=group)
                    for day, cats, group in (s.split(":") for s in truth[patient_id]["stagings"].split(";"))}
        for resource in resources:
            axis = axes.get(code_of(resource)[1]) if resource["resourceType"] == "Observation" else None
            if axis is None:
                continue
            written = resource.get("valueString") or resource["valueCodeableConcept"]["text"]
            forms.add(written)
            assert tnmb.parse_category(axis, written) == expected[resource["effectiveDateTime"][:10]][axis], written
    assert {"4A1", "IVA-1", "Stage IVA1"} & forms and any(f.startswith("cT") for f in forms)


# ---------------------------------------------------------------- committed samples never drift

def test_committed_samples_equal_what_the_documented_command_regenerates(tmp_path):
    # The documented command itself, run as a maintainer runs it (tools/ is not part of the package).
    subprocess.run([sys.executable, str(REPO / "tools" / "regenerate_samples.py"), str(tmp_path)], check=True,
                   capture_output=True)
    regenerated = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert regenerated
    for path in regenerated:
        committed = REPO / "samples" / path.relative_to(tmp_path)
        assert committed.exists(), f"{committed} missing: run python tools/regenerate_samples.py samples"
        assert committed.read_bytes() == path.read_bytes(), f"{committed} drifted from the generator"


def test_local_codes_sent_alone_are_those_the_example_site_override_maps():
    """Coordination with samples/site-mappings/ (another module's files)."""
    site = REPO / "samples" / "site-mappings"
    if not (site / "therapies.csv").exists():
        pytest.skip("samples/site-mappings/therapies.csv not written yet")
    with open(site / "therapies.csv", newline="", encoding="utf-8") as handle:
        mapped = {row["source_code"] for row in csv.DictReader(handle) if row["source_vocabulary_id"] == "LOCAL-DRUGS"}
    assert codes.SITE_MAPPED_LOCAL_DRUGS <= mapped
    with open(site / "procedures.csv", newline="", encoding="utf-8") as handle:
        mapped_procedures = {row["source_code"] for row in csv.DictReader(handle)}
    assert {code for code, _ in codes.LOCAL_PROCEDURE_CODES.values()} <= mapped_procedures


def test_confounding_by_indication_gives_mogamulizumab_to_the_sicker_and_changes_nothing_else():
    from ctcl_map.synthetic.course import confounded_uptake, simulate_course

    plain = GeneratorConfig(patients=1200, seed=15)
    confounded = GeneratorConfig(patients=1200, seed=15, confounding=True)

    def uptake_by_clipi(config):
        counts: dict[str, list[int]] = {}
        for index in range(config.patients):
            course = simulate_course(config, index)
            if course.latent_clipi_group and course.latent_first_advanced_date < date(2016, 1, 1):
                counts.setdefault(course.latent_clipi_group, []).append(course.latent_mogamulizumab_start is not None)
        return {group: sum(flags) / len(flags) for group, flags in counts.items()}

    neutral, by_indication = uptake_by_clipi(plain), uptake_by_clipi(confounded)
    assert abs(neutral["high"] - neutral["low"]) < 0.15
    assert by_indication["high"] > by_indication["low"] + 0.4
    # the same patients up to the treatment decision (later draws shift once a decision differs)
    for index in range(40):
        a, b = simulate_course(plain, index), simulate_course(confounded, index)
        assert (a.subtype, a.diagnosis_date, a.stagings[0], a.latent_clipi_group) == \
               (b.subtype, b.diagnosis_date, b.stagings[0], b.latent_clipi_group)
    assert 0.05 < confounded_uptake("mf", simulate_course(plain, 0).stagings[0], "low") < 0.97


def test_without_background_mortality_every_death_comes_later_or_never():
    from ctcl_map.synthetic.course import simulate_course

    with_background = GeneratorConfig(patients=300, seed=4)
    without = GeneratorConfig(patients=300, seed=4, background_mortality=False)
    pairs = [(simulate_course(with_background, i).latent_death_date, simulate_course(without, i).latent_death_date)
             for i in range(300)]
    assert all(later >= earlier for earlier, later in pairs)
    assert sum(later > earlier for earlier, later in pairs) > 10


def test_new_options_appear_in_truth_json_only_when_used(tmp_path):
    write_cohort(generate_cohort(GeneratorConfig(patients=3, seed=2, confounding=True, background_mortality=False)),
                 tmp_path, "ndjson", False)
    summary = json.loads((tmp_path / "truth.json").read_text())
    assert summary["parameters"]["confounding"] is True and summary["parameters"]["background_mortality"] is False
    assert summary["model"]["mogamulizumab_uptake_logit_by_indication"]["clipi_high"] > 0
