"""What the oncology steps share for one chunk of persons (`Run`), the rows they derive
(`DerivedRows`), and the one way they add a derived measurement row. Its own module so that the
steps (oncology.py, clipi_step.py, episodes.py) import it, not each other.

The steps touch no database: they read the input rows (oncology_inputs) and add to `Run.out`;
the caller writes `out` (oncology.write_rows for a database, ctcl_map.spark.derive on Spark)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from ctcl_map.derive.concept_sets import FIELD_CONDITION, OncologyConcepts
from ctcl_map.derive.oncology_report import OncologyReport

MEASUREMENT_COLUMNS = (
    "measurement_id", "person_id", "measurement_concept_id", "measurement_date", "measurement_type_concept_id",
    "value_as_number", "value_as_concept_id", "measurement_source_value", "value_source_value",
    "measurement_event_id", "meas_event_field_concept_id",
)


EPISODE_COLUMNS = (
    "episode_id", "person_id", "episode_concept_id", "episode_start_date", "episode_end_date", "episode_parent_id",
    "episode_number", "episode_object_concept_id", "episode_type_concept_id", "episode_source_value",
)
EPISODE_EVENT_COLUMNS = ("episode_id", "event_id", "episode_event_field_concept_id")
FIRST_ADVANCED_COLUMNS = ("person_id", "first_advanced_date", "stage_group", "measurement_id")
DERIVED_COLUMNS = ("table_name", "row_id", "person_id", "kind", "note")  # ctcl_derived

# take_id(table, id column, row key) -> the id of a derived row ('derived:stage_group:12:2020-06-10')
TakeId = Callable[[str, str, str], int]


@dataclass
class DerivedRows:
    """What the steps derived for a chunk of persons, each in its table's column order."""

    measurements: list[tuple] = field(default_factory=list)  # new MEASUREMENT rows (MEASUREMENT_COLUMNS)
    links: list[tuple[int, int]] = field(default_factory=list)  # (measurement_id, condition_occurrence_id) to set
    unlinks: list[int] = field(default_factory=list)  # measurement_ids whose link to a gone condition is cleared
    first_advanced: list[tuple] = field(default_factory=list)  # FIRST_ADVANCED_COLUMNS
    episodes: list[tuple] = field(default_factory=list)  # EPISODE_COLUMNS
    episode_events: list[tuple] = field(default_factory=list)  # EPISODE_EVENT_COLUMNS
    derived: list[tuple] = field(default_factory=list)  # ctcl_derived rows (DERIVED_COLUMNS)


@dataclass
class Run:
    """Everything the steps share for one chunk of persons."""

    concepts: OncologyConcepts
    report: OncologyReport
    take_id: TakeId
    b_rules: str
    options: dict
    out: DerivedRows = field(default_factory=DerivedRows)
    unconfirmed: set[int] = field(default_factory=set)  # CTCL condition_occurrence_ids left out


def insert_measurement(run: Run, person_id: int, day: date, concept: int, kind: str, *, value_number=None,
                       value_concept=None, source: str, value_source: str | None, event_id: int | None,
                       note: str | None = None) -> int:
    """Add one derived measurement row and remember it for ctcl_derived."""
    measurement_id = run.take_id("measurement", "measurement_id", f"derived:{kind}:{person_id}:{day.isoformat()}")
    run.out.measurements.append((
        measurement_id, person_id, concept, day, run.concepts.measurement_type_id, value_number, value_concept,
        source[:50], (value_source or None) and value_source[:50], event_id,
        FIELD_CONDITION if event_id is not None else None,
    ))
    run.out.derived.append(("measurement", measurement_id, person_id, kind, note))
    return measurement_id
