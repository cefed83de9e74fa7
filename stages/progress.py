"""One progress helper for every long stage: a rich bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator

log = logging.getLogger("audiobook")

PLAIN_REPORT_EVERY_S = 10.0


@contextlib.contextmanager
def progress(description: str, total: int, unit: str = "segments") -> Iterator[Callable[[int], None]]:
    """Yield `advance(n)`; show a bar with ETA on a TTY, else log a line every few seconds."""
    if sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit), TimeRemainingColumn())
        with Progress(*columns, transient=False) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n=1: bar.advance(task, n)
        return
    done, started, last = 0, time.monotonic(), 0.0

    def advance(n: int = 1) -> None:
        nonlocal done, last
        done += n
        now = time.monotonic()
        if now - last >= PLAIN_REPORT_EVERY_S or done == total:
            last = now
            rate = done / max(now - started, 1e-9)
            eta = (total - done) / rate if rate else 0.0
            log.info("%s: %d/%d %s, eta %.0fs", description, done, total, unit, eta)

    yield advance
