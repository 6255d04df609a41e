"""Hostile input: one bad resource costs only itself, on DuckDB and PostgreSQL alike.

The corpus holds what a fuzzer and an unlucky operator found fatal: fields of the wrong JSON type,
one-key objects where arrays belong, numbers and dates out of range, nesting beyond 255 levels,
9999-12-31 with a supply duration, NUL characters, ids over 64 characters, deeply nested Bundles
(long positions), a file name that is not UTF-8, a BOM, invalid UTF-8, lone surrogates, NaN and
1e400, UTF-16 and CR-only files. The run completes (derivations included), every problem is a
quarantine row naming file, position and reason, and both backends end with the same CDM.
"""

from __future__ import annotations

import gzip
import json
import os
from datetime import date, timedelta
from pathlib import Path

import pytest

from ctcl_map.pipeline import RunOptions, run_fhir2omop
from ctcl_map.quality.validate import validate_inputs

P1 = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-04-12"}
SUBJECT = {"reference": "Patient/p1"}
MF = {"coding": [{"system": "http://snomed.info/sct", "code": "118618005"}]}
MOGAMULIZUMAB = {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "2054068"}]}
LDH = {"coding": [{"system": "http://loinc.org", "code": "2532-0"}]}


def _condition(rid: str, **fields) -> dict:
    return {"resourceType": "Condition", "id": rid, "subject": SUBJECT, "code": MF, "onsetDateTime": "2019-02-01", **fields}


def _deep(levels: int) -> dict:
    value: dict = {"url": "http://example.org/leaf", "valueString": "x"}
    for _ in range(levels):
        value = {"url": "http://example.org/nest", "extension": [value]}
    return value


def _nested_bundle(levels: int, resource: dict) -> dict:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": resource}]}
    for _ in range(levels):
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": bundle}]}
    return bundle


def _entries(*resources: dict) -> bytes:
    return json.dumps({"resourceType": "Bundle", "type": "collection",
                       "entry": [{"resource": r} for r in resources]}).encode()


def write_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    bad_shapes = [
        P1,
        _condition("c-ok"),
        _condition("c-coding-object", code={"coding": {"system": "http://snomed.info/sct", "code": "118618005"}}),
        _condition("c-stage-number", stage=7, verificationStatus={"coding": 3}),
        {"resourceType": "Observation", "id": "o-components", "status": "final", "subject": SUBJECT,
         "effectiveDateTime": "2019-03-01", "code": {"coding": 5}, "component": {"code": "x"}, "category": "lab"},
        {"resourceType": "Observation", "id": "o-text-value", "status": "final", "subject": SUBJECT,
         "effectiveDateTime": "2019-03-01", "code": LDH, "valueQuantity": {"value": "12"}},
        {"resourceType": "Encounter", "id": "e-class-list", "status": ["finished"], "subject": SUBJECT,
         "period": {"start": "2019-01-01"}, "class": {"system": ["x"], "code": "AMB"}},
        {"resourceType": "Procedure", "id": "pr-status-object", "status": {"x": 1}, "subject": SUBJECT},
        {"resourceType": "MedicationRequest", "id": "mr-9999", "status": "active", "intent": "order", "subject": SUBJECT,
         "authoredOn": "9999-12-31", "medicationCodeableConcept": MOGAMULIZUMAB,
         "dispenseRequest": {"expectedSupplyDuration": {"value": 30, "code": "d"}}},
        {"resourceType": "MedicationRequest", "id": "mr-refills", "status": "active", "intent": ["order"], "subject": SUBJECT,
         "authoredOn": "2019-01-01", "medicationCodeableConcept": MF},
        {"resourceType": "MedicationRequest", "id": "mr-huge-refills", "status": "active", "intent": "order", "subject": SUBJECT,
         "authoredOn": "2019-01-01", "medicationCodeableConcept": MOGAMULIZUMAB, "dispenseRequest": {"numberOfRepeatsAllowed": 2**40}},
        {"resourceType": "MedicationDispense", "id": "md-supply", "status": "completed", "subject": SUBJECT,
         "whenHandedOver": "2019-01-01", "medicationCodeableConcept": MOGAMULIZUMAB, "daysSupply": {"value": 1e300, "code": "d"}},
        _condition("c-1700", onsetDateTime="1700-01-01"),
        _condition("c-deep", extension=[_deep(300)]),
        _condition("x" * 300),
        _condition("c-nul", note=[{"text": "a\u0000b"}], code={"coding": [{"system": "http://snomed.info/sct", "code": "1186\u000018005"}]}),
        {"resourceType": "Patient", "id": "p-future", "birthDate": (date.today() + timedelta(days=30)).isoformat()},
        {"resourceType": "Patient", "id": "p-2999", "birthDate": "2999-01-01"},
        {"resourceType": "Patient", "id": "p-meta", "birthDate": "1960-01-01", "meta": ["v1"]},
        {"resourceType": "x" * 100, "id": "long-type"},
        _condition("c-before-birth", onsetDateTime="1949-01-01"),  # loaded, counted
    ]
    (folder / "bad_shapes.json").write_bytes(_entries(*bad_shapes))
    (folder / "nested.json").write_text(json.dumps(_nested_bundle(30, _condition("c-nested"))))
    # A byte that is not UTF-8, a lone surrogate, NaN and 1e400, each in an entry of its own.
    broken = _entries(P1, _condition("c-latin1", note=[{"text": "BYTE"}]), _condition("c-surrogate", note=[{"text": "SURR"}]),
                      _condition("c-nan"), _condition("c-inf"), _condition("c-after"))
    broken = (broken.replace(b'"BYTE"', b'"caf\xe9"').replace(b'"SURR"', b'"\\ud800"')
              .replace(b'"id": "c-nan", ', b'"id": "c-nan", "x": NaN, ').replace(b'"id": "c-inf", ', b'"id": "c-inf", "x": 1e400, '))
    (folder / "broken_bytes.json").write_bytes(broken)
    (folder / "bom.json").write_bytes(b"\xef\xbb\xbf" + _entries({**P1, "id": "p-bom"}))
    (folder / "bom.ndjson").write_bytes(b"\xef\xbb\xbf" + json.dumps({**P1, "id": "p-bom-nd"}).encode() + b"\n"
                                        + json.dumps(_condition("c-bom-nd", subject={"reference": "Patient/p-bom-nd"})).encode() + b"\n")
    (folder / "cr_only.ndjson").write_bytes(json.dumps({**P1, "id": "p-cr"}).encode() + b"\r"
                                            + json.dumps(_condition("c-cr", subject={"reference": "Patient/p-cr"})).encode() + b"\r")
    (folder / "utf16.json").write_bytes(json.dumps({**P1, "id": "p-utf16"}).encode("utf-16"))
    with gzip.open(folder / "patient.ndjson.gz", "wb") as handle:
        handle.write(json.dumps({**P1, "id": "p-gz"}).encode() + b"\n")
    odd_name = os.fsdecode(bytes(folder / "caf") + b"\xe9.json")
    Path(odd_name).write_text(json.dumps({**P1, "id": "p-odd-name"}))
    return folder


