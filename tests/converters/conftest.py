"""Fixtures of the per-converter unit tests: a ConvertContext over the shipped vocabulary, read
from vocab/*.csv into memory (no database), and a way to run one converter on one resource."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ctcl_map.converters.context import ConvertContext
from ctcl_map.mappings.tables import load_code_systems, load_fhir_valuesets, load_mappings
from ctcl_map.model import BundleIndex, Conversion, SourceItem
from ctcl_map.vocab.loader import read_shipped
from ctcl_map.vocab.lookup import ConceptResolver, VocabIndex

TEST_SALT = bytes.fromhex("00" * 32)  # the pseudonym key of every test load (tests/conftest.py: pseudonym)


def _shipped_vocabulary_rows() -> list[tuple]:
    """The rows VocabIndex reads from a database (concept LEFT JOIN its valid 'Maps to' targets,
    in concept id then target id order), built from the shipped CSVs instead."""
    concepts = {int(row["concept_id"]): row for row in read_shipped("CONCEPT.csv")}
    targets: dict[int, list[int]] = {}
    for row in read_shipped("CONCEPT_RELATIONSHIP.csv"):
        if row["relationship_id"] == "Maps to" and not row["invalid_reason"]:
            targets.setdefault(int(row["concept_id_1"]), []).append(int(row["concept_id_2"]))
    rows = []
    for concept_id in sorted(concepts):
        concept = concepts[concept_id]
        source = (concept["vocabulary_id"], concept["concept_code"], concept_id, concept["standard_concept"] or None, concept["domain_id"])
        mapped = [t for t in sorted(targets.get(concept_id, ())) if t in concepts]
        if not mapped:
            rows.append((*source, None, None, None))
        for target_id in mapped:
            target = concepts[target_id]
            rows.append((*source, target_id, target["domain_id"], target["standard_concept"] or None))
    return rows


@pytest.fixture(scope="session")
def convert_context() -> ConvertContext:
    resolver = ConceptResolver(load_code_systems(()), load_mappings(()), VocabIndex(rows=_shipped_vocabulary_rows()))
    return ConvertContext(resolver=resolver, valuesets=load_fhir_valuesets(()), pseudonym_salt=TEST_SALT)


@pytest.fixture(scope="session")
def run_converter(convert_context: ConvertContext) -> Callable[..., Conversion]:
    """run_converter(converter, resource, bundle=None) -> Conversion: one resource as read from a
    file of its own, or as an entry of a Bundle described by `bundle`."""

    def run(converter, resource: dict, bundle: BundleIndex | None = None) -> Conversion:
        item = SourceItem(resource, resource["resourceType"], resource["id"], "unit.json", "resource", None, bundle or BundleIndex())
        return converter(item, convert_context)

    return run


