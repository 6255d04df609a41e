"""Synthetic CTCL (MF/SS) FHIR R4 cohorts with a known ground truth (issue 6)."""

from ctcl_map.synthetic.generator import Cohort, GeneratorConfig, generate_cohort, write_cohort

__all__ = ["Cohort", "GeneratorConfig", "generate_cohort", "write_cohort"]
