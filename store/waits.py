"""ctcl_reference_wait: records waiting for a resource they need (a drug row for its Medication,
a result for the DiagnosticReport or Encounter that dates it), and ctcl_result_context, what each
DiagnosticReport says of the results it lists."""

from __future__ import annotations

from collections.abc import Sequence

from ctcl_map.store.database import Database
from ctcl_map.store.statements import statement

WAIT_COLUMNS = ("resource_key", "awaited_key", "run_id", "source_file", "source_position", "resource")


def drugs_waiting_for(db: Database, medication_keys: Sequence[str]) -> list[tuple]:
    """(resource key, awaited Medication key, run id, drug_exposure_id, person_id) of the drug rows
    waiting for one of these Medications."""
    with db.key_relation(sorted(medication_keys)) as relation:
        return db.query(statement(db, "waits", "drugs_waiting_for", medications=relation))


def any_waiting_resource(db: Database) -> bool:
    """Whether any record waits with its resource kept (a result to convert again)."""
    return bool(db.query(statement(db, "waits", "any_waiting_resource")))


def results_waiting_for_reports(db: Database, prefix: str) -> list[tuple]:
    """(resource key, run id, source file, position, resource JSON, content hash, report key, report
    context JSON) of each result waiting for a report (awaited keys starting with `prefix`) that is
    quarantined or whose report is known now; one row per report known, ordered."""
    return db.query(statement(db, "waits", "results_waiting_for_reports"), [prefix, prefix + "%"])


def stop_waiting(db: Database, resource_keys: Sequence[str]) -> None:
    db.delete_keys("ctcl_reference_wait", ("resource_key",), sorted({(key,) for key in resource_keys}))


def wait(db: Database, rows: Sequence[tuple]) -> None:
    """Records (rows of WAIT_COLUMNS) that wait for a resource."""
    db.insert_rows("ctcl_reference_wait", WAIT_COLUMNS, rows)


def any_wait(db: Database) -> bool:
    return bool(db.query(statement(db, "waits", "any_wait")))


def record_result_contexts(db: Database, rows: Sequence[tuple[str, str, str]]) -> None:
    """(result key, report key, context JSON): what a DiagnosticReport says of a result it lists."""
    db.insert_rows("ctcl_result_context", ("result_key", "report_key", "context"), rows)
