"""Parallel conversion: --workers N writes exactly what --workers 1 writes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import ctcl_map.converters.parallel as parallel
from ctcl_map.pipeline import RunOptions, run_fhir2omop
from ctcl_map.store.database import connect

SHARED = Path(__file__).resolve().parents[3] / "shared"

BULK = SHARED / "testdata" / "synthea-bulk-ndjson" / "10-patients"


def _load_twice(database_snapshot, empty_cdm, run_cli, inputs: Path, tmp_path: Path, *extra: str) -> tuple[dict, dict]:
    template = empty_cdm(tmp_path / "empty.duckdb")
    snapshots = []
    for workers in ("1", "2"):
        db_path = tmp_path / f"workers-{workers}.duckdb"
        shutil.copy(template, db_path)
        result = run_cli("fhir2omop", str(inputs), "--db", str(db_path), "--workers", workers, "--quiet", *extra)
        assert result.returncode == 0, result.stderr
        db = connect(db_path)
        snapshots.append(database_snapshot(db))
        db.close()
    return snapshots[0], snapshots[1]


def test_two_workers_write_exactly_what_one_writes_for_bundles(tmp_path, make_inputs, database_snapshot, empty_cdm, run_cli):
    one, two = _load_twice(database_snapshot, empty_cdm, run_cli, make_inputs(tmp_path / "in", copies=4), tmp_path, "--batch-size", "70")
    assert one["person"] and one["measurement"] and one["ctcl_quarantine"]
    assert two == one


@pytest.mark.skipif(not BULK.exists(), reason=f"bulk NDJSON test data not present at {BULK}")
@pytest.mark.parametrize("units_per_worker, in_flight_bytes", [(1, 48_000_000), (12, 48_000_000), (12, 1), (500, 10**12)],
                         ids=["one-unit-each", "default", "bytes-bound", "all-in-flight"])
def test_two_workers_write_exactly_what_one_writes_for_bulk_ndjson_in_chunks(tmp_path, monkeypatch, database_snapshot, fresh_db,
                                                                              units_per_worker, in_flight_bytes):
    """Small units so one NDJSON file is split over many workers' chunks, and small batches so
    batches are written while many units are in flight, whatever the window's width."""
    monkeypatch.setattr(parallel, "NDJSON_LINES_PER_UNIT", 37)
    monkeypatch.setattr(parallel, "IN_FLIGHT_UNITS_PER_WORKER", units_per_worker)
    monkeypatch.setattr(parallel, "IN_FLIGHT_BYTES", in_flight_bytes)
    snapshots = []
    for workers in (1, 2):
        db = fresh_db(str(tmp_path / f"bulk-{workers}.duckdb"))
        run_fhir2omop(db, RunOptions(inputs=[BULK], workers=workers, batch_size=500))
        snapshots.append(database_snapshot(db))
        db.close()
    assert snapshots[0]["procedure_occurrence"] and snapshots[0]["condition_occurrence"] and snapshots[0]["drug_exposure"]
    assert snapshots[1] == snapshots[0]


PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-04-12"}


def _medication(version: str, atc: str) -> dict:
    return {"resourceType": "Medication", "id": "m1", "meta": {"versionId": version},
            "code": {"coding": [{"system": "http://www.whocc.no/atc", "code": atc}]}}


def _request(number: int) -> dict:
    return {"resourceType": "MedicationRequest", "id": f"mr{number}", "status": "active", "intent": "order",
            "subject": {"reference": "Patient/p1"}, "medicationReference": {"reference": "Medication/m1"},
            "authoredOn": f"2020-03-{number:02d}"}


def test_medication_read_in_an_earlier_unit_resolves_in_a_worker_as_it_does_in_one_process(tmp_path, monkeypatch, database_snapshot, fresh_db):
    """Requests in later units (handed to workers before the Medication's unit was settled) must
    see the Medication, and a newer version of it read later applies to requests after it only."""
    monkeypatch.setattr(parallel, "NDJSON_LINES_PER_UNIT", 2)
    folder = tmp_path / "bulk"
    folder.mkdir()
    (folder / "Patient.000.ndjson").write_text(json.dumps(PATIENT) + "\n")
    (folder / "Medication.000.ndjson").write_text(json.dumps(_medication("1", "L01XF03")) + "\n")  # bexarotene
    requests = [_request(n) for n in range(1, 9)]
    (folder / "MedicationRequest.000.ndjson").write_text("\n".join(json.dumps(r) for r in requests) + "\n")
    # A later file (sorted after MedicationRequest) re-defines m1 and is followed by more requests.
    (folder / "z-later.ndjson").write_text("\n".join(json.dumps(r) for r in
                                                     [_medication("2", "L01XX"), _request(20), _request(21)]) + "\n")
    snapshots = []
    for workers in (1, 2):
        db = fresh_db(str(tmp_path / f"med-{workers}.duckdb"))
        run_fhir2omop(db, RunOptions(inputs=[folder], workers=workers, batch_size=3))
        snapshots.append(database_snapshot(db))
        rows = db.query(f"SELECT drug_source_value, COUNT(*) FROM {db.table('drug_exposure')} GROUP BY 1 ORDER BY 1")
        db.close()
        assert rows == [("L01XF03", 8), ("L01XX", 2)], f"workers={workers}"
    assert snapshots[1] == snapshots[0]


