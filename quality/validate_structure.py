"""Structure: every resource as FHIR R4, with the fhir.resources R4B models and optionally HL7's JSON schema.

Each error carries its path inside the file: the reader's position of the resource
('entry[3]', 'line 17', 'resource') joined with the error's location inside the resource
('subject.reference'), giving 'entry[3].resource.subject.reference'.

Messages are built from the validator's rule, never from the offending value: pydantic's `msg`
does not contain the input, and for the JSON schema we describe the failed keyword ourselves
(jsonschema's own messages quote the value, which could be a name or an identifier).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources

from ctcl_map.readers.fhir_structure import model_errors

MAX_ERRORS_PER_RESOURCE = 10  # one broken resource must not drown the report


# -- the official JSON schema ------------------------------------------------------------------

@cache
def _schema() -> dict:
    text = resources.files("ctcl_map.quality").joinpath("fhir.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@cache
def _schema_validator(resource_type: str):
    """One compiled validator per resource type, sharing the parsed schema.

    Validating against the root schema would try the resource against the oneOf of all ~145
    resource types (minutes for a few thousand resources); referencing the type's own definition
    validates the same constraints at about 280 resources/s.
    """
    from jsonschema import Draft6Validator

    schema = _schema()
    return Draft6Validator({"$ref": f"#/definitions/{resource_type}", "definitions": schema["definitions"]})


def schema_errors(resource: dict) -> list[tuple[tuple, str]]:
    """(location, message) for every JSON-schema violation of a resource."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or resource_type not in _schema()["definitions"]:
        return [((), f"{str(resource_type)[:60]!r} is not a FHIR R4 resource type")]
    found = []
    for error in _schema_validator(resource_type).iter_errors(resource):
        found.append((tuple(error.absolute_path), _schema_message(error)))
        if len(found) > MAX_ERRORS_PER_RESOURCE:
            break
    return found


def _schema_message(error) -> str:
    keyword, expected = error.validator, error.validator_value
    if keyword == "type":
        return f"should be of type {expected}"
    if keyword == "enum":
        allowed = ", ".join(map(str, expected[:8])) + (", ..." if len(expected) > 8 else "")
        return f"not one of the allowed values ({allowed})"
    if keyword == "const":
        return f"should be {expected!r}"
    if keyword == "pattern":
        return f"does not match the FHIR pattern {expected}"
    if keyword == "required":
        return error.message.split(" is a required")[0] + " is required"  # the property name, not a value
    if keyword == "additionalProperties":
        return error.message  # names the unexpected property names, never their values
    if keyword in ("minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum"):
        return f"violates {keyword} {expected}"
    return f"violates the schema keyword {keyword!r}"


Checker = Callable[[dict], list[tuple[tuple, str]]]


def structure_checkers(json_schema: bool) -> list[tuple[str, Checker]]:
    """(rule id, checker) pairs to run on every resource."""
    checkers: list[tuple[str, Checker]] = [("structure.model", model_errors)]
    if json_schema:
        checkers.append(("structure.schema", schema_errors))
    return checkers
