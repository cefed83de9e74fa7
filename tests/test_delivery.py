"""Delivery: emotion tags turned into engine controls, heard (measured) on the real bundled Piper voice."""

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from stages.attribute.emotion import EMOTIONS
from stages.cache import TakeCache
from stages.cast import Casting, load_library
from stages.delivery import DELIVERIES, DeliveryConfig, deliver
from stages.engines import get_engine
from stages.engines.piper import apply_gain, scaled_length
from stages.errors import UserError
from stages.model import Chapter, Paragraph, Segment
from stages.render import render_chapter

REPO = Path(__file__).resolve().parents[1]
SAD = "I shall never see my poor sister again."
EXCITED = "We have won, and the whole town is coming to see us!"
QUIET = "Come here, and keep very quiet."


def median_f0(audio: np.ndarray, rate: int = 22050) -> float:
    import parselmouth

    f0 = parselmouth.Sound(audio.astype(np.float64), rate).to_pitch().selected_array["frequency"]
    return float(np.median(f0[f0 > 0]))


def rms_db(audio: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(audio.astype(np.float64) ** 2))))


@pytest.fixture(scope="module")
def library():
    return load_library()


@pytest.fixture(scope="module")
def engine():
    return get_engine("piper")


def speak(engine, text, voice, emotion="neutral", intensity=1.0):
    return engine.synthesize(text, deliver(voice, emotion, intensity))


def test_table_covers_every_emotion_within_a_narrators_bounds():
    assert tuple(DELIVERIES) == EMOTIONS
    for name, d in DELIVERIES.items():
        assert 0.88 <= d.length_ratio <= 1.12 and 0.92 <= d.pitch_ratio <= 1.08, name
        assert -6.0 <= d.gain_db <= 3.0 and 0.6 <= d.pitch_range_ratio <= 1.3, name
        assert bool(d.instruct) == (name != "neutral"), name
    assert DELIVERIES["sad"].length_ratio > 1 > DELIVERIES["excited"].length_ratio
    assert DELIVERIES["whisper"].gain_db == -6.0 and DELIVERIES["shout"].gain_db == 3.0


def test_neutral_keeps_the_voice_and_its_cache_key(library, engine, tmp_path):
    joe, cache = library["joe"], TakeCache(tmp_path)
    for same in (deliver(joe, "neutral", 1.0), deliver(joe, "sad", 0.0), deliver(joe, "shout", 1.0, strength=0.0)):
        assert same is joe and same.params == joe.params
        assert cache.key(SAD, same, engine) == cache.key(SAD, joe, engine)
    sad = deliver(joe, "sad", 1.0)
    assert joe.params == {"model": "bundled:en_US-joe-medium", "length_scale": 1.0, "noise_scale": 0.0,
                          "noise_w_scale": 0.0}  # the library's voice is not changed in place
    assert sad.params == joe.params | {"length_ratio": 1.12, "pitch_ratio": 0.95, "pitch_range_ratio": 0.75,
                                       "gain_db": -2.0, "instruct": "Speak sadly, slowly and softly."}
    half = deliver(joe, "sad", 0.5).params
    assert (half["length_ratio"], half["pitch_ratio"], half["gain_db"]) == (1.0583, 0.9747, -1.0)


def test_delivery_composes_with_a_reshaped_voice(library):
    alto = library["joe-alto"]
    params = deliver(alto, "excited", 1.0).params
    assert params["pitch_median_hz"] == 185.0 and params["pitch_range_factor"] == 1.15  # the card, untouched
    assert (params["pitch_ratio"], params["length_ratio"], params["gain_db"]) == (1.07, 0.9, 2.0)
    twice = deliver(deliver(alto, "excited", 1.0), "excited", 1.0).params
    assert twice["pitch_ratio"] == 1.1449 and twice["gain_db"] == 4.0


def test_keys_differ_between_emotions_and_are_stable_across_runs(library, engine, tmp_path):
    joe, cache = library["joe"], TakeCache(tmp_path)
    keys = {e: cache.key(QUIET, deliver(joe, e, 1.0), engine) for e in EMOTIONS}
    assert len(set(keys.values())) == len(EMOTIONS)
    assert cache.key(QUIET, deliver(joe, "sad", 0.5), engine) not in keys.values()
    script = (
        "from stages.cache import TakeCache; from stages.cast import load_library; "
        "from stages.delivery import deliver; from stages.engines import get_engine; "
        f"print(TakeCache('x').key({QUIET!r}, deliver(load_library()['joe'], 'whisper', 1.0), get_engine('piper')))"
    )
    other_run = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    assert other_run.stdout.strip() == keys["whisper"]


def test_sad_line_is_slower_by_about_the_tables_ratio(library, engine):
    joe = library["joe"]
    neutral = len(speak(engine, SAD, joe))
    full = len(speak(engine, SAD, joe, "sad", 1.0)) / neutral
    half = len(speak(engine, SAD, joe, "sad", 0.5)) / neutral
    assert abs(full - DELIVERIES["sad"].length_ratio) < 0.04, full  # measured 1.107 for 1.12
    assert 0.25 < (half - 1) / (full - 1) < 0.75, (half, full)  # measured 1.036: about half the effect


