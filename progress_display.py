"""The progress bar of `fhir2omop`: ETA, files, resources and rate, on stderr (stdout stays the report).
Drawn only when stderr is a terminal (the CLI decides); a scheduler follows --log-file instead."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ctcl_map.pipeline import LoadProgress


@contextmanager
def load_progress_bar(enabled: bool = True) -> Iterator[Callable[[LoadProgress], None] | None]:
    """Yields the callback for run_fhir2omop (None when disabled). The bar advances by input bytes,
    so the ETA holds when files differ in size; the rate shown is resources per second."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    started = time.perf_counter()
    # Most useful first, so an 80-column terminal shows the bar, the ETA and the counts whole and
    # only a very long line loses the elapsed time at its end.
    with Progress(
        BarColumn(bar_width=16),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[files]} files"),
        TextColumn("{task.fields[resources]:,} resources"),
        TextColumn("{task.fields[rate]:,.0f}/s"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as bar:
        task = bar.add_task("load", total=None, files="0/0", resources=0, rate=0.0)

        def show(state: LoadProgress) -> None:
            elapsed = max(time.perf_counter() - started, 1e-6)
            skipped = f" ({state.files_skipped:,} unchanged)" if state.files_skipped else ""
            bar.update(task, total=max(state.bytes_total, 1), completed=min(state.bytes_done, state.bytes_total),
                       files=f"{state.files_done:,}/{state.files_total:,}{skipped}", resources=state.resources,
                       rate=state.resources / elapsed)

        yield show
