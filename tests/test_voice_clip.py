"""Reference-clip checks on real audio: a bundled voice's speech, and bad clips made from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stages.engines import get_engine
from stages.errors import UserError
from stages.ffmpeg import run_ffmpeg
from stages.voices.card import load_cards
from stages.voices.clip import MAX_CLIPPED_FRACTION, check_clip, native_rate
from stages.wav import read_wav, write_wav

PASSAGE = ("Nobody in the village could remember a winter so long, or a spring that arrived so suddenly after it. "
           "The river rose for a week, and then it was summer.")
EDGE_SILENCE_S = 1.0


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, int]:
    """joe-alto saying PASSAGE (about 7 s), as Piper makes it."""
    engine = get_engine("piper")
    audio = engine.synthesize(PASSAGE, load_cards()["joe-alto"].voice)
    return audio, engine.sample_rate


def wav(tmp_path: Path, name: str, audio: np.ndarray, rate: int) -> Path:
    return write_wav(tmp_path / name, audio, rate)


def test_good_clip_is_trimmed_and_measured(tmp_path, speech):
    audio, rate = speech
    pad = np.zeros(int(EDGE_SILENCE_S * rate), dtype=np.float32)
    report = check_clip(wav(tmp_path, "good.wav", np.concatenate([pad, audio, pad]), rate))
    assert report.sample_rate == rate == 22050
    assert report.audio.dtype == np.float32 and report.audio.ndim == 1
    # the added second of silence at each end is gone; the speech itself (plus a short pad) is kept
    assert audio.size / rate - 0.6 < report.seconds < audio.size / rate + 0.3
    assert 4.0 < report.speech_seconds <= report.seconds
    assert report.clipped_fraction == 0.0 and 0.2 < report.peak < 1.0
    assert report.snr_db > 40 and report.noise_floor_dbfs < -50
    assert report.figures()["sample_rate"] == rate


def test_compressed_formats_decode_at_their_own_rate(tmp_path, speech):
    src = wav(tmp_path, "good.wav", *speech)
    for name in ("clip.flac", "clip.mp3"):
        run_ffmpeg(["-i", str(src), "-ar", "44100", str(tmp_path / name)], f"encode {name}")
        assert native_rate(tmp_path / name) == 44100
        report = check_clip(tmp_path / name)
        assert report.sample_rate == 44100 and 5.0 < report.seconds < 9.0


def refusal(path: Path) -> str:
    with pytest.raises(UserError) as caught:
        check_clip(path)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    return message


def test_too_short_and_too_long(tmp_path, speech):
    audio, rate = speech
    assert "s of speech" in refusal(wav(tmp_path, "short.wav", audio[: 2 * rate], rate))
    gap = np.zeros(rate // 3, dtype=np.float32)
    long = np.concatenate([np.concatenate([audio, gap])] * 6)  # about 44 s of talk
    assert "cut it to at most 30 s" in refusal(wav(tmp_path, "long.wav", long, rate))


def test_low_sample_rate(tmp_path, speech):
    src = wav(tmp_path, "good.wav", *speech)
    low = tmp_path / "phone.wav"
    run_ffmpeg(["-i", str(src), "-ar", "8000", str(low)], "resample to 8 kHz")
    assert "8000 Hz" in refusal(low)


def test_clipped_by_gain(tmp_path, speech):
    audio, rate = speech
    loud = np.clip(audio * 8.0, -1.0, 1.0)
    assert np.mean(np.abs(loud) >= 0.999) > MAX_CLIPPED_FRACTION
    assert "clipped" in refusal(wav(tmp_path, "loud.wav", loud, rate))


def test_silent_and_noisy(tmp_path, speech):
    audio, rate = speech
    assert "silent" in refusal(wav(tmp_path, "silent.wav", np.zeros(5 * rate, dtype=np.float32), rate))
    noise = np.random.default_rng(7).normal(0.0, 10 ** (-35 / 20), audio.size).astype(np.float32)
    assert "too noisy" in refusal(wav(tmp_path, "noisy.wav", audio + noise, rate))


def test_not_audio_and_missing(tmp_path, speech):
    text = tmp_path / "notes.wav"
    text.write_text("these are my notes, not a recording\n", encoding="utf-8")
    assert "not an audio file" in refusal(text)
    assert "does not exist" in refusal(tmp_path / "absent.wav")


def test_quiet_but_clean_clip_passes(tmp_path, speech):
    audio, rate = speech
    report = check_clip(wav(tmp_path, "quiet.wav", audio * 0.05, rate))  # about -26 dB: quiet, still clean
    samples, _ = read_wav(tmp_path / "quiet.wav")
    assert report.peak == pytest.approx(float(np.abs(samples).max()), abs=1e-4)
    assert report.snr_db > 30
