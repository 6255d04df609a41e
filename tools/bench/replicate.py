"""Make large FHIR inputs from small real ones: copies of the same files with fresh resource ids.

Synthea identifies every resource by a UUID and references it by that UUID (`urn:uuid:<id>` in
Bundles, `Patient/<id>` in bulk NDJSON). Copy number c rewrites the first UUID group g to g XOR c,
a bijection per copy, so the copies are distinct patients whose references still resolve. The
text is rewritten byte for byte (no JSON parse), so replication is fast enough for gigabytes.

    python tools/bench/replicate.py SOURCE_DIR OUT_DIR --copies 100
    python tools/bench/replicate.py SOURCE_DIR OUT_DIR --ndjson-megabytes 1024
"""

from __future__ import annotations

import argparse
import gzip
import re
from pathlib import Path

UUID = re.compile(rb"\b([0-9a-f]{8})(-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b")


def fresh_ids(text: bytes, copy: int) -> bytes:
    """`text` with every UUID's first group XOR-ed with `copy` (copy 0 leaves it unchanged)."""
    if copy == 0:
        return text
    return UUID.sub(lambda m: b"%08x" % (int(m.group(1), 16) ^ copy) + m.group(2), text)


def read_bytes(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()


def replicate_files(sources: list[Path], out_dir: Path, copies: int, first_copy: int = 0) -> list[Path]:
    """One uncompressed file per source and copy: OUT/c0003-<name>.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for copy in range(first_copy, first_copy + copies):
        for source in sources:
            name = source.name[:-3] if source.name.endswith(".gz") else source.name
            target = out_dir / f"c{copy:04d}-{name}"
            target.write_bytes(fresh_ids(read_bytes(source), copy))
            written.append(target)
    return written


def replicate_ndjson(source_dir: Path, out_dir: Path, megabytes: float) -> list[Path]:
    """A bulk-export folder (one NDJSON file per resource type) grown to about `megabytes` MB by
    appending copies of each file with fresh ids; file names and type order are kept."""
    sources = sorted(p for p in source_dir.glob("*.ndjson") if p.name != "log.ndjson")
    contents = {p: read_bytes(p) for p in sources}
    per_copy = sum(len(c) for c in contents.values())
    copies = max(1, round(megabytes * 1e6 / per_copy))
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, content in contents.items():
        with open(out_dir / path.name, "wb") as handle:
            for copy in range(copies):
                handle.write(fresh_ids(content, copy))
                if not content.endswith(b"\n"):
                    handle.write(b"\n")
    return [out_dir / p.name for p in sources]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--ndjson-megabytes", type=float, default=None)
    args = parser.parse_args()
    if args.ndjson_megabytes:
        files = replicate_ndjson(args.source, args.out, args.ndjson_megabytes)
    else:
        sources = sorted(p for p in args.source.iterdir() if p.name.endswith((".json", ".json.gz")))
        files = replicate_files(sources, args.out, args.copies)
    print(f"{len(files)} files, {sum(p.stat().st_size for p in files) / 1e6:.1f} MB in {args.out}")


if __name__ == "__main__":
    main()
