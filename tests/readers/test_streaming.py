"""The reader in bounded memory: Bundles entry by entry, NDJSON line by line, both recovering what
a strict whole-file parse would lose."""

from __future__ import annotations

import gzip
import io
import json
import random
from pathlib import Path

import orjson
import pytest

from ctcl_map.model import InputProblem
from ctcl_map.readers import json_stream
from ctcl_map.readers.fhir_input import ReadLimits, read_file
from ctcl_map.readers.json_stream import BundleScanner, JsonShapeError, lines, parse_json

TESTS = Path(__file__).resolve().parents[1]

STREAMED = ReadLimits(whole_file_bytes=1000)  # anything over 1 kB goes through the scanner


def _pieces(data: bytes, block: int, monkeypatch, max_piece: int = 1 << 30) -> list:
    monkeypatch.setattr(json_stream, "BLOCK", block)
    out = []
    try:
        for piece in BundleScanner(io.BytesIO(data).read, max_piece).pieces():
            out.append((piece.key, piece.index, piece.raw, piece.size))
    except JsonShapeError as error:
        out.append(("error", str(error)))
    return out


def test_the_scanner_splits_exactly_what_orjson_parses_at_any_block_size(monkeypatch):
    rng = random.Random(7)
    alphabet = 'ab"\\{}[],: \u00e9\n'
    for _ in range(300):
        entries = [{"t": "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 9))), "n": [rng.random(), {"q": "\\\""}]}
                   for _ in range(rng.randint(0, 5))] + rng.choice([[], [7, "s", None, [1]]])
        document = {"resourceType": "Bundle", "entry": entries, "meta": {"tag": [1]}}
        data = json.dumps(document, ensure_ascii=False, indent=rng.choice([None, 1])).encode()
        pieces = _pieces(data, rng.randint(1, 50), monkeypatch)
        assert [orjson.loads(raw) for key, _, raw, _ in pieces if key is None] == entries
        assert {key: orjson.loads(raw) for key, _, raw, _ in pieces if key} == {"resourceType": "Bundle", "meta": {"tag": [1]}}


def test_the_scanner_skips_a_piece_over_the_limit_and_reports_where_the_json_breaks(monkeypatch):
    data = b'{"entry": [{"a": "' + b"x" * 500 + b'"}, {"b": 2}, ["' + b"y" * 300 + b'"], {"c": '
    assert _pieces(data, 16, monkeypatch, max_piece=100) == [
        (None, 0, None, 509), (None, 1, b'{"b": 2}', 8), (None, 2, None, 304),
        ("error", "the input ends inside an object or array at byte 844")]
    assert _pieces(b'{"entry": []} x', 4, monkeypatch) == [("error", "extra data after the top-level object at byte 14")]


def test_lines_end_at_lf_crlf_or_cr_drop_a_bom_and_measure_long_ones(monkeypatch):
    monkeypatch.setattr(json_stream, "BLOCK", 3)
    data = b'\xef\xbb\xbf{"a":1}\r\n\r\n{"b":2}\r{"c":3}\n  \n' + b"y" * 30 + b'\n{"d":4}'
    assert list(lines(io.BytesIO(data).read, 20)) == [
        (1, b'{"a":1}'), (3, b'{"b":2}'), (4, b'{"c":3}'), (6, 30), (7, b'{"d":4}')]


def test_parse_json_repairs_text_but_not_numbers():
    assert parse_json(b'{"a": "x\\u0000y"}') == ({"a": "x\ufffdy"}, True)
    assert parse_json(b'{"a": "caf\xe9"}') == ({"a": "caf\ufffd"}, True)
    assert parse_json(b'{"a": "\\ud800", "b": "\\ud83d\\ude00"}') == ({"a": "\ufffd", "b": "\U0001f600"}, True)
    for number in (b"NaN", b"1e400", b"-Infinity"):
        with pytest.raises(orjson.JSONDecodeError):
            parse_json(b'{"a": ' + number + b"}")


@pytest.mark.parametrize("name", ["living_patient.json.gz", "deceased_patient.json.gz"])
def test_a_streamed_bundle_gives_the_items_of_a_whole_parse(name):
    """Third-party Synthea bundles (tests/data, see NOTICE.md), once parsed whole and once entry by entry."""
    path = TESTS / "data" / "synthea" / name
    whole = list(read_file(path))
    streamed = list(read_file(path, limits=STREAMED))
    assert len(streamed) == len(whole) > 50
    assert [(i.resource_type, i.resource_id, i.position, i.resource) for i in streamed] == \
           [(i.resource_type, i.resource_id, i.position, i.resource) for i in whole]
    # references between entries resolve the same (the first pass indexes every fullUrl)
    assert streamed[-1].bundle.full_urls == whole[-1].bundle.full_urls


def test_a_bundle_that_is_not_json_as_a_whole_keeps_its_good_entries(tmp_path):
    entries = [{"resource": {"resourceType": "Patient", "id": f"p{n}", "birthDate": "1950"}} for n in range(4)]
    data = json.dumps({"resourceType": "Bundle", "entry": entries}).encode()
    data = data.replace(b'"id": "p1"', b'"id": "p1", "x": NaN').replace(b'"id": "p2"', b'"id": "p2", "y": "\xff"')
    (tmp_path / "b.json").write_bytes(b"\xef\xbb\xbf" + data[:-2])  # and truncated
    items = list(read_file(tmp_path / "b.json"))
    assert [(i.position, i.reason) if isinstance(i, InputProblem) else (i.position, i.resource_id, i.repaired) for i in items] == [
        ("entry[0]", "p0", False), ("entry[1]", "not_json"), ("entry[2]", "p2", True), ("entry[3]", "p3", False), ("-", "not_json")]


def test_utf16_and_oversized_single_resources_are_named(tmp_path):
    (tmp_path / "u.ndjson").write_bytes('{"resourceType": "Patient"}\n'.encode("utf-16-le"))
    (tmp_path / "one.json").write_text(json.dumps({"resourceType": "Patient", "id": "a", "text": {"div": "x" * 3000}}))
    assert [(i.position, i.reason) for i in read_file(tmp_path / "u.ndjson")] == [("-", "not_utf8")]
    assert [(i.position, i.reason) for i in read_file(tmp_path / "one.json", limits=ReadLimits(max_resource_bytes=2000))] == \
           [("-", "resource_too_large")]
    assert [i.resource_id for i in read_file(tmp_path / "one.json", limits=ReadLimits(whole_file_bytes=100))] == ["a"]


def test_a_gzip_that_expands_past_the_limit_keeps_what_came_before(tmp_path):
    entry = {"resource": {"resourceType": "Patient", "id": "p0", "birthDate": "1950"}}
    with gzip.open(tmp_path / "bomb.json.gz", "wb") as handle:
        handle.write(b'{"resourceType": "Bundle", "entry": [' + json.dumps(entry).encode() + b', {"resource": {"text": "')
        handle.write(b"A" * 200_000 + b'"}}]}')
    items = list(read_file(tmp_path / "bomb.json.gz", limits=ReadLimits(max_decompressed_bytes=100_000, whole_file_bytes=1000)))
    assert [(i.position, getattr(i, "reason", i.resource_id)) for i in items] == [("entry[0]", "p0"), ("-", "decompressed_too_large")]