def test_units_converted_against_a_stale_medication_index_are_converted_again_and_narrow_the_window(tmp_path, monkeypatch, fresh_db):
    """One line a unit: the requests handed out before the Medication's unit was settled are
    converted again in the loader, flagged; the window then narrows to two units per worker, which
    bounds the re-conversions after m1's later re-definition."""
    monkeypatch.setattr(parallel, "NDJSON_LINES_PER_UNIT", 1)
    monkeypatch.setattr(parallel, "IN_FLIGHT_UNITS_PER_WORKER", 5)
    folder = tmp_path / "bulk"
    folder.mkdir()
    (folder / "Patient.000.ndjson").write_text(json.dumps(PATIENT) + "\n")
    (folder / "Medication.000.ndjson").write_text(json.dumps(_medication("1", "L01XF03")) + "\n")
    (folder / "MedicationRequest.000.ndjson").write_text("\n".join(json.dumps(_request(n)) for n in range(1, 21)) + "\n")
    (folder / "z-later.ndjson").write_text("\n".join(json.dumps(r) for r in [_medication("2", "L01XX")] +
                                                     [_request(n) for n in range(21, 31)]) + "\n")
    reconverted: list[str] = []
    real_settle = parallel._settle

    def spy(setup, unit, future, medications):
        result = real_settle(setup, unit, future, medications)
        if result.reconverted:
            reconverted.append(f"{unit.path.name}:{unit.lines[0][0]}")
        return result

    monkeypatch.setattr(parallel, "_settle", spy)
    db = fresh_db(str(tmp_path / "cdm.duckdb"))
    run_fhir2omop(db, RunOptions(inputs=[folder], workers=2, batch_size=4))
    rows = db.query(f"SELECT drug_source_value, COUNT(*) FROM {db.table('drug_exposure')} GROUP BY 1 ORDER BY 1")
    db.close()
    assert rows == [("L01XF03", 20), ("L01XX", 10)]
    # Handed out before unit 2 (the Medication) was settled: units 3..10 (10 in flight), and unit 11
    # once unit 1 was. Hand-out and settling follow the input order, not the workers' timing.
    early = [name for name in reconverted if name.startswith("MedicationRequest")]
    assert early == [f"MedicationRequest.000.ndjson:{line}" for line in range(1, 10)]
    # Narrowed to 2 x 2 units in flight: the three requests after m1's second version that were
    # handed out with it, not nine.
    late = [name for name in reconverted if name.startswith("z-later")]
    assert late == ["z-later.ndjson:2", "z-later.ndjson:3", "z-later.ndjson:4"]


