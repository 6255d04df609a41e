"""Which input files an incremental run may skip: those a completed run loaded as they are now
(their recorded state: store/file_states.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ctcl_map.readers.fhir_input import display_name, file_digest, is_ndjson
from ctcl_map.store.database import Database
from ctcl_map.store.file_states import record_file_states, recorded_file_states


class FileStates:
    """ctcl_file_state: content hash (salted with the configuration) and size of each input file a
    completed run loaded, so an incremental run skips unchanged files without parsing them.

    Files that held Medication resources are always read: later files' medication references
    resolve through the run-wide Medication index, which must hold them.
    """

    def __init__(self, db: Database, fingerprint: str, files: list[Path]):
        self.db = db
        self.fingerprint = fingerprint
        self.known = recorded_file_states(db, [display_name(p) for p in files])
        self.hashes: dict[str, tuple[str, int, int]] = {}  # file -> (hash, size, mtime) when it was read
        self.medications: Counter = Counter()
        self.completed: list[str] = []  # files read to the end without a read error, in order
        self.unclean: set[str] = set()  # files with entries that could not be read as resources

    def digest(self, path: Path) -> tuple[str, int, int]:
        name = display_name(path)
        if name not in self.hashes:
            self.hashes[name] = file_digest(path, self.fingerprint)
        return self.hashes[name]

    def unchanged(self, path: Path) -> bool:
        """True when a completed run loaded this file as it is now. Same size and modification time
        as recorded: unchanged without reading it (as make and rsync decide); otherwise the content
        hash decides (a copied file has a new mtime). New files are not hashed here: whoever reads
        a file hashes it just before (see will_read)."""
        known = self.known.get(display_name(path))
        if known is None or known[3]:  # new, or holds Medications (always read)
            return False
        try:
            status = path.stat()
            if status.st_size == known[1] and status.st_mtime_ns == known[2]:
                return True
            digest, size, _ = self.digest(path)
        except OSError:
            return False  # the reader reports it
        return known[1] == size and known[0] == digest

    def will_read(self, path: Path) -> None:
        """Hash an NDJSON file before its chunks are read here, so the hash recorded is of the
        content loaded. A whole JSON file is hashed by the process that parses it (a worker, in
        parallel runs: 100 MB of hashing is 0.2 s off the writer's process)."""
        if is_ndjson(path):
            try:
                self.digest(path)
            except OSError:
                pass  # the reader reports it

    def saw(self, result) -> None:
        name = display_name(result.unit.path)
        self.medications[name] += len(result.medications)
        if result.file_digest is not None:
            self.hashes.setdefault(name, result.file_digest)
        if result.problems:
            self.unclean.add(name)
        if result.unit.problem is not None:
            self.hashes[name] = ("", -1, 0)  # unreadable: never recorded, read again next time
        elif result.unit.closes_file:
            self.completed.append(name)

    def clean_completed(self) -> list[str]:
        """Files read to the end in which every entry was a resource: only their content tells
        what is no longer there (an unreadable entry might be the resource that seems gone)."""
        return [name for name in self.completed if name not in self.unclean]

    def record(self, run_id: int, exclude: set[str]) -> None:
        rows = []
        for name in dict.fromkeys(self.completed):  # once each, even if given twice
            if name in exclude or name not in self.hashes or self.hashes[name][1] == -1:
                continue
            digest, size, modified = self.hashes[name]
            rows.append((name, digest, size, modified, self.medications[name], run_id))
        record_file_states(self.db, rows, forget=exclude)
