"""Raw blood values per person and date, in the units derive_b_category expects.

Counts are converted to cells/uL from the UCUM unit (unit_source_value, else the unit concept's
code). Our own count concepts (SEZARY-ABS, CD4CD26NEG-ABS, CD4CD7NEG-ABS) are defined in cells/uL,
so a row of ours without a unit is taken as cells/uL; a lymphocyte count without a unit is
ambiguous (labs send 10*3/uL or /uL) and is skipped with a note. Sezary cells per 100 LEUKOCYTES
(LOINC 34919-1) is not the 2007 percentage of lymphocytes and is skipped with a note. Several
values of one input on one date: the highest is used and the note says so.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from ctcl_map.derive.concept_sets import OncologyConcepts

PER_UL_FACTORS = {
    "/ul": 1.0, "{cells}/ul": 1.0, "cells/ul": 1.0, "/mm3": 1.0, "{cells}/mm3": 1.0, "ul-1": 1.0,
    "/µl": 1.0, "10*6/l": 1.0, "10^6/l": 1.0,
    "10*3/ul": 1000.0, "10^3/ul": 1000.0, "/nl": 1000.0, "10*9/l": 1000.0, "10^9/l": 1000.0,
    "10*3/mm3": 1000.0, "k/ul": 1000.0,
}
COUNT_INPUTS = ("sezary_per_ul", "cd4cd26neg_per_ul", "cd4cd7neg_per_ul", "lymphocytes_per_ul")
NEGATIVE_WORDS = ("not detected", "negative", "neg", "no clone", "absent", "equivocal")
POSITIVE_WORDS = ("detected", "positive", "pos", "clonal", "present")


@dataclass
class BloodValues:
    inputs: dict = field(default_factory=dict)  # keyword arguments of derive_b_category
    notes: list[str] = field(default_factory=list)


def clone_status(value_concept, text, positive_id, negative_id) -> bool | None:
    if value_concept is not None and int(value_concept) == positive_id:
        return True
    if value_concept is not None and int(value_concept) == negative_id:
        return False
    lowered = (text or "").strip().lower()
    if any(word in lowered for word in NEGATIVE_WORDS):  # before positives: "not detected"
        return False
    if any(word in lowered for word in POSITIVE_WORDS):
        return True
    return None


def blood_values_by_date(concepts: OncologyConcepts, rows: list[tuple]) -> dict[tuple[int, date], BloodValues]:
    """The blood inputs of each (person, date), from the `blood` input rows (oncology_inputs)."""
    input_of = {cid: name for name, cids in concepts.blood.items() for cid in cids}
    ours = set(concepts.ours.values()) | {cid for name in ("sezary_per_ul", "cd4cd26neg_per_ul", "cd4cd7neg_per_ul")
                                          for cid in concepts.blood[name] if cid >= 2_000_000_000}
    result: dict[tuple[int, date], BloodValues] = defaultdict(BloodValues)
    for _mid, pid, day, concept, number, value_concept, unit_text, unit_code, source, value_text in rows:
        values = result[(int(pid), day)]
        name = input_of[int(concept)]
        if name == "clone":
            status = clone_status(value_concept, value_text, concepts.ours.get("CLONE-POS"),
                                  concepts.ours.get("CLONE-NEG"))
            if status is not None:
                # a positive result anywhere that day wins: the clone was shown
                values.inputs["clone_positive"] = status or values.inputs.get("clone_positive", False)
            continue
        if number is None:
            continue
        value = float(number)
        if name == "sezary_pct_lymphocytes" and "34919-1" in (source or ""):
            values.notes.append("34919-1 is per 100 leukocytes, not lymphocytes: not used")
            continue
        if name in COUNT_INPUTS:
            unit = (unit_text or unit_code or "").strip().lower()
            factor = PER_UL_FACTORS.get(unit)
            if factor is None and not unit and int(concept) in ours:
                factor = 1.0  # our concepts are defined in cells/uL
            if factor is None:
                values.notes.append(f"{name}: unit {unit or 'missing'} not convertible to cells/uL")
                continue
            value *= factor
        if name in values.inputs and values.inputs[name] != value:
            values.notes.append(f"{name}: several values, highest used")
            value = max(value, values.inputs[name])
        values.inputs[name] = value
    return {key: values for key, values in result.items() if values.inputs}
