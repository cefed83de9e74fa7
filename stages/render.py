"""Synthesis: every segment of a chapter spoken by its cast voice, through the take cache.

With take QA on (stages/qa.py), every take is heard back and measured; a failing take is made again
with other synthesis settings up to `retakes` times, the best attempt is kept under the take's own
cache key, and the verdict is stored beside it, so a re-run neither re-hears nor re-makes it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np

from stages import qa as take_qa
from stages import wav
from stages.cache import TakeCache
from stages.cast import Casting
from stages.delivery import DeliveryConfig, segment_voice
from stages.engines import get_engine, speaks
from stages.errors import StageError, UserError
from stages.lexicon import PHONEME_BLOCK_ENGINES, Lexicon, apply
from stages.model import Chapter, Manuscript, Segment, Take, Voice

log = logging.getLogger(__name__)

RENDER_THREADS = max(1, min(os.cpu_count() or 1, 8))  # per chapter; the engine bounds how many run at once
# Retakes change what the engine is given: Piper with noise off says a text the same way every time.
PIPER_RETAKE_NOISE = {"noise_scale": 0.333, "noise_w_scale": 0.333}  # a little of Piper's own variation
RETAKE_LENGTH_RATIO = 1.08  # every second retake is a touch slower, and ends as a plain statement
SEEDED_ENGINES = frozenset({"gpt-sovits", "fish-speech", "f5-tts", "cosyvoice-local"})  # retake: new seed


@dataclass(frozen=True)
class RenderStats:
    synthesized: int  # takes made by the engine in this run
    cached: int  # takes found already complete in the cache
    engine_s: float  # wall seconds spent inside engine.synthesize
    audio_s: float  # seconds of audio in the chapter's takes
    asr_s: float = 0.0  # wall seconds spent hearing takes back (take QA)
    retakes: int = 0  # takes made again because QA failed them

    def __add__(self, other: RenderStats) -> RenderStats:
        return RenderStats(*(a + b for a, b in zip(self.__dict__.values(), other.__dict__.values())))


def check_voices(manuscript: Manuscript, casting: Casting, library: dict[str, Voice]) -> None:
    """Refuse, before any audio is made, a cast voice whose engine cannot speak the book's language."""
    for voice_id in casting.voice_ids(manuscript):
        voice = library[voice_id]
        engine = get_engine(voice.engine)
        if not speaks(engine, manuscript.language):
            raise UserError(
                f"voice {voice.id!r} ({voice.engine}, {voice.language}) cannot speak this book's language "
                f"{manuscript.language!r}; add a voice for {manuscript.language!r} to voices/ and cast it "
                f"in the cast sheet (no {manuscript.language} voice ships with this release)"
            )


