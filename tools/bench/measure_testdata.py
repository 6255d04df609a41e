"""What the third-party test data loads as: per dataset, records loaded, excluded and quarantined by
reason, whether the report's row counts equal the CDM's, and what an unchanged re-run writes.

    python tools/bench/measure_testdata.py                 # every dataset under ../shared/testdata
    python tools/bench/measure_testdata.py --datasets us-core mcode --bundles 20

Each dataset is loaded into a fresh DuckDB file (one worker, no oncology step for speed), then
loaded again unchanged with --full semantics (every file read). Figures are printed as JSON,
never asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

TESTDATA = ROOT.parent / "shared" / "testdata"  # ../shared beside the checkout, as the tests expect
DATASETS = {
    "us-core": "us-core-examples",
    "mcode": "mcode-extraction-fixtures",
    "synthea-bulk-10": "synthea-bulk-ndjson/10-patients",
    "synthea-bundles": "synthea-r4-bundles",
}
CDM_TABLES = ("person", "visit_occurrence", "condition_occurrence", "drug_exposure", "procedure_occurrence",
              "device_exposure", "measurement", "observation", "death")


def _cdm_counts(db) -> dict[str, int]:
    return {t: db.query(f"SELECT COUNT(*) FROM {db.table(t)}")[0][0] for t in CDM_TABLES}


def _quarantine_rows(db) -> int:
    return db.query(f"SELECT COUNT(*) FROM {db.table('ctcl_quarantine')}")[0][0]


def measure(name: str, inputs: list[Path], workdir: Path) -> dict:
    from ctcl_map.pipeline import RunOptions, run_fhir2omop
    from ctcl_map.store.database import connect

    db = connect(str(workdir / f"{name}.duckdb"))
    try:
        options = RunOptions(inputs=inputs, oncology=False, workers=1, incremental=False)
        started = time.perf_counter()
        first = run_fhir2omop(db, options).to_dict()
        seconds = round(time.perf_counter() - started, 1)
        cdm = _cdm_counts(db)
        quarantine_after_first = _quarantine_rows(db)
        unmapped_in_cdm = db.query(f"SELECT COALESCE(SUM(row_count), 0) FROM {db.table('ctcl_unmapped')} WHERE run_id = ?",
                                   [first["run_id"]])[0][0]
        second = run_fhir2omop(db, options).to_dict()
        written = {t: n for t, n in first["rows_written"].items() if t in CDM_TABLES}
        return {
            "files": first["files"],
            "resources_read": first["resources_read"],
            "loaded": sum(first["resources_loaded"].values()),
            "excluded": first["excluded"],
            "quarantined": first["quarantined"],
            "quarantined_total": sum(first["quarantined"].values()),
            "not_mapped": sum(first["not_mapped_resource_types"].values()),
            "notes": first["notes"],
            "counters": {k: first[k] for k in ("dangling_subject_removed", "visit_links_cleared", "drug_ends_capped_at_death")},
            "report_rows_equal_cdm": {t: (written.get(t, 0), cdm[t]) for t in CDM_TABLES if written.get(t, 0) != cdm[t]},
            "unmapped_rows_reported": sum(first["unmapped_rows_by_vocabulary"].values()),
            "unmapped_rows_recorded": unmapped_in_cdm,
            "rerun_rows_written": sum(second["rows_written"].values()),
            "rerun_quarantined": sum(second["quarantined"].values()),
            "rerun_quarantine_table_growth": _quarantine_rows(db) - quarantine_after_first,
            "seconds": seconds,
        }
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--bundles", type=int, default=0, help="only the first N Synthea bundles (0: all)")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets:
            folder = TESTDATA / DATASETS[name]
            if not folder.is_dir():
                results[name] = "missing"
                continue
            inputs = [folder]
            if name == "synthea-bundles" and args.bundles:
                inputs = sorted(folder.glob("*.json"))[: args.bundles]
            results[name] = measure(name, inputs, Path(tmp))
            print(name, json.dumps(results[name]), file=sys.stderr, flush=True)
    print(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
