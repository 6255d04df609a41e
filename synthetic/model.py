"""Data the simulation produces before any FHIR is written (the ground truth lives here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class GeneratorConfig:
    """Parameters of one synthetic cohort; the same config always gives the same bytes."""

    patients: int
    seed: int
    messy: bool = False
    mogamulizumab_hr: float = 0.7  # hazard ratio of death from the start of mogamulizumab on
    # Confounding by indication: mogamulizumab goes preferentially to the sicker patients (SS, stage
    # IV, raised LDH, CLIPI intermediate/high at first advanced stage); see course.confounded_uptake.
    confounding: bool = False
    # False: no background (non-CTCL) deaths, so the conditional hazard ratio of all-cause death is
    # exactly mogamulizumab_hr (with background deaths it is diluted towards 1).
    background_mortality: bool = True
    start_year: int = 2005  # earliest diagnosis year
    end_date: date = date(2024, 12, 31)  # administrative censoring


@dataclass(frozen=True)
class StagingSet:
    """One TNMB assessment: categories with clone suffix, the derived group, the raw blood values."""

    staging_date: date
    t: str
    n: str
    m: str
    b: str
    stage_group: str
    sezary_per_ul: int
    cd4cd26neg_per_ul: int
    cd4_cd8_ratio: float
    blood_clone: bool
    ldh_u_per_l: int
    ldh_upper_limit: int
    lct: bool
    lymphocytes_per_ul: int
    sezary_pct_lymphocytes: float


@dataclass(frozen=True)
class DrugCourse:
    """A systemic (or topical) drug course; line_number 0 = topical, not a line of therapy."""

    drug: str
    line_number: int
    start: date
    end: date
    event_dates: tuple[date, ...]  # infusion days (IV) or prescription/renewal dates (oral, SC, topical)
    dose_mg: tuple[float, ...]  # per event (IV); empty for non-IV


@dataclass(frozen=True)
class ProcedureCourse:
    kind: str  # key of codes.PROCEDURES
    start: date
    end: date
    session_dates: tuple[date, ...]  # one Procedure resource per entry


@dataclass
class PatientCourse:
    """Everything simulated for one patient (latent and observed)."""

    index: int
    patient_id: str
    patient_key: str
    subtype: str
    sex: str
    birth_date: date
    weight_kg: float
    height_cm: float
    diagnosis_date: date
    stagings: list[StagingSet]
    first_advanced_date: date | None
    clipi_components: dict[str, bool] | None
    clipi_score: int | None
    clipi_group: str | None
    drug_courses: list[DrugCourse]
    procedures: list[ProcedureCourse]
    mogamulizumab_start: date | None
    latent_death_date: date
    censor_date: date
    censor_reason: str  # administrative | lost_to_follow_up
    # Latent values the simulation used, whether or not follow-up lasted long enough to see them.
    latent_first_advanced_date: date | None = None
    latent_clipi_group: str | None = None
    latent_mogamulizumab_start: date | None = None  # planned start (used by the hazard if alive then)
    latent_death_date_without_mogamulizumab: date | None = None  # same random draw, no treatment effect
    anomalies: list[dict[str, object]] = field(default_factory=list)

    @property
    def death_date(self) -> date | None:
        """Observed death: only when it happens on or before the censoring date."""
        return self.latent_death_date if self.latent_death_date <= self.censor_date else None

    @property
    def followup_end(self) -> date:
        return self.death_date or self.censor_date


@dataclass
class PatientRecord:
    course: PatientCourse
    resources: list[dict]  # in bundle order, Patient first
    resent: list[dict] = field(default_factory=list)  # messy: re-sent copies for a second file


@dataclass
class Cohort:
    config: GeneratorConfig
    records: list[PatientRecord]
    parameters: dict
