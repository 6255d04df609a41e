"""Write a synthetic vocabulary of Athena's shape and size, for benchmarks only (never committed).

    python tools/bench/athena_like.py OUT_DIR                       # ~6 M concepts (Athena's size)
    python tools/bench/athena_like.py OUT_DIR --concepts 1000000

OUT_DIR receives Athena's tab-separated files (CONCEPT.csv, CONCEPT_RELATIONSHIP.csv,
CONCEPT_ANCESTOR.csv, VOCABULARY.csv, DOMAIN.csv, CONCEPT_CLASS.csv, RELATIONSHIP.csv), as
`ctcl-map vocab load` reads them. Per concept: 3 relationship rows and ~2.1 ancestor rows (the
ratios of an Athena download: 6 M concepts, 18 M relationships, 12.6 M ancestor rows).

What it holds:
- the shipped subset's rows (vocab/*.csv, real OMOP ids), unchanged but for the concepts the
  subset knows by id and name only: their empty code becomes "SUBSET-NO-CODE-<id>";
- the SYNTHETIC concepts: ids from SYNTHETIC_ID_FLOOR up, inside OMOP's site-local range
  (>= 2,000,000,000, which Athena never distributes) and above ctcl-map's own concepts
  (2,000,000,000 + a few hundred); codes start with "SYN-", so no synthetic row can answer a
  real code. Half are standard; each non-standard one 'Maps to' its standard neighbour, and the
  standard ones form a 10-ary 'Is a' tree;
- for every SNOMED, LOINC, RxNorm and CVX code of the Synthea bundles that the subset lacks, a
  standard concept with that real code and a synthetic id (domain from the resource it appears in),
  so every such code resolves as it would with a real Athena download.

The synthetic rows are written by DuckDB (COPY ... TO), so millions of rows take seconds.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import duckdb
import orjson

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "vocab"
DEFAULT_BUNDLES = ROOT.parent / "shared" / "testdata" / "synthea-r4-bundles"
SYNTHETIC_ID_FLOOR = 2_100_000_000  # up to 2,147,483,647: CDM concept ids are 32-bit integers
DEFAULT_CONCEPTS = 6_000_000
TREE_FANOUT = 10  # children per standard concept in the 'Is a' hierarchy

# Synthetic vocabularies: (vocabulary_id, domain_id, concept_class_id); concept i takes entry i % len.
SYNTHETIC_VOCABULARIES = (
    ("SNOMED", "Condition", "Clinical Finding"), ("RxNorm Extension", "Drug", "Clinical Drug"),
    ("NDC", "Drug", "11-digit NDC"), ("LOINC", "Measurement", "Lab Test"), ("RxNorm", "Drug", "Clinical Drug"),
    ("ICD10CM", "Condition", "5-char billing code"), ("SNOMED", "Procedure", "Procedure"), ("CPT4", "Procedure", "CPT4"),
)
RELATIONSHIPS = (  # (id, name, reverse id)
    ("Maps to", "Non-standard to Standard map (OMOP)", "Mapped from"),
    ("Mapped from", "Standard to Non-standard map (OMOP)", "Maps to"),
    ("Is a", "Is a", "Subsumes"), ("Subsumes", "Subsumes", "Is a"),
    ("Has component", "Has component", "Component of"), ("Component of", "Component of", "Has component"),
)
# Synthea code systems -> vocabulary, and the domain a code takes from the resource it is found in.
SYSTEMS = {"http://snomed.info/sct": "SNOMED", "http://loinc.org": "LOINC",
           "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm", "http://hl7.org/fhir/sid/cvx": "CVX"}
DOMAIN_OF_RESOURCE = {"Condition": "Condition", "Observation": "Measurement", "Procedure": "Procedure",
                      "MedicationRequest": "Drug", "MedicationAdministration": "Drug", "Medication": "Drug",
                      "Immunization": "Drug", "Device": "Device", "AllergyIntolerance": "Observation"}
CDM_COLUMNS = {
    "CONCEPT.csv": ("concept_id", "concept_name", "domain_id", "vocabulary_id", "concept_class_id", "standard_concept",
                    "concept_code", "valid_start_date", "valid_end_date", "invalid_reason"),
    "CONCEPT_RELATIONSHIP.csv": ("concept_id_1", "concept_id_2", "relationship_id", "valid_start_date",
                                 "valid_end_date", "invalid_reason"),
    "CONCEPT_ANCESTOR.csv": ("ancestor_concept_id", "descendant_concept_id", "min_levels_of_separation",
                             "max_levels_of_separation"),
    "VOCABULARY.csv": ("vocabulary_id", "vocabulary_name", "vocabulary_reference", "vocabulary_version",
                       "vocabulary_concept_id"),
    "DOMAIN.csv": ("domain_id", "domain_name", "domain_concept_id"),
    "CONCEPT_CLASS.csv": ("concept_class_id", "concept_class_name", "concept_class_concept_id"),
    "RELATIONSHIP.csv": ("relationship_id", "relationship_name", "is_hierarchical", "defines_ancestry",
                         "reverse_relationship_id", "relationship_concept_id"),
}


def shipped_rows(file_name: str) -> list[dict[str, str]]:
    with (SHIPPED / file_name).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    for row in rows:
        if file_name == "CONCEPT.csv" and not row["concept_code"]:
            # The subset verified some concepts by id and name only; Athena requires a code. A marker,
            # never a guessed code: no Synthea code can match it.
            row["concept_code"] = f"SUBSET-NO-CODE-{row['concept_id']}"
    return rows


def synthea_codes(bundles: Path) -> dict[tuple[str, str], str]:
    """(vocabulary_id, code) -> domain of the first resource it appears in."""
    found: dict[tuple[str, str], str] = {}

    def walk(node: object, domain: str) -> None:
        if isinstance(node, dict):
            vocabulary = SYSTEMS.get(str(node.get("system", "")))
            code = node.get("code")
            if vocabulary and isinstance(code, str) and code.strip():
                found.setdefault((vocabulary, code.strip()), domain)
            for value in node.values():
                walk(value, domain)
        elif isinstance(node, list):
            for value in node:
                walk(value, domain)

    for path in sorted(bundles.glob("*.json")):
        for entry in orjson.loads(path.read_bytes()).get("entry", []):
            resource = entry.get("resource", {})
            walk(resource, DOMAIN_OF_RESOURCE.get(resource.get("resourceType", ""), "Observation"))
    return found


def write_synthetic(out: Path, concepts: int) -> None:
    """The synthetic rows of CONCEPT, CONCEPT_RELATIONSHIP and CONCEPT_ANCESTOR, with headers."""
    pairs = concepts // 2  # pair j: standard id FLOOR+2j, non-standard FLOOR+2j+1 mapping to it
    floor = SYNTHETIC_ID_FLOOR
    kinds = len(SYNTHETIC_VOCABULARIES)
    vocab_case = lambda column: "CASE i % {} {} END".format(  # noqa: E731 - one SQL CASE per attribute
        kinds, " ".join(f"WHEN {n} THEN '{v[column]}'" for n, v in enumerate(SYNTHETIC_VOCABULARIES)))
    copy_options = "(DELIMITER '\t', HEADER true, NULLSTR '')"
    con = duckdb.connect()
    con.execute(f"""COPY (SELECT {floor} + i AS concept_id, 'synthetic concept ' || i AS concept_name,
            {vocab_case(1)} AS domain_id, {vocab_case(0)} AS vocabulary_id, {vocab_case(2)} AS concept_class_id,
            CASE WHEN i % 2 = 0 THEN 'S' END AS standard_concept, 'SYN-' || i AS concept_code,
            '19700101' AS valid_start_date, '20991231' AS valid_end_date, NULL AS invalid_reason
        FROM range({2 * pairs}) t(i)) TO '{out / "CONCEPT.csv"}' {copy_options}""")
    con.execute(f"""COPY (
        WITH pair AS (SELECT j, {floor} + 2 * j AS s, {floor} + 2 * j + 1 AS n,
                             {floor} + 2 * (j // {TREE_FANOUT}) AS parent,
                             {floor} + 2 * ((j + 1) % {pairs}) AS neighbour FROM range({pairs}) t(j)),
             rel AS (SELECT n AS a, s AS b, 'Maps to' AS r FROM pair UNION ALL SELECT s, n, 'Mapped from' FROM pair
                     UNION ALL SELECT s, parent, 'Is a' FROM pair WHERE j > 0
                     UNION ALL SELECT parent, s, 'Subsumes' FROM pair WHERE j > 0
                     UNION ALL SELECT s, neighbour, 'Has component' FROM pair
                     UNION ALL SELECT neighbour, s, 'Component of' FROM pair)
        SELECT a AS concept_id_1, b AS concept_id_2, r AS relationship_id, '19700101' AS valid_start_date,
               '20991231' AS valid_end_date, NULL AS invalid_reason FROM rel) TO '{out / "CONCEPT_RELATIONSHIP.csv"}' {copy_options}""")
    # Each standard concept: itself, its ancestors up to 3 levels, a 4th for one in five (~2.1 rows per concept).
    con.execute(f"""COPY (
        WITH up AS (SELECT j, level, j // CAST(pow({TREE_FANOUT}, level) AS BIGINT) AS a
                    FROM range({pairs}) t(j), range(5) l(level) WHERE level <= 3 OR j % 5 = 0)
        SELECT {floor} + 2 * a AS ancestor_concept_id, {floor} + 2 * j AS descendant_concept_id,
               level AS min_levels_of_separation, level AS max_levels_of_separation
        FROM up WHERE level = 0 OR j // CAST(pow({TREE_FANOUT}, level - 1) AS BIGINT) > 0
        ) TO '{out / "CONCEPT_ANCESTOR.csv"}' {copy_options}""")
    con.close()


def append_rows(path: Path, columns: tuple[str, ...], rows: list[dict[str, str]]) -> None:
    with path.open("a", encoding="utf-8", newline="") as handle:
        for row in rows:
            handle.write("\t".join(row.get(name, "") for name in columns) + "\n")


def write_table(path: Path, columns: tuple[str, ...], rows: list[dict[str, str]]) -> None:
    path.write_text("\t".join(columns) + "\n", encoding="utf-8")
    append_rows(path, columns, rows)


def synthea_concepts(bundles: Path, first_id: int, shipped: list[dict[str, str]]) -> list[dict[str, str]]:
    """Standard concepts for the Synthea codes the subset lacks: real code, synthetic id."""
    known = {(row["vocabulary_id"], row["concept_code"]) for row in shipped}
    domains = synthea_codes(bundles)
    missing = sorted(key for key in domains if key not in known)
    return [{"concept_id": str(first_id + n), "concept_name": f"synthetic concept for {vocabulary} {code}",
             "domain_id": domains[(vocabulary, code)], "vocabulary_id": vocabulary, "concept_class_id": "Synthetic",
             "standard_concept": "S", "concept_code": code, "valid_start_date": "19700101",
             "valid_end_date": "20991231", "invalid_reason": ""}
            for n, (vocabulary, code) in enumerate(missing)]


def generate(out: Path, concepts: int, bundles: Path) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    write_synthetic(out, concepts)
    shipped_concepts = shipped_rows("CONCEPT.csv")
    added = synthea_concepts(bundles, SYNTHETIC_ID_FLOOR + concepts + 1, shipped_concepts)
    if SYNTHETIC_ID_FLOOR + concepts + len(added) > 2_147_483_647:
        sys.exit(f"--concepts {concepts}: the synthetic ids would not fit in a 32-bit concept id")
    append_rows(out / "CONCEPT.csv", CDM_COLUMNS["CONCEPT.csv"], shipped_concepts + added)
    for name in ("CONCEPT_RELATIONSHIP.csv", "CONCEPT_ANCESTOR.csv"):
        append_rows(out / name, CDM_COLUMNS[name], shipped_rows(name))

    vocabularies = [row for row in shipped_rows("VOCABULARY.csv") if row["vocabulary_id"] != "None"]
    present = {row["vocabulary_id"] for row in vocabularies}
    vocabularies += [{"vocabulary_id": v, "vocabulary_name": v, "vocabulary_reference": "synthetic",
                      "vocabulary_concept_id": "0"} for v in sorted(({v[0] for v in SYNTHETIC_VOCABULARIES} | {"CVX"}) - present)]
    vocabularies.append({"vocabulary_id": "None", "vocabulary_name": "OMOP Standardized Vocabularies",
                         "vocabulary_reference": "synthetic", "vocabulary_version": f"synthetic Athena-like {concepts}",
                         "vocabulary_concept_id": "0"})
    write_table(out / "VOCABULARY.csv", CDM_COLUMNS["VOCABULARY.csv"], vocabularies)
    for name, key, extra in (
        ("DOMAIN.csv", "domain_id", {v[1] for v in SYNTHETIC_VOCABULARIES} | {"Device"}),
        ("CONCEPT_CLASS.csv", "concept_class_id", {v[2] for v in SYNTHETIC_VOCABULARIES} | {"Synthetic"}),
    ):
        rows = shipped_rows(name)
        present = {row[key] for row in rows}
        name_column, id_column = CDM_COLUMNS[name][1], CDM_COLUMNS[name][2]
        rows += [{key: value, name_column: value, id_column: "0"} for value in sorted(extra - present)]
        write_table(out / name, CDM_COLUMNS[name], rows)
    relationships = shipped_rows("RELATIONSHIP.csv")
    present = {row["relationship_id"] for row in relationships}
    relationships += [{"relationship_id": rid, "relationship_name": label, "is_hierarchical": "1" if rid in ("Is a", "Subsumes") else "0",
                       "defines_ancestry": "1" if rid in ("Is a", "Subsumes") else "0", "reverse_relationship_id": reverse,
                       "relationship_concept_id": "0"} for rid, label, reverse in RELATIONSHIPS if rid not in present]
    write_table(out / "RELATIONSHIP.csv", CDM_COLUMNS["RELATIONSHIP.csv"], relationships)
    return {"synthetic concepts": 2 * (concepts // 2), "Synthea codes added": len(added),
            "shipped concepts": len(shipped_concepts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder to write the files into")
    parser.add_argument("--concepts", type=int, default=DEFAULT_CONCEPTS, help="synthetic concepts (default 6,000,000)")
    parser.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES, help="Synthea bundles whose codes must resolve")
    args = parser.parse_args()
    for label, count in generate(args.out, args.concepts, args.bundles).items():
        print(f"{label}: {count:,}")


if __name__ == "__main__":
    main()
