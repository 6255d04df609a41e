"""Run an OHDSI Circe cohort definition (the JSON ATLAS exports) against our CDM.

ohdsi-circepy generates the same OHDSI SQL as Java circe-be; its pure-Python SqlRender port
renders the parameters and translates to 'duckdb' or 'postgresql'. The statements run through our
own Database connection, so circepy's ibis executor (which needs duckdb<2) is not involved.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ctcl_map.errors import CirceUnavailable, DatabaseError, SurvivalSpecError
from ctcl_map.store.database import Database
from ctcl_map.survival.cohorts import cohort_definition_id, ensure_cohort_tables, settle_definition
from ctcl_map.vocab.loader import vocabulary_version


def circe_sql(db: Database, expression_json: str, cohort_id: int) -> list[str]:
    """The translated statements that (re)build cohort `cohort_id` in db.results_table('cohort')."""
    try:
        from circe.api import build_cohort_query, cohort_expression_from_json
        from circe.cohortdefinition import BuildExpressionQueryOptions
        from circe.sqlrender import split_sql, translate
    except ImportError as exc:
        raise CirceUnavailable(f"running Circe JSON needs the ohdsi-circepy package ({exc})") from None
    expression = cohort_expression_from_json(expression_json)
    default_schema = db.default_schema
    options = BuildExpressionQueryOptions()
    options.cdm_schema = db.cdm_schema or default_schema
    options.vocabulary_schema = db.cdm_schema or default_schema
    options.result_schema = db.results_schema or default_schema
    options.target_table = db.results_table("cohort") if db.results_schema else f"{default_schema}.{db.cohort_table}"
    options.cohort_id = cohort_id
    options.generate_stats = False
    sql, id_lists = _park_id_lists(build_cohort_query(expression, options))
    translated = translate(sql, db.dialect)  # sqlglot names the dialects as we do
    for marker, ids in id_lists.items():
        translated = translated.replace(marker, ids)
    return [s for s in split_sql(translated) if s.strip()]


# A parenthesised list of 10+ integers (a concept set's ids): nothing a dialect translation rewrites.
_ID_LIST = re.compile(r"\(\s*\d+(?:\s*,\s*\d+){9,}\s*\)")


def _park_id_lists(sql: str) -> tuple[str, dict[str, str]]:
    """Replace long concept-id lists by short markers while SqlRender translates: its pure-Python
    tokenizer re-reads the whole statement per rule, so 7,000 listed concepts took ~30 s, ~0.1 s parked."""
    lists: dict[str, str] = {}

    def park(match: re.Match[str]) -> str:
        marker = f"(ctcl_map_ids_{len(lists)})"
        lists[marker] = match.group(0)
        return marker

    return _ID_LIST.sub(park, sql), lists


@dataclass
class CirceRun:
    cohort_id: int
    name: str
    written: str  # what was written where
    id_source: str  # where the id came from, in words
    warnings: list[str]  # concept-set roots the loaded vocabulary cannot expand


def descendant_roots(expression: dict) -> dict[int, tuple[str, str]]:
    """Included concept-set items with descendants: concept_id -> (concept set name, concept name)."""
    roots: dict[int, tuple[str, str]] = {}
    for concept_set in expression.get("ConceptSets") or []:
        for item in (concept_set.get("expression") or {}).get("items") or []:
            concept = item.get("concept") or {}
            if item.get("includeDescendants") and not item.get("isExcluded") and str(concept.get("CONCEPT_ID", "")).isdigit():
                roots.setdefault(int(concept["CONCEPT_ID"]),
                                 (str(concept_set.get("name", concept_set.get("id"))), str(concept.get("CONCEPT_NAME", ""))))
    return roots


def vocabulary_gaps(db: Database, expression: dict) -> list[str]:
    """One warning per concept set whose roots (included with descendants) have no descendant in the
    loaded CONCEPT_ANCESTOR: such a set can only find the root itself, so a cohort that should hold
    patients may come out empty because of the vocabulary, not the data."""
    roots = descendant_roots(expression)
    if not roots:
        return []
    ids = ", ".join(str(i) for i in sorted(roots))
    expanded = {int(row[0]) for row in db.query(
        f"SELECT DISTINCT ancestor_concept_id FROM {db.table('concept_ancestor')} "
        f"WHERE ancestor_concept_id IN ({ids}) AND descendant_concept_id <> ancestor_concept_id")}
    bare = [(cid, names) for cid, names in roots.items() if cid not in expanded]
    if not bare:
        return []
    sets = sorted({names[0] for _, names in bare})
    shown = "; ".join(f"{cid} {concept} (in {set_name!r})" for cid, (set_name, concept) in bare[:5])
    more = f"; and {len(bare) - 5} more" if len(bare) > 5 else ""
    return [f"{len(bare)} of {len(roots)} concept-set roots taken with descendants, in {len(sets)} of the "
            f"cohort's concept sets, have no descendants in the loaded vocabulary ({vocabulary_version(db) or 'none loaded'}): "
            f"{shown}{more}. Those sets find only records coded with the roots themselves; load a full Athena "
            "vocabulary (`ctcl-map vocab load ATHENA_DIR`) for the hierarchy the definition relies on"]


def published_identity(document: dict, json_path: Path) -> tuple[dict, int | None, str | None]:
    """(expression, published id, published name) of a Circe file.

    ATLAS/WebAPI exports wrap the expression: {"id": 622, "name": ..., "expression": {...}}; a bare
    expression may carry "id"; PhenotypeLibrary names its files by id (inst/cohorts/622.json)."""
    expression = document.get("expression")
    if not isinstance(expression, dict):
        expression = document
    published = document.get("id")
    if isinstance(published, int) and published > 0:
        name = document.get("name")
        return expression, published, name if isinstance(name, str) else None
    stem = Path(json_path).stem
    if stem.isdigit() and int(stem) > 0:
        return expression, int(stem), None
    return expression, None, None


def run_circe_cohort(db: Database, json_path: Path, name: str | None = None, cohort_id: int | None = None) -> CirceRun:
    """Build the cohort of a Circe JSON file under `cohort_id`, else the file's published id, else a
    new id; never over another definition's rows (CohortIdClash)."""
    try:
        text = Path(json_path).read_text(encoding="utf-8")
        document = json.loads(text)
    except OSError as exc:
        raise SurvivalSpecError(f"cannot read Circe cohort definition {json_path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise SurvivalSpecError(f"{json_path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(document, dict):
        raise SurvivalSpecError(f"{json_path}: not a Circe cohort definition (a JSON object is expected)")
    expression, published_id, published_name = published_identity(document, json_path)
    name = name or published_name or f"circe:{Path(json_path).stem}"
    if cohort_id is not None:
        id_source = f"cohort id {cohort_id} from --cohort-id"
    elif published_id is not None:
        cohort_id, id_source = published_id, f"published cohort id {published_id} kept"
    else:
        id_source = f"{Path(json_path).name} carries no cohort id: a new id was allocated (choose one with --cohort-id)"
    ensure_cohort_tables(db)
    cohort_id = cohort_definition_id(db, name, f"OHDSI Circe cohort definition from {Path(json_path).name}", cohort_id)
    try:
        statements = circe_sql(db, json.dumps(expression), cohort_id)
    except SurvivalSpecError:
        raise
    except Exception as exc:  # circepy's own validation errors
        raise SurvivalSpecError(f"{json_path}: not a usable Circe cohort definition: {exc}") from None
    before = db.query(f"SELECT COUNT(*) FROM {db.results_table('cohort')} WHERE cohort_definition_id = ?", [cohort_id])
    try:
        for statement in statements:
            db.execute(statement)
    except Exception as exc:
        raise DatabaseError(f"Circe SQL for {json_path} failed on {db.dialect}: {str(exc).splitlines()[0]}") from None
    rows = db.query(f"SELECT COUNT(*) FROM {db.results_table('cohort')} WHERE cohort_definition_id = ?", [cohort_id])
    written = settle_definition(db, cohort_id, name, int(rows[0][0]), int(before[0][0]))
    return CirceRun(cohort_id, name, written, id_source, vocabulary_gaps(db, expression))
