"""Fixtures of the ETL-job tests: replicated inputs, the CLI as a subprocess, whole-database snapshots.

Helpers a test calls with arguments are fixtures that return the function (pytest loads this
conftest; tests never import it)."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from ctcl_map.store.database import connect
from ctcl_map.store.prepare import prepare_database
from ctcl_map.vocab.loader import load_shipped_vocabulary

TESTS = Path(__file__).resolve().parents[1]
FIXTURES = TESTS / "fixtures"
GOLDEN_INPUTS = sorted(p for p in (FIXTURES / "golden").glob("*.json") if not p.name.endswith(".expected.json"))
RUN_COLUMNS = ("run_id", "seen_run")  # as in tests/conftest.py's database_snapshot


# Copies of real FHIR with fresh ids: the rule of tools/bench/replicate.py (not part of the package,
# so the tests carry their own few lines). Synthea names every resource by a UUID and references
# it by that UUID; copy c rewrites each UUID's first group g to g XOR c, a bijection per copy, so
# the copies are distinct patients whose references still resolve.
_UUID = re.compile(rb"\b([0-9a-f]{8})(-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b")


def _fresh_ids(text: bytes, copy: int) -> bytes:
    if copy == 0:
        return text
    return _UUID.sub(lambda m: b"%08x" % (int(m.group(1), 16) ^ copy) + m.group(2), text)


def _replicate(sources: list[Path], out_dir: Path, copies: int, first_copy: int = 0) -> list[Path]:
    """One uncompressed file per source and copy: OUT/c0003-<name>.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for copy in range(first_copy, first_copy + copies):
        for source in sources:
            content = gzip.decompress(source.read_bytes()) if source.name.endswith(".gz") else source.read_bytes()
            target = out_dir / f"c{copy:04d}-{source.name.removesuffix('.gz')}"
            target.write_bytes(_fresh_ids(content, copy))
            written.append(target)
    return written


def _make_inputs(folder: Path, copies: int, first_copy: int = 0, golden: bool = True, distinct_golden_ids: bool = False) -> Path:
    """`copies` copies (fresh ids) of the two licensed Synthea patients, plus every golden fixture
    (they carry mapped concepts, so eras and oncology rows exist).

    The golden fixtures reuse ids (Patient/p1 in all of them) with different content, so which
    version ends current depends on the order they are read in; `distinct_golden_ids` gives each
    fixture's resources ids of their own, for tests where two loaders read them in any order."""
    _replicate(sorted((TESTS / "data" / "synthea").glob("*.json.gz")), folder, copies, first_copy)
    for number, fixture in enumerate(GOLDEN_INPUTS if golden else ()):
        text = fixture.read_text()
        if distinct_golden_ids:
            ids = {entry["resource"]["id"] for entry in json.loads(text).get("entry", []) if "id" in entry.get("resource", {})}
            text = re.sub(r'(?<=["/:])(' + "|".join(map(re.escape, sorted(ids))) + r')(?=")', rf"\1-g{number}", text) if ids else text
        (folder / f"golden-{fixture.name}").write_text(text)
    if golden:
        (folder / "problems.ndjson").write_text(PROBLEM_LINES)
    return folder


# Quarantine paths in every run: a line that is not JSON, an unknown resource type, and a
# Condition whose Patient never arrives (removed by the end-of-run dangling-subject sweep).
PROBLEM_LINES = "\n".join([
    "{not json",
    '{"resourceType": "NotAResource", "id": "x1"}',
    '{"resourceType": "Condition", "id": "orphan1", "subject": {"reference": "Patient/nobody"}, '
    '"code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "C84.0"}]}, "onsetDateTime": "2019-01-01"}',
]) + "\n"


def _empty_cdm(path: Path) -> Path:
    """A DuckDB file with the CDM and vocabulary, ready to load."""
    db = connect(str(path))
    prepare_database(db, load_shipped_vocabulary)
    db.close()
    return path


# Id columns whose id space is not named by the column itself: (table, column) -> the column whose
# value (a field or domain concept, or a table name) tells the space.
_EVENT_FIELDS = {1147127: "condition_occurrence", 1147094: "drug_exposure", 1147082: "procedure_occurrence",
                 1147138: "measurement", 1147165: "observation", 1147070: "visit_occurrence"}


