"""Staging values (T, N, M, B, stage group) as hospitals write them: codes, text, or strings.

A coded value resolves like any code. When it does not (text only, a local code, 'Stage IVA1'
as a string), the ISCL/EORTC parser normalises the written form ('4A1' -> 'IVA1') and the
staging mapping table's ISCL rows give the concept. The source text is kept verbatim.
"""

from __future__ import annotations

from ctcl_map.converters.base import as_list
from ctcl_map.converters.context import ConvertContext
from ctcl_map.vocab.lookup import Resolved

ISCL_VOCABULARY = "ISCL"  # mapping-table rows keyed by the normalised category ('T2b', 'IVA1')


def resolve_staging_value(ctx: ConvertContext, value: object, axis: str) -> Resolved:
    """value: a CodeableConcept dict or a string; axis: 'T', 'N', 'M', 'B' or 'stage'."""
    from ctcl_map.ctcl.tnmb import parse_category

    texts: list[object] = []  # candidates, checked to be non-blank strings below
    if isinstance(value, dict):
        resolved = ctx.resolver.resolve(value, "value")
        if resolved.concept_id:
            return resolved
        codings = [c for c in as_list(value.get("coding")) if isinstance(c, dict)]
        texts = [c.get("code") for c in codings] + [c.get("display") for c in codings]
        texts.append(value.get("text"))
    elif isinstance(value, str):
        resolved = Resolved(0, value.strip()[:50], 0, None, ISCL_VOCABULARY, value.strip(), "unparseable_stage_value")
        texts = [value]
    else:
        return Resolved(0, None, 0, None, None, None, "no_code")
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            continue
        category = parse_category(axis, text)
        if category is None:
            continue
        parsed = ctx.resolver.resolve_code(ISCL_VOCABULARY, category)
        if parsed.concept_id:
            return Resolved(parsed.concept_id, resolved.source_value or text.strip()[:50], resolved.source_concept_id,
                            parsed.domain_id, resolved.vocabulary_id, resolved.code, None, parsed.mapping)
    return resolved
