"""Book-wide batched synthesis with the torch Piper engine on CPU: the same takes, keyed as chapters key them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stages import wav
from stages.cache import TakeCache
from stages.cast import Casting
from stages.engines import get_engine
from stages.model import NARRATOR, Chapter, Paragraph, Segment, Voice
from stages.prerender import prerender
from stages.render import render_chapter

LINES = (
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a "
    "wife.",
    "My dear Mr. Bennet, have you heard that Netherfield Park is let at last?",
    "Mr. Bennet replied that he had not.",
    "...",  # punctuation only: a breath render_chapter makes itself
    "Mr. Bennet replied that he had not.",  # said twice: one take
)


def chapter() -> Chapter:
    segs = tuple(Segment(f"c01-s{i:02d}", text, spoken=text, speaker=NARRATOR if i % 2 else "Mrs. Bennet")
                 for i, text in enumerate(LINES, start=1))
    return Chapter(1, "Chapter 1", (Paragraph("c01-p01", "text", segs),))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    library = {"joe": Voice("joe", "Joe", engine="piper-torch", params={}),
               "joe-slow": Voice("joe-slow", "Joe slower", engine="piper-torch", params={"length_scale": 1.15})}
    casting = Casting({NARRATOR: "joe", "Mrs. Bennet": "joe-slow"})
    cache = TakeCache(tmp_path_factory.mktemp("cache"))
    first = prerender([chapter()], casting=casting, library=library, cache=cache, budgets={"cpu": 200})
    takes, stats = render_chapter(chapter(), casting=casting, library=library, cache=cache)
    again = prerender([chapter()], casting=casting, library=library, cache=cache, budgets={"cpu": 200})
    return library, first, takes, stats, again


def test_every_take_is_made_once_in_batches_and_the_chapter_finds_them(rendered):
    _, first, takes, stats, again = rendered
    assert first.stored == 3 and first.batches >= 2  # two voices: at least one batch each; the repeat is one take
    assert stats.synthesized == 1  # only the punctuation-only breath was left for render_chapter
    assert again.stored == 0 and again.batches == 0  # a re-run finds everything cached
    assert takes["c01-s03"].key == takes["c01-s05"].key


def test_batched_takes_equal_the_onnx_engines_own(rendered):
    library, _, takes, _, _ = rendered
    piper = get_engine("piper")
    for seg_id, voice_id in (("c01-s01", "joe"), ("c01-s02", "joe-slow")):
        audio, rate = wav.read_wav(takes[seg_id].path)
        onnx = piper.synthesize(LINES[int(seg_id[-2:]) - 1], Voice("v", "v", params=library[voice_id].params))
        assert rate == 22050 and audio.size == onnx.size  # the same phoneme durations, so the same length
        assert float(np.corrcoef(audio, onnx)[0, 1]) > 0.999  # 16-bit WAV rounding on top of float differences


def test_batched_takes_carry_the_models_own_word_timings(rendered, tmp_path):
    _, _, takes, _, _ = rendered
    cache = TakeCache(Path(takes["c01-s01"].path).parents[2])
    words = cache.words(takes["c01-s01"].key)
    assert [w["word"] for w in words] == [w.strip(",.") for w in LINES[0].split()]
    starts = [w["start_s"] for w in words]
    assert starts == sorted(starts) and words[-1]["end_s"] <= takes["c01-s01"].duration_s + 1e-3
    onnx_audio, onnx_words = get_engine("piper").synthesize_timed(LINES[0], Voice("v", "v"))
    gaps = [abs(a["start_s"] - b["start_s"]) for a, b in zip(words, onnx_words)]
    assert max(gaps) < 0.005  # the same durations as onnxruntime's, so the same word boundaries
