"""Ground truth: truth.csv (one row per patient, what the FHIR says once read correctly) and
truth.json (parameters, calibration check, true median OS per group from the latent times)."""

from __future__ import annotations

import statistics
from dataclasses import asdict

from ctcl_map.synthetic import survival
from ctcl_map.synthetic.course import (
    CONFOUNDED_UPTAKE_LOGIT,
    DAYS_PER_YEAR,
    MOGAMULIZUMAB_AVAILABLE,
    MOGAMULIZUMAB_UPTAKE,
)
from ctcl_map.synthetic.model import Cohort, PatientCourse

TRUTH_COLUMNS = (
    "patient_id", "patient_key", "subtype", "sex", "birth_date", "diagnosis_date", "age_at_diagnosis",
    "stage_at_diagnosis", "dx_t", "dx_n", "dx_m", "dx_b", "dx_stage_group", "stagings", "first_advanced_date",
    "clipi_n3", "clipi_age_over_60", "clipi_ldh_raised", "clipi_lct", "clipi_score", "clipi_group",
    "lines", "mogamulizumab_start", "topical_drugs", "procedures", "death_date", "censor_date", "censor_reason",
    "followup_end", "latent_death_date", "latent_clipi_group", "anomalies",
)


def _iso(value) -> str:
    return value.isoformat() if value is not None else ""


def _flag(value: bool | None) -> str:
    return "" if value is None else str(int(value))


def truth_row(course: PatientCourse) -> dict[str, str]:
    """List fields use ';' between items and ':' inside one (stagings: date:T/N/M/B:group)."""
    dx = course.stagings[0]
    components = course.clipi_components or {}
    return {
        "patient_id": course.patient_id, "patient_key": course.patient_key, "subtype": course.subtype,
        "sex": course.sex, "birth_date": _iso(course.birth_date), "diagnosis_date": _iso(course.diagnosis_date),
        "age_at_diagnosis": f"{(course.diagnosis_date - course.birth_date).days / DAYS_PER_YEAR:.1f}",
        "stage_at_diagnosis": f"{dx.t}/{dx.n}/{dx.m}/{dx.b}:{dx.stage_group}",
        "dx_t": dx.t, "dx_n": dx.n, "dx_m": dx.m, "dx_b": dx.b, "dx_stage_group": dx.stage_group,
        "stagings": ";".join(f"{s.staging_date}:{s.t}/{s.n}/{s.m}/{s.b}:{s.stage_group}" for s in course.stagings),
        "first_advanced_date": _iso(course.first_advanced_date),
        "clipi_n3": _flag(components.get("n3")), "clipi_age_over_60": _flag(components.get("age_over_60")),
        "clipi_ldh_raised": _flag(components.get("ldh_raised")), "clipi_lct": _flag(components.get("lct")),
        "clipi_score": "" if course.clipi_score is None else str(course.clipi_score),
        "clipi_group": course.clipi_group or "",
        "lines": ";".join(f"{c.line_number}:{c.drug}:{c.start}" for c in course.drug_courses if c.line_number > 0),
        "mogamulizumab_start": _iso(course.mogamulizumab_start),
        "topical_drugs": ";".join(f"{c.drug}:{c.start}" for c in course.drug_courses if c.line_number == 0),
        "procedures": ";".join(f"{p.kind}:{p.start}" for p in course.procedures),
        "death_date": _iso(course.death_date), "censor_date": _iso(course.censor_date),
        "censor_reason": course.censor_reason, "followup_end": _iso(course.followup_end),
        "latent_death_date": _iso(course.latent_death_date), "latent_clipi_group": course.latent_clipi_group or "",
        "anomalies": ";".join(f"{a['kind']}@{a['resource']}" for a in course.anomalies),
    }


def _years(start, end) -> float:
    return (end - start).days / DAYS_PER_YEAR