def _canonical_snapshot(db, database_snapshot) -> dict[str, list[tuple]]:
    """database_snapshot with every generated id replaced by the key it stands for (ctcl_id_map):
    what two loads must agree on whatever order their batches (and so their ids) were given in.

    Ids with no key (observation periods and eras, numbered per load) become '#'; their rows
    still compare by every other column."""
    snapshot = database_snapshot(db)
    keys = {(space, int(omop_id)): key for space, key, omop_id in db.query(
        f"SELECT id_space, row_key, omop_id FROM {db.table('ctcl_id_map')}")}
    # Derived rows' keys name the person by id ('derived:disease_episode:12').
    keys = {pair: _canonical_key(key, keys) for pair, key in keys.items()}
    spaces = {space for space, _ in keys}
    schema = db.cdm_schema or ("main" if db.dialect == "duckdb" else "public")
    canonical = {}
    for table, rows in snapshot.items():
        columns = [name for (name,) in db.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [schema, table]) if name not in RUN_COLUMNS]
        out = []
        for row in rows:
            values = dict(zip(columns, row))
            out.append(tuple(_canonical_value(table, column, value, values, keys, spaces) for column, value in values.items()))
        canonical[table] = sorted(out, key=repr)
    canonical["ctcl_id_map"] = sorted((space, key) for (space, _), key in keys.items())
    # The digest of the DDL that built the CDM names its schema.
    canonical["ctcl_settings"] = [row for row in canonical["ctcl_settings"] if row[0] != "ddl_digest"]
    return canonical


def _canonical_key(key: str, keys: dict) -> str:
    parts = key.split(":")
    if parts[0] == "derived" and len(parts) > 2 and parts[2].isdigit():
        parts[2] = keys.get(("person", int(parts[2])), "person:?")
    return ":".join(parts)


def _canonical_value(table, column, value, row, keys, spaces):
    if table == "ctcl_derived" and column == "note" and row["table_name"] == "measurement_link" and value and value.isdigit():
        return keys.get(("condition_occurrence", int(value)), "condition_occurrence:?")
    if value is None or not isinstance(value, int) or isinstance(value, bool) or column.endswith("concept_id"):
        return value
    space = _space_of(table, column, row, spaces)
    if space is None:
        return value
    if space == "#":
        return "#"
    return keys.get((space, value), f"{space}:?")


def _space_of(table, column, row, spaces):
    if table in ("observation_period", "condition_era", "drug_era", "dose_era") and column == f"{table}_id":
        return "#"
    if table == "ctcl_lineage" and column == "omop_id":
        return "person" if row["omop_table"] == "death" else row["omop_table"]
    if table == "ctcl_derived" and column == "row_id":
        return "measurement" if row["table_name"] == "measurement_link" else row["table_name"]
    if column in ("measurement_event_id", "observation_event_id"):
        field = row.get("meas_event_field_concept_id", row.get("obs_event_field_concept_id"))
        return _EVENT_FIELDS.get(field, f"field {field}")
    if table == "episode_event" and column == "event_id":
        return _EVENT_FIELDS.get(row["episode_event_field_concept_id"], f"field {row['episode_event_field_concept_id']}")
    if table == "fact_relationship" and column.startswith("fact_id_"):
        return f"domain {row['domain_concept_id_' + column[-1]]}"
    if not column.endswith("_id"):
        return None
    name = column[: -len("_id")].removeprefix("preceding_")
    return name if name in spaces else None


@pytest.fixture(scope="session")
def golden_inputs() -> list[Path]:
    """Every golden fixture's input file."""
    return GOLDEN_INPUTS


@pytest.fixture(scope="session")
def replicate():
    """replicate(sources, out_dir, copies, first_copy=0): copies of real FHIR files with fresh ids."""
    return _replicate


@pytest.fixture(scope="session")
def make_inputs():
    """make_inputs(folder, copies, first_copy=0, golden=True, distinct_golden_ids=False) -> folder."""
    return _make_inputs


@pytest.fixture(scope="session")
def empty_cdm():
    """empty_cdm(path) -> path: a DuckDB file with the CDM and vocabulary, ready to load."""
    return _empty_cdm


@pytest.fixture(scope="session")
def canonical_snapshot(database_snapshot):
    return lambda db: _canonical_snapshot(db, database_snapshot)