def test_length_ratio_follows_the_effective_length_scale(library, engine):
    joe = library["joe"]
    bare = replace(joe, params={k: v for k, v in joe.params.items() if k != "length_scale"})  # the model's default
    assert len(speak(engine, SAD, bare, "sad")) == len(speak(engine, SAD, joe, "sad"))  # joe's card says 1.0 too
    assert scaled_length(1.0, 1.0) == 1.0 and scaled_length(1.08, 1.0) == 1.08
    assert 1.2 < scaled_length(1.0, 1.12) < 1.25  # near 1 a take lengthens about a third as much as the scale
    assert scaled_length(1.08, 1.12) > scaled_length(1.0, 1.12) and scaled_length(3.0, 0.5) == 1.5  # off the curve
    assert "praat-parselmouth=" in engine.fingerprint(deliver(joe, "sad", 1.0))
    assert "praat-parselmouth=" not in engine.fingerprint(joe)


@pytest.mark.parametrize("voice_id", ["joe", "joe-alto"])  # unshaped (median measured per take) and reshaped
def test_excited_line_is_higher_by_about_the_tables_ratio(library, engine, voice_id):
    voice = library[voice_id]
    neutral = median_f0(speak(engine, EXCITED, voice))
    full = median_f0(speak(engine, EXCITED, voice, "excited", 1.0)) / neutral
    half = median_f0(speak(engine, EXCITED, voice, "excited", 0.5)) / neutral
    # measured 1.085 (joe) and 1.083 (alto) for 1.07: a quicker take also comes out about 1% higher
    assert DELIVERIES["excited"].pitch_ratio - 0.02 < full < DELIVERIES["excited"].pitch_ratio + 0.04, full
    assert 0.3 < (half - 1) / (full - 1) < 0.75, (half, full)


def test_whisper_line_is_softer_by_about_its_gain(library, engine):
    joe = library["joe"]
    neutral = rms_db(speak(engine, QUIET, joe))
    full = rms_db(speak(engine, QUIET, joe, "whisper", 1.0)) - neutral
    half = rms_db(speak(engine, QUIET, joe, "whisper", 0.5)) - neutral
    assert abs(full - DELIVERIES["whisper"].gain_db) < 1.0, full  # measured -5.8 dB
    assert abs(half - DELIVERIES["whisper"].gain_db / 2) < 1.0, half  # measured -2.9 dB


def test_a_boost_never_clips_and_a_cut_is_exact():
    loud = np.array([0.0, 0.9, -0.95, 0.5], np.float32)
    boosted = apply_gain(loud, 3.0)
    assert np.allclose(boosted, loud * 0.98 / 0.95)  # +3 dB cut to the gain that puts the peak at 0.98
    quiet = np.array([0.1, -0.2], np.float32)
    assert np.allclose(apply_gain(quiet, 3.0), quiet * 10 ** (3 / 20))
    assert np.allclose(apply_gain(loud, -6.0), loud * 10 ** (-6 / 20))


def test_unknown_emotion_and_bad_intensity_are_user_errors(library):
    joe = library["joe"]
    with pytest.raises(UserError, match=r"segment c01-p0002-s01 has unknown emotion 'joy'; choose one of: neutral, happy"):
        deliver(joe, "joy", 1.0, segment="c01-p0002-s01")
    with pytest.raises(UserError, match=r"segment c01-p0002-s01 has intensity 1.5 outside 0..1"):
        deliver(joe, "sad", 1.5, segment="c01-p0002-s01")
    with pytest.raises(UserError, match="strength 3"):
        deliver(joe, "sad", 1.0, strength=3)


def test_project_config_switch():
    assert DeliveryConfig.from_project({}) == DeliveryConfig(1.0, False)  # on by default, dialogue only
    off = DeliveryConfig.from_project({"delivery": {"strength": 0}})
    assert not off.applies_to("dialogue")
    both = DeliveryConfig.from_project({"delivery": {"strength": 0.5, "narration": True}})
    assert both.applies_to("narration") and both.applies_to("dialogue") and not both.applies_to("heading")
    assert DeliveryConfig().applies_to("dialogue") and not DeliveryConfig().applies_to("narration")
    for bad, says in (({"strength": "loud"}, "strength = 'loud'"), ({"narration": 1}, "narration = 1"),
                      ({"strenght": 1}, "may only set strength")):
        with pytest.raises(UserError, match=f"audiobook.toml \\[delivery\\] {says}"):
            DeliveryConfig.from_project({"delivery": bad})


def test_render_colours_only_emotional_dialogue(library, tmp_path):
    segments = (
        Segment("c01-p0001-s01", "", "She wept all night.", "narration", emotion="sad", intensity=1.0),
        Segment("c01-p0001-s02", "", SAD, "dialogue", "Jane", emotion="sad", intensity=1.0),
        Segment("c01-p0001-s03", "", QUIET, "dialogue", "Jane"),
    )
    chapter = Chapter(1, "One", (Paragraph("c01-p0001", "text", segments),))
    casting, cache = Casting({"narrator": "joe", "Jane": "joe-alto"}), TakeCache(tmp_path)

    def render(delivery):
        return render_chapter(chapter, casting=casting, library=library, cache=cache, workers=2, delivery=delivery)

    plain, _ = render(None)
    coloured, stats = render(DeliveryConfig())
    assert (stats.synthesized, stats.cached) == (1, 2)  # the narration and the neutral line keep their takes
    assert [coloured[s.id].key == plain[s.id].key for s in segments] == [True, False, True]
    assert coloured["c01-p0001-s02"].duration_s > 1.07 * plain["c01-p0001-s02"].duration_s
    everything, stats = render(DeliveryConfig(narration=True))
    assert (stats.synthesized, stats.cached) == (1, 2) and everything["c01-p0001-s01"].key != plain["c01-p0001-s01"].key
