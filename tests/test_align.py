"""Word timings: Piper's own alignments, the Whisper path, and displayed words traced back from spoken ones."""

from dataclasses import replace

import numpy as np
import pytest

from stages import align
from stages.cache import TakeCache
from stages.cast import load_library
from stages.errors import UserError
from stages.engines.piper import PiperEngine
from stages.model import Chapter, Cue, Paragraph, Segment
from stages.normalize import normalize

TRUTH = ("It is a truth universally acknowledged, that a single man in possession of a good fortune, "
         "must be in want of a wife.")
NUMBERS = "In 1811, Mr. Bennet paid £5 for the 3rd volume."
CUE_START_MS = 12_000


@pytest.fixture(scope="module")
def engine():
    return PiperEngine(sessions=1)


@pytest.fixture(scope="module")
def voices():
    return load_library()


def _segment(seg_id: str, text: str) -> Segment:
    return Segment(id=seg_id, text=text, spoken=normalize(text, "en").text)


def _take(tmp_path, engine, voice, seg, text=None):
    audio, words = engine.synthesize_timed(text or seg.spoken, voice)
    cache = TakeCache(tmp_path / "cache")
    take = cache.put(seg.id, f"{abs(hash((seg.id, text))):064x}"[:64], audio, engine.sample_rate, words=words)
    cue = Cue(seg.id, seg.text, seg.speaker, CUE_START_MS, CUE_START_MS + round(take.duration_s * 1000))
    return cache, take, cue, words


def test_piper_gives_a_time_for_every_word_without_changing_the_audio(engine, voices):
    plain = engine.synthesize(TRUTH, voices["joe"])
    audio, words = engine.synthesize_timed(TRUTH, voices["joe"])
    assert np.array_equal(plain, audio)  # timing comes from the same run: the take is bit-identical
    duration = len(audio) / engine.sample_rate
    assert [w["word"] for w in words] == [t.text for t in align.tokens(TRUTH)]
    assert len(words) == 23
    starts = [w["start_s"] for w in words]
    assert starts == sorted(starts) and 0 < starts[0] < 0.1  # Piper begins each take with a short silence
    assert all(w["start_s"] <= w["end_s"] <= duration for w in words)
    assert all(a["end_s"] <= b["start_s"] for a, b in zip(words, words[1:]))
    length = {w["word"]: w["end_s"] - w["start_s"] for w in words}
    assert length["universally"] > 3 * length["a"] and length["universally"] > 0.4
    # the pause at a comma falls between words: "fortune," ... "must"
    fortune = next(w for w in words if w["word"] == "fortune")
    must = next(w for w in words if w["word"] == "must")
    assert must["start_s"] - fortune["end_s"] > 0.2


def test_reshaped_and_delivered_voices_keep_their_timings(engine, voices):
    alto = voices["joe-alto"]  # the narrator's model at the same speed, reshaped by Praat afterwards
    slower = replace(alto, params=alto.params | {"length_ratio": 1.2, "pitch_ratio": 1.05, "gain_db": -2.0})
    text = "Nobody answered, and the fire crackled."
    plain, joe_words = engine.synthesize_timed(text, voices["joe"])
    audio, alto_words = engine.synthesize_timed(text, alto)
    assert len(audio) == len(plain) == len(engine.synthesize(text, alto))  # Praat keeps the length ...
    assert alto_words == joe_words  # ... so the model's word times hold for the reshaped take
    assert [w["word"] for w in alto_words] == ["Nobody", "answered", "and", "the", "fire", "crackled"]
    audio, slow_words = engine.synthesize_timed(text, slower)
    assert slow_words[-1]["end_s"] <= len(audio) / engine.sample_rate
    assert slow_words[-1]["end_s"] > 1.1 * alto_words[-1]["end_s"]  # length_ratio goes through the model


