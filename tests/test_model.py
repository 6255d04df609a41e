"""The records that travel between stages (model.py)."""

from __future__ import annotations

import pickle

from ctcl_map.model import SourceItem


def test_a_source_items_key_is_made_once_travels_with_it_and_does_not_change_equality():
    item = SourceItem({"resourceType": "Patient", "id": "p1"}, "Patient", "p1", "f.json", "entry[0]")
    assert item.key == "Patient/p1"
    assert item.key is item.key  # made once, not a new string each time it is asked for
    copy = pickle.loads(pickle.dumps(item))
    assert copy.key == "Patient/p1"
    assert copy == SourceItem({"resourceType": "Patient", "id": "p1"}, "Patient", "p1", "f.json", "entry[0]")
    assert "_key" not in repr(item)
