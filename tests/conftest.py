"""Shared test helpers: load FHIR into a fresh in-memory CDM and read rows back exactly."""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid
from datetime import date, datetime
from pathlib import Path

import pytest

from ctcl_map.cdm.schema import columns, primary_key
from ctcl_map.pipeline import RunOptions, run_fhir2omop
from ctcl_map.store.prepare import prepare_database
from ctcl_map.vocab.loader import load_shipped_vocabulary
from ctcl_map.store.database import Database, connect

TESTS = Path(__file__).parent
FIXTURES = TESTS / "fixtures"
SHARED = Path(__file__).resolve().parents[2] / "shared"
TEST_SALT = "00" * 32  # the pseudonym key of every test load ($CTCL_MAP_PSEUDONYM_KEY)
CLINICAL_TABLES = (
    "person", "death", "visit_occurrence", "condition_occurrence", "drug_exposure", "procedure_occurrence",
    "device_exposure", "measurement", "observation", "observation_period", "condition_era", "drug_era",
)
PG_URL = os.environ.get("CTCL_MAP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory):
    """Tests never read or write the user's ~/.cache/ctcl-map (validated mapping files), nor
    their pseudonym key: every load uses the fixed test key (subprocesses inherit it)."""
    os.environ["CTCL_MAP_CACHE_DIR"] = str(tmp_path_factory.mktemp("ctcl-map-cache"))
    os.environ["CTCL_MAP_PSEUDONYM_KEY"] = TEST_SALT
    os.environ["CTCL_MAP_KEY_FILE"] = str(tmp_path_factory.mktemp("ctcl-map-key") / "pseudonym.key")


def fresh_db(target: str = ":memory:", cdm_schema: str | None = None) -> Database:
    db = connect(target, cdm_schema=cdm_schema)
    prepare_database(db, load_shipped_vocabulary)
    return db


def load(db: Database, *paths: Path, mapping_dirs=(), oncology: bool = False):
    """Converter rules are tested without the oncology derivation step unless asked for."""
    return run_fhir2omop(db, RunOptions(inputs=list(paths), mapping_dirs=mapping_dirs, oncology=oncology))


def pseudonym(patient_key: str) -> str:
    return "p-" + hmac.new(bytes.fromhex(TEST_SALT), patient_key.encode(), hashlib.sha256).hexdigest()[:24]


def _plain(value):
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return value
    return value


def table_rows(db: Database, table: str) -> list[dict]:
    """Rows as dicts of their non-NULL columns, in primary-key order."""
    cols = columns(table)
    order = primary_key(table) or ", ".join(cols[:3])
    rows = db.query(f"SELECT {', '.join(cols)} FROM {db.table(table)} ORDER BY {order}")
    return [{c: _plain(v) for c, v in zip(cols, row) if v is not None} for row in rows]


def cdm_snapshot(db: Database, tables=CLINICAL_TABLES) -> dict[str, list[dict]]:
    return {table: table_rows(db, table) for table in tables}


@pytest.fixture
def db():
    database = fresh_db()
    yield database
    database.close()


def postgres_or_skip(prefix: str = "t") -> tuple[str, str]:
    """(url, fresh schema name) or skip with the reason the server is not usable."""
    try:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test", connect_timeout=3):
            pass
    except Exception as problem:  # any failure to connect means: no server for this test
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432: {str(problem).strip().splitlines()[0] if str(problem).strip() else problem}")
    return PG_URL, f"{prefix}_{uuid.uuid4().hex[:10]}"


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test", autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