EXPECTED_QUARANTINE = [
    ("bad_shapes.json", "entry[10]", "MedicationRequest", "invalid_value"),
    ("bad_shapes.json", "entry[11]", "MedicationDispense", "invalid_value"),
    ("bad_shapes.json", "entry[12]", "Condition", "implausible_date"),
    ("bad_shapes.json", "entry[13]", "Condition", "too_deeply_nested"),
    ("bad_shapes.json", "entry[14]", "Condition", "invalid_id"),
    ("bad_shapes.json", "entry[16]", "Patient", "birth_in_future"),
    ("bad_shapes.json", "entry[17]", "Patient", "implausible_date"),
    ("bad_shapes.json", "entry[19]", None, "not_fhir"),
    ("bad_shapes.json", "entry[5]", "Observation", "invalid_value"),
    ("bad_shapes.json", "entry[8]", "MedicationRequest", "implausible_date"),
    ("broken_bytes.json", "entry[3]", None, "not_json"),
    ("broken_bytes.json", "entry[4]", None, "not_json"),
    ("utf16.json", "-", None, "not_utf8"),
]


def _quarantine(db) -> list[tuple]:
    rows = db.query(f"SELECT source_file, source_position, resource_type, reason FROM {db.table('ctcl_quarantine')}")
    return sorted(((Path(f).name, p, t, r) for f, p, t, r in rows), key=repr)


def _load(db, folder: Path):
    return run_fhir2omop(db, RunOptions(inputs=[folder], oncology=True))


