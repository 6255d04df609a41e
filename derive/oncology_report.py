"""What one derive_oncology run did and could not do, for the CLI summary and --json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class OncologyReport:
    b_rules: str
    persons: int = 0
    diagnoses: int = 0
    # CTCL diagnoses recorded as provisional / differential / unconfirmed: left out of the
    # diagnosis set (episodes, staging links, first advanced stage) unless include_unconfirmed
    unconfirmed_diagnoses_excluded: int = 0
    staging_of_unconfirmed_excluded: int = 0  # staging rows linked to such a diagnosis, left out too
    staging_rows: int = 0
    staging_linked: int = 0  # given staging rows newly linked to a CTCL diagnosis (1147127)
    staging_without_diagnosis: int = 0
    b_derived: int = 0
    stage_derived: int = 0
    first_advanced: int = 0
    disease_episodes: int = 0
    treatment_lines: int = 0
    episode_events: int = 0
    clipi_persons: int = 0
    episodes_ended_by_death: int = 0
    measurement_type_concept_id: int = 0
    episode_type_concept_id: int = 0
    unparseable_values: list[dict[str, Any]] = field(default_factory=list)
    b_not_derivable: list[dict[str, Any]] = field(default_factory=list)
    stage_not_derivable: list[dict[str, Any]] = field(default_factory=list)
    stage_disagreements: list[dict[str, Any]] = field(default_factory=list)
    stage_conflicts: list[dict[str, Any]] = field(default_factory=list)
    stage_given_conflicts: list[dict[str, Any]] = field(default_factory=list)  # one date, two given groups that disagree
    clipi_incomplete: list[dict[str, Any]] = field(default_factory=list)
    therapy_without_diagnosis: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for items in data.values():
            if isinstance(items, list):
                for item in items:
                    if isinstance(item, dict):
                        for key, value in item.items():
                            if hasattr(value, "isoformat"):
                                item[key] = value.isoformat()
        return data
