"""What a survival run is asked to do (SurvivalSpec) and what it found (SurvivalResult)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from ctcl_map.errors import SurvivalSpecError

# The adjusted comparisons a spec may ask for (survival/adjust.py carries them out).
METHODS = ("cox", "ps-match", "ps-stratify", "iptw")
DEFAULT_METHOD = "cox"
MISSING = ("indicator", "complete-case")

# name -> kind (numeric | binary | category), the value shown as 1 for binary, and its description
COVARIATES: dict[str, tuple[str, str, str]] = {
    "age": ("numeric", "", "age at index (years)"),
    "sex": ("binary", "male", "male sex"),
    "ctcl_type": ("binary", "SS", "Sezary syndrome (vs MF)"),
    "stage_group": ("category", "", "stage group at index (early = IA-IIA)"),
    "stage_iv": ("binary", "yes", "stage IV at index"),
    "clipi_group": ("category", "", "CLIPI risk group"),
    "ldh_raised": ("binary", "yes", "raised LDH"),
    "lct": ("binary", "yes", "large-cell transformation"),
    "prior_lines": ("numeric", "", "prior systemic lines"),
    "index_year": ("numeric", "", "calendar year of index"),
}
# The CTCL prognostic set. prior_lines and index_year are offered but not default: in the new-user
# design the X line is a later line in later years by construction (mogamulizumab: line >= 2, from
# 2018), so they separate the arms (no overlap) without being prognostic; add them by name.
DEFAULT_COVARIATES = ("age", "sex", "ctcl_type", "stage_group", "clipi_group", "ldh_raised", "lct")

DESIGNS = ("none", "naive", "new-user", "landmark", "time-varying")
STRATA = ("stage_group", "ctcl_type", "clipi_group", "sex")
DAYS_PER_MONTH = 365.25 / 12
DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class Restrictions:
    """Who may enter a cohort, judged at the index date. None means no restriction."""

    stage_groups: tuple[str, ...] | None = None  # e.g. ("IIB", "IIIA"); "advanced"/"early" expand
    clipi_groups: tuple[str, ...] | None = None  # low / intermediate / high
    ctcl_types: tuple[str, ...] | None = None  # MF / SS / other
    age_min: float | None = None  # years at index, inclusive
    age_max: float | None = None  # years at index, inclusive
    sex: str | None = None  # male / female
    index_from: date | None = None  # calendar period of the index date, inclusive
    index_to: date | None = None

    def describe(self) -> str:
        parts = []
        for name, value in asdict(self).items():
            if value is not None:
                shown = ",".join(value) if isinstance(value, tuple) else str(value)
                parts.append(f"{name}={shown}")
        return "; ".join(parts)


@dataclass(frozen=True)
class SurvivalSpec:
    cohort: str = "ctcl"  # a built-in cohort name (see cohorts.BUILT_IN) ...
    circe_json: Path | None = None  # ... or an ATLAS/Circe cohort definition that replaces it
    cohort_id: int | None = None  # the target cohort's cohort_definition_id (default: Circe's published id, else allocated)
    restrictions: Restrictions = field(default_factory=Restrictions)
    compare: str | None = None  # exposure: RxNorm ingredient name or concept_id (e.g. mogamulizumab)
    comparator: str | None = None  # new-user design: a specific comparator ingredient (default: any other line)
    design: str = "none"  # none | naive | new-user | landmark | time-varying
    landmark_months: float = 6.0
    strata: tuple[str, ...] = ()
    admin_end: date | None = None  # administrative censoring date
    min_survival_days: int = 1  # CohortSurvival minimumSurvivalDays
    covariate_grace_days: int = 30  # stage/CLIPI/type recorded up to this many days after index count
    survival_years: tuple[float, ...] = (1.0, 2.0, 5.0)
    conf_type: str = "log-log"  # KM band: log-log (lifelines) or log (R survfit default)
    time_unit: str = "months"  # display unit: days | months | years
    # provisional / differential / unconfirmed diagnoses, and stages linked to them, enter cohorts
    include_unconfirmed: bool = False
    adjust: tuple[str, ...] = ()  # baseline covariates at index (adjust.COVARIATES; adjust.DEFAULT_COVARIATES)
    method: str = "cox"  # cox | ps-match | ps-stratify | iptw (adjust.METHODS)
    missing: str = "indicator"  # missing covariates: indicator | complete-case

    def check(self) -> None:
        if self.design not in DESIGNS:
            raise SurvivalSpecError(f"unknown design {self.design!r}: choose one of {', '.join(DESIGNS)}")
        if self.design != "none" and not self.compare:
            raise SurvivalSpecError(f"design {self.design!r} needs an exposure to compare (--compare INGREDIENT)")
        if self.compare and self.design == "none":
            raise SurvivalSpecError(
                "--compare needs a design: new-user, landmark, time-varying, or naive (biased, warns)"
            )
        if self.cohort == "death" and not self.circe_json:
            raise SurvivalSpecError("'death' is the outcome cohort; choose a target cohort such as ctcl, mf, ss or advanced")
        for name in self.strata:
            if name not in STRATA:
                raise SurvivalSpecError(f"unknown stratum {name!r}: choose from {', '.join(STRATA)}")
        if self.design == "landmark" and self.landmark_months <= 0:
            raise SurvivalSpecError("--landmark-months must be greater than 0")
        if self.cohort_id is not None and self.cohort_id <= 0:
            raise SurvivalSpecError("--cohort-id must be a positive integer")
        if self.conf_type not in ("log-log", "log"):
            raise SurvivalSpecError("conf_type must be 'log-log' or 'log'")
        if self.time_unit not in ("days", "months", "years"):
            raise SurvivalSpecError("time_unit must be days, months or years")
        self._check_adjustment()

    def _check_adjustment(self) -> None:
        if self.method not in METHODS:
            raise SurvivalSpecError(f"unknown method {self.method!r}: choose one of {', '.join(METHODS)}")
        if self.missing not in MISSING:
            raise SurvivalSpecError(f"unknown missing-covariate handling {self.missing!r}: {' or '.join(MISSING)}")
        unknown = [name for name in self.adjust if name not in COVARIATES]
        if unknown:
            raise SurvivalSpecError(f"unknown covariate(s) {', '.join(unknown)}: use 'default' or some of "
                                    f"{', '.join(COVARIATES)}")
        if self.adjust and not self.compare:
            raise SurvivalSpecError("--adjust needs an exposure to compare (--compare INGREDIENT --design ...)")
        if self.adjust and self.design == "time-varying" and self.method != "cox":
            raise SurvivalSpecError("--design time-varying has no baseline treatment decision to model a propensity "
                                    "score for: use --method cox")

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        return _jsonable(out)


@dataclass
class AttritionStep:
    cohort: str  # which cohort or analysis arm the step belongs to
    step: str  # what was required
    persons_before: int
    persons_after: int
    reason: str = ""  # why persons were dropped, in words

    @property
    def dropped(self) -> int:
        return self.persons_before - self.persons_after


@dataclass
class GroupSummary:
    """One Kaplan-Meier curve: a comparison arm and/or a stratum."""

    label: str
    persons: int
    events: int
    censored: int
    median_days: float | None
    median_lower_days: float | None
    median_upper_days: float | None
    at_times: list[dict[str, Any]]  # per requested year: survival, lower, upper, at_risk (None = beyond follow-up)
    curve: Any = None  # km.KMCurve, for plots; not serialised


@dataclass
class SurvivalResult:
    spec: SurvivalSpec
    cohort_name: str
    design: str
    attrition: list[AttritionStep]
    groups: list[GroupSummary]
    logrank: dict[str, Any] | None = None
    cox: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)  # cohorts written: id, name, table, rows
    strata_cox: dict[str, Any] | None = None  # no exposure, with strata: HR of each stratum vs the first
    adjusted: dict[str, Any] | None = None  # --adjust: adjusted HR, balance, propensity score (adjust.py)
    persons: Any = None  # pandas DataFrame, one row per person-arm: the analysed time-to-event table


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (date, Path)):
        return str(value)
    return value
