"""CLIPI per person at the date of first advanced stage, stored as two derived measurement rows.

Inputs at the index date D = ctcl_first_advanced.first_advanced_date:
- N: the N category of the latest staging date on or before D, else of the first one within
  D+30 days (NX = N3 unknown); when no N is recorded but the stage group at D is IVA2, N3 is
  implied (IVA2 = N3 M0 in the Olsen table).
- age: from birth_datetime or year/month/day_of_birth; with the year only, the age at D is one of
  two values and counts as missing when they fall on both sides of 60.
- raised LDH: the LDH value nearest to D within D-90 .. D+30 days (earlier wins a tie), raised
  when value_as_number > range_high; no range_high = unknown (the upper limit is the lab's own).
  LDH rows are our LDH concepts, or concept 0 whose source value is LOINC 2532-0 / 14804-9.
- LCT: observation rows of our LCT concept dated up to D+30, read as yes/no (Y/N, true/false,
  present/absent, 1/0; a row without a value is a recorded finding = yes; an unreadable value =
  unknown). Any yes -> yes; else any no -> no; no row -> unknown.
Rows: CLIPI-SCORE (value_as_number = exact score, NULL when a component is missing) and CLIPI-RISK
(value_as_concept_id = CLIPI-LOW/INT/HIGH, or 0 when undetermined); value_source_value lists the
missing components (N3, age, LDH, LCT); measurement_source_value = 'derived:CLIPI-PROCLIPI-2025'.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from ctcl_map.ctcl.clipi import clipi
from ctcl_map.ctcl.tnmb import base_category, parse_category
from ctcl_map.derive.oncology_run import insert_measurement

SOURCE = "derived:CLIPI-PROCLIPI-2025"
GROUP_CODES = {"low": "CLIPI-LOW", "intermediate": "CLIPI-INT", "high": "CLIPI-HIGH"}
SHORT_NAMES = {"n3": "N3", "age_over_60": "age", "ldh_raised": "LDH", "large_cell_transformation": "LCT"}
LDH_BEFORE_DAYS, LDH_AFTER_DAYS, LCT_AFTER_DAYS, N_AFTER_DAYS = 90, 30, 30, 30


def age_at(birth: tuple, day: date) -> float | None:
    """Age in years at `day`; None when only the year is known and the age straddles 60/61."""
    year, month, dob_day, birth_datetime = birth
    born = None
    if birth_datetime is not None:
        born = birth_datetime.date() if hasattr(birth_datetime, "date") else birth_datetime
    elif year and month and dob_day:
        try:
            born = date(int(year), int(month), int(dob_day))
        except ValueError:  # an impossible day of birth: fall back to the year
            born = None
    if born is None:
        if not year:
            return None
        youngest = day.year - int(year) - 1  # birthday still to come this year
        oldest = day.year - int(year)
        if (youngest > 60) == (oldest > 60):
            return float(oldest if oldest <= 60 else youngest)
        return None
    years = day.year - born.year - ((day.month, day.day) < (born.month, born.day))
    return float(years)


def _n_at(staging, person_id: int, day: date, group: str) -> tuple[str | None, str | None]:
    person_n = [r for r in staging if r.person_id == person_id and r.axis == "N" and r.category]
    before = [r for r in person_n if r.day <= day]
    after = [r for r in person_n if day < r.day <= day + timedelta(days=N_AFTER_DAYS)]
    if before or after:
        chosen_day = max(r.day for r in before) if before else min(r.day for r in after)
        codes = sorted({r.category for r in person_n if r.day == chosen_day})
        if len({base_category(c) for c in codes}) > 1:
            return None, "conflicting N"
        return codes[0], None if before else f"N of {chosen_day.isoformat()}"
    if parse_category("stage", group) == "IVA2":
        return "N3", "N3 implied by IVA2"
    return None, None


def _ldh_raised(ldh_rows: list[tuple], day: date) -> bool | None:
    """From the person's `ldh` input rows (sorted by date, id): the result nearest the day."""
    first, last = day - timedelta(days=LDH_BEFORE_DAYS), day + timedelta(days=LDH_AFTER_DAYS)
    rows = [(measured, value, upper) for _mid, _pid, measured, value, upper in ldh_rows if first <= measured <= last]
    if not rows:
        return None
    measured, value, upper = min(rows, key=lambda r: (abs((r[0] - day).days), r[0] > day))
    if upper is None:
        return None
    return float(value) > float(upper)


YES_WORDS = {"y", "yes", "true", "present", "positive", "detected", "1"}
NO_WORDS = {"n", "no", "false", "absent", "negative", "not detected", "none", "0"}


def finding_status(texts: tuple, number) -> bool | None:
    """Yes/no of one finding row: Y/N, true/false, present/absent...; a row without any value is a
    recorded finding (yes); a value we cannot read is unknown (None), never a guess."""
    words = [str(t).strip().lower() for t in texts if t is not None and str(t).strip()]
    if number is not None:
        words.append("1" if float(number) != 0 else "0")
    if not words:
        return True
    if any(w in NO_WORDS or w.endswith(" absent") or w.startswith(("no ", "not ")) for w in words):
        return False
    if any(w in YES_WORDS for w in words):
        return True
    return None


def _lct(lct_rows: list[tuple], day: date) -> bool | None:
    """From the person's `lct` input rows (the LCT concept's observations; none without the concept)."""
    last = day + timedelta(days=LCT_AFTER_DAYS)
    statuses = [finding_status((text, source_text), number)
                for _oid, _pid, observed, text, source_text, number in lct_rows if observed <= last]
    if True in statuses:
        return True
    if False in statuses:
        return False
    return None


def derive_clipi(run, first_advanced: dict, staging, inputs) -> None:
    ours = run.concepts.ours
    if not {"CLIPI-SCORE", "CLIPI-RISK"} <= ours.keys() or not first_advanced:
        return
    births = {int(r[0]): tuple(r[1:]) for r in inputs["births"]}
    ldh, lct = defaultdict(list), defaultdict(list)
    for row in inputs["ldh"]:
        ldh[int(row[1])].append(row)
    for row in inputs["lct"]:
        lct[int(row[1])].append(row)
    for person_id, (day, group, stage_measurement_id) in sorted(first_advanced.items()):
        n_category, n_note = _n_at(staging, person_id, day, group)
        age = age_at(births[person_id], day) if person_id in births else None
        result = clipi(n_category, age, _ldh_raised(ldh[person_id], day), _lct(lct[person_id], day))
        missing = ",".join(SHORT_NAMES[name] for name in result.missing)
        detail = f"missing:{missing}" if missing else "complete"
        note = "; ".join(x for x in (detail, n_note, f"points={result.min_score}-{result.max_score}") if x)
        event_id = next((r.linked_to for r in staging if r.measurement_id == stage_measurement_id), None)
        insert_measurement(run, person_id, day, ours["CLIPI-SCORE"], "clipi_score", value_number=result.score,
                           source=SOURCE, value_source=detail, event_id=event_id, note=note)
        risk_concept = ours.get(GROUP_CODES[result.group]) if result.group else 0
        insert_measurement(run, person_id, day, ours["CLIPI-RISK"], "clipi_risk", value_concept=risk_concept or 0,
                           source=SOURCE, value_source=result.group or f"undetermined; {detail}", event_id=event_id,
                           note=note)
        run.report.clipi_persons += 1
        if result.missing:
            run.report.clipi_incomplete.append(
                {"person_id": person_id, "date": day, "missing": list(result.missing), "group": result.group})
