"""Our own bookkeeping tables, kept beside (never inside) the CDM tables (f2o-024).

- ctcl_id_map: every row key ever seen -> its integer OMOP id, so a re-load reuses the same id.
- ctcl_lineage: which resource owns which CDM row (trace any row back; delete a resource's rows).
- ctcl_resource_state: the last loaded version of each resource (skip unchanged, honour newer).
- ctcl_resource_file: which input files hold which resources, and the last run that saw each
  there, so a resource that vanished from every file it was in is deleted (a re-exported Bundle
  without it is the source saying it is gone); with the content hash of the entry last applied
  there ('deleted' for a DELETE entry, which holds nothing), so reading an unchanged entry again
  is a no-op: --full and incremental runs agree.
- ctcl_reference_wait: records waiting for a resource they reference (or that references them)
  that was not read yet: a drug whose medicationReference names an unread Medication (its row is
  filled in place), a result without date or subject waiting for the DiagnosticReport that lists
  it (kept whole in `resource`, quarantined until then, converted again when it can be). The end
  of the run that makes the awaited resource known (this run or a later one) completes them.
- ctcl_result_context: what each DiagnosticReport gives the results it lists (date, subject), so
  a result read in another file or a later run finds it.
- ctcl_quarantine: resources that could not be loaded, with file, position and reason.
- ctcl_unmapped: codes that ended as concept 0, with the reason, per run.
- ctcl_run: run metadata (software, CDM and vocabulary versions, times, inputs, report) (f2o-102).
- ctcl_run_person: persons whose rows a run changed, written inside each batch transaction, so the
  derivations (observation_period, eras, oncology) of a run killed after some batches committed are
  finished by the next run (their resources are unchanged then, so nothing else would touch them).
- ctcl_cleared_link: visit links cleared because the visit was not there (an Encounter not yet
  arrived, or deleted), with the resource version whose row held them, so the link is restored when
  the Encounter arrives in a later run (while that version of the resource is still current).
- ctcl_file_state: content hash, size and modification time of every input file a run completed,
  so an incremental run skips unchanged files before parsing them.
"""

from __future__ import annotations

import re
from functools import cache

CTCL_TABLES: dict[str, str] = {
    "ctcl_id_map": """
        id_space VARCHAR(40) NOT NULL,
        row_key VARCHAR(400) NOT NULL,
        omop_id INTEGER NOT NULL,
        PRIMARY KEY (id_space, row_key)""",
    "ctcl_lineage": """
        omop_table VARCHAR(40) NOT NULL,
        omop_id INTEGER NOT NULL,
        resource_key VARCHAR(300) NOT NULL,
        source_file VARCHAR(1000),
        source_position VARCHAR(200),
        run_id INTEGER NOT NULL""",
    "ctcl_resource_state": """
        resource_key VARCHAR(300) NOT NULL PRIMARY KEY,
        content_hash VARCHAR(64) NOT NULL,
        version_id VARCHAR(64),
        last_updated VARCHAR(40),
        status VARCHAR(20) NOT NULL,
        source_file VARCHAR(1000),
        run_id INTEGER NOT NULL""",
    "ctcl_resource_file": """
        source_file VARCHAR(1000) NOT NULL,
        resource_key VARCHAR(300) NOT NULL,
        seen_run INTEGER NOT NULL,
        content_hash VARCHAR(64),
        PRIMARY KEY (source_file, resource_key)""",
    "ctcl_reference_wait": """
        resource_key VARCHAR(300) NOT NULL PRIMARY KEY,
        awaited_key VARCHAR(400) NOT NULL,
        run_id INTEGER NOT NULL,
        source_file VARCHAR(1000),
        source_position VARCHAR(200),
        resource TEXT""",
    "ctcl_result_context": """
        result_key VARCHAR(300) NOT NULL,
        report_key VARCHAR(300) NOT NULL,
        context TEXT NOT NULL,
        PRIMARY KEY (result_key, report_key)""",
    "ctcl_quarantine": """
        run_id INTEGER NOT NULL,
        source_file VARCHAR(1000) NOT NULL,
        source_position VARCHAR(200) NOT NULL,
        resource_type VARCHAR(60),
        resource_id VARCHAR(300),
        reason VARCHAR(80) NOT NULL,
        message VARCHAR(1000) NOT NULL""",
    "ctcl_unmapped": """
        run_id INTEGER NOT NULL,
        omop_table VARCHAR(40) NOT NULL,
        omop_column VARCHAR(60) NOT NULL,
        vocabulary VARCHAR(300) NOT NULL,
        code VARCHAR(300) NOT NULL,
        reason VARCHAR(80) NOT NULL,
        row_count INTEGER NOT NULL""",
    "ctcl_run": """
        run_id INTEGER NOT NULL PRIMARY KEY,
        started_at TIMESTAMP NOT NULL,
        finished_at TIMESTAMP,
        status VARCHAR(20) NOT NULL,
        software_version VARCHAR(20) NOT NULL,
        cdm_version VARCHAR(10) NOT NULL,
        vocabulary_version VARCHAR(255),
        config_fingerprint VARCHAR(64) NOT NULL,
        inputs TEXT,
        report TEXT""",
    "ctcl_run_person": """
        run_id INTEGER NOT NULL,
        person_id INTEGER NOT NULL,
        PRIMARY KEY (run_id, person_id)""",
    "ctcl_file_state": """
        source_file VARCHAR(1000) NOT NULL PRIMARY KEY,
        content_hash VARCHAR(64) NOT NULL,
        size_bytes BIGINT NOT NULL,
        modified_ns BIGINT NOT NULL,
        medications INTEGER NOT NULL,
        run_id INTEGER NOT NULL""",
    "ctcl_cleared_link": """
        omop_table VARCHAR(40) NOT NULL,
        omop_id INTEGER NOT NULL,
        visit_occurrence_id INTEGER NOT NULL,
        resource_key VARCHAR(300) NOT NULL,
        content_hash VARCHAR(64) NOT NULL""",
    "ctcl_settings": """
        name VARCHAR(60) NOT NULL PRIMARY KEY,
        value VARCHAR(400) NOT NULL""",
}

