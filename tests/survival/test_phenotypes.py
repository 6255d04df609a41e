"""Five published cohort definitions (shared/reference/ohdsi-cohorts, byte for byte as published) run
unmodified through `--circe` on a generated MF/SS cohort.

With the shipped vocabulary subset: OMOPCAN's explicit list finds every patient whose diagnosis is
coded (free-text diagnoses stay concept 0); the PhenotypeLibrary definitions that take a grouper with
descendants (622 NHL, 945 malignant neoplasm, 1215 any cancer) find nobody, because the subset holds
no ancestry above MF/SS, and say so with a pointer to `ctcl-map vocab load`; the B-cell lymphoma
definition (567) finds nobody, as it must for T-cell lymphomas.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ctcl_map.survival import SurvivalSpec, run_survival
from ctcl_map.synthetic import GeneratorConfig, generate_cohort, write_cohort

SHARED = Path(__file__).resolve().parents[3] / "shared"

pytest.importorskip("circe", reason="ohdsi-circepy is not installed")
COHORTS = SHARED / "reference" / "ohdsi-cohorts"
pytestmark = pytest.mark.skipif(not COHORTS.exists(), reason=f"{COHORTS} (published cohort definitions) not present")
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
MF_SS_CODED = ("C84.0", "C84.1", "9700/3", "9701/3", "118618005", "118611004")


@pytest.fixture(scope="module")
def generated(tmp_path_factory, fresh_db, load):
    out = tmp_path_factory.mktemp("phenotypes")
    write_cohort(generate_cohort(GeneratorConfig(patients=60, seed=16)), out, "ndjson")
    db = fresh_db()
    load(db, out / "fhir", mapping_dirs=[SAMPLES / "site-mappings"], oncology=True)
    yield db
    db.close()


def _found(db, name: str):
    result = run_survival(db, SurvivalSpec(circe_json=COHORTS / f"{name}.json"))
    return result.attrition[0].persons_after, result.warnings


def test_the_generator_records_the_diagnosis_at_many_visits(generated):
    counts = [row[0] for row in generated.query(
        "SELECT COUNT(*) FROM condition_occurrence WHERE condition_concept_id <> 0 GROUP BY person_id")]
    assert len(counts) >= 50
    assert sum(1 for n in counts if n >= 2) / len(counts) > 0.9  # "two diagnosis records" phenotypes
    dates = generated.query("SELECT COUNT(DISTINCT condition_start_date) FROM condition_occurrence GROUP BY person_id")
    assert max(row[0] for row in dates) >= 3


def test_published_definitions_on_the_shipped_vocabulary(generated):
    persons = generated.query("SELECT COUNT(*) FROM person")[0][0]
    coded = generated.query("SELECT COUNT(DISTINCT person_id) FROM condition_occurrence WHERE condition_concept_id <> 0")[0][0]
    found, warnings = _found(generated, "omopcan_non_hodgkin")
    assert (found, warnings) == (coded, [])
    assert coded >= 0.85 * persons
    for name, shown in (("phenotypelibrary_622", "1 of 1 concept-set roots"),
                        ("phenotypelibrary_945", "443392 Malignant neoplastic disease"),
                        ("phenotypelibrary_1215", "48 of 48 concept-set roots")):
        found, warnings = _found(generated, name)
        assert found == 0, name
        gap = [w for w in warnings if "have no descendants in the loaded vocabulary" in w]
        assert len(gap) == 1 and shown in gap[0] and "ctcl-map vocab load" in gap[0], (name, warnings)
    assert _found(generated, "phenotypelibrary_567")[0] == 0  # B-cell: a negative control
