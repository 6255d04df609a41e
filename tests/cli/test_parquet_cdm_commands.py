"""A Parquet CDM is a database for the analysis commands: built from a DuckDB load of the samples by
`export --format parquet-cdm`, then dq, survival and export on --db CDM_DIR give exactly what they
give on the DuckDB file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ctcl_map.cdm.schema import cdm_fields
from ctcl_map.store.database import connect
from ctcl_map.store.export import export_cdm
from ctcl_map.store.parquet_cdm import current_version, versions_dir
from ctcl_map.synthetic import GeneratorConfig, generate_cohort, write_cohort

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


@pytest.fixture(scope="module")
def source(tmp_path_factory, fresh_db, load) -> Path:
    """A DuckDB CDM of the shipped sample bundles and a small generated cohort, oncology derived."""
    folder = tmp_path_factory.mktemp("parquet-cdm-source")
    write_cohort(generate_cohort(GeneratorConfig(patients=60, seed=17)), folder / "cohort")
    path = folder / "source.duckdb"
    db = fresh_db(str(path))
    try:
        load(db, folder / "cohort" / "fhir", *sorted(SAMPLES.glob("*.json")), mapping_dirs=[SAMPLES / "site-mappings"], oncology=True)
    finally:
        db.close()
    return path


@pytest.fixture(scope="module")
def parquet_cdm(source, tmp_path_factory, run_cli) -> Path:
    cdm = tmp_path_factory.mktemp("parquet-cdm") / "cdm"
    result = run_cli("export", str(cdm), "--db", str(source), "--format", "parquet-cdm")
    assert result.returncode == 0, result.stderr
    assert "40 tables" in result.stdout  # the 39 CDM tables and ctcl_first_advanced
    return cdm


def _copies(source: Path, folder: Path) -> tuple[Path, Path]:
    """A copy of the DuckDB file and a Parquet CDM exported from it, for a test that writes."""
    folder.mkdir()
    copy = folder / "copy.duckdb"
    shutil.copy(source, copy)
    with connect(source, read_only=True) as db:
        export_cdm(db, folder / "cdm", "parquet-cdm")
    return copy, folder / "cdm"


def _without_timings(report: dict) -> dict:
    """A dq --json report without what differs between two runs on the same rows (time, label)."""
    if isinstance(report, dict):
        return {k: _without_timings(v) for k, v in report.items() if k not in ("seconds", "database")}
    if isinstance(report, list):
        return [_without_timings(v) for v in report]
    return report


def test_dq_on_the_parquet_cdm_gives_the_results_of_the_duckdb_file(source, parquet_cdm, run_cli):
    on_duckdb = run_cli("dq", "--db", str(source), "--json")
    on_parquet = run_cli("dq", "--db", str(parquet_cdm), "--json")
    assert on_parquet.returncode == on_duckdb.returncode, on_parquet.stderr
    expected = _without_timings(json.loads(on_duckdb.stdout))
    assert len(expected["results"]) > 1000
    assert _without_timings(json.loads(on_parquet.stdout)) == expected


def test_export_from_the_parquet_cdm_writes_the_files_of_the_duckdb_file(source, parquet_cdm, run_cli, tmp_path):
    for db, out in ((source, tmp_path / "from-duckdb"), (parquet_cdm, tmp_path / "from-parquet")):
        result = run_cli("export", str(out), "--db", str(db), "--format", "csv")
        assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "from-duckdb").iterdir())
    assert names == sorted(f"{table}.csv" for table in cdm_fields())
    for name in names:
        assert (tmp_path / "from-parquet" / name).read_bytes() == (tmp_path / "from-duckdb" / name).read_bytes(), name


@pytest.mark.parametrize("args", [
    ("--strata", "ctcl_type"),
    ("--cohort", "advanced", "--compare", "mogamulizumab"),
])
def test_survival_on_the_parquet_cdm_gives_the_results_of_the_duckdb_file_and_publishes_its_cohorts(source, run_cli, tmp_path, args):
    copy, cdm = _copies(source, tmp_path / "copies")
    before = current_version(cdm)
    on_duckdb = run_cli("survival", "--db", str(copy), "--json", *args)
    on_parquet = run_cli("survival", "--db", str(cdm), "--json", *args)
    assert on_duckdb.returncode == 0, on_duckdb.stderr
    assert on_parquet.returncode == 0, on_parquet.stderr
    assert on_parquet.stdout == on_duckdb.stdout
    assert json.loads(on_parquet.stdout)["groups"]
    # The cohort tables were published as a new version holding the rows written to the DuckDB file.
    assert "cohort, cohort_definition published to" in on_parquet.stderr
    assert current_version(cdm) != before
    with connect(copy, read_only=True) as db:
        expected = {t: sorted(db.query(f"SELECT * FROM {t}"), key=repr) for t in ("cohort", "cohort_definition")}
    with connect(":memory:") as db:
        for table, rows in expected.items():
            assert rows and sorted(db.query(f"SELECT * FROM read_parquet('{cdm / table}/*.parquet')"), key=repr) == rows


def test_writing_commands_refuse_a_parquet_cdm(source, parquet_cdm, run_cli):
    version = current_version(parquet_cdm)
    files = sorted(p.relative_to(version) for p in version.rglob("*"))
    result = run_cli("fhir2omop", str(SAMPLES / "mf_early_stage.json"), "--db", str(parquet_cdm))
    assert result.returncode == 2
    assert "is a Parquet CDM" in result.stderr and "--engine spark" in result.stderr and "Traceback" not in result.stderr
    flat = run_cli("export", str(parquet_cdm), "--db", str(source), "--format", "csv")  # would write into a published version
    assert flat.returncode == 2 and "--format parquet-cdm" in flat.stderr
    assert current_version(parquet_cdm) == version
    assert sorted(p.relative_to(version) for p in version.rglob("*")) == files


def test_cdm_load_copies_the_parquet_cdm_into_duckdb_once(source, parquet_cdm, run_cli, tmp_path):
    target = tmp_path / "loaded.duckdb"
    result = run_cli("cdm", "load", str(parquet_cdm), "--db", str(target))
    assert result.returncode == 0, result.stderr
    assert "40 tables" in result.stdout
    with connect(source, read_only=True) as expected, connect(target, read_only=True) as loaded:
        for table in [*cdm_fields(), "ctcl_first_advanced"]:
            query = f"SELECT * FROM {table}"
            assert sorted(loaded.query(query), key=repr) == sorted(expected.query(query), key=repr), table
    again = run_cli("cdm", "load", str(parquet_cdm), "--db", str(target))
    assert again.returncode == 0 and "already loaded" in again.stdout
    into_full = run_cli("cdm", "load", str(parquet_cdm), "--db", str(source))
    assert into_full.returncode == 2
    assert "already holds rows" in into_full.stderr and "Traceback" not in into_full.stderr
    not_a_cdm = run_cli("cdm", "load", str(versions_dir(parquet_cdm)), "--db", str(target))
    assert not_a_cdm.returncode == 2 and "not a Parquet CDM" in not_a_cdm.stderr
