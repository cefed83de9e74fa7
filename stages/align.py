"""Word-level timings: where each displayed word of a segment is heard in its chapter's audio.

An engine that knows where its words fall (Piper, from its phoneme alignments) stores their times
beside the take; for any other take the bundled Whisper model hears the take and its word times
are matched to the known text by an edit-distance alignment, words it missed placed between their
matched neighbours. Spoken-word times are then carried to the displayed words through the
normalizer's spans ("1811" <- "eighteen eleven"). Languages the recognizer cannot hear get none.
"""

from __future__ import annotations

import difflib
import logging
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stages.errors import UserError
from stages.model import Chapter, Cue, Segment, Take

log = logging.getLogger(__name__)

SOURCES = ("engine", "asr")  # where a segment's word timings came from; None: there are none
UNSPACED_LANGUAGES = ("zh", "ja")  # no spaces between words: no word timings, sentence level only
GAP_COST = 0.6  # an unmatched word in the edit-distance alignment; a wrong word costs 1 - similarity
# Whisper tiny.en hears word starts about 50 ms and ends about 85 ms later than Piper's own alignments put
# them (median signed error over 24 Pride and Prejudice sentences, bench/word_timing.py --dev): moved back by that
ASR_START_LAG_S = 0.050
ASR_END_LAG_S = 0.085
SILENCE_DB = -40.0  # below the take's loudest frame: a frame this quiet is a pause, not part of a word
FRAME_S = 0.020  # loudness frames: 20 ms long, every 5 ms
FRAME_HOP_S = 0.005
MIN_PAUSE_S = 0.1  # a quiet run this long inside a word's recognised time is a pause, not a stop consonant
_BREAK = re.compile(r"[,;:.!?…—–()\"“”]")
_TOKEN = re.compile(r"\S+")

Interval = tuple[float, float]  # (start, end) in seconds from the start of the take


@dataclass(frozen=True)
class Token:
    """A word of a text: its characters [start, end) with the punctuation around it left out."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class WordTiming:
    """One displayed word and where it is heard in the chapter, in milliseconds."""

    text: str
    start_ms: int
    end_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "start_ms": self.start_ms, "end_ms": self.end_ms}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WordTiming:
        return cls(str(data["text"]), int(data["start_ms"]), int(data["end_ms"]))


@dataclass(frozen=True)
class SegmentWords:
    """A segment's word timings and where they came from ("engine", "asr"), or none (source None)."""

    source: str | None
    words: tuple[WordTiming, ...] | None  # None: sentence-level timing only

    @property
    def timed(self) -> bool:
        return self.source is not None and self.words is not None


NO_WORDS = SegmentWords(None, None)


def tokens(text: str) -> list[Token]:
    """Return the words of `text`: runs without spaces that hold a letter or digit, outer punctuation cut off."""
    out = []
    for m in _TOKEN.finditer(text):
        start, end = m.span()
        if not any(ch.isalnum() for ch in m.group()):
            continue
        while start < end and unicodedata.category(text[start])[0] == "P":
            start += 1
        while end > start and unicodedata.category(text[end - 1])[0] == "P":
            end -= 1
        out.append(Token(text[start:end], start, end))
    return out


