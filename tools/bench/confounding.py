"""Confounding by indication with a known truth: unadjusted vs adjusted mogamulizumab hazard ratios.

Generates synthetic cohorts where mogamulizumab goes preferentially to the sicker patients
(GeneratorConfig(confounding=True)), with a true conditional HR (default 0.7) and no background
mortality (so the all-cause conditional HR equals the CTCL one exactly), loads them through
fhir2omop into DuckDB, and runs every design unadjusted and adjusted by every method.

    python tools/bench/confounding.py --patients 6000 --seeds 1,2,3 --out confounding.json

Prints a Markdown table (the figures in survival/README.md); compute-heavy, not part of the tests.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date
from pathlib import Path

from ctcl_map.pipeline import RunOptions, run_fhir2omop
from ctcl_map.store.database import connect
from ctcl_map.store.prepare import prepare_database
from ctcl_map.survival.study import StudyOptions, run_study, write_study
from ctcl_map.synthetic import GeneratorConfig, generate_cohort, write_cohort
from ctcl_map.vocab.loader import load_shipped_vocabulary

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def confounded_cdm(patients: int, seed: int, hr: float, folder: Path):
    cohort = generate_cohort(GeneratorConfig(patients=patients, seed=seed, mogamulizumab_hr=hr, confounding=True,
                                             background_mortality=False))
    write_cohort(cohort, folder, "ndjson", True)
    db = connect(str(folder / "omop.duckdb"))
    prepare_database(db, load_shipped_vocabulary)
    run_fhir2omop(db, RunOptions(inputs=[folder / "fhir"], mapping_dirs=[SAMPLES / "site-mappings"], oncology=True))
    return db


def estimates(db, admin_end: date, report_dir: Path | None = None) -> list[dict]:
    """Every design unadjusted and adjusted by every method: the rows of the study report."""
    study = run_study(db, StudyOptions(compare="mogamulizumab", admin_end=admin_end))
    if report_dir:
        write_study(study, report_dir)
    return study.comparison


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=6000)
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--hr", type=float, default=0.7)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--report", type=Path, help="write the study report of the first seed into this folder")
    parser.add_argument("--db", type=Path, help="reuse this CDM (built by an earlier run) instead of generating")
    args = parser.parse_args()
    everything = []
    for seed in (int(s) for s in args.seeds.split(",")):
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            db = connect(str(args.db)) if args.db else confounded_cdm(args.patients, seed, args.hr, Path(tmp))
            rows = estimates(db, date(2024, 12, 31), args.report if not everything else None)
            db.close()
        print(f"\nseed {seed}, {args.patients} patients, true conditional HR {args.hr} "
              f"({time.perf_counter() - started:.0f} s)\n")
        print("| design | method | HR (95 % CI) | truth in CI | persons | deaths | max abs SMD before / after |")
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            ci = "not estimable" if r["hazard_ratio"] is None else f"{r['hazard_ratio']:.2f} ({r['lower']:.2f}-{r['upper']:.2f})"
            inside = "" if r["hazard_ratio"] is None else ("yes" if r["lower"] <= args.hr <= r["upper"] else "**no**")
            smd = ("" if r["max_abs_smd_before"] is None else
                   f"{r['max_abs_smd_before']:.2f} / " + ("-" if r["max_abs_smd_after"] is None else f"{r['max_abs_smd_after']:.2f}"))
            print(f"| {r['design']} | {r['method']} | {ci} | {inside} | {r['persons'] or ''} | {r['events'] or ''} | {smd} |")
        everything.append({"seed": seed, "patients": args.patients, "true_hr": args.hr, "rows": rows})
    if args.out:
        args.out.write_text(json.dumps(everything, indent=2))


if __name__ == "__main__":
    main()
