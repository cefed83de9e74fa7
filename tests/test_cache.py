"""The content-addressed take cache."""

import numpy as np

from stages.cache import TakeCache, normalize_text
from stages.engines import get_engine
from stages.model import Voice

JOE = Voice(id="joe", name="Joe", params={"noise_scale": 0.0})


def test_key_depends_on_text_voice_parameters_and_model(tmp_path):
    cache, engine = TakeCache(tmp_path), get_engine("piper")
    key = cache.key("Hello there.", JOE, engine)
    assert key == cache.key("  Hello \n there. ", JOE, engine)  # whitespace does not change what is said
    assert key != cache.key("Hello there!", JOE, engine)
    assert key != cache.key("Hello there.", Voice(id="joe", name="Joe", params={"noise_scale": 0.1}), engine)
    # the display name is not part of the sound
    assert key == cache.key("Hello there.", Voice(id="other", name="Other", params={"noise_scale": 0.0}), engine)
    assert len(key) == 64 and normalize_text("a\u00a0 b") == "a b"


def test_put_then_get_round_trips_samples(tmp_path):
    cache = TakeCache(tmp_path)
    audio = np.sin(np.linspace(0, 200, 22050)).astype(np.float32) * 0.5
    take = cache.put("c01-p0001-s01", "ab" * 32, audio, 22050)
    assert take.num_samples == 22050 and take.sample_rate == 22050
    again = cache.get("c01-p0001-s01", "ab" * 32)
    assert again == take
    assert cache.get("c01-p0001-s01", "cd" * 32) is None
    assert list(cache.path("ab" * 32).parent.iterdir()) == [cache.path("ab" * 32)]  # no temp file left


def test_a_truncated_take_is_not_a_take(tmp_path):
    cache = TakeCache(tmp_path)
    path = cache.path("ef" * 32)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"RIFF\x00\x00")  # what a crash mid-write without atomic rename would leave
    assert cache.get("x", "ef" * 32) is None
