"""The derived tables on Spark equal the database path's, row by row (issue 17).

The inputs (the samples: single-patient bundles and the 500-patient cohort with staging, blood,
therapies and deaths, plus the licensed Synthea patients) are loaded on one machine into DuckDB,
and what that load derived is undone, leaving the base tables. Those base tables go to Parquet;
the database path then derives on DuckDB (capped drug ends, oncology rows, observation periods,
eras) and Spark derives from the Parquet copy (ctcl_map.spark.derive). Every derived table is
compared in full: ids of derived measurement and episode rows differ by design, so they are
compared through their row keys ('derived:<kind>:<person>:<date or line>'); every other column,
and every other id, must be equal.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctcl_map.cdm.schema import columns
from ctcl_map.derive.concept_sets import FIELD_CONDITION, FIELD_DRUG
from ctcl_map.derive.eras import cap_drug_ends_at_death, derive_for_persons
from ctcl_map.derive.mapping_rows import load_mapping_rows
from ctcl_map.derive.oncology import derive_oncology
from ctcl_map.derive.oncology_run import DERIVED_COLUMNS, FIRST_ADVANCED_COLUMNS
from ctcl_map.store import derived_rows
from ctcl_map.store.export import export_cdm

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
SITE_MAPPINGS = SAMPLES / "site-mappings"
INPUTS = [*sorted(SAMPLES.glob("*.json")), SAMPLES / "cohort-500" / "fhir", *sorted((ROOT / "tests" / "data" / "synthea").glob("*.json.gz"))]
BASE_TABLES = ("person", "visit_occurrence", "condition_occurrence", "drug_exposure", "procedure_occurrence", "device_exposure",
               "measurement", "observation", "death", "episode", "episode_event", "observation_period", "condition_era", "drug_era")
VOCABULARY = ("concept", "concept_ancestor")
CDM_DERIVED = ("drug_exposure", "measurement", "episode", "episode_event", "observation_period", "condition_era", "drug_era")
OWN_COLUMNS = {"ctcl_first_advanced": FIRST_ADVANCED_COLUMNS, "ctcl_derived": DERIVED_COLUMNS}


def _undo_derivation(db) -> None:
    """Back to the base tables: what derive_oncology wrote (ctcl_derived), the eras and periods, and
    the capped drug ends (the converters never set verbatim_end_date: only the cap does)."""
    persons = [int(pid) for (pid,) in db.query(f"SELECT person_id FROM {db.table('person')}")]
    derived_rows.undo_previous(db, persons)
    for table in ("observation_period", "condition_era", "drug_era"):
        db.execute(f"DELETE FROM {db.table(table)}")
    db.execute(f"UPDATE {db.table('drug_exposure')} SET drug_exposure_end_date = verbatim_end_date, verbatim_end_date = NULL "
               "WHERE verbatim_end_date IS NOT NULL")


def _columns(table: str) -> tuple[str, ...]:
    return OWN_COLUMNS.get(table) or tuple(c.strip('"') for c in columns(table))


@pytest.fixture(scope="module")
def derived_both_ways(spark, fresh_db, load, tmp_path_factory):
    """({table: rows} of the database path, {table: rows} of Spark, both reports, base max ids)."""
    from ctcl_map.spark.derive import derive_all

    db = fresh_db()
    load(db, *INPUTS, mapping_dirs=[SITE_MAPPINGS], oncology=True)
    _undo_derivation(db)
    base = tmp_path_factory.mktemp("base-cdm")
    exported = export_cdm(db, base, "parquet", [*BASE_TABLES, *VOCABULARY])
    uncapped = db.query(f"SELECT COUNT(*) FROM {db.table('drug_exposure')} d JOIN {db.table('death')} x "
                        "ON x.person_id = d.person_id WHERE d.drug_exposure_end_date > x.death_date")[0][0]
    base_max = {t: db.query(f"SELECT MAX({t}_id) FROM {db.table(t)}")[0][0] or 0 for t in ("measurement", "episode")}
    mappings = load_mapping_rows([SITE_MAPPINGS])

    cap_drug_ends_at_death(db, [int(p) for (p,) in db.query(f"SELECT person_id FROM {db.table('person')}")])
    database_report = derive_oncology(db, None, mappings=mappings)
    derive_for_persons(db, None)
    expected = {table: [tuple(row) for row in db.query(f"SELECT {', '.join(_columns(table))} FROM {db.table(table)}")]
                for table in (*CDM_DERIVED, *OWN_COLUMNS)}
    db.close()

    frames = {item.table: spark.read.parquet(str(item.path)) for item in exported}
    result = derive_all(spark, {t: frames[t] for t in BASE_TABLES}, {t: frames[t] for t in VOCABULARY}, mappings=mappings)
    actual = {table: [tuple(row) for row in frame.select(*_columns(table)).collect()] for table, frame in result.tables.items()}
    return expected, actual, database_report, result.report, base_max, uncapped


def _row_keys(tables: dict[str, list[tuple]]) -> dict[tuple[str, int], str]:
    """(table, id) -> the row key of each derived measurement and episode row (as IdAllocator's)."""
    day = {row[0]: row[3] for row in tables["measurement"]}
    line = {row[0]: row[6] for row in tables["episode"]}
    keys = {}
    for table, row_id, person_id, kind, _note in tables["ctcl_derived"]:
        if table == "measurement":
            keys[(table, row_id)] = f"derived:{kind}:{person_id}:{day[row_id].isoformat()}"
        elif table == "episode":
            keys[(table, row_id)] = f"derived:{kind}:{person_id}" + (f":{line[row_id]}" if line[row_id] is not None else "")
    return keys


def _through_keys(tables: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """Each table's rows with every id of a derived row replaced by its row key, sorted."""
    keys = _row_keys(tables)

    def measurement(value):
        return keys.get(("measurement", value), value)

    def episode(value):
        return keys.get(("episode", value), value)

    def event(value, field):  # conditions and drugs are base rows; another field is a measurement
        return value if field in (FIELD_CONDITION, FIELD_DRUG) else measurement(value)

    swap = {
        "measurement": lambda r: (measurement(r[0]), *r[1:]),
        "episode": lambda r: (episode(r[0]), *r[1:5], episode(r[5]), *r[6:]),
        "episode_event": lambda r: (episode(r[0]), event(r[1], r[2]), r[2]),
        "ctcl_first_advanced": lambda r: (*r[:3], measurement(r[3])),
        "ctcl_derived": lambda r: (r[0], keys.get((r[0], r[1]), r[1]), *r[2:]),
    }
    return {table: sorted((swap.get(table, tuple)(row) for row in rows), key=repr) for table, rows in tables.items()}


@pytest.mark.parametrize("table", [*CDM_DERIVED, *OWN_COLUMNS])
def test_spark_derives_the_rows_the_database_path_derives(derived_both_ways, table):
    expected, actual, *_ = derived_both_ways
    want, got = _through_keys(expected)[table], _through_keys(actual)[table]
    missing, extra = [r for r in want if r not in got], [r for r in got if r not in want]
    assert not missing and not extra, f"{table}: {len(missing)} rows only on the database, e.g. {missing[:3]}; " \
                                      f"{len(extra)} only on Spark, e.g. {extra[:3]}"
    assert len(want) == len(got)


def test_the_inputs_exercise_every_derived_kind(derived_both_ways):
    """The comparison means something only if each kind of derived row is there."""
    expected, _actual, report, _spark_report, _base_max, uncapped = derived_both_ways
    kinds = {row[3] for row in expected["ctcl_derived"]}
    # Derived B categories and stage groups are not among them: these inputs give both directly.
    assert {"clipi_score", "clipi_risk", "disease_episode", "treatment_line", "staging_link"} <= kinds
    assert expected["ctcl_first_advanced"] and expected["condition_era"] and expected["drug_era"]
    assert report.episodes_ended_by_death > 0
    assert uncapped > 0, "no drug exposure outlasts a death: the cap is not exercised"


def test_spark_report_adds_up_to_the_database_report(derived_both_ways):
    *_, database_report, spark_report, _base_max, _uncapped = derived_both_ways
    want, got = database_report.to_dict(), spark_report.to_dict()
    for name, value in want.items():
        if isinstance(value, list):
            assert sorted(json.dumps(v, sort_keys=True) for v in value) == sorted(json.dumps(v, sort_keys=True) for v in got[name]), name
        else:
            assert got[name] == value, name


def test_derived_ids_are_numbered_after_the_base_ids_in_row_key_order(derived_both_ways):
    _expected, actual, *_, base_max, _uncapped = derived_both_ways
    keys = _row_keys(actual)
    for table in ("measurement", "episode"):
        ids = sorted((int(key.split(":")[2]), key, row_id) for (t, row_id), key in keys.items() if t == table)
        assert [row_id for *_, row_id in ids] == list(range(base_max[table] + 1, base_max[table] + 1 + len(ids))), table
