"""Property-based fuzzing of every converter (Hypothesis).

Each converter gets ordinary resources with a few fields mutated the way broken exports break
them: a value of another JSON type, a one-key object where an array belongs, an array where an
object belongs, numbers and dates out of range, fields dropped. Whatever arrives, the converter
itself returns a Conversion or raises InvalidValue (the documented quarantine path), never any
other exception, and every value it puts in a row fits its CDM column on both backends. (The guard
in `convert` would catch the rest; this checks that it is not needed.)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctcl_map.converters import CONVERTERS, ConvertContext, convert
from ctcl_map.converters.base import EARLIEST_DATE, INT32_MAX, LATEST_DATE, InvalidValue
from ctcl_map.mappings.tables import load_code_systems, load_fhir_valuesets, load_mappings
from ctcl_map.model import BundleIndex, Conversion, SourceItem
from ctcl_map.vocab.lookup import ConceptResolver
from ctcl_map.vocab.prepare import prepare_vocabulary

SNOMED_MF = {"coding": [{"system": "http://snomed.info/sct", "code": "118618005", "display": "Mycosis fungoides"}], "text": "MF"}
RXNORM = {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "2054068"}]}
LOINC_T = {"coding": [{"system": "http://loinc.org", "code": "21905-5"}]}
SUBJECT = {"reference": "Patient/p1"}
ENCOUNTER = {"reference": "Encounter/e1"}
QUANTITY = {"value": 12.5, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}
DOSAGE = {"text": "daily", "route": {"coding": [{"system": "http://snomed.info/sct", "code": "26643006"}]}, "dose": QUANTITY}
CONTAINED_MED = {"resourceType": "Medication", "id": "m1", "code": RXNORM}

BASES: dict[str, dict] = {
    "Patient": {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-04-12",
                "deceasedDateTime": "2020-01-02T10:00:00+01:00", "extension": [
                    {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
                     "extension": [{"url": "ombCategory", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2106-3"}}]}]},
    "Encounter": {"resourceType": "Encounter", "id": "e1", "status": "finished", "subject": SUBJECT,
                  "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                  "period": {"start": "2019-01-01T08:00:00", "end": "2019-01-01T09:00:00"}},
    "Condition": {"resourceType": "Condition", "id": "c1", "subject": SUBJECT, "encounter": ENCOUNTER, "code": SNOMED_MF,
                  "verificationStatus": {"coding": [{"code": "confirmed"}]}, "onsetDateTime": "2019-02-01",
                  "abatementDateTime": "2020-02-01", "recordedDate": "2019-02-03",
                  "stage": [{"summary": {"coding": [{"system": "http://loinc.org", "code": "LA3649-6"}], "text": "Stage IIB"}}]},
    "Observation": {"resourceType": "Observation", "id": "o1", "status": "final", "subject": SUBJECT, "encounter": ENCOUNTER,
                    "category": [{"coding": [{"code": "laboratory"}]}], "code": LOINC_T, "effectiveDateTime": "2019-03-01",
                    "issued": "2019-03-02T00:00:00Z", "valueQuantity": {**QUANTITY, "comparator": "<"},
                    "valueCodeableConcept": {"text": "T2b"}, "valueString": "cT2", "valueInteger": 3, "valueBoolean": True,
                    "referenceRange": [{"low": {"value": 1}, "high": {"value": 9}}],
                    "component": [{"code": LOINC_T, "valueQuantity": QUANTITY}, {"code": SNOMED_MF, "valueString": "x"}]},
    "Procedure": {"resourceType": "Procedure", "id": "pr1", "status": "completed", "subject": SUBJECT, "encounter": ENCOUNTER,
                  "code": SNOMED_MF, "performedPeriod": {"start": "2019-04-01", "end": "2019-04-02"}},
    "MedicationRequest": {"resourceType": "MedicationRequest", "id": "mr1", "status": "active", "intent": "order",
                          "subject": SUBJECT, "encounter": ENCOUNTER, "authoredOn": "2019-05-01", "medicationCodeableConcept": RXNORM,
                          "dosageInstruction": [DOSAGE], "dispenseRequest": {"quantity": QUANTITY, "numberOfRepeatsAllowed": 2,
                                                                            "expectedSupplyDuration": {"value": 30, "code": "d"}}},
    "MedicationAdministration": {"resourceType": "MedicationAdministration", "id": "ma1", "status": "completed",
                                 "subject": SUBJECT, "context": ENCOUNTER, "effectivePeriod": {"start": "2019-05-01", "end": "2019-05-01"},
                                 "medicationReference": {"reference": "#m1"}, "contained": [CONTAINED_MED], "dosage": DOSAGE},
    "MedicationStatement": {"resourceType": "MedicationStatement", "id": "ms1", "status": "stopped", "subject": SUBJECT,
                            "statusReason": [{"text": "side effects"}],
                            "effectiveDateTime": "2019-05-01", "dateAsserted": "2019-05-02",
                            "medicationReference": {"reference": "Medication/m2"}, "dosage": [DOSAGE]},
    "MedicationDispense": {"resourceType": "MedicationDispense", "id": "md1", "status": "completed", "subject": SUBJECT,
                           "whenHandedOver": "2019-05-01", "medicationCodeableConcept": RXNORM, "quantity": QUANTITY,
                           "daysSupply": {"value": 28, "unit": "days"}, "dosageInstruction": [DOSAGE]},
    "Immunization": {"resourceType": "Immunization", "id": "i1", "status": "completed", "patient": SUBJECT, "encounter": ENCOUNTER,
                     "occurrenceDateTime": "2019-06-01", "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}]},
                     "doseQuantity": QUANTITY, "lotNumber": "L1", "route": DOSAGE["route"],
                     "statusReason": {"coding": [{"code": "x", "display": "patient refused"}]}},
    "AllergyIntolerance": {"resourceType": "AllergyIntolerance", "id": "a1", "patient": SUBJECT, "encounter": ENCOUNTER,
                           "verificationStatus": {"coding": [{"code": "confirmed"}]}, "code": RXNORM,
                           "onsetPeriod": {"start": "2019-01-01"}, "recordedDate": "2019-01-02"},
}
assert set(BASES) == set(CONVERTERS), "a converter without a fuzzed base resource"

DATES = st.sampled_from(["2019-01-01", "9999-12-31", "0001-01-01", "2019-13-45", "1849-12-31", "2019", "2019-02",
                         "2019-02-30T10:00:00+99:00", "2019-01-01T10:00:00.123456789Z", "", "\u0000", "2019-01-01T25:00"])
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12) | DATES)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(["coding", "code", "system", "value", "reference", "start", "text", "x"]),
                                      inner, max_size=3), max_leaves=8)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for number, child in enumerate(value):
            yield from _paths(child, (*prefix, number))


def _copy(value):
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _mutate(resource: dict, path: tuple, action: str, replacement) -> None:
    if not path:
        return
    parent = resource
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    old = parent[last]
    if action == "replace":
        parent[last] = replacement
    elif action == "drop" and isinstance(parent, dict):
        del parent[last]
    elif action == "one_key_object":  # {"coding": {...}} where [{...}] belongs, or an object wrapped
        parent[last] = old[0] if isinstance(old, list) and old else {"x": old}
    elif action == "array":
        parent[last] = [old]


@pytest.fixture(scope="module")
def context(fresh_db) -> Iterator[ConvertContext]:
    db = fresh_db()  # kept open for the module: the resolver reads the shipped vocabulary once
    resolver = ConceptResolver(load_code_systems(()), load_mappings(()), prepare_vocabulary(db))
    yield ConvertContext(resolver=resolver, valuesets=load_fhir_valuesets(()), pseudonym_salt=b"fuzz",
                         medications={"Medication/m2": CONTAINED_MED})
    db.close()


def _fits(value) -> bool:
    if value is None or isinstance(value, str):
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -INT32_MAX <= value <= INT32_MAX
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (date, datetime)):
        day = value.date() if isinstance(value, datetime) else value
        return EARLIEST_DATE <= day <= LATEST_DATE
    return False


WRONG_TYPES = (None, True, 5, -1, 2**40, 1e308, "x", "9999-12-31", "", {"x": 1}, [], ["x"], [{"x": 1}])
ACTIONS = ("replace", "drop", "one_key_object", "array")


def _check(context: ConvertContext, resource_type: str, resource: dict) -> None:
    item = SourceItem(resource, resource_type, "x1", "fuzz.json", "entry[0]", None, BundleIndex())
    try:
        conversion = CONVERTERS[resource_type](item, context)
    except InvalidValue:
        return
    assert isinstance(conversion, Conversion)
    for row in conversion.rows:
        bad = {column: value for column, value in row.values.items() if not _fits(value)}
        assert not bad, f"{row.table}: {bad}"


def test_every_single_field_of_the_wrong_type_is_converted_or_quarantined(context):
    """Exhaustive: every field of every base resource, each wrong-typed value and each reshaping."""
    for resource_type, base in sorted(BASES.items()):
        for path in [p for p in _paths(base) if p]:
            for action in ACTIONS:
                for replacement in WRONG_TYPES if action == "replace" else (None,):
                    resource = _copy(base)
                    _mutate(resource, path, action, replacement)
                    try:
                        _check(context, resource_type, resource)
                    except Exception as error:
                        raise AssertionError(f"{resource_type} {path} {action} {replacement!r}: {error!r}") from error


MUTATION = st.tuples(st.integers(min_value=0, max_value=10_000), st.sampled_from(["replace", "drop", "one_key_object", "array"]), JSON)


@settings(max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(resource_type=st.sampled_from(sorted(BASES)), mutations=st.lists(MUTATION, min_size=1, max_size=3))
def test_converters_quarantine_or_convert_whatever_the_fields_hold(context, resource_type, mutations):
    """Random combinations of mutations, values of any JSON shape."""
    resource = _copy(BASES[resource_type])
    for pick, action, replacement in mutations:
        paths = [p for p in _paths(resource) if p]
        _mutate(resource, paths[pick % len(paths)], action, replacement)
    _check(context, resource_type, resource)


def test_the_guard_quarantines_what_a_converter_did_not_foresee(context, monkeypatch):
    def broken(item, ctx):
        raise KeyError("coding")

    monkeypatch.setitem(CONVERTERS, "Condition", broken)
    item = SourceItem(BASES["Condition"], "Condition", "c1", "f.json", "entry[0]", None, None)
    assert convert(item, context).quarantined == ("conversion_error", "the converter cannot read this resource: KeyError: 'coding'")