def plan_takes(
    chapter: Chapter, *, casting: Casting, library: dict[str, Voice], cache: TakeCache, lexicon: Lexicon | None = None,
    delivery: DeliveryConfig | None = None,
) -> list[tuple[str, str, Voice]]:
    """Return, per segment of `chapter` in order, its take's cache key, the text the engine is given and the voice
    that says it (delivery applied); nothing is read from the cache."""
    planned = []
    for seg in chapter.segments:
        voice = segment_voice(library[casting.voice_for_segment(seg)], seg, delivery)
        engine = get_engine(voice.engine)
        text = apply(lexicon, seg.spoken, phonemes=engine.name in PHONEME_BLOCK_ENGINES)
        planned.append((cache.key(text, voice, engine), text, voice))
    return planned


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
    qa: take_qa.QaConfig | None = None,
    language: str = "en",
) -> tuple[dict[str, Take], RenderStats]:
    """Return a take for every segment of `chapter`, synthesizing only what the cache lacks.

    The engine is given each segment's spoken text with the `lexicon` applied, and the cache keys
    on that text, so a changed lexicon entry re-renders only the segments that contain its word.
    Missing takes are synthesized on `workers` threads (the engine bounds how many run at once);
    each is stored in the cache as soon as it is made, so an interruption loses only those in flight.
    With `delivery` (None: off) a segment's emotion colours its voice (stages/delivery.py) before the
    key is made, so only the coloured lines get new keys; neutral lines keep the takes they had.
    With `qa` enabled, every take without a stored verdict is checked (in `language`) and retaken if it fails.
    """
    takes: dict[str, Take] = {}
    todo: dict[str, list[Segment]] = {}  # cache key -> segments that say exactly this
    plan: dict[str, tuple[str, Voice]] = {}  # cache key -> the text the engine is given, and the voice that says it
    for seg, (key, text, voice) in zip(chapter.segments, plan_takes(
            chapter, casting=casting, library=library, cache=cache, lexicon=lexicon, delivery=delivery)):
        plan[key] = (text, voice)
        if (take := cache.get(seg.id, key)) is not None:
            takes[seg.id] = take
            advance(1)
        else:
            todo.setdefault(key, []).append(seg)
    cached = len(takes)
    engine_s = 0.0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"render-c{chapter.number:02d}") as pool:
        jobs = {pool.submit(_synthesize, segs[0], *plan[key], key, cache): key for key, segs in todo.items()}
        for job in as_completed(jobs):
            take, seconds = job.result()
            engine_s += seconds
            for seg in todo[jobs[job]]:
                takes[seg.id] = replace(take, segment_id=seg.id)
            advance(len(todo[jobs[job]]))
    review = RenderStats(0, 0, 0.0, 0.0)
    if qa is not None and qa.enabled:
        review = _review(chapter, takes, plan, cache=cache, qa=qa, language=language, lexicon=lexicon, workers=workers)
    ordered = {seg.id: takes[seg.id] for seg in chapter.segments}
    audio_s = sum(t.duration_s for t in ordered.values())
    stats = RenderStats(len(todo), cached + sum(len(v) - 1 for v in todo.values()), engine_s, audio_s)
    return ordered, stats + review


def _review(
    chapter: Chapter, takes: dict[str, Take], plan: dict[str, tuple[str, Voice]], *, cache: TakeCache,
    qa: take_qa.QaConfig, language: str, lexicon: Lexicon | None, workers: int,
) -> RenderStats:
    """Check every take that has no stored verdict, retake the failing ones, keep the best; update `takes`."""
    subjects: dict[str, Segment] = {}  # cache key -> the first segment that says it
    for seg in chapter.segments:
        if any(ch.isalnum() for ch in seg.spoken):
            subjects.setdefault(takes[seg.id].key, seg)
    stamps = {key: take_qa.stamp(qa, language, take_qa.names_in(lexicon, seg.spoken)) for key, seg in subjects.items()}
    pending = []
    for key in subjects:
        stored = take_qa.stored_verdict(cache.path(key), stamps[key])
        if stored is None or (not stored.passed and stored.attempts < qa.retakes):  # more retakes allowed now
            pending.append(key)
    if not pending:
        return RenderStats(0, 0, 0.0, 0.0)
    judge = partial(_judge, subjects=subjects, plan=plan, stamps=stamps, qa=qa, language=language)
    verdicts, asr_s = judge({key: (*wav.read_wav(cache.path(key)), None) for key in pending})
    verdicts = {key: replace(v, first_errors=None if v.passed else v.errors) for key, v in verdicts.items()}
    best, stats = _retake_failing(chapter, takes, verdicts, judge, subjects=subjects, plan=plan, qa=qa,
                                  workers=workers)
    for key, verdict in verdicts.items():
        if key in best:  # the retake that beat the first take replaces it under the same key
            audio, rate, words = best[key]
            take = cache.put(subjects[key].id, key, audio, rate, words=words)
            for sid in [sid for sid, t in takes.items() if t.key == key]:
                takes[sid] = replace(take, segment_id=sid)
        take_qa.store_verdict(cache.path(key), stamps[key], verdict)
        if not verdict.passed:
            log.warning("take QA: segment %s flagged after %d retakes: %s", subjects[key].id, verdict.attempts,
                        "; ".join(verdict.reasons))
    return stats + RenderStats(0, 0, 0.0, 0.0, asr_s)


