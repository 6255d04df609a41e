"""Write a cohort as transaction Bundles (one per patient) or bulk NDJSON (one file per type),
plus truth.csv and truth.json. Byte-for-byte deterministic: fixed key order, orjson float
formatting, gzip with mtime 0 and no file name in the header."""

from __future__ import annotations

import csv
import gzip as gzip_module
import io
import re
from pathlib import Path

import orjson

from ctcl_map.store.output_folder import inside, prepare_output_folder
from ctcl_map.synthetic.model import Cohort
from ctcl_map.synthetic.runtime import garbage_collector_paused
from ctcl_map.synthetic.truth import TRUTH_COLUMNS, truth_row, truth_summary

# Every reference the builders write is 'Type/<uuid>'; in a transaction bundle it becomes
# 'urn:uuid:<uuid>' (contained '#med1' references have no slash and stay as they are).
_RELATIVE_REFERENCE = re.compile(rb'("reference": ?")[A-Za-z]+/')


def _write_bytes(path: Path, payload: bytes, compress: bool) -> Path:
    if compress:
        path = path.with_name(path.name + ".gz")
        buffer = io.BytesIO()
        with gzip_module.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=6) as handle:
            handle.write(payload)
        payload = buffer.getvalue()
    inside(path.parent, path).write_bytes(payload)
    return path


def bundle_bytes(resources: list[dict], bundle_id: str, method: str = "POST") -> bytes:
    """A transaction Bundle. POST entries (new data) use urn:uuid references; PUT entries
    (messy re-sent versions) keep relative references to the server ids."""
    entries = []
    for resource in resources:
        request = {"method": method, "url": resource["resourceType"]}
        if method == "PUT":
            request["url"] = f"{resource['resourceType']}/{resource['id']}"
        entries.append({"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource, "request": request})
    payload = orjson.dumps({"resourceType": "Bundle", "id": bundle_id, "type": "transaction", "entry": entries},
                           option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    return _RELATIVE_REFERENCE.sub(rb"\1urn:uuid:", payload) if method == "POST" else payload


def _write_bundles(cohort: Cohort, out_dir: Path, compress: bool) -> list[Path]:
    written = []
    for record in cohort.records:
        key = record.course.patient_key
        written.append(_write_bytes(out_dir / f"{key}.json", bundle_bytes(record.resources, key), compress))
        if record.resent:
            written.append(_write_bytes(out_dir / f"{key}.resent.json",
                                        bundle_bytes(record.resent, f"{key}-resent", "PUT"), compress))
    return written


def _write_ndjson(cohort: Cohort, out_dir: Path, compress: bool) -> list[Path]:
    by_file: dict[str, list[bytes]] = {}
    for record in cohort.records:
        for suffix, resources in (("", record.resources), (".resent", record.resent)):
            for resource in resources:
                by_file.setdefault(f"{resource['resourceType']}{suffix}", []).append(
                    orjson.dumps(resource, option=orjson.OPT_APPEND_NEWLINE))
    return [_write_bytes(out_dir / f"{name}.ndjson", b"".join(lines), compress)
            for name, lines in sorted(by_file.items())]


def write_truth(cohort: Cohort, out_dir: Path) -> list[Path]:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=TRUTH_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in cohort.records:
        writer.writerow(truth_row(record.course))
    csv_path, json_path = inside(out_dir, out_dir / "truth.csv"), inside(out_dir, out_dir / "truth.json")
    csv_path.write_bytes(text.getvalue().encode("utf-8"))
    json_path.write_bytes(orjson.dumps(truth_summary(cohort), option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
    return [csv_path, json_path]


FHIR_FOLDER = "fhir"  # the FHIR files go here; the truth files stay beside it, out of the converter's input


def write_cohort(cohort: Cohort, out_dir: Path, fmt: str = "bundle", gzip: bool = False) -> list[Path]:
    """Write ``cohort`` into ``out_dir`` (created if needed); returns the files written.

    FHIR into ``out_dir/fhir/`` -- bundle: ``<patient-key>.json`` per patient (+
    ``<patient-key>.resent.json`` in messy mode); ndjson: ``<Type>.ndjson`` per resource type (+
    ``<Type>.resent.ndjson``); ``.gz`` when gzip -- and ``truth.csv`` / ``truth.json`` into ``out_dir``,
    so that ``ctcl-map fhir2omop out_dir/fhir`` reads FHIR only."""
    if fmt not in ("bundle", "ndjson"):
        raise ValueError(f"unknown format {fmt!r}: use 'bundle' or 'ndjson'")
    out_dir = prepare_output_folder(Path(out_dir))
    fhir_dir = prepare_output_folder(inside(out_dir, out_dir / FHIR_FOLDER))
    writer = _write_bundles if fmt == "bundle" else _write_ndjson
    with garbage_collector_paused():
        return writer(cohort, fhir_dir, gzip) + write_truth(cohort, out_dir)
