"""Small pure pieces of `ctcl-map validate`: paths, stage-group agreement, JSON-schema messages."""

from __future__ import annotations

import pytest

from ctcl_map.quality.validate_structure import schema_errors
from ctcl_map.readers.fhir_structure import model_errors, resource_path


@pytest.mark.parametrize("position, location, expected", [
    ("entry[3]", ("subject",), "entry[3].resource.subject"),
    ("entry[3]", ("code", "coding", 0, "code"), "entry[3].resource.code.coding[0].code"),
    ("entry[2].resource.entry[0]", ("status",), "entry[2].resource.entry[0].resource.status"),
    ("line 17", ("subject", "reference"), "line 17: subject.reference"),
    ("line 17", (), "line 17"),
    ("resource", ("gender",), "gender"),
    ("resource", (), ""),
])
def test_resource_path(position, location, expected):
    assert resource_path(position, location) == expected


def test_messages_never_quote_the_value():
    secret = "Johanna Privacyhidden"
    patient = {"resourceType": "Patient", "id": "p", "gender": secret, "birthDate": secret, "active": secret}
    for _location, message in model_errors(patient) + schema_errors(patient):
        assert "Privacyhidden" not in message
    assert {loc for loc, _ in schema_errors(patient)} == {("gender",), ("birthDate",), ("active",)}


def test_unknown_resource_type():
    assert model_errors({"resourceType": "Pateint"}) == [((), "'Pateint' is not a FHIR R4 resource type")]
    assert schema_errors({"resourceType": "Pateint"}) == [((), "'Pateint' is not a FHIR R4 resource type")]
