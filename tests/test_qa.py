"""Take QA: real takes of the bundled voice heard back by the bundled Whisper, checked, retaken and reported."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stages import asr, engines, qa, wav
from stages.cache import TakeCache
from stages.cast import Casting
from stages.errors import UserError
from stages.lexicon import Lexicon, Pronunciation
from stages.model import NARRATOR, Chapter, Paragraph, Segment, Voice
from stages.render import chapter_qa, render_chapter
from tests.tts_servers import speech

RATE = 22050
GOOD = "It is a truth universally acknowledged, that a single man must be in want of a wife."
OTHER = "The business of her life was to get her daughters married; its solace was visiting and news."
JOE = Voice("joe", "Joe", params={"model": "bundled:en_US-joe-medium"})


def verdict_for(spoken: str, audio: np.ndarray, names=(), config=qa.QaConfig()) -> qa.Verdict:
    heard = qa.hear([(audio, RATE)])[0]
    return qa.judge(spoken, qa.audio_problems(audio, RATE, spoken), heard, config=config, names=names)


def test_words_are_compared_in_their_spoken_form():
    assert qa.comparable_words("Mr. Bennett's neighbours paid 4 ,000 in 1811; they're grown-up.") == [
        "mister", "benets", "neighbors", "paid", "four", "thousand", "in", "eighteen", "eleven", "they", "are",
        "grown", "up"]
    assert qa.comparable_words("Mister Bennet’s neighbors") == ["mister", "benets", "neighbors"]
    # "some one" said, "someone" heard: one word, no error; a real substitution is one error
    assert qa.word_errors(["to", "some", "one", "or", "other"], ["to", "someone", "or", "other"]) == 0
    assert qa.word_errors(["in", "want", "of", "a", "wife"], ["in", "one", "of", "a", "wife"]) == 1
    assert qa.word_errors(qa.comparable_words("it is solace"), qa.comparable_words("It's solace")) == 0
    assert qa.word_errors(qa.comparable_words("its solace"), qa.comparable_words("It's solace")) == 0
    assert qa.word_errors(["netherfield", "park"], ["nethafield", "park"], names={"netherfield"}) == 0
    assert qa.word_errors(["netherfield", "park"], ["nethafield", "park"]) == 1


def test_a_short_take_is_not_failed_by_one_misheard_word():
    config = qa.QaConfig()
    assert qa.judge("Oh!", [], "O.", config=config).passed  # 1 of 1 wrong, but under min_errors
    failed = qa.judge("returned she;", [], "Return sheet.", config=config)
    assert not failed.passed and failed.reasons == ("WER 100% (2 of 2 words wrong)",) and failed.wer == 1.0


def test_a_good_take_passes_and_a_cut_one_fails_on_length_and_words():
    audio = speech(GOOD, RATE)
    good = verdict_for(GOOD, audio)
    assert good.passed and good.checked and good.errors <= 1 and "universally" in good.heard.lower()
    cut = verdict_for(GOOD, audio[: int(audio.size * 0.4)])
    assert not cut.passed
    assert cut.reasons[0].startswith("WER") and cut.errors >= 8
    assert any(r.startswith("too short, truncated?") for r in cut.reasons)


def test_a_take_of_other_words_fails_on_words():
    wrong = verdict_for(GOOD, speech(OTHER, RATE))
    assert not wrong.passed and wrong.wer > 0.5 and "business" in wrong.heard.lower()


def test_nan_silence_clipping_and_extra_audio_are_found():
    audio = speech(GOOD, RATE)
    with_nan = audio.copy()
    with_nan[100] = np.nan
    assert qa.audio_problems(with_nan, RATE, GOOD) == ["1 NaN or infinite samples"]
    assert qa.hear([(with_nan, RATE)]) == [""]  # never put before the recognizer, where it would spoil a window
    assert qa.audio_problems(np.zeros_like(audio), RATE, GOOD)[0].startswith("silent:")
    assert qa.audio_problems(np.clip(audio * 8, -1, 1), RATE, GOOD)[0].startswith("clipped:")
    assert qa.audio_problems(np.concatenate([audio, audio, audio]), RATE, GOOD)[0].startswith("too long")
    assert qa.audio_problems(audio, RATE, GOOD) == []
    # a slower delivery is expected to be longer
    assert qa.expected_seconds(GOOD, 1.2)[1] == pytest.approx(qa.expected_seconds(GOOD)[1] * 1.2, abs=0.1)


class FlakyEngine:
    """Speaks with the bundled voice, but cuts the first take of each text in `bad` to a third."""

    name = "flaky"
    sample_rate = RATE
    languages = ("en", "zh")

    def __init__(self, bad=()):
        self.bad, self.calls = set(bad), []

    def fingerprint(self, voice: Voice) -> str:
        return "flaky-1"

    def synthesize(self, text: str, voice: Voice) -> np.ndarray:
        self.calls.append(text)
        if any("\u4e00" <= ch <= "\u9fff" for ch in text):  # a stand-in for a Chinese voice: tones, 0.25 s a character
            t = np.arange(int(0.25 * len(text) * RATE)) / RATE
            return (0.3 * np.sin(2 * np.pi * 180 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)
        audio = speech(text, RATE).copy()
        if text in self.bad:
            self.bad.discard(text)
            return audio[: audio.size // 3]
        return audio


@pytest.fixture
def flaky(monkeypatch):
    engine = FlakyEngine()
    monkeypatch.setitem(engines.ENGINES, "flaky", "tests.test_qa:FlakyEngine")
    monkeypatch.setitem(engines._LOADED, "flaky", engine)
    return engine


@pytest.fixture
def heard(monkeypatch):
    """Count what speech recognition is asked to hear."""
    calls = []
    real = asr.transcribe

    def counting(audio, sample_rate, language="en", prompt=None):
        calls.append(audio.size / sample_rate)
        return real(audio, sample_rate, language, prompt)

    monkeypatch.setattr(asr, "transcribe", counting)
    return calls


def one_paragraph(*texts: str) -> Chapter:
    segs = tuple(Segment(f"c01-p0001-s{i:02d}", t, t) for i, t in enumerate(texts, 1))
    return Chapter(1, "Chapter 1", (Paragraph("c01-p0001", "text", segs),))


def test_a_failing_take_is_retaken_under_its_own_key_and_not_heard_again(flaky, heard, tmp_path):
    voice = Voice("flaky-joe", "Flaky", engine="flaky")
    chapter = one_paragraph(GOOD, "Mister Bennet made no answer.")
    flaky.bad = {GOOD}
    cache = TakeCache(tmp_path / "cache")
    config = qa.QaConfig(retakes=2)
    run = lambda: render_chapter(chapter, casting=Casting({NARRATOR: voice.id}), library={voice.id: voice},
                                 cache=cache, qa=config)
    takes, stats = run()
    first = takes["c01-p0001-s01"]
    assert first.key == cache.key(GOOD, voice, flaky)  # the retake is kept under the original key
    assert first.duration_s == pytest.approx(speech(GOOD, RATE).size / RATE, abs=0.01)  # whole, not cut
    assert wav.read_wav(first.path)[0].size == first.num_samples
    sidecar = json.loads((cache.path(first.key).with_suffix(".qa.json")).read_text())
    assert sidecar["verdict"]["passed"] and sidecar["verdict"]["attempt"] == 1 and sidecar["verdict"]["attempts"] == 1
    assert sorted(flaky.calls) == sorted([GOOD, GOOD, "Mister Bennet made no answer."])  # one retake, of GOOD
    assert (stats.synthesized, stats.retakes) == (2, 1) and stats.asr_s > 0 and heard
    report = chapter_qa(chapter, takes, qa=config, language="en")
    assert report["asr"].startswith("whisper-tiny.en") and (report["checked"], report["passed"]) == (2, 2)
    assert (report["retaken"], report["flagged"], report["not_checked"]) == (1, [], 0) and report["wer"] <= 0.1
    heard.clear()
    calls = len(flaky.calls)
    again, stats = run()
    assert again == takes and heard == [] and len(flaky.calls) == calls
    assert (stats.synthesized, stats.retakes, stats.asr_s) == (0, 0, 0.0)


def test_chinese_takes_are_reported_not_checked(flaky, heard, tmp_path):
    voice = Voice("flaky-zh", "Flaky", engine="flaky", language="zh")
    chapter = one_paragraph("我冒了严寒，回到相隔二千余里，别了二十余年的故乡去。", "时候既然是深冬。")
    config = qa.QaConfig()
    takes, _ = render_chapter(chapter, casting=Casting({NARRATOR: voice.id}), library={voice.id: voice},
                              cache=TakeCache(tmp_path / "cache"), qa=config, language="zh")
    report = chapter_qa(chapter, takes, qa=config, language="zh")
    assert (report["checked"], report["passed"], report["not_checked"], report["flagged"]) == (0, 0, 2, [])
    assert report["asr"] is None and report["wer"] is None and "'zh'" in report["not_checked_reason"]
    assert heard == []  # never heard by the English model, never counted as passed


def test_a_lexicon_name_that_is_not_heard_is_flagged(tmp_path):
    lexicon = Lexicon({"Netherfield": Pronunciation(respelling="Manchester")})
    chapter = one_paragraph("Have you heard that Netherfield Park is let at last?")
    config = qa.QaConfig(retakes=0)
    takes, _ = render_chapter(chapter, casting=Casting({NARRATOR: "joe"}), library={"joe": JOE},
                              cache=TakeCache(tmp_path / "cache"), lexicon=lexicon, qa=config)
    report = chapter_qa(chapter, takes, qa=config, language="en", lexicon=lexicon)
    assert report["checked"] == 1 and report["passed"] == 0
    [flag] = report["flagged"]
    assert flag["segment"] == "c01-p0001-s01" and "name 'Netherfield' not heard" in flag["reason"]
    assert "manchester" in flag["heard"].lower()


def test_qa_settings_come_from_audiobook_toml():
    assert qa.QaConfig.from_project({}) == qa.QaConfig(True, 4, qa.MAX_WER, qa.MIN_ERRORS)
    assert qa.QaConfig.from_project({"qa": {"enabled": False, "retakes": 3}}) == qa.QaConfig(False, 3)
    with pytest.raises(UserError, match=r"\[qa\] may only set enabled, retakes, max_wer, min_errors"):
        qa.QaConfig.from_project({"qa": {"retake": 3}})
    with pytest.raises(UserError, match="retakes = 'two' must be a number"):
        qa.QaConfig.from_project({"qa": {"retakes": "two"}})
    off = qa.chapter_report(["c01-p0001-s01", "c01-p0001-s02"], {}, enabled=False)
    assert (off["checked"], off["passed"], off["not_checked"], off["wer"]) == (0, 0, 2, None)
    assert off["not_checked_reason"] == "take QA is off (audiobook.toml [qa] enabled = false)"


def test_a_stored_verdict_is_trusted_while_the_take_is_the_same_file(tmp_path, monkeypatch):
    cache = TakeCache(tmp_path)
    take = cache.put("c01-p0001-s01", "ab" * 32, np.full(2205, 0.1, np.float32), 22050)
    stamp = {"retakes": 4, "model": "tiny.en", "language": "en", "names": []}
    verdict = qa.Verdict(True, True, (), 0, 5, "five words were heard here")
    qa.store_verdict(take.path, stamp, verdict)
    monkeypatch.setattr(qa.files, "sha256_file", lambda path: pytest.fail("the samples were read again"))
    assert qa.stored_verdict(take.path, stamp) == verdict
    assert qa.stored_verdict(take.path, stamp | {"retakes": 5}) is None  # other settings: heard again
    monkeypatch.undo()
    cache.put("c01-p0001-s01", "ab" * 32, np.full(2205, -0.1, np.float32), 22050)  # a retake, same length
    assert qa.stored_verdict(take.path, stamp) is None


def test_a_verdict_stored_without_the_file_identity_is_checked_by_hash_and_then_upgraded(tmp_path):
    cache = TakeCache(tmp_path)
    take = cache.put("c01-p0001-s01", "cd" * 32, np.full(2205, 0.1, np.float32), 22050)
    stamp = {"retakes": 4, "model": "tiny.en", "language": "en", "names": []}
    verdict = qa.Verdict(False, True, ("WER 40% (2 of 5 words wrong)",), 2, 5, "five words were here", attempts=4)
    older = {"stamp": stamp, "audio": qa.files.sha256_file(take.path), "verdict": verdict.to_dict()}  # as stored before
    qa.verdict_path(take.path).write_text(json.dumps(older), encoding="utf-8")
    assert qa.stored_verdict(take.path, stamp) == verdict
    assert "file" in json.loads(qa.verdict_path(take.path).read_text(encoding="utf-8"))
    assert qa.stored_verdict(take.path, stamp) == verdict
