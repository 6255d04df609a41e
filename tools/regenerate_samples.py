"""Re-create the committed samples/ (except samples/site-mappings/, which another module owns).

    python tools/regenerate_samples.py samples        # from the repository root

writes samples/cohort-500/ (500 patients, seed 500, gzipped NDJSON + truth) and the single-patient
bundles picked from a 1,000-patient cohort of seed 6 (clean and messy), plus their truth rows.
tests/test_synthetic.py regenerates into a temporary folder and compares bytes, so the committed
files cannot drift from the generator.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable
from pathlib import Path

from ctcl_map.synthetic.generator import generate_cohort, write_cohort
from ctcl_map.synthetic.model import GeneratorConfig, PatientCourse, PatientRecord
from ctcl_map.synthetic.olsen import is_advanced
from ctcl_map.synthetic.truth import TRUTH_COLUMNS, truth_row
from ctcl_map.synthetic.writer import bundle_bytes

COHORT_CONFIG = GeneratorConfig(patients=500, seed=500)
SINGLE_PATIENT_CONFIG = GeneratorConfig(patients=1000, seed=6)
SINGLE_PATIENT_MESSY_CONFIG = GeneratorConfig(patients=1000, seed=6, messy=True)


def _early_skin_directed_only(course: PatientCourse) -> bool:
    return (course.subtype == "mf" and not is_advanced(course.stagings[-1].stage_group) and course.death_date is None
            and all(c.line_number == 0 for c in course.drug_courses) and len(course.procedures) + len(course.drug_courses) >= 2)


def _ss_mogamulizumab_died(course: PatientCourse) -> bool:
    """SS, died, mogamulizumab as second or third line (a readable record, not eight lines)."""
    lines = [c for c in course.drug_courses if c.line_number > 0]
    return (course.subtype == "ss" and course.mogamulizumab_start is not None and course.death_date is not None
            and len(lines) <= 4)


def _first(records: list[PatientRecord], wanted: Callable[[PatientCourse], bool]) -> PatientRecord:
    return next(r for r in records if wanted(r.course))


def _messiest_single_file(records: list[PatientRecord]) -> PatientRecord:
    """Most anomaly kinds (drug-record mess counting double) among patients whose anomalies all
    live in their own bundle."""
    drug_mess = {"entered_in_error", "cancelled_or_not_done", "unknown_local_code"}

    def messiness(record: PatientRecord) -> tuple[int, int]:
        kinds = {str(a["kind"]) for a in record.course.anomalies}
        return len(kinds) + len(kinds & drug_mess), -record.course.index

    return max((r for r in records if not r.resent), key=messiness)


def write_samples(samples_dir: Path) -> list[Path]:
    samples_dir = Path(samples_dir)
    samples_dir.mkdir(parents=True, exist_ok=True)
    written = write_cohort(generate_cohort(COHORT_CONFIG), samples_dir / "cohort-500", "ndjson", gzip=True)
    clean = generate_cohort(SINGLE_PATIENT_CONFIG).records
    messy = generate_cohort(SINGLE_PATIENT_MESSY_CONFIG).records
    picked = {
        "mf_early_stage": _first(clean, _early_skin_directed_only),
        "ss_mogamulizumab_died": _first(clean, _ss_mogamulizumab_died),
        "messy_record": _messiest_single_file(messy),
    }
    truth = io.StringIO()
    writer = csv.DictWriter(truth, fieldnames=("sample", *TRUTH_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for name, record in picked.items():
        path = samples_dir / f"{name}.json"
        path.write_bytes(bundle_bytes(record.resources, record.course.patient_key))
        writer.writerow({"sample": name, **truth_row(record.course)})
        written.append(path)
    truth_path = samples_dir / "single-patient-truth.csv"
    truth_path.write_bytes(truth.getvalue().encode("utf-8"))
    return written + [truth_path]


if __name__ == "__main__":
    for written_path in write_samples(Path(sys.argv[1] if len(sys.argv) > 1 else "samples")):
        print(written_path)
