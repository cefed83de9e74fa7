"""The batch scheduler on CPU: length buckets, a simulated memory limit, resume after a crash, two devices."""

from __future__ import annotations

import threading

import pytest

from stages import schedule
from stages.errors import StageError
from stages.schedule import Item


class SimulatedOutOfMemory(RuntimeError):
    """What torch raises when a CUDA allocation fails (torch.cuda.OutOfMemoryError is a RuntimeError)."""


def items(n: int = 40) -> list[Item]:
    return [Item(f"k{i:03d}", cost=10 + (i * 37) % 90, payload=i) for i in range(n)]


class Device:
    """A fake accelerator: fails a batch whose padded size passes `limit` tokens, else 'synthesizes' it."""

    def __init__(self, limit: int, crash_on_batch: int | None = None):
        self.limit, self.crash_on_batch = limit, crash_on_batch
        self.calls: list[tuple[str, int, int]] = []  # (device, batch size, padded tokens)
        self.lock = threading.Lock()

    def __call__(self, batch: list[Item], device: str) -> list[str]:
        with self.lock:
            self.calls.append((device, len(batch), schedule.padded_tokens(batch)))
            if self.crash_on_batch is not None and len(self.calls) == self.crash_on_batch:
                raise KeyboardInterrupt  # the process is stopped mid-run
        if schedule.padded_tokens(batch) > self.limit:
            raise SimulatedOutOfMemory("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [f"audio-{i.payload}" for i in batch]


def test_plan_groups_similar_lengths_within_the_budget():
    batches = schedule.plan(items(), budget=400)
    assert sorted(i.key for b in batches for i in b) == [i.key for i in items()]  # each item exactly once
    assert all(schedule.padded_tokens(b) <= 400 for b in batches)
    longest = [max(i.cost for i in b) for b in batches]
    assert longest == sorted(longest, reverse=True)  # longest first
    assert len(batches) < len(items()) / 3  # short items travel together


def test_out_of_memory_halves_the_batch_and_the_run_goes_on():
    store: dict[str, str] = {}
    device = Device(limit=250)
    report = schedule.run(items(), device, lambda item, audio: store.setdefault(item.key, audio),
                          budgets={"cuda:0": 1000})
    assert store == {i.key: f"audio-{i.payload}" for i in items()}  # everything, once, in the right place
    assert report.stored == 40 and report.splits >= 2
    failed = [c for c in device.calls if c[2] > 250]
    assert len(failed) == report.splits
    after_first_oom = device.calls[device.calls.index(failed[0]) + 1 :]
    assert max(c[2] for c in after_first_oom) <= 500  # the budget was halved and later batches respect it


def test_a_crash_loses_only_the_batch_in_flight_and_a_rerun_does_the_rest():
    store: dict[str, str] = {}
    with pytest.raises(KeyboardInterrupt):
        schedule.run(items(), Device(limit=10_000, crash_on_batch=3), lambda i, a: store.setdefault(i.key, a),
                     budgets={"cpu": 300})
    planned = schedule.plan(items(), 300)
    assert set(store) == {i.key for b in planned[:2] for i in b}  # two batches finished and were stored
    pending = [i for i in items() if i.key not in store]
    device = Device(limit=10_000)
    report = schedule.run(pending, device, lambda i, a: store.setdefault(i.key, a), budgets={"cpu": 300})
    assert report.stored == len(pending) and set(store) == {i.key for i in items()}
    assert sum(c[1] for c in device.calls) == len(pending)  # nothing synthesized twice


def test_one_worker_per_device_shares_the_queue():
    store: dict[str, str] = {}
    report = schedule.run(items(), Device(limit=10_000), lambda i, a: store.setdefault(i.key, a),
                          budgets={"cuda:0": 200, "cuda:1": 200})
    assert report.stored == 40 and sum(report.per_device.values()) == 40 and len(store) == 40


def test_an_item_too_big_for_the_device_alone_is_named():
    with pytest.raises(StageError, match=r"segment k001 \(47 tokens\) does not fit in cuda:0's free memory"):
        schedule.run([Item("k001", 47)], Device(limit=20), lambda i, a: None, budgets={"cuda:0": 100})


def test_budget_from_free_memory():
    assert schedule.budget_from_memory(10 * 2**30, 2**20) == 8192  # 80% of 10 GiB at 1 MiB a token
    assert schedule.budget_from_memory(0, 2**20) == schedule.MIN_TOKEN_BUDGET
