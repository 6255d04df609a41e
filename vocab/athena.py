"""Bulk-load a full Athena vocabulary download (tab-separated CONCEPT.csv etc.) into the CDM tables.

CONCEPT alone has millions of rows, so no row passes through a Python loop: DuckDB reads the files
with read_csv, PostgreSQL receives them through COPY FROM STDIN in large blocks. Python only checks
each file's header (the delimiter and the column names) and turns the database's own error, which
carries the line number, into an AthenaError that names the file and line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ctcl_map.cdm.schema import cdm_fields, columns
from ctcl_map.errors import AthenaError, DatabaseError
from ctcl_map.store.constraints import create_table_indices, drop_table_indices
from ctcl_map.store.database import Database
from ctcl_map.vocab.loader import _typed, load_shipped_vocabulary, read_shipped, vocabulary_version
from ctcl_map.vocab.prepare import forget_vocabulary_digest

# File -> CDM table. Required files make a usable vocabulary; the others are loaded when present.
REQUIRED_FILES = {"CONCEPT.csv": "concept", "CONCEPT_RELATIONSHIP.csv": "concept_relationship", "VOCABULARY.csv": "vocabulary"}
OPTIONAL_FILES = {
    "CONCEPT_ANCESTOR.csv": "concept_ancestor", "DOMAIN.csv": "domain", "CONCEPT_CLASS.csv": "concept_class",
    "RELATIONSHIP.csv": "relationship", "CONCEPT_SYNONYM.csv": "concept_synonym", "DRUG_STRENGTH.csv": "drug_strength",
}
# Every vocabulary table is emptied first, so no row of an older release survives next to the new one.
REPLACED_TABLES = tuple(REQUIRED_FILES.values()) + tuple(OPTIONAL_FILES.values())


@dataclass
class AthenaLoadReport:
    directory: Path
    vocabulary_version: str
    rows_loaded: dict[str, int] = field(default_factory=dict)  # file name -> rows
    missing_optional: list[str] = field(default_factory=list)
    own_concepts_added: int = 0
    indices_created: list[str] = field(default_factory=list)  # OHDSI's vocabulary indices

    def summary(self) -> str:
        lines = [f"Athena vocabulary {self.vocabulary_version or '(no version in VOCABULARY.csv)'} from {self.directory}"]
        lines += [f"  {name}: {count:,} rows" for name, count in self.rows_loaded.items()]
        if self.missing_optional:
            lines.append(f"  not present (optional): {', '.join(self.missing_optional)}")
        lines.append(f"  CTCL-map concepts re-added: {self.own_concepts_added}")
        lines.append(f"  indices created: {len(self.indices_created)} (OHDSI's, on the vocabulary tables)")
        return "\n".join(lines)


def _check_header(path: Path, table: str) -> list[str]:
    """Header must be tab-separated and name exactly the table's CDM columns; returns file column order."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        header = handle.readline().rstrip("\r\n")
    if not header:
        raise AthenaError(f"{path.name}, line 1: file is empty (expected a header row)")
    expected = list(columns(table))
    found = [name.strip().lower() for name in header.split("\t")]
    if len(found) == 1 and len(expected) > 1:
        for delimiter, label in ((",", "comma"), (";", "semicolon"), ("|", "pipe")):
            if delimiter in header:
                raise AthenaError(
                    f"{path.name}, line 1: {label}-delimited; Athena files are tab-separated "
                    "(download them again from athena.ohdsi.org without converting them)"
                )
    if sorted(found) != sorted(expected):
        missing = [c for c in expected if c not in found]
        extra = [c for c in found if c not in expected]
        raise AthenaError(
            f"{path.name}, line 1: header does not match table {table}"
            + (f"; missing column(s) {', '.join(missing)}" if missing else "")
            + (f"; unexpected column(s) {', '.join(extra)}" if extra else "")
        )
    return found


_LINE = re.compile(r"[Ll]ine:? (\d+)")