# The derivation step's own tables (store/derived_rows.py), created when it first runs.
DERIVED_TABLES: dict[str, str] = {
    "ctcl_derived": "table_name VARCHAR(30) NOT NULL, row_id BIGINT NOT NULL, person_id BIGINT NOT NULL, "
                    "kind VARCHAR(40) NOT NULL, note TEXT",
    "ctcl_first_advanced": "person_id BIGINT NOT NULL PRIMARY KEY, first_advanced_date DATE NOT NULL, "
                           "stage_group VARCHAR(10) NOT NULL, measurement_id BIGINT",
}

# PostgreSQL looks rows up by these (a batch's keys against a large table); it also allows
# concurrent loaders, each batch reading the next free id of a space, MAX(omop_id), under the load
# lock, which the id index makes a lookup instead of a scan. (A DuckDB file has one writer, which
# keeps its next ids in memory.)
POSTGRES_INDEXES = (
    "CREATE INDEX IF NOT EXISTS ctcl_lineage_resource ON {ctcl_lineage} (resource_key)",
    "CREATE INDEX IF NOT EXISTS ctcl_id_map_space_id ON {ctcl_id_map} (id_space, omop_id)",
)
# DuckDB joins a batch's keys against these tables by hashing, never by index, and its (ART)
# indexes live in memory and are loaded by the first statement that touches them in a run:
# without keys these bookkeeping tables cost less to write, to read and to hold. Their rows stay
# unique because they are only ever replaced by key (Database.upsert_rows).
DUCKDB_KEYLESS = frozenset({"ctcl_resource_state", "ctcl_resource_file", "ctcl_file_state", "ctcl_reference_wait",
                            "ctcl_result_context"})


ADDED_COLUMNS = (("ctcl_resource_file", "content_hash VARCHAR(64)"),)


def ctcl_ddl(qualify, dialect: str = "duckdb") -> list[str]:
    """CREATE statements; `qualify` maps a table name to its schema-qualified name."""
    statements = [f"CREATE TABLE IF NOT EXISTS {qualify(name)} ({_body(name, body, dialect)}\n)" for name, body in CTCL_TABLES.items()]
    indexes = POSTGRES_INDEXES if dialect == "postgresql" else ()
    statements += [sql.format(ctcl_lineage=qualify("ctcl_lineage"), ctcl_id_map=qualify("ctcl_id_map")) for sql in indexes]
    # Columns added since the table was first shipped (CREATE ... IF NOT EXISTS leaves old tables as they are).
    statements += [f"ALTER TABLE {qualify(table)} ADD COLUMN IF NOT EXISTS {column}" for table, column in ADDED_COLUMNS]
    return statements


def _body(name: str, body: str, dialect: str) -> str:
    if dialect != "duckdb" or name not in DUCKDB_KEYLESS:
        return body
    return re.sub(r",\s*PRIMARY KEY \([^)]*\)", "", body).replace(" PRIMARY KEY", "")


@cache
def declared_types(table: str) -> dict[str, str]:
    """Column -> SQL type as our DDL declares it: CDM tables from the spec, ours from CTCL_TABLES
    and DERIVED_TABLES;
    empty for a table created elsewhere. (The DuckDB writer types the batches it hands over with
    these, instead of asking the database table by table.)"""
    from ctcl_map.cdm.schema import cdm_fields, sql_type

    if table in cdm_fields():
        return {f.name: sql_type(f.datatype, "duckdb") for f in cdm_fields()[table]}
    body = CTCL_TABLES.get(table) or DERIVED_TABLES.get(table, "").replace(", ", ",\n")
    return {name: kind for name, kind in re.findall(r"^\s*(\w+)\s+(\w+(?:\(\d+\))?)", body, re.M) if name != "PRIMARY"}