def _check_run(db, report) -> None:
    assert _quarantine(db) == EXPECTED_QUARANTINE
    assert db.query(f"SELECT status FROM {db.table('ctcl_run')}") == [("completed",)]
    persons = {key for (key,) in db.query(f"SELECT resource_key FROM {db.table('ctcl_resource_state')} "
                                          "WHERE status = 'loaded' AND resource_key LIKE 'Patient/%'")}
    assert persons == {"Patient/p1", "Patient/p-meta", "Patient/p-bom", "Patient/p-bom-nd", "Patient/p-cr", "Patient/p-gz",
                       "Patient/p-odd-name"}
    loaded = {key for (key,) in db.query(f"SELECT resource_key FROM {db.table('ctcl_resource_state')} "
                                         "WHERE status = 'loaded' AND resource_key NOT LIKE 'Patient/%'")}
    assert loaded == {"Condition/c-ok", "Condition/c-coding-object", "Condition/c-stage-number", "Observation/o-components",
                      "Encounter/e-class-list", "Condition/c-nul", "Condition/c-nested", "Condition/c-latin1",
                      "Condition/c-surrogate", "Condition/c-after", "Condition/c-bom-nd", "Condition/c-cr",
                      "Condition/c-before-birth"}
    assert report.events_before_birth == 1
    assert report.outcome.notes["invalid_text_replaced"] == 3  # the NUL, the byte, the surrogate
    # derivations ran (persons with events: p1, p-bom-nd, p-cr)
    assert db.query(f"SELECT COUNT(*) FROM {db.table('observation_period')}") == [(3,)]
    assert db.query(f"SELECT COUNT(*) FROM {db.table('condition_era')}") == [(4,)]
    sources = {s for (s,) in db.query(f"SELECT condition_source_value FROM {db.table('condition_occurrence')}")}
    assert "1186\ufffd18005" in sources
    files = {f for (f,) in db.query(f"SELECT DISTINCT source_file FROM {db.table('ctcl_resource_state')}")}
    assert any(f.endswith("caf\\xe9.json") for f in files)


def test_hostile_corpus_loads_everything_else_on_duckdb_and_a_rerun_changes_nothing(tmp_path, cdm_snapshot, fresh_db):
    folder = write_corpus(tmp_path / "in")
    db = fresh_db()
    try:
        report = _load(db, folder)
        _check_run(db, report)
        before = cdm_snapshot(db)
        _load(db, folder)
        assert cdm_snapshot(db) == before
        assert _quarantine(db) == EXPECTED_QUARANTINE
        # converted in worker processes: the same
        parallel = fresh_db()
        try:
            report = run_fhir2omop(parallel, RunOptions(inputs=[folder], oncology=True, workers=2))
            assert report.workers == 2
            _check_run(parallel, report)
            assert cdm_snapshot(parallel) == before
        finally:
            parallel.close()
    finally:
        db.close()


@pytest.mark.postgres
def test_duckdb_and_postgresql_agree_on_the_hostile_corpus(tmp_path, cdm_snapshot, clinical_tables, drop_schema, fresh_db, postgres_or_skip):
    url, schema = postgres_or_skip("ctcl_hostile")
    folder = write_corpus(tmp_path / "in")
    duck = fresh_db()
    pg = fresh_db(url, cdm_schema=schema)
    try:
        _check_run(duck, _load(duck, folder))
        _check_run(pg, _load(pg, folder))
        tables = clinical_tables + ("source_to_concept_map",)
        assert cdm_snapshot(pg, tables) == cdm_snapshot(duck, tables)
        message = "SELECT source_position, reason, message FROM {} ORDER BY 1, 2"
        assert pg.query(message.format(pg.table("ctcl_quarantine"))) == duck.query(message.format(duck.table("ctcl_quarantine")))
    finally:
        duck.close()
        pg.close()
        drop_schema(schema)


def test_validate_reports_the_corpus_without_a_traceback(tmp_path):
    folder = write_corpus(tmp_path / "in")
    report = validate_inputs([folder])
    rules = {(Path(f.file).name, f.path.split(".")[0], f.rule) for f in report.findings}
    for name, position, _, reason in EXPECTED_QUARANTINE:
        if reason in ("not_json", "not_fhir", "invalid_id", "not_utf8"):
            assert (name, "" if position == "-" else position, f"input.{reason}") in rules
        else:
            assert any(r[0] == name and r[1] == position and r[2] == f"conversion.{reason}" for r in rules), (name, position, reason)


def test_resource_and_decompressed_limits_are_quarantine_reasons(db, tmp_path):
    big = _condition("c-big", note=[{"text": "x" * 5000}])
    (tmp_path / "b.ndjson").write_text(json.dumps(P1) + "\n" + json.dumps(big) + "\n" + json.dumps(_condition("c2")) + "\n")
    (tmp_path / "bundle.json").write_bytes(_entries(big, _condition("c3")))
    with gzip.open(tmp_path / "bomb.ndjson.gz", "wb") as handle:
        handle.write(json.dumps({**P1, "id": "p2"}).encode() + b"\n" + b" " * 100_000 + b"\n")
    report = run_fhir2omop(db, RunOptions(inputs=[tmp_path], max_resource_bytes=4000, max_decompressed_bytes=50_000))
    assert _quarantine(db) == [("b.ndjson", "line 2", None, "resource_too_large"),
                               ("bomb.ndjson.gz", "-", None, "decompressed_too_large"),
                               ("bundle.json", "entry[0]", None, "resource_too_large")]
    assert report.loaded_resources == 4  # p1, c2, c3 and p2 (read before the limit)
