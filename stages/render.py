"""Synthesis: every segment of a chapter spoken by its cast voice, through the take cache."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from stages.cache import TakeCache
from stages.cast import Casting
from stages.engines import get_engine, speaks
from stages.errors import StageError, UserError
from stages.model import Chapter, Manuscript, Take, Voice

log = logging.getLogger(__name__)


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
) -> tuple[dict[str, Take], RenderStats]:
    """Return a take for every segment of `chapter`, synthesizing only what the cache lacks."""
    takes: dict[str, Take] = {}
    made = found = 0
    engine_s = 0.0
    for seg in chapter.segments:
        voice = library[casting.voice_for(seg.speaker)]
        engine = get_engine(voice.engine)
        key = cache.key(seg.spoken, voice, engine)
        take = cache.get(seg.id, key)
        if take is None:
            started = time.perf_counter()
            try:
                audio = engine.synthesize(seg.spoken, voice)
            except Exception as e:
                raise StageError(f"engine {engine.name} failed on segment {seg.id} ({seg.spoken[:60]!r}): {e}") from e
            engine_s += time.perf_counter() - started
            if audio.size == 0:
                raise StageError(f"engine {engine.name} returned no audio for segment {seg.id} ({seg.spoken[:60]!r})")
            take = cache.put(seg.id, key, audio, engine.sample_rate)
            made += 1
        else:
            found += 1
        takes[seg.id] = take
        advance(1)
    audio_s = sum(t.duration_s for t in takes.values())
    log.debug("chapter %d: %d synthesized, %d cached", chapter.number, made, found)
    return takes, RenderStats(made, found, engine_s, audio_s)
