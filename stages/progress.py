"""One progress helper for every long stage: rich bars with ETA on a terminal, plain log lines otherwise."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable

log = logging.getLogger("audiobook")

PLAIN_REPORT_EVERY_S = 10.0


class ProgressBoard:
    """Bars that several threads advance at once; shown while the board is open (`with board:`)."""

    def __init__(self, interactive: bool | None = None):
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self._rich = None
        self._lock = threading.Lock()

    def __enter__(self) -> ProgressBoard:
        if self.interactive:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._rich = Progress(
                TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[unit]}"), TimeRemainingColumn(),
            )
            self._rich.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._rich is not None:
            self._rich.stop()

    def bar(self, description: str, total: int, unit: str) -> Callable[[int], None]:
        """Return `advance(n)` for a new bar of `total` steps."""
        if self._rich is not None:
            task = self._rich.add_task(description, total=total, unit=unit)
            return lambda n=1: self._rich.advance(task, n)
        done, started, last = 0, time.monotonic(), 0.0

        def advance(n: int = 1) -> None:
            nonlocal done, last
            with self._lock:
                done += n
                now = time.monotonic()
                if now - last < PLAIN_REPORT_EVERY_S and done < total:
                    return
                last = now
                rate = done / max(now - started, 1e-9)
                log.info("%s: %d/%d %s, eta %.0fs", description, done, total, unit, (total - done) / rate if rate else 0)

        return advance