def test_the_window_is_bounded_by_units_and_by_input_bytes_and_narrows_for_good():
    window = parallel.InFlightWindow(workers=2)
    small = parallel.Unit(1, Path("a.json"), size=1000)
    for _ in range(2 * parallel.IN_FLIGHT_UNITS_PER_WORKER - 1):
        window.entered(small)
    assert not window.full()
    window.entered(small)
    assert window.full()
    window.left(small)
    assert not window.full()

    window = parallel.InFlightWindow(workers=2)
    large = parallel.Unit(1, Path("b.json"), size=parallel.IN_FLIGHT_BYTES // 3)
    for _ in range(3):
        window.entered(large)
    assert not window.full()  # over the bytes, but fewer than two units per worker
    window.entered(large)
    assert window.full()

    window = parallel.InFlightWindow(workers=2)
    for _ in range(4):
        window.entered(small)
    assert not window.full()
    window.shrink()
    assert window.full()


def test_a_stale_worker_answer_is_detected_and_the_unit_reconverted():
    """The check itself: an answer that differs from the complete index forces re-conversion."""
    index = parallel.MedicationIndex({"Medication/m1": {"v": 1}})
    assert index.get("Medication/m1") == {"v": 1}
    assert index.get("Medication/none") is None
    assert index.outside_answers == {"Medication/m1": {"v": 1}, "Medication/none": None}
    index["Medication/m2"] = {"v": 2}  # the unit's own Medication: not an outside answer
    assert index.get("Medication/m2") == {"v": 2}
    assert "Medication/m2" not in index.outside_answers


def test_default_is_one_worker_per_available_core_and_none_for_small_inputs():
    import os

    from ctcl_map.pipeline import PARALLEL_MIN_BYTES, default_workers

    assert default_workers(PARALLEL_MIN_BYTES - 1) == 1
    assert default_workers(PARALLEL_MIN_BYTES) == len(os.sched_getaffinity(0))


def test_no_more_workers_than_json_files_to_read(tmp_path, fresh_db, make_inputs):
    """An incremental run of one changed Bundle converts in this process even with --workers 2."""
    inputs = make_inputs(tmp_path / "in", copies=2, golden=False)
    db = fresh_db(str(tmp_path / "cdm.duckdb"))
    first = run_fhir2omop(db, RunOptions(inputs=[inputs], workers=2, incremental=True))
    changed = sorted(inputs.glob("*.json"))[0]
    changed.write_text(changed.read_text().replace('"active"', '"inactive"', 1))
    again = run_fhir2omop(db, RunOptions(inputs=[inputs], workers=2, incremental=True))
    db.close()
    assert first.workers == 2
    assert again.files == 1 and again.workers == 1


def test_with_workers_a_streamed_bundle_is_converted_in_the_loader_lazily_and_writes_what_one_process_writes(tmp_path, monkeypatch, database_snapshot, fresh_db, make_inputs):
    """A Bundle the reader streams (here: over 1 kB) is not sent to a worker, which would hand its
    rows back whole; the loader converts it lazily, in input order with the units around it."""
    import functools

    import ctcl_map.pipeline as pipeline

    monkeypatch.setattr(pipeline, "ReadLimits", functools.partial(pipeline.ReadLimits, whole_file_bytes=1000))
    in_loader: list[str] = []
    real_convert_unit = parallel.convert_unit

    def spy(setup, unit, *args, **kwargs):
        in_loader.append(unit.path.name)
        return real_convert_unit(setup, unit, *args, **kwargs)

    monkeypatch.setattr(parallel, "convert_unit", spy)
    inputs = make_inputs(tmp_path / "in", copies=2)
    (inputs / "small.json").write_text(json.dumps(PATIENT))  # under 1 kB: a worker's
    snapshots = []
    for workers in (1, 2):
        in_loader.clear()
        db = fresh_db(str(tmp_path / f"streamed-{workers}.duckdb"))
        run_fhir2omop(db, RunOptions(inputs=[inputs], workers=workers, batch_size=70))
        snapshots.append(database_snapshot(db))
        db.close()
    def streamed(path: Path) -> bool:  # over 1 kB, a gzipped file judged at 8 times its size
        return path.stat().st_size * (8 if path.suffix == ".gz" else 1) > 1000

    bundles = [p for p in inputs.iterdir() if p.suffix in (".json", ".gz")]
    assert {p.name for p in bundles if streamed(p)} == set(in_loader)
    assert "small.json" not in in_loader and any(not streamed(p) for p in bundles)
    assert snapshots[0]["person"] and snapshots[1] == snapshots[0]


def test_what_travels_back_from_a_worker_keeps_the_version_of_a_resource_not_its_tags():
    from ctcl_map.model import Conversion, ConvertedItem, SourceItem

    meta = {"versionId": "3", "lastUpdated": "2024-01-02T03:04:05Z", "tag": [{"code": "synthea-5-2019"}], "profile": ["x"]}
    resource = {**PATIENT, "meta": meta}
    slim = parallel._slim(ConvertedItem(SourceItem(resource, "Patient", "p1", "f.json", "entry[0]"), Conversion(), "h"))
    assert slim.item.resource == {"meta": {"versionId": "3", "lastUpdated": "2024-01-02T03:04:05Z"}}
    assert slim.item.key == "Patient/p1" and slim.content_hash == "h"
    unversioned = parallel._slim(ConvertedItem(SourceItem({**PATIENT, "meta": "odd"}, "Patient", "p1", "f.json", "x"), Conversion(), "h"))
    assert unversioned.item.resource == {"meta": "odd"}  # the writer reads a meta that is no object as none
