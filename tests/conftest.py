"""Shared test fixtures: load FHIR into a fresh in-memory CDM and read rows back exactly.

Tests never import this module: pytest loads it and hands its fixtures to the tests that name
them. Helpers a test calls with arguments are fixtures that return the function."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import uuid
from datetime import date, datetime
from pathlib import Path

import pytest

from ctcl_map.cdm.schema import columns, primary_key
from ctcl_map.pipeline import RunOptions, run_fhir2omop
from ctcl_map.store.database import Database, connect
from ctcl_map.store.prepare import prepare_database
from ctcl_map.vocab.loader import load_shipped_vocabulary

TEST_SALT = "00" * 32  # the pseudonym key of every test load ($CTCL_MAP_PSEUDONYM_KEY)
CLINICAL_TABLES = (
    "person", "death", "visit_occurrence", "condition_occurrence", "drug_exposure", "procedure_occurrence",
    "device_exposure", "measurement", "observation", "observation_period", "condition_era", "drug_era",
)
# Per-run logs: which run did what differs between a killed-and-resumed load and a single one.
RUN_LOG_TABLES = ("ctcl_run", "ctcl_unmapped")
RUN_COLUMNS = ("run_id", "seen_run")
PG_URL = os.environ.get("CTCL_MAP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory):
    """Tests never read or write the user's ~/.cache/ctcl-map (validated mapping files), nor
    their pseudonym key: every load uses the fixed test key (subprocesses inherit it)."""
    os.environ["CTCL_MAP_CACHE_DIR"] = str(tmp_path_factory.mktemp("ctcl-map-cache"))
    os.environ["CTCL_MAP_PSEUDONYM_KEY"] = TEST_SALT
    os.environ["CTCL_MAP_KEY_FILE"] = str(tmp_path_factory.mktemp("ctcl-map-key") / "pseudonym.key")


def _fresh_db(target: str = ":memory:", cdm_schema: str | None = None) -> Database:
    db = connect(target, cdm_schema=cdm_schema)
    prepare_database(db, load_shipped_vocabulary)
    return db


def _load(db: Database, *paths: Path, mapping_dirs=(), oncology: bool = False):
    """Converter rules are tested without the oncology derivation step unless asked for."""
    return run_fhir2omop(db, RunOptions(inputs=list(paths), mapping_dirs=mapping_dirs, oncology=oncology))


def _pseudonym(patient_key: str) -> str:
    return "p-" + hmac.new(bytes.fromhex(TEST_SALT), patient_key.encode(), hashlib.sha256).hexdigest()[:24]


def _plain(value):
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return value
    return value


def _table_rows(db: Database, table: str) -> list[dict]:
    """Rows as dicts of their non-NULL columns, in primary-key order."""
    cols = columns(table)
    order = primary_key(table) or ", ".join(cols[:3])
    rows = db.query(f"SELECT {', '.join(cols)} FROM {db.table(table)} ORDER BY {order}")
    return [{c: _plain(v) for c, v in zip(cols, row) if v is not None} for row in rows]


def _cdm_snapshot(db: Database, tables=CLINICAL_TABLES) -> dict[str, list[dict]]:
    return {table: _table_rows(db, table) for table in tables}


@pytest.fixture
def db():
    database = _fresh_db()
    yield database
    database.close()


def _postgres_or_skip(prefix: str = "t") -> tuple[str, str]:
    """(url, fresh schema name) or skip with the reason the server is not usable."""
    try:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test", connect_timeout=3):
            pass
    except Exception as problem:  # any failure to connect means: no server for this test
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432: {str(problem).strip().splitlines()[0] if str(problem).strip() else problem}")
    return PG_URL, f"{prefix}_{uuid.uuid4().hex[:10]}"


def _drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test", autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(scope="session")
def fresh_db():
    """fresh_db(target=":memory:", cdm_schema=None): a CDM with the shipped vocabulary, ready to load."""
    return _fresh_db


@pytest.fixture(scope="session")
def load():
    """load(db, *paths, mapping_dirs=(), oncology=False): fhir2omop into `db`, the run's report back."""
    return _load


@pytest.fixture(scope="session")
def pseudonym():
    """pseudonym(patient_key): the person_source_value a test load gives that patient."""
    return _pseudonym


@pytest.fixture(scope="session")
def cdm_snapshot():
    """cdm_snapshot(db, tables=CLINICAL_TABLES): {table: rows} for exact comparisons."""
    return _cdm_snapshot


@pytest.fixture(scope="session")
def clinical_tables() -> tuple[str, ...]:
    return CLINICAL_TABLES


@pytest.fixture(scope="session")
def postgres_or_skip():
    """postgres_or_skip(prefix="t") -> (url, fresh schema name), or the test skips with the reason."""
    return _postgres_or_skip


@pytest.fixture(scope="session")
def drop_schema():
    return _drop_schema


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ctcl_map.cli", *args]


def _run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(_cli(*args), capture_output=True, text=True, timeout=timeout, env=_env())


def _start_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(_cli(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env())


def _env() -> dict:
    return {**os.environ, "COLUMNS": "200"}


@pytest.fixture(scope="session")
def run_cli():
    """run_cli(*args, timeout=300) -> CompletedProcess of `python -m ctcl_map.cli ARGS`."""
    return _run_cli


@pytest.fixture(scope="session")
def start_cli():
    """start_cli(*args) -> Popen of `python -m ctcl_map.cli ARGS` (stderr piped)."""
    return _start_cli


def _database_snapshot(db) -> dict[str, list[tuple]]:
    """Every table of the CDM schema (CDM and ctcl_ bookkeeping) as sorted rows, without run ids
    and per-run logs: what must be identical however many runs it took to get there."""
    schema = db.cdm_schema or ("main" if db.dialect == "duckdb" else "public")
    tables = [name for (name,) in db.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE' ORDER BY table_name",
        [schema])]
    snapshot = {}
    for table in tables:
        if table in RUN_LOG_TABLES:
            continue
        columns = [name for (name,) in db.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [schema, table]) if name not in RUN_COLUMNS]
        rows = db.query(f"SELECT {', '.join(chr(34) + c + chr(34) for c in columns)} FROM {db.table(table)}")
        snapshot[table] = sorted(rows, key=repr)
    return snapshot


@pytest.fixture(scope="session")
def database_snapshot():
    return _database_snapshot



class _RepositoryRootIsNoTestPackage:
    """The repository root is the ctcl_map package (pyproject maps it to "."): pytest collects it as
    a plain folder, not a Package, so it does not import its __init__.py a second time under the
    checkout folder's name when it sets the package up (tests/test_package.py guards this).
    Registered as a plugin, not a conftest hook: a conftest's hooks see only its own folder."""

    root = Path(__file__).resolve().parents[1]

    @pytest.hookimpl(tryfirst=True)
    def pytest_collect_directory(self, path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        return pytest.Dir.from_parent(parent, path=path) if path == self.root else None


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_RepositoryRootIsNoTestPackage(), "ctcl-map-repository-root")


def _transaction_bundle(path: Path, *entries: dict) -> Path:
    """A transaction Bundle at `path`: each resource is PUT; an entry given as {"request": ...}
    (a DELETE) goes in as it is."""
    def entry(item: dict) -> dict:
        if "request" in item:
            return item
        return {"resource": item, "request": {"method": "PUT", "url": f"{item['resourceType']}/{item['id']}"}}

    path.write_text(json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [entry(item) for item in entries]}))
    return path


@pytest.fixture(scope="session")
def transaction_bundle():
    return _transaction_bundle
