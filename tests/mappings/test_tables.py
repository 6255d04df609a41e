"""The CTCL mapping tables: targets valid in the shipped vocabulary, schemas strict, overrides explicit."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctcl_map.cdm.schema import cdm_ddl, columns
from ctcl_map.errors import MappingError
from ctcl_map.mappings.check import check_mappings, shipped_concepts
from ctcl_map.mappings.tables import (
    load_code_systems,
    load_fhir_valuesets,
    load_mappings,
    source_to_concept_map_rows,
)
from ctcl_map.store.database import connect
from ctcl_map.vocab.loader import load_shipped_vocabulary

SITE = Path(__file__).parents[2] / "samples" / "site-mappings"
EXPECTED_DOMAINS = {"therapies": {"Drug"}, "diagnoses": {"Condition"}, "procedures": {"Procedure"},
                    "labs": {"Measurement"}, "staging": {"Measurement", "Meas Value"}, "answers": {"Meas Value"}}
THERAPY_HEADER = ("source_vocabulary_id,source_code,source_code_description,target_concept_id,target_domain_id,"
                  "reference,ingredient,therapy_class,starts_systemic_line,hemonc_regimen_concept_id")


def write_override(folder: Path, table: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{table}.csv").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def shipped():
    return load_mappings()


def test_every_shipped_target_exists_is_standard_and_has_the_expected_domain(shipped):
    concepts = shipped_concepts()
    assert len(shipped.entries) > 250
    for entry in shipped.entries:
        concept = concepts.get(entry.target_concept_id)
        assert concept is not None, entry
        assert concept.standard_concept == "S", entry
        assert concept.domain_id == entry.target_domain_id, entry
        assert entry.target_domain_id in EXPECTED_DOMAINS[entry.kind], entry
    assert shipped.conflicts == []
    assert check_mappings() == []


@pytest.mark.parametrize(
    ("ingredient", "codings", "local_code", "target"),
    [
        ("mogamulizumab", [("RxNorm", "2054068"), ("ATC", "L01FX09"), ("ATC", "L01XC25"), ("BRAND", "Poteligeo"), ("BRAND", " POTELIGEO ")], "MOGA-IV", 35200202),
        ("bexarotene", [("ATC", "L01XF03"), ("ATC", "L01XX25"), ("BRAND", "Targretin")], "BEXA-PO", 1389888),
        ("vorinostat", [("ATC", "L01XH01"), ("ATC", "L01XX38"), ("BRAND", "Zolinza")], None, 1337651),
        ("romidepsin", [("ATC", "L01XH02"), ("ATC", "L01XX39"), ("BRAND", "Istodax")], None, 40168385),
        ("methotrexate", [("RxNorm", "6851"), ("ATC", "L01BA01")], "MTX-PO", 1305058),
        ("mechlorethamine", [("RxNorm", "6674"), ("ATC", "L01AA05"), ("BRAND", "Valchlor"), ("BRAND", "Ledaga")], "CHLORMETH-GEL", 1394337),
    ],
)
def test_each_coding_way_gives_the_same_ingredient(ingredient, codings, local_code, target):
    with_site = load_mappings([SITE])
    for vocabulary_id, code in codings:
        entry = with_site.lookup(vocabulary_id, code)
        assert entry is not None, (vocabulary_id, code)
        assert (entry.target_concept_id, entry.attributes["ingredient"]) == (target, ingredient)
    if local_code:
        assert load_mappings().lookup("LOCAL-DRUGS", local_code) is None  # only the site override knows it
        assert with_site.lookup("LOCAL-DRUGS", local_code).target_concept_id == target


def test_non_brand_codes_are_matched_verbatim(shipped):
    assert shipped.lookup("ATC", "l01fx09") is None
    assert shipped.lookup("ICD10", "C840") is None  # dotless form is a different source code (docs/codes.md)
    assert shipped.lookup("ICD10", "C84.0").target_concept_id == 4040380


def test_staging_lookups_for_parsed_categories(shipped):
    b2 = next(cid for cid, c in shipped_concepts().items() if c.vocabulary_id == "CTCL-map" and c.concept_name == "ISCL/EORTC B2")
    assert shipped.lookup("ISCL", "T2b").target_concept_id == 1633593
    assert shipped.lookup("ISCL", "IIB").target_concept_id == 45882497
    assert shipped.lookup("ISCL", "IVA1").target_concept_id == 46238000
    assert shipped.lookup("ISCL", "B2").target_concept_id == b2
    question = shipped.lookup("LOINC", "21899-0")
    assert (question.target_concept_id, question.attributes["axis"], question.attributes["value_code"]) == (3008841, "T", "")


def test_diagnoses_carry_the_ctcl_subtype(shipped):
    assert shipped.lookup("ICD10CM", "C84.17").attributes["ctcl_subtype"] == "ss"
    assert shipped.lookup("ICD10CM", "C84.17").target_concept_id == 195760  # Sezary's disease of spleen
    assert shipped.lookup("ICDO3", "9700/3").attributes["ctcl_subtype"] == "mf"
    assert shipped.lookup("SNOMED", "118611004").target_concept_id == 4041799
    icd10cm = {e.source_code for e in shipped.by_kind("diagnoses") if e.source_vocabulary_id == "ICD10CM"}
    assert icd10cm == {f"C84.{g}{d}" for g in "01A" for d in range(10)}


@pytest.mark.parametrize(
    ("row", "column", "fragment"),
    [
        ("ATC,L01FX09,mogamulizumab,35200x02,Drug,ref,mogamulizumab,biologic,true,", "target_concept_id", "integer concept id"),
        ("ATC,L01FX09,mogamulizumab,35200202,Drug,ref,mogamulizumab,immunotherapy,true,", "therapy_class", "'immunotherapy' is not one of"),
        ("ATC,L01FX09,mogamulizumab,35200202,Drug,ref,mogamulizumab,biologic,yes,", "starts_systemic_line", "'yes' is not one of"),
        ("ATC,L01FX09,mogamulizumab,35200202,Condition,ref,mogamulizumab,biologic,true,", "target_domain_id", "'Condition' is not one of"),
    ],
)
def test_schema_rejects_malformed_rows_naming_file_line_and_column(tmp_path, row, column, fragment):
    folder = write_override(tmp_path / "site", "therapies", f"{THERAPY_HEADER}\nLOCAL-DRUGS,OK-1,fine,35200202,Drug,ref,mogamulizumab,biologic,true,\n{row}\n")
    with pytest.raises(MappingError) as caught:
        load_mappings([folder])
    message = str(caught.value)
    assert message.startswith(f"{folder / 'therapies.csv'}, line 3, column {column}: ")
    assert fragment in message


def test_a_file_is_schema_checked_once_per_content_and_a_bad_one_every_time(tmp_path, monkeypatch):
    """The validation cache skips jsonschema for bytes that passed before, and only for those."""
    from ctcl_map.mappings import tables

    monkeypatch.setenv("CTCL_MAP_CACHE_DIR", str(tmp_path / "cache"))
    checked = []
    real_validator = tables._validator
    monkeypatch.setattr(tables, "_validator", lambda table: checked.append(table) or real_validator(table))
    good = "LOCAL-DRUGS,OK-1,fine,35200202,Drug,ref,mogamulizumab,biologic,true,"
    folder = write_override(tmp_path / "site", "therapies", f"{THERAPY_HEADER}\n{good}\n")
    rows = lambda: list(tables.read_table(folder / "therapies.csv", "therapies", "site"))  # noqa: E731
    assert rows() == rows()
    assert checked == ["therapies"]  # the second read trusted the recorded digest

    bad = good.replace("biologic", "immunotherapy")
    write_override(folder, "therapies", f"{THERAPY_HEADER}\n{bad}\n")
    for _ in range(2):
        with pytest.raises(MappingError, match="line 2, column therapy_class"):
            rows()
    assert checked == ["therapies"] * 3  # changed bytes are checked again, a failing file every time


def test_missing_column_is_named(tmp_path):
    header = THERAPY_HEADER.replace(",therapy_class", "")
    folder = write_override(tmp_path / "site", "therapies", f"{header}\nATC,L01FX09,m,35200202,Drug,ref,mogamulizumab,true,\n")
    with pytest.raises(MappingError, match=r"therapies\.csv, line 1, column therapy_class: missing from the header"):
        load_mappings([folder])


def test_row_with_too_few_fields_is_named(tmp_path):
    folder = write_override(tmp_path / "site", "therapies", f"{THERAPY_HEADER}\nATC,L01FX09,m,35200202\n")
    with pytest.raises(MappingError, match=r"therapies\.csv, line 2: 4 fields, the header has 10"):
        load_mappings([folder])


def test_override_wins_and_every_replacement_is_reported(tmp_path):
    first = write_override(tmp_path / "a", "therapies", f"{THERAPY_HEADER}\nATC,L01FX09,remapped by site A,1389888,Drug,site A,bexarotene,systemic,true,\n")
    second = write_override(tmp_path / "b", "therapies", f"{THERAPY_HEADER}\nATC,L01FX09,remapped by site B,40168385,Drug,site B,romidepsin,systemic,true,\n")
    merged = load_mappings([first, second])
    entry = merged.lookup("ATC", "L01FX09")
    assert (entry.target_concept_id, entry.origin) == (40168385, str(second / "therapies.csv"))
    assert len(merged.conflicts) == 2
    assert "replaces shipped:therapies.csv (therapies) -> 35200202" in merged.conflicts[0]
    assert f"replaces {first / 'therapies.csv'} (therapies) -> 1389888" in merged.conflicts[1]
    assert merged.lookup("ATC", "L01XC25").target_concept_id == 35200202  # untouched shipped rows stay


def test_disagreeing_rows_in_one_file_are_reported_and_the_first_kept(tmp_path):
    folder = write_override(tmp_path / "site", "therapies", (
        f"{THERAPY_HEADER}\nLOCAL-DRUGS,X1,first,35200202,Drug,r,mogamulizumab,biologic,true,\n"
        "LOCAL-DRUGS,X1,second,1389888,Drug,r,bexarotene,systemic,true,\n"))
    merged = load_mappings([folder])
    assert merged.lookup("LOCAL-DRUGS", "X1").target_concept_id == 35200202
    assert merged.conflicts == [f"{folder / 'therapies.csv'}, line 3: LOCAL-DRUGS 'X1' repeats an earlier row of the same file with a different mapping; the earlier row is kept"]


def test_check_finds_absent_non_standard_and_wrong_domain_targets(tmp_path):
    folder = write_override(tmp_path / "site", "therapies", (
        f"{THERAPY_HEADER}\n"
        "LOCAL-DRUGS,ABSENT,target not in vocabulary,2147483000,Drug,r,x,systemic,true,\n"   # our range, never defined
        "LOCAL-DRUGS,NONSTD,non-standard target,135204,Drug,r,x,systemic,true,\n"            # non-standard SNOMED
        "LOCAL-DRUGS,WRONGDOM,condition as a drug,4040380,Drug,r,x,systemic,true,\n"))       # Condition domain
    problems = check_mappings([folder])
    assert len(problems) == 3
    assert "'ABSENT': target concept 2147483000 is not in the shipped vocabulary subset" in problems[0]
    assert "'NONSTD': target concept 135204" in problems[1] and "is not a standard concept" in problems[1]
    assert "'WRONGDOM': target concept 4040380" in problems[2] and "has domain Condition, expected Drug" in problems[2]


def test_check_against_a_database_concept_table(tmp_path):
    db = connect(tmp_path / "cdm.duckdb")
    for statement in cdm_ddl(db.dialect, db.cdm_schema):
        db.execute(statement)
    load_shipped_vocabulary(db)
    assert check_mappings(db=db) == []
    db.execute("DELETE FROM concept WHERE concept_id = 35200202")
    problems = check_mappings(db=db)
    assert problems and all("35200202" in p and "CONCEPT table of" in p for p in problems)
    assert len(problems) == len([e for e in load_mappings().entries if e.target_concept_id == 35200202])
    db.close()


def test_check_reports_a_malformed_file_instead_of_raising(tmp_path):
    folder = write_override(tmp_path / "site", "therapies", f"{THERAPY_HEADER}\nATC,L01FX09,m,abc,Drug,r,x,systemic,true,\n")
    assert check_mappings([folder]) == [f"{folder / 'therapies.csv'}, line 2, column target_concept_id: 'abc' does not have the expected form (an integer concept id)"]


def test_source_to_concept_map_rows_load_into_the_cdm_table(tmp_path, shipped):
    rows = source_to_concept_map_rows(shipped)
    assert len(rows) == len(shipped.entries)
    stcm = dict(zip(columns("source_to_concept_map"), next(r for r in rows if r[0] == "L01XC25")))
    assert (stcm["source_concept_id"], stcm["source_vocabulary_id"], stcm["target_concept_id"], stcm["target_vocabulary_id"]) == (0, "ATC", 35200202, "RxNorm")
    assert (stcm["valid_start_date"].isoformat(), stcm["valid_end_date"].isoformat()) == ("1970-01-01", "2099-12-31")
    db = connect(tmp_path / "stcm.duckdb")
    for statement in cdm_ddl(db.dialect, db.cdm_schema):
        db.execute(statement)
    db.insert_rows("source_to_concept_map", columns("source_to_concept_map"), rows)
    assert db.query("SELECT count(*) FROM source_to_concept_map WHERE target_vocabulary_id = ''") == [(0,)]
    db.close()


def test_code_systems_and_fhir_valuesets():
    systems = load_code_systems()
    assert systems["http://www.whocc.no/atc"] == "ATC"
    assert systems["urn:oid:2.16.840.1.113883.6.96"] == "SNOMED"
    assert systems["http://ctcl-map.org/fhir/CodeSystem/ctcl"] == "CTCL-map"
    valuesets = load_fhir_valuesets()
    assert valuesets[("gender_concept_id", "http://hl7.org/fhir/administrative-gender", "female")] == 8532
    assert valuesets[("gender_concept_id", "http://hl7.org/fhir/administrative-gender", "unknown")] == 0
    assert valuesets[("race_concept_id", "urn:oid:2.16.840.1.113883.6.238", "2054-5")] == 8516
    assert valuesets[("visit_concept_id", "http://terminology.hl7.org/CodeSystem/v3-ActCode", "EMER")] == 9203