def test_displayed_numbers_and_abbreviations_take_their_spoken_words_time(tmp_path, engine, voices):
    seg = _segment("c01-p0001-s01", NUMBERS)
    assert seg.spoken.startswith("In eighteen eleven, Mister Bennet paid five pounds for the third volume")
    cache, take, cue, engine_words = _take(tmp_path, engine, voices["joe"], seg)
    timed = align.segment_words(seg, take, cue, engine_words=cache.words(take.key), language="en")
    assert timed.source == "engine"
    assert [w.text for w in timed.words] == ["In", "1811", "Mr", "Bennet", "paid", "£5", "for", "the", "3rd", "volume"]
    said = {w["word"]: w for w in engine_words}
    year = timed.words[1]
    assert year.start_ms == CUE_START_MS + round(said["eighteen"]["start_s"] * 1000)
    assert year.end_ms == CUE_START_MS + round(said["eleven"]["end_s"] * 1000)
    money = timed.words[5]
    assert money.start_ms == CUE_START_MS + round(said["five"]["start_s"] * 1000)
    assert money.end_ms == CUE_START_MS + round(said["pounds"]["end_s"] * 1000)
    assert timed.words[2].start_ms == CUE_START_MS + round(said["Mister"]["start_s"] * 1000)
    assert all(cue.start_ms <= w.start_ms <= w.end_ms <= cue.end_ms for w in timed.words)
    assert all(a.end_ms <= b.start_ms for a, b in zip(timed.words, timed.words[1:]))


def test_a_lexicon_respelling_keeps_its_words_time(tmp_path, engine, voices):
    seg = _segment("c01-p0002-s01", "Mr. Darcy said nothing.")
    cache, take, cue, engine_words = _take(tmp_path, engine, voices["joe"], seg, text="Mister dar-see said nothing.")
    assert [w["word"] for w in engine_words] == ["Mister", "dar-see", "said", "nothing"]
    timed = align.segment_words(seg, take, cue, engine_words=engine_words, language="en")
    assert [w.text for w in timed.words] == ["Mr", "Darcy", "said", "nothing"]
    assert timed.words[1].start_ms == CUE_START_MS + round(engine_words[1]["start_s"] * 1000)
    assert timed.words[1].end_ms == CUE_START_MS + round(engine_words[1]["end_s"] * 1000)


def test_whisper_path_agrees_with_the_engine_on_a_sentence(tmp_path, engine, voices):
    from stages import asr

    seg = _segment("c01-p0003-s01", TRUTH)
    cache, take, cue, _ = _take(tmp_path, engine, voices["joe"], seg)
    reference = align.segment_words(seg, take, cue, engine_words=cache.words(take.key), language="en")
    heard = align.segment_words(seg, take, cue, engine_words=None, language="en", transcribe=asr.transcribe_take)
    assert heard.source == "asr" and [w.text for w in heard.words] == [w.text for w in reference.words]
    errors = [abs(a.start_ms - b.start_ms) for a, b in zip(heard.words, reference.words)]
    errors += [abs(a.end_ms - b.end_ms) for a, b in zip(heard.words, reference.words)]
    assert np.median(errors) <= 80 and max(errors) <= 400
    assert all(a.start_ms <= b.start_ms for a, b in zip(heard.words, heard.words[1:]))


def test_alignment_places_missed_words_between_their_neighbours():
    said = ["It", "is", "a", "truth", "universally", "acknowledged"]
    heard = ["it's", "a", "troth", "universally", "acknowledged"]  # "is" merged, "truth" misheard
    times = [(0.0, 0.2), (0.3, 0.35), (0.4, 0.7), (0.8, 1.4), (1.5, 2.1)]
    got = align.transfer(heard, times, said, (0.0, 2.5))
    assert got[2] == (0.3, 0.35) and got[3] == (0.4, 0.7) and got[5] == (1.5, 2.1)
    assert got[0][0] == 0.0 and got[1][1] <= 0.3  # "It" and "is" share what lies before "a"
    assert got[0][1] == pytest.approx(got[1][0])
    # a run of unknown words at the end is spread up to the end of the take
    assert align.fill_gaps([(0.0, 1.0), None, None], [5, 1, 3], (0.0, 2.0)) == [(0.0, 1.0), (1.0, 1.25), (1.25, 2.0)]
    assert align.heard_words([type("W", (), {"text": "1811", "start_s": 1.0, "end_s": 2.4})()], "en") == (
        ["eighteen", "eleven"], [(1.0, pytest.approx(1.8)), (pytest.approx(1.8), 2.4)])


