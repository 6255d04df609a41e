"""During read-convert-load only the young generations of the garbage collector run: a batch's
resources survive them, and full collections of the growing heap found nothing to free."""

from __future__ import annotations

import gc

import pytest

from ctcl_map.pipeline import _no_full_collections


def test_full_collections_are_held_off_during_the_load_and_the_thresholds_restored_after():
    before = gc.get_threshold()
    with _no_full_collections():
        young, middle, old = gc.get_threshold()
        assert (young, middle) == before[:2]  # young collections run as usual
        assert old >= 1 << 30
        gc.collect(1)  # still allowed explicitly
    assert gc.get_threshold() == before


def test_the_thresholds_are_restored_when_the_load_fails():
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), _no_full_collections():
        raise RuntimeError("a run that fails")
    assert gc.get_threshold() == before


def test_a_cycle_made_during_the_load_is_freed_by_the_young_collections():
    class Node:
        pass

    with _no_full_collections():
        gc.collect()
        node = Node()
        node.self = node  # a cycle, unreachable once the name goes
        del node
        freed = gc.collect(0)
    assert freed >= 1