def _summary(times: list[float]) -> dict[str, float | int | None]:
    """Median and 5-year survival of complete (uncensored, latent) times: KM = empirical here."""
    if not times:
        return {"n": 0, "median_years": None, "five_year_os": None}
    return {"n": len(times), "median_years": round(statistics.median(times), 3),
            "five_year_os": round(sum(t > 5 for t in times) / len(times), 4)}


def _grouped(pairs: list[tuple[str, float]]) -> dict[str, dict]:
    groups: dict[str, list[float]] = {}
    for key, value in pairs:
        groups.setdefault(key, []).append(value)
    return {key: _summary(values) for key, values in sorted(groups.items())}


def truth_summary(cohort: Cohort) -> dict:
    courses = [r.course for r in cohort.records]
    from_dx = [(c, _years(c.diagnosis_date, c.latent_death_date)) for c in courses]
    advanced = [c for c in courses if c.latent_first_advanced_date and c.latent_first_advanced_date < c.latent_death_date]
    from_adv = [(c, _years(c.latent_first_advanced_date, c.latent_death_date)) for c in advanced]

    def ever_moga(c: PatientCourse) -> bool:
        return c.latent_mogamulizumab_start is not None and c.latent_mogamulizumab_start < c.latent_death_date

    treated = [c for c in courses if ever_moga(c)]
    config = asdict(cohort.config)
    config["end_date"] = cohort.config.end_date.isoformat()
    # options added later are written only when used, so older cohorts keep their exact bytes
    for option, default in (("confounding", False), ("background_mortality", True)):
        if config[option] == default:
            del config[option]
    return {
        "generator": "ctcl_map.synthetic",
        "parameters": config,
        "model": {**survival.model_parameters(),
                  "mogamulizumab_uptake_if_alive": MOGAMULIZUMAB_UPTAKE,
                  **({"mogamulizumab_uptake_logit_by_indication": CONFOUNDED_UPTAKE_LOGIT}
                     if cohort.config.confounding else {}),
                  "mogamulizumab_available_from": MOGAMULIZUMAB_AVAILABLE.isoformat()},
        "method": ("Medians and 5-year OS are computed on the simulation's exact latent death times "
                   "(no censoring, so Kaplan-Meier equals the empirical distribution). OS is measured "
                   "from diagnosis by subtype and stage at diagnosis, and from the latent date of first "
                   "advanced stage by CLIPI group (patients who reached advanced stage alive)."),
        "counts": {"patients": len(courses), "observed_deaths": sum(c.death_date is not None for c in courses),
                   "observed_mogamulizumab": sum(c.mogamulizumab_start is not None for c in courses),
                   "observed_advanced": sum(c.first_advanced_date is not None for c in courses),
                   "lost_to_follow_up": sum(c.censor_reason == "lost_to_follow_up" for c in courses)},
        "true_os_from_diagnosis": {
            "all": _summary([t for _, t in from_dx]),
            "by_subtype": _grouped([(c.subtype, t) for c, t in from_dx]),
            "by_stage_at_diagnosis": _grouped([(c.stagings[0].stage_group, t) for c, t in from_dx]),
        },
        "true_os_from_first_advanced": {
            "by_clipi_group": _grouped([(c.latent_clipi_group or "", t) for c, t in from_adv]),
            "naive_by_ever_mogamulizumab": _grouped(
                [("ever" if ever_moga(c) else "never", t) for c, t in from_adv]),
        },
        # The causal truth: patients alive at their planned mogamulizumab start, OS from that start
        # with the treatment effect and, for the same random draw, without it.
        "true_os_from_mogamulizumab_start": {
            "treated": _summary([_years(c.latent_mogamulizumab_start, c.latent_death_date) for c in treated]),
            "same_patients_untreated": _summary(
                [_years(c.latent_mogamulizumab_start, c.latent_death_date_without_mogamulizumab) for c in treated]),
        },
        "anomalies": [{"patient_id": c.patient_id, **a} for c in courses for a in c.anomalies],
    }
