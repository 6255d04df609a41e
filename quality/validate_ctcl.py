"""CTCL plausibility per patient, across all files of the run.

The facts come from the converters' own output (the OMOP rows a load would write: person key,
date, concept, value), so validate judges exactly what `fhir2omop` would load, with the same
date rules and code resolution. Concept sets come from `staging.concept_sets.resolve_concepts`
(the same sets `derive_oncology` uses after a load), staging categories and blood values are read
with the staging package's functions.

Rules and severities (error = impossible or contradictory; warning = suspicious but loadable):

| rule | severity | when |
|---|---|---|
| ctcl.death_before_birth | error | Patient.deceasedDateTime before birthDate |
| ctcl.event_before_birth | error | any record dated before the birth date |
| ctcl.event_after_death | error / warning | records dated after death: error beyond 60 days, warning within (DQD plausibleDuringLife tolerance) |
| ctcl.treatment_before_diagnosis | warning | a CTCL treatment before the first CTCL diagnosis |
| ctcl.staging_before_diagnosis | warning | a staging record before the first CTCL diagnosis |
| ctcl.diagnosis_missing | warning | B staging or mogamulizumab but no CTCL diagnosis in the input |
| ctcl.stage_group_inconsistent | error | T, N, M, B and a stage group on one date, and the group contradicts Olsen 2007 |
| ctcl.stage_group_given_twice | error | two stage groups given for one date (Condition.stage, an Observation, ...) that disagree (IIB and IIIA; IV and IVA1 agree) |
| ctcl.b_category_inconsistent | warning | a given B category that neither the 2007 nor the 2022 rules give from that date's blood values |
| ctcl.mogamulizumab_short_gap | warning | two doses less than 5 days apart (label: weekly, then every 2 weeks) |
| ctcl.mogamulizumab_long_weekly | warning | more than 5 consecutive doses at most 10 days apart (label: 4 weekly doses + day 1 of cycle 2) |
| ctcl.diagnosis_unconfirmed | warning | a CTCL Condition whose verificationStatus is provisional / differential / unconfirmed: loaded with its status, left out of the CTCL diagnoses, episodes, staging links and survival cohorts (`--include-unconfirmed`) |
| ctcl.code_unrecognised | warning | a Condition whose text mentions mycosis fungoides / Sezary but whose codes do not resolve to a CTCL diagnosis |

Non-CTCL patients are only subject to the birth/death rules (which apply to everyone).
Messages give day counts and categories, never dates of the input or its text.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from ctcl_map.converters.base import InvalidValue, as_list, parse_time
from ctcl_map.ctcl.blood import derive_b_category
from ctcl_map.ctcl.diagnosis import UNCONFIRMED_STATUSES
from ctcl_map.ctcl.olsen import derive_stage_group, given_group_conflict, groups_compatible
from ctcl_map.ctcl.tnmb import base_category, one_category
from ctcl_map.derive.blood_inputs import PER_UL_FACTORS, clone_status
from ctcl_map.derive.concept_sets import OncologyConcepts, resolve_concepts
from ctcl_map.derive.mapping_rows import concept_id, is_true, load_mapping_rows
from ctcl_map.derive.oncology import staging_category
from ctcl_map.model import Conversion, SourceItem
from ctcl_map.quality.validate_report import Finding
from ctcl_map.readers.fhir_structure import resource_path
from ctcl_map.vocab.lookup import ConceptResolver

AFTER_DEATH_TOLERANCE_DAYS = 60  # DQD plausibleDuringLife / plausibleBeforeDeath
TREATMENT_CLASSES = frozenset({"skin_directed", "ecp"})  # plus every therapy with starts_systemic_line
MOGAMULIZUMAB = "mogamulizumab"
MOGA_MIN_GAP_DAYS = 5
MOGA_WEEKLY_MAX_GAP_DAYS = 10
MOGA_MAX_WEEKLY_DOSES = 5
CTCL_ICDO3 = re.compile(r"^970[0-9]/3")  # ICD-O-3 9700/3-9709/3, also '9700/3-C44.5'
CTCL_WORDS = re.compile(r"mycosis|sezary")
NOT_EVENTS = frozenset({"person", "death", "observation_period"})
@dataclass(frozen=True, slots=True)
class Event:
    day: date
    table: str
    concept_id: int
    resource: str  # Type/id
    resource_type: str
    file: str
    path: str
    values: dict  # the row's value columns (measurements) or {}


@dataclass
class Person:
    birth: date | None = None
    death: date | None = None
    file: str = ""
    path: str = ""
    events: list[Event] = field(default_factory=list)
    diagnoses: list[date] = field(default_factory=list)


@dataclass(frozen=True)
class CtclConcepts:
    oncology: OncologyConcepts
    treatment_ids: frozenset[int]  # drug ingredients and procedures that are CTCL treatment
    mogamulizumab_ids: frozenset[int]
    staging_ids: frozenset[int]
    axis_of_question: dict[int, str]
    blood_input_of: dict[int, str]


def load_ctcl_concepts(db, mapping_dirs: Sequence[Path] = ()) -> CtclConcepts:
    """The concept sets, from the mapping tables (with site overrides) and the vocabulary in db."""
    rows = load_mapping_rows(mapping_dirs, kinds=("diagnoses", "staging", "therapies", "labs", "procedures"))
    oncology = resolve_concepts(db, rows)
    treatment = set()
    moga = set()
    for row in rows.get("therapies", []):
        target = concept_id(row)
        if target and (is_true(row, "starts_systemic_line") or row.get("therapy_class") in TREATMENT_CLASSES):
            treatment.add(target)
        if target and row.get("ingredient", "").strip().lower() == MOGAMULIZUMAB:
            moga.add(target)
    for row in rows.get("procedures", []):
        target = concept_id(row)
        if target and row.get("therapy_class") in TREATMENT_CLASSES:
            treatment.add(target)
    axis_of = {cid: axis for axis, ids in oncology.questions.items() for cid in ids}
    blood_of = {cid: name for name, ids in oncology.blood.items() for cid in ids}
    return CtclConcepts(oncology, frozenset(treatment), frozenset(moga), frozenset(axis_of), axis_of, blood_of)


def _plain(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


class CtclChecker:
    def __init__(self, concepts: CtclConcepts, resolver: ConceptResolver, include_unconfirmed: bool = False):
        self.concepts = concepts
        self.resolver = resolver
        self.include_unconfirmed = include_unconfirmed  # as fhir2omop --include-unconfirmed
        self.persons: dict[str, Person] = defaultdict(Person)
        self.findings: list[Finding] = []

    # -- collecting ------------------------------------------------------------------------------

    def add_patient(self, item: SourceItem) -> None:
        person = self.persons[item.key]
        person.file, person.path = item.file, resource_path(item.position)
        resource = item.resource or {}
        try:
            birth = parse_time(resource.get("birthDate"), "birthDate")
            death = parse_time(resource.get("deceasedDateTime"), "deceasedDateTime")
        except InvalidValue:
            return  # the structure check reports the malformed date
        person.birth = birth.day if birth else None
        person.death = death.day if death else None

    def add_conversion(self, item: SourceItem, conversion: Conversion) -> None:
        ctcl_condition = item.resource_type == "Condition" and self._is_ctcl_condition(item)
        path = resource_path(item.position)
        # as derive_oncology: the stage of an unconfirmed diagnosis is not judged either
        unconfirmed = not self.include_unconfirmed and any(
            r.values.get("condition_status_source_value") in UNCONFIRMED_STATUSES for r in conversion.rows)
        for row in conversion.rows:
            if row.table in NOT_EVENTS or not isinstance(row.values.get("person_id"), str):
                continue
            if unconfirmed and row.table == "measurement":
                continue
            day = _row_day(row.table, row.values)
            if day is None:
                continue
            person = self.persons[row.values["person_id"]]
            concept = int(row.values.get(_concept_column(row.table)) or 0)
            values = {k: v for k, v in row.values.items() if k.startswith(("value_", "unit_", "measurement_source"))} \
                if row.table == "measurement" else {}
            person.events.append(Event(day, row.table, concept, item.key, item.resource_type, item.file, path, values))
            if ctcl_condition and row.table == "condition_occurrence":
                status = row.values.get("condition_status_source_value")
                if status in UNCONFIRMED_STATUSES:
                    self._unconfirmed(item, status)
                if status not in UNCONFIRMED_STATUSES or self.include_unconfirmed:
                    person.diagnoses.append(day)
        if item.resource_type == "Condition" and not ctcl_condition:
            self._check_condition_text(item)

    def _unconfirmed(self, item: SourceItem, status: str) -> None:
        self.findings.append(Finding(
            "warning", "ctcl.diagnosis_unconfirmed", item.file, resource_path(item.position, ("verificationStatus",)),
            f"a {status} CTCL diagnosis: loaded with condition_status_source_value '{status}'; "
            + ("counted as a CTCL diagnosis (--include-unconfirmed)" if self.include_unconfirmed else
               "left out of the CTCL diagnoses, episodes, staging links and survival cohorts (--include-unconfirmed counts it)"),
            item.key))

    def _is_ctcl_condition(self, item: SourceItem) -> bool:
        code = (item.resource or {}).get("code")
        if not isinstance(code, dict):
            return False
        if self.resolver.resolve(code, "condition").concept_id in self.concepts.oncology.diagnosis_ids:
            return True
        for coding in as_list(code.get("coding")):
            if (isinstance(coding, dict) and self.resolver.vocabulary_of(coding.get("system")) == "ICDO3"
                    and isinstance(coding.get("code"), str) and CTCL_ICDO3.match(coding["code"].strip())):
                return True
        return False

    def _check_condition_text(self, item: SourceItem) -> None:
        code = (item.resource or {}).get("code")
        if not isinstance(code, dict):
            return
        texts = [code.get("text")] + [c.get("display") for c in as_list(code.get("coding")) if isinstance(c, dict)]
        if not any(isinstance(t, str) and CTCL_WORDS.search(_plain(t)) for t in texts):
            return
        codes = [f"{self.resolver.vocabulary_of(c.get('system')) or 'unknown system'} {str(c.get('code'))[:40]}"
                 for c in as_list(code.get("coding")) if isinstance(c, dict) and c.get("code")]
        shown = ", ".join(codes) if codes else "text only"
        self.findings.append(Finding(
            "warning", "ctcl.code_unrecognised", item.file, resource_path(item.position, ("code",)),
            f"the condition is described as mycosis fungoides / Sezary syndrome but its codes ({shown}) do not "
            "resolve to a CTCL diagnosis: add them to the site's diagnoses.csv", item.key))

    # -- checking --------------------------------------------------------------------------------

    def finish(self) -> list[Finding]:
        for key, person in sorted(self.persons.items()):
            self._life(key, person)
            if person.diagnoses:
                self._before_diagnosis(key, person)
            else:
                self._diagnosis_missing(key, person)
            staging = self._staging_by_date(person)
            self._stage_groups(key, staging)
            self._b_categories(key, person, staging)
            self._mogamulizumab(key, person)
        return self.findings

    @property
    def ctcl_patients(self) -> int:
        return sum(1 for p in self.persons.values() if p.diagnoses)

    def _add(self, severity: str, rule: str, key: str, person: Person, example: Event | None, message: str) -> None:
        if example is None:
            self.findings.append(Finding(severity, rule, person.file, person.path, f"{key}: {message}", key))
        else:
            self.findings.append(Finding(severity, rule, example.file, example.path, f"{key}: {message}", example.resource))

    def _life(self, key: str, person: Person) -> None:
        if person.birth and person.death and person.death < person.birth:
            self._add("error", "ctcl.death_before_birth", key, person, None,
                      f"death is {(person.birth - person.death).days} days before birth")
        if person.birth:
            early = [e for e in person.events if e.day < person.birth]
            if early:
                first = min(early, key=lambda e: e.day)
                self._add("error", "ctcl.event_before_birth", key, person, first,
                          f"{len({e.resource for e in early})} records dated before birth (earliest: {first.resource_type}, "
                          f"{(person.birth - first.day).days} days before)")
        if person.death:
            late = [e for e in person.events if e.day > person.death]
            if late:
                last = max(late, key=lambda e: e.day)
                days = (last.day - person.death).days
                severity = "error" if days > AFTER_DEATH_TOLERANCE_DAYS else "warning"
                self._add(severity, "ctcl.event_after_death", key, person, last,
                          f"{len({e.resource for e in late})} records dated after death (latest: {last.resource_type}, "
                          f"{days} days after; tolerance {AFTER_DEATH_TOLERANCE_DAYS} days)")

    def _before_diagnosis(self, key: str, person: Person) -> None:
        first_diagnosis = min(person.diagnoses)
        for rule, wanted in (("ctcl.treatment_before_diagnosis", self.concepts.treatment_ids),
                             ("ctcl.staging_before_diagnosis", self.concepts.staging_ids)):
            early = [e for e in person.events if e.concept_id in wanted and e.day < first_diagnosis
                     and e.table in ("drug_exposure", "procedure_occurrence", "measurement")]
            if early:
                first = min(early, key=lambda e: e.day)
                what = "CTCL treatment" if rule == "ctcl.treatment_before_diagnosis" else "staging"
                self._add("warning", rule, key, person, first,
                          f"{len({e.resource for e in early})} {what} records before the first CTCL diagnosis "
                          f"(earliest: {first.resource_type}, {(first_diagnosis - first.day).days} days before)")

    def _diagnosis_missing(self, key: str, person: Person) -> None:
        b_questions = self.concepts.oncology.questions.get("B", set())
        evidence = [e for e in person.events if e.concept_id in b_questions or e.concept_id in self.concepts.mogamulizumab_ids]
        if evidence:
            self._add("warning", "ctcl.diagnosis_missing", key, person, evidence[0],
                      f"{len(evidence)} CTCL-specific records (B staging, mogamulizumab) but no CTCL diagnosis "
                      "(diagnoses.csv code or ICD-O-3 9700/3-9709/3) in the input")

    def _staging_by_date(self, person: Person) -> dict[date, list[tuple[str, str | None, Event]]]:
        by_date: dict[date, list[tuple[str, str | None, Event]]] = defaultdict(list)
        for event in person.events:
            axis = self.concepts.axis_of_question.get(event.concept_id)
            if axis is None or event.table != "measurement":
                continue
            category = staging_category(self.concepts.oncology, axis, event.values.get("value_as_concept_id"),
                                 [event.values.get("value_source_value")])
            by_date[event.day].append((axis, category, event))
        return by_date

    def _stage_groups(self, key: str, staging: dict[date, list[tuple[str, str | None, Event]]]) -> None:
        for _day, rows in sorted(staging.items()):
            groups = given_group_conflict([c for a, c, _ in rows if a == "stage" and c])
            if groups:
                event = next(e for a, c, e in rows if a == "stage" and c == groups[-1])
                self.findings.append(Finding(
                    "error", "ctcl.stage_group_given_twice", event.file, event.path,
                    f"{key}: stage groups {' and '.join(groups)} are given for the same date and disagree", event.resource))
            chosen: dict[str, str | None] = {}  # None: the axis is missing or its categories conflict
            for axis in ("T", "N", "M", "B"):
                chosen[axis], conflict = one_category([c for a, c, _ in rows if a == axis and c])
                if conflict:
                    chosen[axis] = None
            given = [(c, e) for a, c, e in rows if a == "stage" and c]
            tnmb_categories = [category for category in chosen.values() if category is not None]  # T N M B
            if not given or len(tnmb_categories) < len(chosen):
                continue
            result = derive_stage_group(chosen["T"], chosen["N"], chosen["M"], chosen["B"])
            if result.group is None:
                continue
            for group, event in given:
                if not groups_compatible(group, result.group):
                    tnmb = " ".join(tnmb_categories)
                    self.findings.append(Finding(
                        "error", "ctcl.stage_group_inconsistent", event.file, event.path,
                        f"{key}: stage group {group} given, but {tnmb} on the same date give {result.group} "
                        "(ISCL/EORTC, Olsen 2007)", event.resource))

    def _b_categories(self, key: str, person: Person, staging: dict[date, list[tuple[str, str | None, Event]]]) -> None:
        given_b = {day: [(c, e) for a, c, e in rows if a == "B" and c] for day, rows in staging.items()}
        blood = self._blood_by_date(person)
        for day, given in sorted(given_b.items()):
            inputs = blood.get(day)
            if not given or not inputs:
                continue
            derived = {}
            for rules in ("2007", "2022"):
                category = derive_b_category(rules=rules, **inputs).category
                if category:
                    derived[rules] = category
            if not derived:
                continue
            for category, event in given:
                if base_category(category) not in {base_category(c) for c in derived.values()}:
                    counts = ", ".join(f"{c} ({r} rules)" for r, c in derived.items())
                    self.findings.append(Finding(
                        "warning", "ctcl.b_category_inconsistent", event.file, event.path,
                        f"{key}: B category {category} given, but the blood values of the same date give {counts}",
                        event.resource))

    def _blood_by_date(self, person: Person) -> dict[date, dict]:
        """derive_b_category inputs per date, units converted to cells/uL as the CDM step does."""
        ours = self.concepts.oncology.ours
        result: dict[date, dict] = defaultdict(dict)
        for event in person.events:
            name = self.concepts.blood_input_of.get(event.concept_id)
            if name is None or event.table != "measurement":
                continue
            values = result[event.day]
            if name == "clone":
                status = clone_status(event.values.get("value_as_concept_id"), event.values.get("value_source_value"),
                                      ours.get("CLONE-POS"), ours.get("CLONE-NEG"))
                if status is not None:
                    values["clone_positive"] = status or values.get("clone_positive", False)
                continue
            number = event.values.get("value_as_number")
            if number is None:
                continue
            value = float(number)
            if name.endswith("_per_ul"):
                unit = (event.values.get("unit_source_value") or "").strip().lower()
                factor = PER_UL_FACTORS.get(unit)
                if factor is None and not unit and event.concept_id >= 2_000_000_000:
                    factor = 1.0  # our own count concepts are defined in cells/uL
                if factor is None:
                    continue
                value *= factor
            values[name] = max(value, values.get(name, value))
        return {day: values for day, values in result.items() if values}

    def _mogamulizumab(self, key: str, person: Person) -> None:
        doses = [e for e in person.events if e.concept_id in self.concepts.mogamulizumab_ids and e.table == "drug_exposure"]
        administered = [e for e in doses if e.resource_type == "MedicationAdministration"]
        doses = administered or doses
        by_day: dict[date, Event] = {}
        for event in sorted(doses, key=lambda e: e.day):
            by_day.setdefault(event.day, event)
        days = sorted(by_day)
        short = [(a, b) for a, b in zip(days, days[1:]) if (b - a).days < MOGA_MIN_GAP_DAYS]
        if short:
            a, b = short[0]
            self._add("warning", "ctcl.mogamulizumab_short_gap", key, person, by_day[b],
                      f"{len(short)} mogamulizumab doses less than {MOGA_MIN_GAP_DAYS} days after the previous one "
                      f"(first: {(b - a).days} days); the label gives weekly, then two-weekly doses")
        run = 1
        for a, b in zip(days, days[1:]):
            run = run + 1 if (b - a).days <= MOGA_WEEKLY_MAX_GAP_DAYS else 1
            if run == MOGA_MAX_WEEKLY_DOSES + 1:
                self._add("warning", "ctcl.mogamulizumab_long_weekly", key, person, by_day[b],
                          f"more than {MOGA_MAX_WEEKLY_DOSES} consecutive mogamulizumab doses at most "
                          f"{MOGA_WEEKLY_MAX_GAP_DAYS} days apart; the label gives 4 weekly doses, then every 2 weeks")


def _concept_column(table: str) -> str:
    return {"visit_occurrence": "visit_concept_id", "condition_occurrence": "condition_concept_id",
            "drug_exposure": "drug_concept_id", "procedure_occurrence": "procedure_concept_id",
            "device_exposure": "device_concept_id", "measurement": "measurement_concept_id",
            "observation": "observation_concept_id"}.get(table, "")


def _row_day(table: str, values: dict) -> date | None:
    for name in ("visit_start_date", "condition_start_date", "drug_exposure_start_date", "procedure_date",
                 "device_exposure_start_date", "measurement_date", "observation_date"):
        day = values.get(name)
        if isinstance(day, date):
            return day
    return None
