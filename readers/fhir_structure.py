"""A resource read against the FHIR R4 structure (the fhir.resources R4B models), and the path of
a place in it: shared by `fhir2omop --validate` (the conversion stage) and `ctcl-map validate`.

Each error carries its location inside the resource; resource_path joins it with the reader's
position of the resource ('entry[3]', 'line 17', 'resource'), giving
'entry[3].resource.subject.reference'. Messages are built from the validator's rule, never from
the offending value: pydantic's `msg` does not contain the input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


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
    from pydantic import ValidationError

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
        if not isinstance(error, ValidationError):
            return [((), f"invalid resource ({error.__class__.__name__})")]
        return [(tuple(e.get("loc", ())), _model_message(e)) for e in error.errors(include_context=False)]
    return []


def _model_message(error: Mapping[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        # pydantic tried to read a string as the JSON of a complex type (STU3 'clinicalStatus': "active")
        return "should be a JSON object (a FHIR complex type), not a string"
    message = str(error.get("msg", "invalid"))
    # pydantic prefixes custom validator errors with 'Value error, '; the rest is the rule, not the value.
    return message.removeprefix("Value error, ")[:300]