def _retake_failing(
    chapter: Chapter, takes: dict[str, Take], verdicts: dict[str, take_qa.Verdict], judge: Callable, *,
    subjects: dict[str, Segment], plan: dict[str, tuple[str, Voice]], qa: take_qa.QaConfig, workers: int,
) -> tuple[dict[str, tuple], RenderStats]:
    """Retake each failing take up to `qa.retakes` times, updating `verdicts`; return the retakes that won."""
    context = _neighbours(chapter, takes, [key for key, v in verdicts.items() if not v.passed], subjects)
    best: dict[str, tuple] = {}  # cache key -> (audio, rate, words) of the retake kept
    engine_s, asr_s, made = 0.0, 0.0, 0
    for attempt in range(1, qa.retakes + 1):
        failing = [key for key, v in verdicts.items() if not v.passed]
        if not failing:
            break
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"retake-c{chapter.number:02d}") as pool:
            jobs = {key: pool.submit(_retake, subjects[key], *plan[key], attempt) for key in failing}
            again = {key: job.result() for key, job in jobs.items()}
        engine_s += sum(seconds for *_, seconds in again.values())
        made += len(again)
        heard, seconds = judge({key: made_take[:3] for key, made_take in again.items()}, context=context)
        asr_s += seconds
        for key, verdict in heard.items():
            if verdict.better_than(verdicts[key]):
                verdicts[key] = replace(verdict, attempt=attempt, first_errors=verdicts[key].first_errors)
                best[key] = again[key][:3]
            verdicts[key] = replace(verdicts[key], attempts=attempt)
    return best, RenderStats(0, 0, engine_s, 0.0, asr_s, made)


def _judge(
    clips: dict[str, tuple[np.ndarray, int, object]], *, subjects: dict[str, Segment],
    plan: dict[str, tuple[str, Voice]], stamps: dict[str, dict], qa: take_qa.QaConfig, language: str,
    context: dict[str, tuple] | None = None,
) -> tuple[dict[str, take_qa.Verdict], float]:
    """Return the verdict on each clip (cache key -> audio, rate, words) and the seconds spent hearing them;
    `context` (cache key -> 16 kHz audio before and after) is heard around a clip, as its neighbours in the chapter."""
    from stages import asr

    problems = {key: take_qa.audio_problems(audio, rate, subjects[key].spoken,
                                            float(plan[key][1].params.get("length_ratio", 1.0)))
                for key, (audio, rate, _) in clips.items()}
    started = time.perf_counter()
    heard = {}
    if asr.speaks(language):
        around = [(context or {}).get(key) for key in clips]
        heard = dict(zip(clips, take_qa.hear([clip[:2] for clip in clips.values()], language, around)))
    seconds = time.perf_counter() - started
    return {key: take_qa.judge(subjects[key].spoken, problems[key], heard.get(key), config=qa,
                               names=stamps[key]["names"], model=stamps[key]["model"]) for key in clips}, seconds


def _neighbours(
    chapter: Chapter, takes: dict[str, Take], keys: list[str], subjects: dict[str, Segment]
) -> dict[str, tuple]:
    """Return, for each cache key, the 16 kHz audio of the takes said just before and after its segment."""
    from stages import asr

    order = [seg.id for seg in chapter.segments]
    out = {}
    for key in keys:
        at = order.index(subjects[key].id)
        out[key] = tuple(asr.to_16k(*wav.read_wav(takes[order[i]].path)) if 0 <= i < len(order) else None
                         for i in (at - 1, at + 1))
    return out


