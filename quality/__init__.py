"""CDM data-quality checks driven by the OHDSI DataQualityDashboard v5.4 definitions (`ctcl-map dq`)."""

from ctcl_map.quality.dq import run_dq
from ctcl_map.quality.report import CheckResult, DqReport

__all__ = ["run_dq", "CheckResult", "DqReport"]
