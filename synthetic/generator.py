"""Public API of the synthetic CTCL cohort generator (the CLI calls exactly these)."""

from __future__ import annotations

from ctcl_map.synthetic.build import build_record
from ctcl_map.synthetic.course import simulate_course
from ctcl_map.synthetic.model import Cohort, GeneratorConfig
from ctcl_map.synthetic.runtime import garbage_collector_paused
from ctcl_map.synthetic.survival import model_parameters
from ctcl_map.synthetic.writer import write_cohort

__all__ = ["GeneratorConfig", "Cohort", "generate_cohort", "write_cohort"]


def generate_cohort(config: GeneratorConfig) -> Cohort:
    """Pure and deterministic: every random choice comes from random.Random instances seeded by
    (config.seed, patient index); no global random state, clock or uuid4."""
    if config.patients < 0:
        raise ValueError(f"patients must be >= 0, got {config.patients}")
    if config.mogamulizumab_hr <= 0:
        raise ValueError(f"mogamulizumab_hr must be > 0, got {config.mogamulizumab_hr}")
    if config.end_date.year <= config.start_year:
        raise ValueError(f"end_date {config.end_date} must lie after start_year {config.start_year}")
    with garbage_collector_paused():
        records = [build_record(simulate_course(config, index), config) for index in range(config.patients)]
    return Cohort(config=config, records=records, parameters=model_parameters())
