"""What converters may consult besides the resource itself: lookups, never I/O."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

from ctcl_map.converters.base import as_list, quarantined
from ctcl_map.model import Conversion, SourceItem
from ctcl_map.readers.fhir_input import reference_key
from ctcl_map.vocab.lookup import ConceptResolver


@dataclass
class ConvertContext:
    resolver: ConceptResolver
    valuesets: Mapping[tuple[str, str, str], int]  # (omop_field, system, code) -> concept_id
    pseudonym_salt: bytes
    medications: dict[str, dict] = field(default_factory=dict)  # Medication resources seen outside Bundles

    def person_source_value(self, patient_key: str) -> str:
        """A keyed hash of the Patient key: stable within one CDM, useless to anyone without the salt.

        A plain hash of an MRN-like id could be reversed by trying every MRN; the per-database
        salt prevents that while letting the same patient keep the same value across re-runs.
        """
        digest = hmac.new(self.pseudonym_salt, patient_key.encode(), hashlib.sha256).hexdigest()
        return f"p-{digest[:24]}"

    def valueset(self, omop_field: str, coding_or_code: object, system: str | None = None) -> tuple[int, str | None]:
        """FHIR value-set codes (gender, race, visit class ...) -> (concept_id, source code)."""
        if isinstance(coding_or_code, dict):
            system = coding_or_code.get("system")
            code = coding_or_code.get("code")
        else:
            code = coding_or_code
        if not isinstance(code, str):
            return 0, None
        if not isinstance(system, str):
            system = None
        return self.valuesets.get((omop_field, system or "", code), 0), code


def reference(item: SourceItem, value: object) -> str | None:
    return reference_key(value, item.bundle)


def outside_its_bundle(item: SourceItem) -> dict:
    """The resource with its subject, encounter and result references as 'Type/id' keys, so it
    means the same kept apart from its Bundle (a record waiting for a resource read elsewhere)."""
    resource = dict(item.resource or {})
    for name in ("subject", "encounter"):
        key = reference(item, resource.get(name))
        if key is not None:
            resource[name] = {"reference": key}
    if isinstance(resource.get("result"), list):
        resource["result"] = [{"reference": key} for key in (reference(item, r) for r in resource["result"]) if key is not None]
    return resource


SUBJECT_PROBLEMS = {
    "missing_subject": "{type}.{field} is missing",
    "unresolvable_subject": "{type}.{field} cannot be resolved: it is not an entry of this Bundle nor a Type/id reference",
    "subject_not_patient": "{type}.{field} references a {target}, not a Patient",
}


def subject_problem(item: SourceItem, reason: str, field_name: str = "subject") -> Conversion:
    """The quarantine verdict for a subject that does not lead to a Patient."""
    target = reference(item, (item.resource or {}).get(field_name)) or ""
    message = SUBJECT_PROBLEMS[reason].format(type=item.resource_type, field=field_name, target=target.split("/", 1)[0])
    return quarantined(reason, message)


def subject_key(item: SourceItem, field_name: str = "subject") -> tuple[str | None, str | None]:
    """The Patient key of a resource's subject, or (None, reason)."""
    resource = item.resource or {}
    value = resource.get(field_name)
    if value is None:
        return None, "missing_subject"
    contained = contained_patient(item, field_name)
    if contained is not None:
        return contained[0], None
    key = reference(item, value)
    if key is None:
        return None, "unresolvable_subject"
    if not key.startswith("Patient/"):
        return None, "subject_not_patient"
    return key, None


def contained_patient(item: SourceItem, field_name: str = "subject") -> tuple[str, dict] | None:
    """(person key, Patient) when the subject is '#id' naming a Patient contained in the resource.

    A contained resource has no identity outside its container, so its person is keyed by the
    container ('Patient/Observation-o1#p'): the container's rows, its person included, are replaced
    together when a new version of the container arrives."""
    resource = item.resource or {}
    value = resource.get(field_name)
    ref = value.get("reference") if isinstance(value, dict) else None
    if not isinstance(ref, str) or not ref.startswith("#") or len(ref) > 65:  # a FHIR id: 64 characters at most
        return None
    for contained in as_list(resource.get("contained")):
        if isinstance(contained, dict) and contained.get("resourceType") == "Patient" and contained.get("id") == ref[1:]:
            return f"Patient/{item.resource_type}-{item.resource_id}{ref}", contained
    return None


def encounter_key(item: SourceItem, field_name: str = "encounter") -> str | None:
    key = reference(item, (item.resource or {}).get(field_name))
    return key if key and key.startswith("Encounter/") else None
