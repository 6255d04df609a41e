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
from collections.abc import Callable, Iterable
from functools import cache
from importlib import resources
from typing import Any

MAX_ERRORS_PER_RESOURCE = 10  # one broken resource must not drown the report


def resource_path(position: str, location: Iterable[Any] = ()) -> str:
    """Reader position + location inside the resource -> one path ('entry[3].resource.code.coding[0]')."""
    inner = ""
    for part in location:
        if isinstance(part, int):
            inner += f"[{part}]"
        else:
            inner += ("." if inner else "") + str(part)
    if position == "resource":
        return inner
    if position.startswith("line "):
        return f"{position}: {inner}" if inner else position
    root = f"{position}.resource"
    return f"{root}.{inner}" if inner else root


def model_errors(resource: dict) -> list[tuple[tuple, str]]:
    """(location, message) for every way the resource breaks the FHIR R4 (R4B models) structure."""
    from fhir.resources.R4B import get_fhir_model_class

    resource_type = resource.get("resourceType")
    try:
        model = get_fhir_model_class(resource_type)
    except (KeyError, ValueError, TypeError, AttributeError):
        return [((), f"{str(resource_type)[:60]!r} is not a FHIR R4 resource type")]
    try:
        model.model_validate(resource)
    except Exception as error:  # pydantic.ValidationError; anything else is reported, not raised
        # No local may hold the error after this block: its validator ValueErrors keep tracebacks
        # into this frame, a cycle through pydantic-core that the garbage collector cannot break.
        if not callable(getattr(error, "errors", None)):
            return [((), f"invalid resource ({error.__class__.__name__})")]
        return [(tuple(e.get("loc", ())), _model_message(e)) for e in error.errors(include_context=False)]
    return []


def _model_message(error: dict) -> str:
    if error.get("type") == "json_invalid":
        # pydantic tried to read a string as the JSON of a complex type (STU3 'clinicalStatus': "active")
        return "should be a JSON object (a FHIR complex type), not a string"
    message = str(error.get("msg", "invalid"))
    # pydantic prefixes custom validator errors with 'Value error, '; the rest is the rule, not the value.
    return message.removeprefix("Value error, ")[:300]


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