def chapter_qa(
    chapter: Chapter, takes: dict[str, Take | Path], *, qa: take_qa.QaConfig | None, language: str,
    lexicon: Lexicon | None = None,
) -> dict:
    """Return the report's "qa" entry for a chapter, from the verdicts stored beside its takes (segment id -> take,
    or the path its take has in the cache)."""
    spoken = [seg for seg in chapter.segments if any(ch.isalnum() for ch in seg.spoken)]
    if qa is None or not qa.enabled:
        return take_qa.chapter_report([s.id for s in spoken], {}, enabled=False, language=language)
    paths = {sid: Path(t) if isinstance(t, (str, Path)) else Path(t.path) for sid, t in takes.items()}
    verdicts = {seg.id: take_qa.stored_verdict(
        paths[seg.id], take_qa.stamp(qa, language, take_qa.names_in(lexicon, seg.spoken))) for seg in spoken}
    return take_qa.chapter_report([s.id for s in spoken], verdicts, language=language)


def retake_variant(text: str, voice: Voice, attempt: int) -> tuple[str, Voice]:
    """Return the text and voice for retake `attempt` (1, 2, ...): other settings, so the engine says it anew."""
    params = dict(voice.params)
    if voice.engine in ("piper", "piper-torch"):
        params |= PIPER_RETAKE_NOISE
        if attempt % 2 == 0:
            params["length_ratio"] = float(params.get("length_ratio", 1.0)) * RETAKE_LENGTH_RATIO
    elif voice.engine in SEEDED_ENGINES:
        params["seed"] = int(params.get("seed", 0)) + attempt
    if attempt % 2 == 0 or voice.engine not in SEEDED_ENGINES | {"piper", "piper-torch"}:
        text = _ending_variant(text)
    return text, replace(voice, params=params)


def _ending_variant(text: str) -> str:
    """Return `text` ending as a plain statement: a trailing comma, semicolon, colon, ! or ? becomes a full stop."""
    stripped = text.rstrip()
    if stripped[-1:] in ",;:!?":
        return stripped[:-1] + "."
    return stripped if stripped[-1:] == "." else stripped + "."


def _retake(seg: Segment, text: str, voice: Voice, attempt: int) -> tuple[np.ndarray, int, list | None, float]:
    """Return retake `attempt` of `seg` (audio, sample rate, word timings) and the seconds the engine took."""
    text, voice = retake_variant(text, voice, attempt)
    engine = get_engine(voice.engine)
    started = time.perf_counter()
    audio, words = _speak(engine, seg, text, voice)
    return audio, engine.sample_rate, words, time.perf_counter() - started


def _synthesize(seg: Segment, text: str, voice: Voice, key: str, cache: TakeCache) -> tuple[Take, float]:
    """Return the new take for `seg`, spoken as `text` (stored in the cache), and the seconds the engine took."""
    engine = get_engine(voice.engine)
    started = time.perf_counter()
    if not any(ch.isalnum() for ch in text):  # punctuation alone: a breath, not a failure
        return cache.put(seg.id, key, np.zeros(int(0.2 * engine.sample_rate), np.float32), engine.sample_rate), 0.0
    audio, words = _speak(engine, seg, text, voice)
    return cache.put(seg.id, key, audio, engine.sample_rate, words=words), time.perf_counter() - started


def _speak(engine, seg: Segment, text: str, voice: Voice) -> tuple[np.ndarray, list | None]:
    """Return the engine's audio for `text` and its word timings (None when it gives none)."""
    words = None
    try:
        if hasattr(engine, "synthesize_timed"):  # engines that know where each word falls say so
            audio, words = engine.synthesize_timed(text, voice)
        else:
            audio = engine.synthesize(text, voice)
    except Exception as e:
        raise StageError(f"engine {engine.name} failed on segment {seg.id} ({text[:60]!r}): {e}") from e
    if audio.size == 0:
        raise StageError(f"engine {engine.name} returned no audio for segment {seg.id} ({text[:60]!r})")
    return audio, words
