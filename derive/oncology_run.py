"""What the oncology steps share for one chunk of persons (`Run`), and the one way they write a
derived measurement row. Its own module so that the steps (oncology.py, clipi_step.py,
episodes.py) import it, not each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from ctcl_map.derive.concept_sets import FIELD_CONDITION, OncologyConcepts
from ctcl_map.derive.oncology_report import OncologyReport
from ctcl_map.store import derived_rows
from ctcl_map.store.database import Database

MEASUREMENT_COLUMNS = (
    "measurement_id", "person_id", "measurement_concept_id", "measurement_date", "measurement_type_concept_id",
    "value_as_number", "value_as_concept_id", "measurement_source_value", "value_source_value",
    "measurement_event_id", "meas_event_field_concept_id",
)


@dataclass
class Run:
    """Everything the steps share for one chunk of persons."""

    db: Database
    concepts: OncologyConcepts
    report: OncologyReport
    ids: derived_rows.IdAllocator
    b_rules: str
    options: dict
    derived: list  # ctcl_derived rows to record
    unconfirmed: set[int] = field(default_factory=set)  # CTCL condition_occurrence_ids left out


def insert_measurement(run: Run, person_id: int, day: date, concept: int, kind: str, *, value_number=None,
                       value_concept=None, source: str, value_source: str | None, event_id: int | None,
                       note: str | None = None) -> int:
    """Write one derived measurement row and remember it in ctcl_derived."""
    measurement_id = run.ids.take("measurement", "measurement_id", f"derived:{kind}:{person_id}:{day.isoformat()}")
    run.db.insert_rows(run.db.table("measurement"), MEASUREMENT_COLUMNS, [(
        measurement_id, person_id, concept, day, run.concepts.measurement_type_id, value_number, value_concept,
        source[:50], (value_source or None) and value_source[:50], event_id,
        FIELD_CONDITION if event_id is not None else None,
    )])
    run.derived.append(("measurement", measurement_id, person_id, kind, note))
    return measurement_id
