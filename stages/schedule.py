"""Book-wide batch scheduling for engines that synthesize many segments at once (a GPU keeps busy).

All pending segments are sorted by length and cut into batches whose padded size (batch size x
longest input) stays within a token budget, so short lines travel together and long ones do not drag
padding. The budget comes from free accelerator memory. A batch that still runs out of memory is
split in half and the worker's budget halved, and the run goes on; one worker runs per device. Each
finished batch is stored at once (into the content-addressed take cache), so a crash loses at most
the batches in flight and a re-run schedules only what is missing.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from stages.errors import StageError

log = logging.getLogger(__name__)

CPU_TOKEN_BUDGET = 4096  # padded input tokens per batch on CPU, where batching gains little
MIN_TOKEN_BUDGET = 64
RESERVED_FRACTION = 0.2  # of free device memory, left for the allocator's fragmentation and other users


@dataclass(frozen=True)
class Item:
    """One segment to synthesize: its cache key, its input length (e.g. phoneme ids) and what the engine needs."""

    key: str
    cost: int
    payload: Any = None


@dataclass
class Report:
    """What a run did: batches run, items stored, out-of-memory splits, items per device."""

    batches: int = 0
    stored: int = 0
    splits: int = 0
    per_device: dict[str, int] = field(default_factory=dict)


def padded_tokens(batch: Sequence[Item]) -> int:
    """Return what a batch costs once padded: its size times its longest input."""
    return len(batch) * max((i.cost for i in batch), default=0)


def plan(items: Sequence[Item], budget: int) -> list[list[Item]]:
    """Return `items` cut into batches of similar length, each within `budget` padded tokens (an item longer
    than the budget goes alone), longest first so the worst batch is met while memory is still fresh."""
    ordered = sorted(items, key=lambda i: (-i.cost, i.key))
    batches: list[list[Item]] = []
    for item in ordered:
        if batches and padded_tokens(batches[-1] + [item]) <= budget:
            batches[-1].append(item)
        else:
            batches.append([item])
    return batches


def budget_from_memory(free_bytes: int, bytes_per_token: int) -> int:
    """Return the token budget free device memory allows, `bytes_per_token` being measured for the model."""
    usable = int(free_bytes * (1 - RESERVED_FRACTION))
    return max(MIN_TOKEN_BUDGET, usable // max(1, bytes_per_token))


def is_out_of_memory(error: BaseException) -> bool:
    """True for an accelerator's out-of-memory error (torch raises a RuntimeError subclass saying so)."""
    return isinstance(error, (RuntimeError, MemoryError)) and "out of memory" in str(error).lower()


def run(
    items: Sequence[Item],
    synthesize: Callable[[list[Item], str], list[Any]],
    store: Callable[[Item, Any], None],
    *,
    budgets: dict[str, int],
    on_oom: Callable[[str], None] = lambda device: None,
) -> Report:
    """Synthesize every item, batch by batch, one worker per device in `budgets` (device -> token budget).

    `synthesize(batch, device)` returns one result per item, in order; `store(item, result)` keeps it
    (called as each batch finishes). On an out-of-memory error the batch is split in two and that
    device's budget halved; `on_oom(device)` may free caches. An item alone that still does not fit
    is an error naming it. Any other error stops every worker and is raised after they stop.
    """
    if not budgets:
        raise StageError("no device to render on; give at least one device and its token budget")
    queue = deque(plan(items, min(budgets.values())))
    report = Report(per_device={d: 0 for d in budgets})
    lock = threading.Lock()
    failures: list[BaseException] = []

    def worker(device: str) -> None:
        budget = budgets[device]
        while not failures:
            with lock:
                if not queue:
                    return
                batch = queue.popleft()
                if len(batch) > 1 and padded_tokens(batch) > budget:  # planned for a larger budget
                    half = len(batch) // 2
                    queue.appendleft(batch[half:])
                    batch = batch[:half]
            try:
                results = synthesize(batch, device)
            except BaseException as e:  # noqa: BLE001 - out of memory is recoverable; the rest is re-raised
                if not is_out_of_memory(e):
                    failures.append(e)
                    return
                if len(batch) == 1:
                    failures.append(StageError(
                        f"segment {batch[0].key[:12]} ({batch[0].cost} tokens) does not fit in {device}'s free "
                        "memory even alone; free the device, or render on a larger one or on the CPU"))
                    return
                on_oom(device)
                budget = max(MIN_TOKEN_BUDGET, budget // 2)
                half = len(batch) // 2
                with lock:
                    report.splits += 1
                    queue.extendleft([batch[half:], batch[:half]])
                log.warning("%s ran out of memory on %d segments; splitting, budget now %d tokens",
                            device, len(batch), budget)
                continue
            if len(results) != len(batch):
                failures.append(StageError(f"{device}: the engine returned {len(results)} results for "
                                           f"{len(batch)} segments"))
                return
            for item, result in zip(batch, results):
                store(item, result)
            with lock:
                report.batches += 1
                report.stored += len(batch)
                report.per_device[device] += len(batch)

    threads = [threading.Thread(target=worker, args=(d,), name=f"render-{d}") for d in budgets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
    return report
