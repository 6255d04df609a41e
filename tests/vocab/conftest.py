"""Fixtures of the vocabulary tests: small Athena-format folders (well-formed or malformed)."""

from __future__ import annotations

from pathlib import Path

import pytest

# Real, verified concept ids only (shared/reference/vocab-concepts.csv): no invented ids even in fixtures.
CONCEPT_HEADER = "concept_id\tconcept_name\tdomain_id\tvocabulary_id\tconcept_class_id\tstandard_concept\tconcept_code\tvalid_start_date\tvalid_end_date\tinvalid_reason"
CONCEPT_ROWS = [
    "4040380\tMycosis fungoides (clinical)\tCondition\tSNOMED\tDisorder\tS\t118618005\t20020131\t20991231\t",
    "135204\tMycosis fungoides of extranodal AND/OR solid organ site\tCondition\tSNOMED\tDisorder\t\t94715001\t19700101\t20991231\t",
    '35200202\tmogamulizumab "Poteligeo" test name with quotes\tDrug\tRxNorm\tIngredient\tS\t2054068\t20180731\t20991231\t',
    "44818977\tNon-standard to Standard map (OMOP)\tMetadata\tRelationship\tRelationship\t\tOMOP generated\t19700101\t20991231\t",
]
RELATIONSHIP_HEADER = "concept_id_1\tconcept_id_2\trelationship_id\tvalid_start_date\tvalid_end_date\tinvalid_reason"
RELATIONSHIP_ROWS = [
    "135204\t4040380\tMaps to\t19700101\t20991231\t",
    "4040380\t4040380\tMaps to\t19700101\t20991231\t",
    "35200202\t35200202\tMaps to\t19700101\t20991231\t",
]
VOCABULARY_HEADER = "vocabulary_id\tvocabulary_name\tvocabulary_reference\tvocabulary_version\tvocabulary_concept_id"
VOCABULARY_ROWS = [
    "None\tOMOP Standardized Vocabularies\tOMOP generated\tv5.0 30-AUG-24\t44819096",
    "SNOMED\tSystematic Nomenclature of Medicine - Clinical Terms (IHTSDO)\thttp://www.snomed.org/\t2024-03-01 SNOMED CT International Edition\t44819097",
]
VERSION = "v5.0 30-AUG-24"


def _write_athena(folder: Path, concept_rows: list[str] | None = None, delimiter: str = "\t") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "CONCEPT.csv": [CONCEPT_HEADER, *(CONCEPT_ROWS if concept_rows is None else concept_rows)],
        "CONCEPT_RELATIONSHIP.csv": [RELATIONSHIP_HEADER, *RELATIONSHIP_ROWS],
        "VOCABULARY.csv": [VOCABULARY_HEADER, *VOCABULARY_ROWS],
    }
    for name, lines in files.items():
        text = "\n".join(line.replace("\t", delimiter) if name == "CONCEPT.csv" else line for line in lines) + "\n"
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def athena_concept_rows() -> list[str]:
    """CONCEPT.csv rows (tab-separated, no header) of the test Athena folder."""
    return list(CONCEPT_ROWS)


@pytest.fixture(scope="session")
def athena_version() -> str:
    """The vocabulary_version the test Athena folder declares."""
    return VERSION


@pytest.fixture(scope="session")
def write_athena():
    """write_athena(folder, concept_rows=None, delimiter="\\t") -> folder: an Athena download."""
    return _write_athena
