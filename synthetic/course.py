"""One patient's simulated course: demographics, staging over time, CLIPI, survival, treatments."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta

from ctcl_map.synthetic import disease, survival
from ctcl_map.synthetic.model import GeneratorConfig, PatientCourse, StagingSet
from ctcl_map.synthetic.olsen import is_advanced
from ctcl_map.synthetic.therapies import TreatmentInputs, plan_treatments

SS_FRACTION = 0.17
MALE_FRACTION = 0.62
MOGAMULIZUMAB_UPTAKE = {"ss": 0.55, "mf": 0.30}  # of advanced patients still alive at the planned date
MOGAMULIZUMAB_AVAILABLE = date(2018, 8, 8)  # FDA approval; earlier use is not simulated
FURTHER_PROGRESSION_RATE = 0.12  # per year, advanced -> IVA2/IVB
DAYS_PER_YEAR = 365.25
# Confounding by indication (GeneratorConfig.confounding): logit of the uptake probability at the
# first advanced stage. From 8 % (MF, stage II-III, normal LDH, CLIPI low) to 96 % (SS, stage IV,
# raised LDH, CLIPI high); every term is also prognostic (stage and CLIPI drive the hazard; SS is
# stage IV; LDH is a CLIPI point), so an unadjusted comparison is confounded.
CONFOUNDED_UPTAKE_LOGIT = {"intercept": -2.5, "ss": 0.8, "stage_iv": 1.2, "ldh_raised": 0.8,
                           "clipi_intermediate": 1.2, "clipi_high": 2.8}


def new_uuid(rng: random.Random) -> str:
    """Random-looking v4 UUID drawn from the cohort RNG (deterministic per seed); same value as
    str(uuid.UUID(int=bits, version=4)), formatted by hand because it is called ~100 times per patient."""
    bits = rng.getrandbits(128)
    bits = (bits & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC000 << 48) | (0x8000 << 48)
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def add_years(start: date, years: float) -> date:
    """``start`` + years, clamped to the representable date range (infinite -> 9999-12-31)."""
    if math.isinf(years) or years * DAYS_PER_YEAR > (date.max - start).days - 1:
        return date(9999, 12, 31)
    return start + timedelta(days=round(years * DAYS_PER_YEAR))


def years_between(start: date, end: date) -> float:
    return (end - start).days / DAYS_PER_YEAR


def clipi(staging: StagingSet, age_years: float) -> tuple[dict[str, bool], int, str]:
    """PROCLIPI advanced-stage index: 1 point each for N3, age > 60, LDH > ULN, LCT."""
    components = {
        "n3": staging.n == "N3",
        "age_over_60": age_years > 60,
        "ldh_raised": staging.ldh_u_per_l > staging.ldh_upper_limit,
        "lct": staging.lct,
    }
    score = sum(components.values())
    group = "low" if score <= 1 else ("intermediate" if score == 2 else "high")
    return components, score, group


def confounded_uptake(subtype: str, staging: StagingSet, clipi_group: str) -> float:
    """Probability of mogamulizumab given the prognosis at the first advanced stage."""
    w = CONFOUNDED_UPTAKE_LOGIT
    logit = (w["intercept"] + w["ss"] * (subtype == "ss") + w["stage_iv"] * staging.stage_group.startswith("IV")
             + w["ldh_raised"] * (staging.ldh_u_per_l > staging.ldh_upper_limit)
             + w["clipi_intermediate"] * (clipi_group == "intermediate") + w["clipi_high"] * (clipi_group == "high"))
    return 1.0 / (1.0 + math.exp(-logit))


def _demographics(rng: random.Random, config: GeneratorConfig, subtype: str, stage: str) -> tuple[str, date, date, float, float]:
    sex = "male" if rng.random() < MALE_FRACTION else "female"
    first = date(config.start_year, 1, 1)
    last = config.end_date - timedelta(days=90)
    diagnosis_date = first + timedelta(days=rng.randrange((last - first).days))
    # PROCLIPI median age at diagnosis: IA 57, IB 60, advanced 67 (ctcl-domain.md §2.4); SS a little older.
    mean_age = 69 if subtype == "ss" else (67 if is_advanced(stage) else (57 if stage == "IA" else 60))
    age = min(92.0, max(22.0, rng.gauss(mean_age, 11)))
    birth_date = diagnosis_date - timedelta(days=round(age * DAYS_PER_YEAR))
    weight = round(rng.gauss(84 if sex == "male" else 71, 13), 1)
    height = round(rng.gauss(177 if sex == "male" else 163, 7), 1)
    return sex, birth_date, diagnosis_date, max(45.0, weight), height


def _lct(rng: random.Random, advanced: bool) -> bool:
    return rng.random() < (0.22 if advanced else 0.02)


def _stagings(rng: random.Random, subtype: str, stage: str, diagnosis_date: date,
              ldh_uln: int) -> tuple[list[StagingSet], float]:
    """Latent staging history (may extend past follow-up) and time of first advanced stage."""
    categories = disease.sample_categories(rng, stage, subtype)
    advanced = is_advanced(stage)
    stagings = [disease.make_staging(rng, diagnosis_date, categories, ldh_uln, _lct(rng, advanced))]
    if advanced:
        t_advanced = 0.0
    else:
        t_advanced = rng.expovariate(survival.EARLY_PROGRESSION_RATE[stage])
        group = disease.weighted_choice(rng, disease.PROGRESSION_STAGE_WEIGHTS)
        cats = disease.sample_categories(rng, group, subtype, min_t=int(categories[0][1]))
        stagings.append(disease.make_staging(rng, add_years(diagnosis_date, t_advanced), cats, ldh_uln, _lct(rng, True)))
    last = stagings[-1]
    if last.stage_group != "IVB":
        t_next = t_advanced + rng.expovariate(FURTHER_PROGRESSION_RATE)
        group = "IVB" if last.stage_group == "IVA2" or rng.random() < 0.4 else "IVA2"
        t, n, b = last.t, last.n, last.b
        cats = (t, "N3", "M0", b) if group == "IVA2" else (t, n, "M1", b)
        stagings.append(disease.make_staging(rng, add_years(diagnosis_date, t_next), cats, ldh_uln, last.lct or _lct(rng, True)))
    return stagings, t_advanced


def simulate_course(config: GeneratorConfig, index: int) -> PatientCourse:
    """Simulate patient ``index``; its own RNG (seeded from cohort seed + index) keeps patients
    independent, so patient 7 is the same whether the cohort has 10 or 10,000 patients."""
    rng = random.Random(f"ctcl-map:{config.seed}:{index}")
    patient_id = new_uuid(rng)
    subtype = "ss" if rng.random() < SS_FRACTION else "mf"
    stage = disease.weighted_choice(rng, disease.DIAGNOSIS_STAGE_WEIGHTS[subtype])
    sex, birth_date, diagnosis_date, weight, height = _demographics(rng, config, subtype, stage)
    ldh_uln = rng.choice((225, 246, 250))
    stagings, t_advanced = _stagings(rng, subtype, stage, diagnosis_date, ldh_uln)
    advanced_staging = next((s for s in stagings if is_advanced(s.stage_group)), None)
    components = score = group = None
    first_advanced = None
    hazard_segments = [(0.0, survival.EARLY_HAZARD.get(stage, 0.0))]
    moga_years: float | None = None
    if advanced_staging is not None:
        first_advanced = advanced_staging.staging_date
        components, score, group = clipi(advanced_staging, years_between(birth_date, first_advanced))
        hazard_segments = [(0.0, survival.EARLY_HAZARD[stage])] if t_advanced > 0 else []
        hazard_segments.append((t_advanced, survival.advanced_hazard(group, advanced_staging.stage_group)))
        uptake = (confounded_uptake(subtype, advanced_staging, group) if config.confounding
                  else MOGAMULIZUMAB_UPTAKE[subtype])
        if rng.random() < uptake:
            planned = add_years(first_advanced, rng.uniform(0.25, 3.0))
            if planned < MOGAMULIZUMAB_AVAILABLE:
                planned = MOGAMULIZUMAB_AVAILABLE + timedelta(days=rng.randrange(365))
            moga_years = years_between(diagnosis_date, planned)
    draw = rng.expovariate(1.0)
    background = survival.background_death_time(rng.expovariate(1.0), years_between(birth_date, diagnosis_date))
    if not config.background_mortality:
        background = math.inf
    treated_years = survival.death_time(draw, hazard_segments, moga_years, config.mogamulizumab_hr)
    untreated_years = survival.death_time(draw, hazard_segments, None, 1.0)
    latent_death = add_years(diagnosis_date, min(treated_years, background))
    untreated_death = add_years(diagnosis_date, min(untreated_years, background))
    lost = add_years(diagnosis_date, rng.expovariate(survival.LOSS_TO_FOLLOW_UP_RATE))
    censor_date, censor_reason = (lost, "lost_to_follow_up") if lost < config.end_date else (config.end_date, "administrative")
    followup_end = min(latent_death, censor_date)
    moga_date = add_years(diagnosis_date, moga_years) if moga_years is not None else None
    inputs = TreatmentInputs(
        subtype=subtype, stage_at_diagnosis=stage, t_at_diagnosis=stagings[0].t, diagnosis_date=diagnosis_date,
        first_advanced_date=first_advanced, mogamulizumab_date=moga_date, followup_end=followup_end,
        alive_at_end=latent_death > censor_date,
        age_at_advanced=years_between(birth_date, first_advanced) if first_advanced else None,
        weight_kg=weight, bsa_m2=round(math.sqrt(weight * height / 3600), 2),
    )
    drugs, procedures = plan_treatments(rng, inputs)
    observed_stagings = [s for s in stagings if s.staging_date < followup_end or s.staging_date == diagnosis_date]
    observed_advanced = first_advanced if first_advanced is not None and first_advanced < followup_end else None
    moga_start = next((c.start for c in drugs if c.drug == "mogamulizumab"), None)
    return PatientCourse(
        index=index, patient_id=patient_id, patient_key=f"ctcl-{index + 1:05d}", subtype=subtype, sex=sex,
        birth_date=birth_date, weight_kg=weight, height_cm=height, diagnosis_date=diagnosis_date,
        stagings=observed_stagings, first_advanced_date=observed_advanced,
        clipi_components=components if observed_advanced else None,
        clipi_score=score if observed_advanced else None, clipi_group=group if observed_advanced else None,
        drug_courses=drugs, procedures=procedures, mogamulizumab_start=moga_start,
        latent_death_date=latent_death, censor_date=censor_date, censor_reason=censor_reason,
        latent_first_advanced_date=first_advanced, latent_clipi_group=group, latent_mogamulizumab_start=moga_date,
        latent_death_date_without_mogamulizumab=untreated_death,
    )
