"""What Spark executors run, without Spark: the version that stands after a run, input URIs."""

from __future__ import annotations

from pathlib import Path

from ctcl_map.spark.engine import input_uri
from ctcl_map.spark.executor import latest_occurrence


def _entry(order: int, digest: str, version: str | None = None, method: str | None = None) -> dict:
    return {"order": (order, 0), "method": method, "meta": {"versionId": version, "lastUpdated": None}, "content_hash": digest}


def test_a_later_entry_replaces_the_earlier_and_counts_as_a_duplicate():
    winner, duplicates, superseded = latest_occurrence([_entry(2, "b"), _entry(1, "a")])
    assert (winner["content_hash"], duplicates, superseded) == ("b", 1, 0)


def test_an_older_version_after_a_newer_one_is_superseded_not_applied():
    winner, duplicates, superseded = latest_occurrence([_entry(1, "new", "3"), _entry(2, "old", "2")])
    assert (winner["content_hash"], duplicates, superseded) == ("new", 0, 1)


def test_a_delete_applies_whatever_the_versions():
    winner, duplicates, _ = latest_occurrence([_entry(1, "a", "5"), _entry(2, "deleted", None, "DELETE")])
    assert (winner["method"], duplicates) == ("DELETE", 0)


def test_uris_folded_by_path_are_restored():
    assert input_uri(Path("hdfs://nn:8020/exports/fhir")) == "hdfs://nn:8020/exports/fhir"
    assert input_uri(Path("file:///data/fhir")) == "file:///data/fhir"
    assert input_uri(Path("s3a://bucket/key.ndjson.gz")) == "s3a://bucket/key.ndjson.gz"
    assert input_uri(Path("exports/fhir")) == "exports/fhir"