def _database_error(path: Path, exc: Exception) -> AthenaError:
    """Keep the database's diagnosis but name the file and line first."""
    text = str(exc)
    line_match = _LINE.search(text)
    line = f"line {line_match.group(1)}" if line_match else "line unknown"
    reason = next(
        (part.strip() for part in text.splitlines()
         if part.startswith(("Error when converting", "Expected Number of Columns")) or "invalid input syntax" in part
         or "extra data after last expected column" in part or "missing data for column" in part),
        text.strip().splitlines()[0] if text.strip() else type(exc).__name__,
    )
    return AthenaError(f"{path.name}, {line}: {reason}")


def _duckdb_type(datatype: str) -> str:
    return {"integer": "INTEGER", "float": "DOUBLE", "date": "DATE", "datetime": "TIMESTAMP"}.get(datatype, "VARCHAR")


def _load_file(db: Database, path: Path, table: str, file_columns: list[str]) -> int:
    kinds = {f.name: _duckdb_type(f.datatype) for f in cdm_fields()[table]}
    try:
        db.load_tab_separated(table, path, file_columns, [kinds[name] for name in file_columns])
    except DatabaseError as exc:  # re-raised with file and line
        raise _database_error(path, exc) from exc
    return db.query(f"SELECT count(*) FROM {db.table(table)}")[0][0]


def load_athena(db: Database, athena_dir: Path, progress: Callable[[str, int], None] | None = None) -> AthenaLoadReport:
    """Replace the vocabulary tables with an Athena download, then re-add our CTCL-map rows.

    All in one transaction: a malformed file leaves the previously loaded vocabulary untouched.
    """
    athena_dir = Path(athena_dir)
    if not athena_dir.is_dir():
        raise AthenaError(f"{athena_dir}: not a folder (give the unzipped Athena download)")
    files = {name: athena_dir / name for name in {**REQUIRED_FILES, **OPTIONAL_FILES}}
    missing_required = [name for name in REQUIRED_FILES if not files[name].is_file()]
    if missing_required:
        raise AthenaError(f"{athena_dir}: required file(s) missing: {', '.join(missing_required)}")
    present = {name: table for name, table in {**REQUIRED_FILES, **OPTIONAL_FILES}.items() if files[name].is_file()}
    headers = {name: _check_header(files[name], table) for name, table in present.items()}  # all before any change

    report = AthenaLoadReport(directory=athena_dir, vocabulary_version="")
    report.missing_optional = [name for name in OPTIONAL_FILES if name not in present]
    with db.transaction():
        drop_table_indices(db, REPLACED_TABLES)  # re-created after the load: filling indexed tables is slower
        for table in REPLACED_TABLES:
            db.empty_table(table)
        for name, table in present.items():
            report.rows_loaded[name] = _load_file(db, files[name], table, headers[name])
            if progress:
                progress(name, report.rows_loaded[name])
        report.own_concepts_added = load_shipped_vocabulary(db, own_only=True)
        _add_missing_metadata(db)
        report.vocabulary_version = vocabulary_version(db)
        report.indices_created = create_table_indices(db, REPLACED_TABLES)
        forget_vocabulary_digest(db)  # the next run names (and snapshots) this vocabulary anew
    for table in REPLACED_TABLES:  # fresh statistics, or PostgreSQL's planner guesses on millions of rows
        db.execute(f"ANALYZE {db.table(table)}")
    return report


def _add_missing_metadata(db: Database) -> None:
    """Our concepts use domains, classes and relationships; add ours only where Athena lacks them."""
    for file_name, table, key in (
        ("DOMAIN.csv", "domain", "domain_id"), ("CONCEPT_CLASS.csv", "concept_class", "concept_class_id"),
        ("RELATIONSHIP.csv", "relationship", "relationship_id"),
    ):
        present = {row[0] for row in db.query(f"SELECT {key} FROM {db.table(table)}")}
        rows = [_typed(table, r) for r in read_shipped(file_name) if r[key] not in present]
        db.insert_rows(table, columns(table), rows)
