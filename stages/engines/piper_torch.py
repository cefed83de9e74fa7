"""The Piper voices run by the torch VITS (stages/engines/vits_torch.py): many segments per call, CPU or CUDA.

Text is phonemized by piper-tts (its built-in espeak) exactly as the `piper` engine does; the ids of
every sentence of every segment in a batch go through the model together and each segment's
sentences are joined again. The voice card's length, reshaping and gain apply as for `piper`. Noise
is off by default and seeded when on, so takes are repeatable. Takes differ from onnxruntime's by
float rounding only (correlation 1.000000), but the fingerprint names torch, so the two engines
never share cached takes. No word timings of its own yet: Whisper times the words (stages/align.py).
"""

from __future__ import annotations

import json
import threading
from functools import cache
from importlib.metadata import version

import numpy as np

from stages.engines.piper import BUNDLED_MODEL, _file_sha256, _load_voice, _reshapes, finish_take, model_files
from stages.engines.piper import voice_length_scale
from stages.errors import UserError
from stages.model import Voice

NOISE_SEED = 0


@cache
def _model(model: str):
    from stages.engines.vits_torch import load_piper_onnx

    return load_piper_onnx(model_files(model)[0])


@cache
def _config(model: str) -> tuple[int, float]:
    """Return the voice's sample rate and default length scale, from its .onnx.json."""
    config = json.loads(model_files(model)[1].read_text(encoding="utf-8"))
    return int(config["audio"]["sample_rate"]), float(config.get("inference", {}).get("length_scale", 1.0))


@cache
def _fingerprint(model: str, reshaped: bool) -> str:
    import torch

    parts = [f"vits-torch={torch.__version__}", f"model={_file_sha256(model_files(model)[0])}"]
    if reshaped:
        parts.append(f"praat-parselmouth={version('praat-parselmouth')}")
    return ";".join(parts)


class PiperTorchEngine:
    """Piper voices in torch, batched; `synthesize_ids` is what the scheduler (stages/schedule.py) calls."""

    name = "piper-torch"
    sample_rate = 22050
    languages = ("en",)

    def __init__(self) -> None:
        self._phonemizers: dict[str, object] = {}
        self._lock = threading.Lock()

    def fingerprint(self, voice: Voice) -> str:
        return _fingerprint(voice.params.get("model", BUNDLED_MODEL), _reshapes(voice.params))

    def phoneme_ids(self, text: str, voice: Voice) -> list[list[int]]:
        """Return the phoneme ids of each sentence of `text`, as piper-tts makes them."""
        if not text or not text.strip():
            raise UserError(f"Piper in torch was asked to speak empty text with voice {voice.id!r}; a segment must "
                            "contain words (fix the manuscript, or the lexicon entry that emptied it)")
        model = voice.params.get("model", BUNDLED_MODEL)
        with self._lock:
            if model not in self._phonemizers:
                self._phonemizers[model] = _load_voice(model)
            piper_voice = self._phonemizers[model]
            return [piper_voice.phonemes_to_ids(p) for p in piper_voice.phonemize(text) if p]

    def synthesize(self, text: str, voice: Voice) -> np.ndarray:
        return self.synthesize_ids([self.phoneme_ids(text, voice)], voice)[0]

    def synthesize_ids(self, segments: list[list[list[int]]], voice: Voice, device: str | None = None) -> list[np.ndarray]:
        """Return one take per segment (given as its sentences' phoneme ids), all sentences in one batch."""
        from stages.engines.vits_torch import synthesize_batch

        params = voice.params
        name = params.get("model", BUNDLED_MODEL)
        model, (rate, default_length) = _model(name), _config(name)
        sentences = [ids for seg in segments for ids in seg]
        made = synthesize_batch(
            model, sentences, length_scale=voice_length_scale(params, default_length) or default_length,
            noise_scale=params.get("noise_scale", 0.0), noise_w_scale=params.get("noise_w_scale", 0.0),
            device=device, seed=NOISE_SEED,
        )
        self.sample_rate = rate
        takes, at = [], 0
        for seg in segments:
            pieces = [audio for audio, _ in made[at : at + len(seg)]]
            at += len(seg)
            raw = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
            takes.append(finish_take(np.clip(raw, -1.0, 1.0), rate, params))
        return takes
