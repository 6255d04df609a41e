"""The shipped vocabulary subset: every OMOP row traceable to a public source, our rows in our range."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from ctcl_map.cdm.schema import cdm_ddl, columns
from ctcl_map.store.database import connect
from ctcl_map.vocab.loader import SHIPPED_FILES, load_shipped_vocabulary, read_shipped, vocabulary_version

OWN_FLOOR = 2_000_000_000
REFERENCE_CSV = Path(__file__).parents[3] / "shared" / "reference" / "vocab-concepts.csv"
VOCAB_DIR = Path(__file__).parents[2] / "vocab"


@pytest.fixture(scope="module")
def concepts() -> list[dict[str, str]]:
    return read_shipped("CONCEPT.csv")


def test_every_omop_concept_names_its_source(concepts):
    missing = [c["concept_id"] for c in concepts if int(c["concept_id"]) < OWN_FLOOR and not c["source"].strip()]
    assert missing == []
    assert {c["confidence"] for c in concepts} <= {"verified-from-file", "verified-id+name", "ours"}


def test_every_omop_concept_is_in_the_reference_list_or_the_documented_extra_list(concepts):
    if not REFERENCE_CSV.is_file():
        pytest.skip(f"{REFERENCE_CSV} absent: the shared reference folder is not next to the repository")
    with REFERENCE_CSV.open(encoding="utf-8") as handle:
        allowed = {row["concept_id"] for row in csv.DictReader(handle) if row["confidence"] != "inferred"}
    with (VOCAB_DIR / "extra_verified.csv").open(encoding="utf-8") as handle:
        extra = {row["concept_id"] for row in csv.DictReader(handle)}
    readme = (VOCAB_DIR / "README.md").read_text(encoding="utf-8")
    undocumented_extra = sorted(cid for cid in extra if f"| {cid} |" not in readme)
    assert undocumented_extra == [], "every extra-verified concept must be listed in vocab/README.md"
    unknown = sorted(c["concept_id"] for c in concepts if int(c["concept_id"]) < OWN_FLOOR and c["concept_id"] not in allowed | extra)
    assert unknown == []


def test_our_concepts_are_in_our_range_and_vocabulary(concepts):
    ours = [c for c in concepts if c["confidence"] == "ours"]
    assert ours, "the CTCL-map vocabulary is shipped"
    assert all(int(c["concept_id"]) >= OWN_FLOOR and c["vocabulary_id"] == "CTCL-map" for c in ours)
    assert all(c["confidence"] == "ours" for c in concepts if c["vocabulary_id"] == "CTCL-map")
    assert all(int(c["concept_id"]) < OWN_FLOOR for c in concepts if c["vocabulary_id"] != "CTCL-map")
    codes = {c["concept_code"] for c in ours}
    # docs/codes.md 'Our own vocabulary': every listed code exists (STAGE-* not needed: LOINC has IA..IVB)
    expected = {"ISCL-B", "B0", "B0a", "B0b", "B1", "B1a", "B1b", "B2", "B2a", "B2b", "BX", "SEZARY-ABS", "SEZARY-PCT",
                "CD4CD26NEG-ABS", "CD4CD7NEG-ABS", "TCR-CLONE-BLOOD", "CLONE-POS", "CLONE-NEG", "LCT", "CLIPI-SCORE",
                "CLIPI-RISK", "CLIPI-LOW", "CLIPI-INT", "CLIPI-HIGH", "ECP", "TSEBT", "NBUVB"}
    assert expected <= codes
    assert len(codes) == len(ours), "concept codes are unique within CTCL-map"


def test_no_duplicate_ids_and_header_follows_athena_order(concepts):
    duplicates = [cid for cid, n in Counter(c["concept_id"] for c in concepts).items() if n > 1]
    assert duplicates == []
    for file_name, table in SHIPPED_FILES.items():
        header = (VOCAB_DIR / file_name).read_text(encoding="utf-8").splitlines()[0].split("\t")
        assert header[: len(columns(table))] == list(columns(table)), file_name


def test_every_relationship_and_ancestor_endpoint_exists(concepts):
    ids = {c["concept_id"] for c in concepts}
    relationship_ends = {r[k] for r in read_shipped("CONCEPT_RELATIONSHIP.csv") for k in ("concept_id_1", "concept_id_2")}
    ancestor_ends = {r[k] for r in read_shipped("CONCEPT_ANCESTOR.csv") for k in ("ancestor_concept_id", "descendant_concept_id")}
    assert relationship_ends - ids == set()
    assert ancestor_ends - ids == set()
    assert all(r["source"].strip() for r in read_shipped("CONCEPT_RELATIONSHIP.csv"))


def test_maps_to_targets_are_standard_and_every_standard_concept_is_its_own_ancestor(concepts):
    standard = {c["concept_id"] for c in concepts if c["standard_concept"] == "S"}
    maps_to = [r for r in read_shipped("CONCEPT_RELATIONSHIP.csv") if r["relationship_id"] == "Maps to"]
    assert {r["concept_id_2"] for r in maps_to} <= standard
    assert {"135204": "4040380", "135759": "4041799"}.items() <= {r["concept_id_1"]: r["concept_id_2"] for r in maps_to}.items()
    self_rows = {r["ancestor_concept_id"] for r in read_shipped("CONCEPT_ANCESTOR.csv")
                 if r["ancestor_concept_id"] == r["descendant_concept_id"] and r["min_levels_of_separation"] == "0"}
    assert self_rows == standard


def test_loinc_stage_answers_are_standard_meas_values(concepts):
    by_code = {c["concept_code"]: c for c in concepts if c["vocabulary_id"] == "LOINC"}
    for code in ("LA3663-7", "LA3659-5", "LA21872-9", "LA21850-5", "LA3649-6"):
        assert (by_code[code]["domain_id"], by_code[code]["standard_concept"]) == ("Meas Value", "S")


def test_load_into_fresh_duckdb_is_idempotent(tmp_path, concepts):
    db = connect(tmp_path / "vocab.duckdb")
    for statement in cdm_ddl(db.dialect, db.cdm_schema):
        db.execute(statement)
    assert load_shipped_vocabulary(db) == len(concepts)
    assert load_shipped_vocabulary(db) == len(concepts)  # second load: same rows, no duplicates
    assert db.query("SELECT count(*) FROM concept") == [(len(concepts),)]
    assert db.query("SELECT concept_id FROM concept WHERE vocabulary_id = 'CTCL-map' AND concept_code = 'ECP'") == [(2000000301,)]
    assert db.query("SELECT descendant_concept_id FROM concept_ancestor WHERE ancestor_concept_id = 4040380 AND descendant_concept_id = 4301661") == [(4301661,)]
    assert vocabulary_version(db).startswith("ctcl-map shipped subset")
    db.close()


@pytest.mark.postgres
def test_load_into_fresh_postgres_schema(concepts, postgres_or_skip):
    url, schema = postgres_or_skip("vocab")
    db = connect(url, cdm_schema=schema)
    try:
        for statement in cdm_ddl(db.dialect, db.cdm_schema):
            db.execute(statement)
        assert load_shipped_vocabulary(db) == len(concepts)
        assert load_shipped_vocabulary(db) == len(concepts)
        assert db.query(f"SELECT count(*) FROM {schema}.concept_relationship")[0][0] == len(read_shipped("CONCEPT_RELATIONSHIP.csv"))
        assert db.query(f"SELECT concept_code FROM {schema}.concept WHERE concept_id = 2000000010") == [("ISCL-B",)]
    finally:
        db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        db.close()
