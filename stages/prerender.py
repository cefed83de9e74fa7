"""Book-wide batched synthesis: every missing take of engines that batch (piper-torch), before the chapters.

The takes are keyed exactly as render_chapter keys them, so the chapters then find them all in the
cache. Work is grouped by voice (a batch shares its voice settings), sorted into length buckets by
stages/schedule.py and run on every CUDA device (else the CPU), each batch stored as it finishes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from stages import schedule
from stages.cache import TakeCache
from stages.cast import Casting
from stages.delivery import DeliveryConfig, segment_voice
from stages.engines import get_engine
from stages.lexicon import PHONEME_BLOCK_ENGINES, Lexicon, apply
from stages.model import Chapter, Voice

log = logging.getLogger(__name__)

GPU_BYTES_PER_TOKEN = 2 * 2**20  # device memory one padded phoneme id needs through the decoder (an estimate;
# a batch that still runs out of memory is split, so too low costs a retry, too high only a smaller batch)


@dataclass(frozen=True)
class Pending:
    segment_id: str
    text: str  # what the engine is given (lexicon applied)
    sentences: list  # the engine's phonemized sentences (piper_torch.Sentence)


def devices() -> dict[str, int]:
    """Return each device to render on and its token budget: every CUDA device by its free memory, else the CPU."""
    try:
        import torch
    except ImportError:
        return {"cpu": schedule.CPU_TOKEN_BUDGET}
    if not torch.cuda.is_available():
        return {"cpu": schedule.CPU_TOKEN_BUDGET}
    return {f"cuda:{i}": schedule.budget_from_memory(torch.cuda.mem_get_info(i)[0], GPU_BYTES_PER_TOKEN)
            for i in range(torch.cuda.device_count())}


def prerender(
    chapters: Sequence[Chapter], *, casting: Casting, library: dict[str, Voice], cache: TakeCache,
    lexicon: Lexicon | None = None, delivery: DeliveryConfig | None = None, budgets: dict[str, int] | None = None,
) -> schedule.Report:
    """Synthesize every take of `chapters` that a batching engine speaks and the cache lacks; return what ran."""
    groups: dict[str, list[schedule.Item]] = {}  # voice settings -> its pending takes
    voices: dict[str, Voice] = {}
    seen: set[str] = set()
    for chapter in chapters:
        for seg in chapter.segments:
            voice = segment_voice(library[casting.voice_for_segment(seg)], seg, delivery)
            engine = get_engine(voice.engine)
            if not hasattr(engine, "synthesize_segments"):
                continue
            text = apply(lexicon, seg.spoken, phonemes=engine.name in PHONEME_BLOCK_ENGINES)
            key = cache.key(text, voice, engine)
            if key in seen or not any(ch.isalnum() for ch in text) or cache.path(key).is_file():
                continue  # render_chapter makes the punctuation-only breaths
            seen.add(key)
            sentences = engine.sentences(text, voice)
            group = json.dumps([voice.engine, voice.params], sort_keys=True, default=str)
            voices[group] = voice
            cost = sum(len(s.ids) for s in sentences)
            groups.setdefault(group, []).append(schedule.Item(key, cost, Pending(seg.id, text, sentences)))
    report = schedule.Report()
    for group, items in groups.items():
        voice = voices[group]
        engine = get_engine(voice.engine)

        def synthesize(batch: list[schedule.Item], device: str) -> list:
            return engine.synthesize_segments([i.payload.text for i in batch], [i.payload.sentences for i in batch],
                                              voice, device=device)

        def store(item: schedule.Item, made) -> None:
            audio, words = made
            cache.put(item.payload.segment_id, item.key, audio, engine.sample_rate, words=words)

        done = schedule.run(items, synthesize, store, budgets=budgets or devices(), on_oom=_free_cuda_cache)
        log.info("voice %s: %d takes in %d batches (%d out-of-memory splits)", voice.id, done.stored, done.batches,
                 done.splits)
        report.batches, report.stored, report.splits = (report.batches + done.batches, report.stored + done.stored,
                                                         report.splits + done.splits)
        for d, n in done.per_device.items():
            report.per_device[d] = report.per_device.get(d, 0) + n
    return report


def _free_cuda_cache(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
