"""`fhir2omop --log-file`: a machine-readable record of a load, one JSON object per line, so an ETL
scheduler can follow a long job (tail the file, parse each line).

Events, each with "event" and "time" (UTC, ISO 8601):
  run_start  software version, backend (duckdb/postgresql), number of inputs given, the options
  progress   after each file (or NDJSON chunk): files done/total/unchanged, resources read so far,
             bytes done/total, batches committed, records quarantined, seconds, resources/s
  warning    a Python warning during the run; at the end, quarantined / excluded / unreadable /
             notes counts from the report
  report     the final run report (the same object as `--json`)
  run_end    exit code and, when the run failed, the kind of error (the message is on stderr)

Privacy: counts and codes only, like the report; no input paths, no database URL (so never its
password), no identifiers.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from ctcl_map import __version__


class RunLog:
    """Writes events to an open text stream (line-buffered: each event is visible when written);
    with no stream every method does nothing, so callers need not check."""

    def __init__(self, stream: IO[str] | None) -> None:
        self.stream = stream
        self.started = time.perf_counter()
        self.ended = False
        self._last_resources = 0
        self._show_warning: Callable[..., None] | None = None  # warnings.showwarning replaced by open()

    @classmethod
    def open(cls, path: Path | None) -> RunLog:
        """A log appending to `path` (a scheduler may tail one file over many runs), or a silent one
        for None. Python warnings raised until close() are logged too (and still shown).
        Raises OSError when the file cannot be opened."""
        if path is None:
            return cls(None)
        log = cls(open(path, "a", encoding="utf-8", buffering=1))
        log._show_warning = shown = warnings.showwarning

        def log_warning(message, category, filename, lineno, file=None, line=None):
            log.event("warning", kind=category.__name__, message=str(message))
            shown(message, category, filename, lineno, file, line)

        warnings.showwarning = log_warning
        return log

    def close(self) -> None:
        if self._show_warning is not None:
            warnings.showwarning = self._show_warning
        if self.stream is not None:
            self.stream.close()
            self.stream = None

    def event(self, name: str, **fields: Any) -> None:
        if self.stream is None:
            return
        record = {"event": name, "time": datetime.now(UTC).isoformat(timespec="milliseconds"), **fields}
        self.stream.write(json.dumps(record, default=str) + "\n")
        self.stream.flush()

    def start(self, backend: str, inputs: int, options: dict[str, Any]) -> None:
        self.event("run_start", software_version=__version__, backend=backend, inputs=inputs, options=options)

    def progress(self, state) -> None:
        """The run_fhir2omop progress callback (pipeline.LoadProgress)."""
        seconds = max(time.perf_counter() - self.started, 1e-6)
        self.event("progress", files_done=state.files_done, files_total=state.files_total,
                   files_unchanged=state.files_skipped, resources=state.resources,
                   resources_since_last=state.resources - self._last_resources,
                   bytes_done=state.bytes_done, bytes_total=state.bytes_total,
                   batches_committed=state.batches_committed, quarantined=state.quarantined,
                   seconds=round(seconds, 3), resources_per_second=round(state.resources / seconds, 1))
        self._last_resources = state.resources

    def report(self, report: dict[str, Any]) -> None:
        """The final report, preceded by a warning event for each kind of record not loaded."""
        for kind in ("quarantined", "excluded", "notes"):
            if report.get(kind):
                self.event("warning", kind=kind, count=sum(report[kind].values()), by_reason=report[kind])
        for kind in ("unreadable_files", "dangling_subject_removed", "visit_links_cleared"):
            if report.get(kind):
                self.event("warning", kind=kind, count=report[kind])
        self.event("report", report=report)

    def end(self, exit_code: int, error: str | None = None) -> None:
        """The last event of a run (written once: later calls do nothing)."""
        if self.ended:
            return
        self.ended = True
        self.event("run_end", exit_code=exit_code, status="failed" if exit_code else "completed",
                   seconds=round(time.perf_counter() - self.started, 3), **({"error": error} if error else {}))