def word_key(word: str) -> str:
    """Return a word as compared across texts: lower case, letters and digits only."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", word).lower() if ch.isalnum())


def edit_alignment(cost: np.ndarray, gap: float = GAP_COST) -> list[tuple[int | None, int | None]]:
    """Return the cheapest alignment of two sequences as (i, j) pairs; None on one side is a gap.

    `cost[i, j]` is the price of pairing item i of the first sequence with item j of the second.
    Rows are filled with numpy (the in-row gap recurrence is a running minimum), so a few thousand
    items on each side take well under a second.
    """
    n, m = cost.shape
    table = np.empty((n + 1, m + 1))
    table[0] = np.arange(m + 1) * gap
    steps = np.arange(m + 1) * gap
    for i in range(1, n + 1):
        row = np.empty(m + 1)
        row[0] = i * gap
        row[1:] = np.minimum(table[i - 1, :-1] + cost[i - 1], table[i - 1, 1:] + gap)
        table[i] = np.minimum.accumulate(row - steps) + steps
    pairs: list[tuple[int | None, int | None]] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and np.isclose(table[i, j], table[i - 1, j - 1] + cost[i - 1, j - 1]):
            i, j = i - 1, j - 1
            pairs.append((i, j))
        elif i > 0 and np.isclose(table[i, j], table[i - 1, j] + gap):
            i -= 1
            pairs.append((i, None))
        else:
            j -= 1
            pairs.append((None, j))
    return pairs[::-1]


def _word_cost(known: Sequence[str], heard: Sequence[str]) -> np.ndarray:
    """Return 1 - similarity for every (known, heard) pair of word keys; 0 for equal words."""
    cost = np.ones((len(known), len(heard)))
    ratio: dict[tuple[str, str], float] = {}
    for i, a in enumerate(known):
        for j, b in enumerate(heard):
            if a == b:
                cost[i, j] = 0.0
            elif a and b:
                if (a, b) not in ratio:
                    ratio[a, b] = difflib.SequenceMatcher(None, a, b).ratio()
                cost[i, j] = 1.0 - ratio[a, b]
    return cost


def fill_gaps(times: Sequence[Interval | None], weights: Sequence[float], span: Interval) -> list[Interval]:
    """Return `times` with each run of unknown entries spread, by weight, between its known neighbours.

    The result never goes backwards and stays inside `span` (the take's start and end).
    """
    lo, hi = span
    out: list[Interval] = []
    known_start = [t[0] if t else None for t in times]
    i = 0
    while i < len(times):
        if times[i] is not None:
            start = min(max(times[i][0], out[-1][0] if out else lo, lo), hi)
            out.append((start, min(max(times[i][1], start), hi)))
            i += 1
            continue
        j = i
        while j < len(times) and times[j] is None:
            j += 1
        begin = out[-1][1] if out else lo
        end = next((s for s in known_start[j:] if s is not None), hi)
        end = max(begin, min(end, hi))
        total = sum(max(w, 1e-6) for w in weights[i:j])
        at = begin
        for k in range(i, j):
            step = (end - begin) * max(weights[k], 1e-6) / total
            out.append((at, at + step))
            at += step
        i = j
    return out


def transfer(
    source: Sequence[str], times: Sequence[Interval | None], target: Sequence[str], span: Interval
) -> list[Interval]:
    """Return times for the `target` words, matched to the timed `source` words by edit distance."""
    keys = [word_key(w) for w in target]
    if [word_key(w) for w in source] == keys:
        matched: list[Interval | None] = list(times)
    else:
        matched = [None] * len(target)
        for i, j in edit_alignment(_word_cost(keys, [word_key(w) for w in source])):
            if i is not None and j is not None:
                matched[i] = times[j]
    return fill_gaps(matched, [len(k) or 1 for k in keys], span)


def heard_words(words: Sequence[Any], language: str) -> tuple[list[str], list[Interval]]:
    """Return recognised words in their spoken form ("1811" -> "eighteen", "eleven"), each with its time.

    A word the normalizer expands into several shares its time among them by length.
    """
    from stages.normalize import normalize

    out_words: list[str] = []
    out_times: list[Interval] = []
    for w in words:
        parts = [t.text for t in tokens(normalize(w.text, language).text)] or [w.text]
        edges = np.cumsum([0] + [len(p) for p in parts]) / max(1, sum(len(p) for p in parts))
        cuts = [w.start_s + (w.end_s - w.start_s) * float(f) for f in edges[:-1]] + [w.end_s]
        out_words += parts
        out_times += list(zip(cuts[:-1], cuts[1:]))
    return out_words, out_times


def frame_loudness_db(audio: np.ndarray, rate: int) -> np.ndarray:
    """Return the RMS level of each FRAME_S frame (every FRAME_HOP_S) in dB below the loudest frame."""
    hop, size = max(1, round(FRAME_HOP_S * rate)), max(1, round(FRAME_S * rate))
    padded = np.pad(np.asarray(audio, dtype=np.float64), (0, size))
    power = np.convolve(padded**2, np.ones(size) / size, mode="valid")[: max(1, len(audio) // hop * hop): hop]
    level = 10 * np.log10(power + 1e-12)
    return level - level.max()


def _pauses(loud: np.ndarray) -> list[tuple[float, float]]:
    """Return the (start, end) seconds of each quiet run at least MIN_PAUSE_S long."""
    edges = np.flatnonzero(np.diff(np.concatenate(([1], loud.astype(np.int8), [1]))))
    runs = zip(edges[::2], edges[1::2])  # quiet frames [a, b)
    return [(a * FRAME_HOP_S + FRAME_S / 2, b * FRAME_HOP_S + FRAME_S / 2) for a, b in runs
            if (b - a) * FRAME_HOP_S >= MIN_PAUSE_S]


def fit_to_audio(
    times: Sequence[Interval], audio: np.ndarray, rate: int, breaks: Sequence[bool] = ()
) -> list[Interval]:
    """Return recognised word times moved back by Whisper's lag, then pulled in from the pauses they reach into.

    `breaks[k]` says punctuation stands before word k: there the voice may pause, and Whisper tends to
    give the pause to the word after it, so that word starts after the pause (and the one before ends before it).
    """
    loud = frame_loudness_db(audio, rate) > SILENCE_DB
    pauses = _pauses(loud)
    out: list[Interval] = []
    for k, (start, end) in enumerate(times):
        start, end = max(0.0, start - ASR_START_LAG_S), max(0.0, end - ASR_END_LAG_S)
        inside = [p for p in pauses if start < p[0] and p[1] < end]
        if inside and k < len(breaks) and breaks[k]:
            start = inside[-1][1]
        if inside and k + 1 < len(breaks) and breaks[k + 1]:
            end = max(start, inside[0][0])
        first = min(int(start / FRAME_HOP_S), len(loud) - 1)
        last = min(max(int(end / FRAME_HOP_S), first), len(loud) - 1)
        voiced = np.flatnonzero(loud[first : last + 1])
        if voiced.size and not loud[first]:
            start = (first + voiced[0]) * FRAME_HOP_S + FRAME_S / 2
        if voiced.size and not loud[last]:
            end = (first + voiced[-1]) * FRAME_HOP_S + FRAME_S / 2
        out.append((start, max(start, end)))
    return out


def breaks_before(text: str, words: Sequence[Token]) -> list[bool]:
    """Return, for each word of `text`, whether punctuation that may be said as a pause stands before it."""
    return [k > 0 and bool(_BREAK.search(text[words[k - 1].end : w.start])) for k, w in enumerate(words)]


def display_times(segment: Segment, spoken: Sequence[Interval], language: str, span: Interval) -> list[Interval]:
    """Return times for the displayed words of `segment` from the times of its spoken words."""
    from stages.normalize import normalize, spoken_range

    shown, said = tokens(segment.text), tokens(segment.spoken)
    if len(said) != len(spoken):
        raise ValueError(f"segment {segment.id}: {len(spoken)} times for {len(said)} spoken words")
    mapping = normalize(segment.text, language)
    if mapping.text != segment.spoken:  # the spoken text was edited by hand: match words instead
        return transfer([t.text for t in said], spoken, [t.text for t in shown], span)
    times: list[Interval | None] = []
    for tok in shown:
        try:
            a, b = spoken_range(mapping, tok.start, tok.end)
        except ValueError:
            times.append(None)
            continue
        hit = [spoken[k] for k, s in enumerate(said) if s.start < b and s.end > a]
        times.append((min(h[0] for h in hit), max(h[1] for h in hit)) if hit else None)
    return _share_equal_runs(fill_gaps(times, [len(t.text) for t in shown], span), [len(t.text) for t in shown])


def _share_equal_runs(times: list[Interval], weights: Sequence[int]) -> list[Interval]:
    """Return `times` with runs of words given the same interval (one spoken stretch) split by length."""
    out = list(times)
    i = 0
    while i < len(out):
        j = i + 1
        while j < len(out) and times[j] == times[i]:
            j += 1
        if j - i > 1:
            start, end = times[i]
            total = sum(weights[i:j])
            at = start
            for k in range(i, j):
                step = (end - start) * weights[k] / total
                out[k] = (at, at + step)
                at += step
        i = j
    return out


def spoken_times(
    segment: Segment, take: Take, *, engine_words: list[dict] | None, language: str,
    transcribe: Callable[[Take, str], Any] | None,
) -> tuple[str | None, list[Interval] | None]:
    """Return where each spoken word of `segment` falls in its take, and the source: engine, asr or None."""
    said_tokens = tokens(segment.spoken)
    said = [t.text for t in said_tokens]
    span = (0.0, take.duration_s)
    if not said:
        return None, None
    if engine_words:
        words = [str(w["word"]) for w in engine_words]
        times = [(float(w["start_s"]), float(w["end_s"])) for w in engine_words]
        return "engine", transfer(words, times, said, span)  # the lexicon may have changed a word
    if transcribe is None:
        return None, None
    try:
        heard = transcribe(take, language).words
    except UserError as e:  # no recognition model, or one that does not know the language: sentence level
        log.warning("segment %s keeps sentence-level timing: %s", segment.id, e)
        return None, None
    if not heard:
        return None, None
    from stages import wav

    words, times = heard_words(heard, language)
    audio, rate = wav.read_wav(Path(take.path))
    fitted = fit_to_audio(transfer(words, times, said, span), audio, rate, breaks_before(segment.spoken, said_tokens))
    return "asr", fill_gaps(fitted, [1] * len(said), span)


def segment_words(
    segment: Segment, take: Take, cue: Cue, *, engine_words: list[dict] | None, language: str,
    transcribe: Callable[[Take, str], Any] | None = None,
) -> SegmentWords:
    """Return the displayed words of `segment` with their times in the chapter (cue.start_ms + time in take)."""
    if language.split("-")[0].lower() in UNSPACED_LANGUAGES:
        return NO_WORDS
    source, times = spoken_times(segment, take, engine_words=engine_words, language=language, transcribe=transcribe)
    if source is None or times is None:
        return NO_WORDS
    span = (0.0, take.duration_s)
    shown = display_times(segment, times, language, span)
    words = []
    for tok, (start, end) in zip(tokens(segment.text), shown):
        a = min(cue.start_ms + round(start * 1000), cue.end_ms)
        words.append(WordTiming(tok.text, a, max(a, min(cue.start_ms + round(end * 1000), cue.end_ms))))
    return SegmentWords(source, tuple(words))


def chapter_words(
    chapter: Chapter, takes: Mapping[str, Take], cues: Sequence[Cue], *, cache, language: str, asr: bool = True
) -> dict[str, SegmentWords]:
    """Return every segment's word timings in the chapter: the engine's, else Whisper's where it hears the language.

    `cache` is the stages.cache.TakeCache the takes came from (it holds the engine's timings).
    """
    from stages import asr as recognizer

    by_id = {c.id: c for c in cues}
    hears = asr and recognizer.speaks(language)
    transcribe = recognizer.transcribe_take if hears else None
    out: dict[str, SegmentWords] = {}
    for seg in chapter.segments:
        if seg.id not in by_id or seg.id not in takes:
            continue
        take = takes[seg.id]
        out[seg.id] = segment_words(seg, take, by_id[seg.id], engine_words=cache.words(take.key),
                                    language=language, transcribe=transcribe)
    counted = {s: sum(1 for w in out.values() if w.source == s) for s in (*SOURCES, None)}
    log.info("chapter %d word timings: %d from the engine, %d from speech recognition, %d without",
             chapter.number, counted["engine"], counted["asr"], counted[None])
    return out