def test_chapter_words_say_where_each_came_from(tmp_path, engine, voices):
    first, second = _segment("c02-p0001-s01", "Nobody answered."), _segment("c02-p0001-s02", "—")
    chapter = Chapter(2, "Chapter II", (Paragraph("c02-p0001", "text", (first, second)),))
    cache, take, cue, _ = _take(tmp_path, engine, voices["joe"], first)
    silent = cache.put(second.id, "f" * 64, np.zeros(4410, np.float32), 22050)
    cues = [cue, Cue(second.id, second.text, "narrator", cue.end_ms + 500, cue.end_ms + 700)]
    words = align.chapter_words(chapter, {first.id: take, second.id: silent}, cues, cache=cache, language="en-GB")
    assert words[first.id].source == "engine" and [w.text for w in words[first.id].words] == ["Nobody", "answered"]
    assert words[second.id] == align.NO_WORDS  # nothing to say: sentence level only
    # a take made before engines gave timings, with recognition off: sentence level, said so
    cache.words_path(take.key).unlink()
    assert align.chapter_words(chapter, {first.id: take}, cues, cache=cache, language="en", asr=False) == {
        first.id: align.NO_WORDS}
    def deaf(take, language):
        raise UserError("no speech recognition model")

    assert align.segment_words(first, take, cue, engine_words=None, language="en", transcribe=deaf) == align.NO_WORDS
    zh = Segment("c03-p0001-s01", "“你好，世界！”他说。", "你好，世界！他说。")
    assert align.segment_words(zh, take, cue, engine_words=[{"word": "x", "start_s": 0, "end_s": 1}],
                               language="zh") == align.NO_WORDS


def test_chapter_word_times_fall_on_their_words_in_the_assembled_audio(tmp_path, engine, voices):
    from stages import master

    segs = (_segment("c04-p0001-s01", "Nobody answered, and the fire crackled."), _segment("c04-p0001-s02", NUMBERS))
    chapter = Chapter(4, "Chapter IV", (Paragraph("c04-p0001", "text", segs),))
    cache = TakeCache(tmp_path / "cache")
    takes = {}
    for n, seg in enumerate(segs):
        audio, words = engine.synthesize_timed(seg.spoken, voices["joe"])
        takes[seg.id] = cache.put(seg.id, f"{n:064x}", audio, engine.sample_rate, words=words)
    track, cues = master.assemble_chapter(chapter, takes)
    words = align.chapter_words(chapter, takes, cues, cache=cache, language="en")
    rate = master.MASTER_SAMPLE_RATE_HZ
    level = align.frame_loudness_db(track, rate)  # dB below the loudest 20 ms of the chapter, every 5 ms

    def loudest(start_ms, end_ms):
        return level[start_ms // 5: max(end_ms // 5, start_ms // 5 + 1)].max()

    cue_at = {c.id: c for c in cues}
    for seg in segs:
        timed = words[seg.id].words
        assert [w.text for w in timed] == [t.text for t in align.tokens(seg.text)]
        assert timed[0].start_ms - cue_at[seg.id].start_ms < 100  # a take starts speaking almost at once
        assert all(loudest(w.start_ms, w.end_ms) > -25 for w in timed)  # every word's stretch holds speech
        assert loudest(cue_at[seg.id].start_ms, timed[0].start_ms - 40) < -40  # and none before the first
    # the pause at the comma, between "answered" and "and", is quiet in the chapter too
    answered, and_ = words[segs[0].id].words[1:3]
    assert and_.start_ms - answered.end_ms > 100 and loudest(answered.end_ms + 20, and_.start_ms - 40) < -40


def test_recognised_times_are_pulled_out_of_pauses():
    rate = 16_000
    t = np.arange(int(1.6 * rate)) / rate
    audio = np.where((t < 0.5) | ((t >= 0.9) & (t < 1.4)), 0.3 * np.sin(2 * np.pi * 200 * t), 0.0)
    lag_start, lag_end = align.ASR_START_LAG_S, align.ASR_END_LAG_S
    # Whisper's habit: the pause at a comma goes to the word after it (which starts in the word before), late
    heard = [(0.0 + lag_start, 0.7 + lag_end), (0.45 + lag_start, 1.45 + lag_end)]
    first, second = align.fit_to_audio(heard, audio, rate, breaks=[False, True])
    assert first[0] == pytest.approx(0.0) and first[1] == pytest.approx(0.5, abs=0.02)
    assert second[0] == pytest.approx(0.9, abs=0.02) and second[1] == pytest.approx(1.4, abs=0.02)
    # without punctuation between them there is no pause to expect: only the ends in the quiet are trimmed
    first, second = align.fit_to_audio(heard, audio, rate, breaks=[False, False])
    assert first[1] == pytest.approx(0.5, abs=0.02) and second[0] == pytest.approx(0.45, abs=0.001)
    assert align.breaks_before("Well, then go.", align.tokens("Well, then go.")) == [False, True, False]
