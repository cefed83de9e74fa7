"""The bundled Piper voice and its reshaped character voices, run for real."""

import numpy as np
import pytest

from stages.cast import load_library
from stages.engines import get_engine, speaks
from stages.errors import UserError

SENTENCE = "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife."


def median_f0(audio: np.ndarray, rate: int) -> float:
    import parselmouth

    f0 = parselmouth.Sound(audio.astype(np.float64), rate).to_pitch().selected_array["frequency"]
    return float(np.median(f0[f0 > 0]))


@pytest.fixture(scope="module")
def library():
    return load_library()


def test_bundled_voice_speaks_a_sentence_deterministically(library):
    engine = get_engine("piper")
    voice = library["joe"]
    first = engine.synthesize(SENTENCE, voice)
    second = engine.synthesize(SENTENCE, voice)
    assert engine.sample_rate == 22050
    assert first.dtype == np.float32
    # about 2.5 words a second for a narrator
    assert 4.5 < len(first) / engine.sample_rate < 9.0
    assert np.array_equal(first, second)  # noise scales at 0: bit-identical renders
    assert 0.05 < np.abs(first).max() <= 1.0


def test_character_voices_are_reshaped_to_their_pitch(library):
    engine = get_engine("piper")
    base = engine.synthesize(SENTENCE, library["joe"])
    assert 80 < median_f0(base, 22050) < 110
    for voice_id in ("joe-alto", "joe-soprano", "joe-deep"):
        voice = library[voice_id]
        audio = engine.synthesize(SENTENCE, voice)
        target = voice.params["pitch_median_hz"]
        assert abs(median_f0(audio, 22050) - target) < 0.12 * target, voice_id
        # length follows the voice's speaking rate, not the reshaping
        assert abs(len(audio) / len(base) - voice.params["length_scale"]) < 0.08, voice_id


def test_fingerprint_names_the_model_hash_and_shaping(library):
    engine = get_engine("piper")
    plain = engine.fingerprint(library["joe"])
    shaped = engine.fingerprint(library["joe-alto"])
    assert plain.startswith("piper-tts=1.8.0;model=") and len(plain.split("model=")[1]) == 64
    assert "praat-parselmouth=" in shaped and "praat-parselmouth=" not in plain


def test_languages_and_unknown_engine():
    engine = get_engine("piper")
    assert speaks(engine, "en-GB") and speaks(engine, "en")
    assert not speaks(engine, "zh")
    with pytest.raises(UserError, match="unknown engine 'nope'; choose one of: piper"):
        get_engine("nope")
