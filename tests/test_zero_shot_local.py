"""In-process zero-shot engines (F5-TTS, CosyVoice2) from a local checkpoint: clear errors without weights,
and the adapters end to end on stand-ins of the model packages' Python APIs (tests/model_standins/)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from stages import files, wav
from stages.cache import TakeCache
from stages.engines.zero_shot_local import CosyVoiceLocalEngine, F5TtsEngine
from stages.errors import UserError
from stages.model import Voice
from tests.tts_servers import speech

STANDINS = Path(__file__).parent / "model_standins"
SENTENCE = "Elizabeth walked on alone, crossing field after field at a quick pace."
REFERENCE = "It is a truth universally acknowledged, that a single man must be in want of a wife."
ENGINES = {"f5-tts": F5TtsEngine, "cosyvoice-local": CosyVoiceLocalEngine}


def checkpoint_dir(root: Path, engine: type) -> Path:
    """A folder with every file `engine` needs (their bytes stand for weights: the stand-ins never read them)."""
    folder = root / engine.name
    for pattern in engine.needed:
        name = pattern.replace("*.*", "1250000.safetensors")
        target = folder / name
        if "." in Path(name).name:
            files.write_bytes(target, f"weights of {name}".encode())
        else:
            target.mkdir(parents=True, exist_ok=True)
    return folder


def voice(engine: type, folder: Path | None, clip: Path, **extra) -> Voice:
    params = {"reference_audio": str(clip), "reference_text": REFERENCE, **extra}
    if folder is not None:
        params["checkpoint_dir"] = str(folder)
    return Voice(f"test-{engine.name}", "Test", engine=engine.name, params=params)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return wav.write_wav(tmp_path_factory.mktemp("ref") / "ref.wav", speech(REFERENCE, 22050), 22050)


@pytest.fixture
def standins(monkeypatch):
    monkeypatch.syspath_prepend(str(STANDINS))
    yield
    for name in [m for m in sys.modules if m.split(".")[0] in ("f5_tts", "cosyvoice")]:
        del sys.modules[name]


@pytest.mark.parametrize("name", ENGINES)
def test_no_checkpoint_dir_says_what_to_put_where(name, clip):
    engine = ENGINES[name]
    with pytest.raises(UserError, match=rf"voice 'test-{name}' .* has no checkpoint_dir; set it to the folder "
                                        r"holding .*weights are not downloaded here"):
        engine().synthesize(SENTENCE, voice(engine, None, clip))


@pytest.mark.parametrize("name", ENGINES)
def test_a_checkpoint_missing_files_names_each(name, clip, tmp_path):
    engine = ENGINES[name]
    folder = checkpoint_dir(tmp_path, engine)
    first = next(iter(engine.needed)).replace("*.*", "1250000.safetensors")
    (folder / first).unlink()
    with pytest.raises(UserError, match=rf"checkpoint {folder} lacks {next(iter(engine.needed))}".replace("*", r"\*")
                       .replace(".", r"\.")):
        engine().fingerprint(voice(engine, folder, clip))


def test_a_missing_package_is_named_with_how_to_install(clip, tmp_path):
    if importlib.util.find_spec("f5_tts") is not None:  # a developer who installed the real package
        pytest.fail("f5_tts is importable here; this test checks the message shown when it is not")
    engine = F5TtsEngine
    with pytest.raises(UserError, match=r"F5-TTS needs the Python module 'f5_tts.api' .*pip install f5-tts"):
        engine().synthesize(SENTENCE, voice(engine, checkpoint_dir(tmp_path, engine), clip))


@pytest.mark.parametrize("name", ENGINES)
def test_speaks_at_24k_from_the_checkpoint_and_keys_follow_weights_and_clip(name, clip, tmp_path, standins):
    engine_class = ENGINES[name]
    folder = checkpoint_dir(tmp_path, engine_class)
    v = voice(engine_class, folder, clip, gain_db=-6.0)
    engine = engine_class()
    audio = engine.synthesize(SENTENCE, v)
    assert audio.dtype == np.float32 and audio.ndim == 1 and engine.sample_rate == 24000
    expected = speech(SENTENCE, 24000) * np.float32(10 ** (-6 / 20))
    assert audio.size == expected.size and float(np.abs(audio - expected).max()) < 1e-4  # gain applied, rate kept
    cache = TakeCache(tmp_path / "cache")
    key = cache.key(SENTENCE, v, engine)
    assert key == cache.key(SENTENCE, v, engine_class())
    weights = next(p for p in sorted(folder.rglob("*")) if p.is_file())
    files.write_bytes(weights, b"new weights")
    assert cache.key(SENTENCE, v, engine_class()) != key  # new weights: every take made again
    other_clip = wav.write_wav(tmp_path / "other.wav", speech(SENTENCE, 22050), 22050)
    assert cache.key(SENTENCE, voice(engine_class, folder, other_clip, gain_db=-6.0), engine) != \
        cache.key(SENTENCE, v, engine)
    with pytest.raises(UserError, match="was asked to speak empty text"):
        engine.synthesize("  ", v)


def test_f5_is_given_the_checkpoint_vocab_and_local_vocoder(clip, tmp_path, standins):
    folder = checkpoint_dir(tmp_path, F5TtsEngine)
    F5TtsEngine().synthesize(SENTENCE, voice(F5TtsEngine, folder, clip))
    from f5_tts.api import LOADED

    assert LOADED[-1] == {"model": "F5TTS_v1_Base", "ckpt_file": str(folder / "model_1250000.safetensors"),
                          "vocab_file": str(folder / "vocab.txt"), "vocoder_local_path": str(folder / "vocos")}
