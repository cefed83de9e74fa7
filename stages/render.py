"""Synthesis: every segment of a chapter spoken by its cast voice, through the take cache."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace

import numpy as np

from stages.cache import TakeCache
from stages.cast import Casting
from stages.delivery import DeliveryConfig, segment_voice
from stages.engines import get_engine, speaks
from stages.errors import StageError, UserError
from stages.lexicon import PHONEME_BLOCK_ENGINES, Lexicon, apply
from stages.model import Chapter, Manuscript, Segment, Take, Voice

log = logging.getLogger(__name__)

RENDER_THREADS = max(1, min(os.cpu_count() or 1, 8))  # per chapter; the engine bounds how many run at once


@dataclass(frozen=True)
class RenderStats:
    synthesized: int  # takes made by the engine in this run
    cached: int  # takes found already complete in the cache
    engine_s: float  # wall seconds spent inside engine.synthesize
    audio_s: float  # seconds of audio in the chapter's takes

    def __add__(self, other: RenderStats) -> RenderStats:
        return RenderStats(*(a + b for a, b in zip(self.__dict__.values(), other.__dict__.values())))


def check_voices(manuscript: Manuscript, casting: Casting, library: dict[str, Voice]) -> None:
    """Refuse, before any audio is made, a cast voice whose engine cannot speak the book's language."""
    for speaker in manuscript.speakers():
        voice = library[casting.voice_for(speaker)]
        engine = get_engine(voice.engine)
        if not speaks(engine, manuscript.language):
            raise UserError(
                f"voice {voice.id!r} ({voice.engine}, {voice.language}) cannot speak this book's language "
                f"{manuscript.language!r}; add a voice for {manuscript.language!r} to voices/ and cast it "
                f"in the cast sheet (no {manuscript.language} voice ships with this release)"
            )


def render_chapter(
    chapter: Chapter,
    *,
    casting: Casting,
    library: dict[str, Voice],
    cache: TakeCache,
    advance: Callable[[int], None] = lambda n: None,
    workers: int = RENDER_THREADS,
    lexicon: Lexicon | None = None,
    delivery: DeliveryConfig | None = None,
) -> tuple[dict[str, Take], RenderStats]:
    """Return a take for every segment of `chapter`, synthesizing only what the cache lacks.

    The engine is given each segment's spoken text with the `lexicon` applied, and the cache keys
    on that text, so a changed lexicon entry re-renders only the segments that contain its word.
    Missing takes are synthesized on `workers` threads (the engine bounds how many run at once);
    each is stored in the cache as soon as it is made, so an interruption loses only those in flight.
    With `delivery` (None: off) a segment's emotion colours its voice (stages/delivery.py) before the
    key is made, so only the coloured lines get new keys; neutral lines keep the takes they had.
    """
    takes: dict[str, Take] = {}
    todo: dict[str, list[Segment]] = {}  # cache key -> segments that say exactly this
    said: dict[str, str] = {}  # cache key -> the text the engine is given
    voices: dict[str, Voice] = {}  # cache key -> the voice, with its delivery, that says it
    for seg in chapter.segments:
        voice = segment_voice(library[casting.voice_for(seg.speaker)], seg, delivery)
        engine = get_engine(voice.engine)
        text = apply(lexicon, seg.spoken, phonemes=engine.name in PHONEME_BLOCK_ENGINES)
        key = cache.key(text, voice, engine)
        if (take := cache.get(seg.id, key)) is not None:
            takes[seg.id] = take
            advance(1)
        else:
            todo.setdefault(key, []).append(seg)
            said[key], voices[key] = text, voice
    cached = len(takes)
    engine_s = 0.0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"render-c{chapter.number:02d}") as pool:
        jobs = {
            pool.submit(_synthesize, segs[0], said[key], key, voices[key], cache): key
            for key, segs in todo.items()
        }
        for job in as_completed(jobs):
            take, seconds = job.result()
            engine_s += seconds
            for seg in todo[jobs[job]]:
                takes[seg.id] = replace(take, segment_id=seg.id)
            advance(len(todo[jobs[job]]))
    ordered = {seg.id: takes[seg.id] for seg in chapter.segments}
    audio_s = sum(t.duration_s for t in ordered.values())
    return ordered, RenderStats(len(todo), cached + sum(len(v) - 1 for v in todo.values()), engine_s, audio_s)


def _synthesize(seg: Segment, text: str, key: str, voice: Voice, cache: TakeCache) -> tuple[Take, float]:
    """Return the new take for `seg`, spoken as `text` (stored in the cache), and the seconds the engine took."""
    engine = get_engine(voice.engine)
    started = time.perf_counter()
    if not any(ch.isalnum() for ch in text):  # punctuation alone: a breath, not a failure
        return cache.put(seg.id, key, np.zeros(int(0.2 * engine.sample_rate), np.float32), engine.sample_rate), 0.0
    try:
        audio = engine.synthesize(text, voice)
    except Exception as e:
        raise StageError(f"engine {engine.name} failed on segment {seg.id} ({text[:60]!r}): {e}") from e
    seconds = time.perf_counter() - started
    if audio.size == 0:
        raise StageError(f"engine {engine.name} returned no audio for segment {seg.id} ({text[:60]!r})")
    return cache.put(seg.id, key, audio, engine.sample_rate), seconds
