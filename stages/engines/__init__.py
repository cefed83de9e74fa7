"""TTS engines behind one small interface, looked up by name.

An engine turns text into mono float32 audio for a voice. Its `fingerprint` names the engine,
its version and a hash of its model, so a new model never reuses audio cached from the old one.
"""

from __future__ import annotations

import importlib
from typing import Protocol

import numpy as np

from stages.errors import UserError
from stages.model import Voice

# name -> "module:Class"; a module is imported only when its engine is asked for
ENGINES: dict[str, str] = {
    "piper": "stages.engines.piper:PiperEngine",
    "piper-torch": "stages.engines.piper_torch:PiperTorchEngine",  # the same voices in torch, batched (CPU or CUDA)
    # zero-shot neural engines on their own servers, reached over HTTP (stages/engines/http_common.py)
    "gpt-sovits": "stages.engines.gpt_sovits:GptSovitsEngine",
    "cosyvoice": "stages.engines.cosyvoice:CosyVoiceEngine",
    "fish-speech": "stages.engines.fish_speech:FishSpeechEngine",
    "openai-speech": "stages.engines.openai_speech:OpenAISpeechEngine",
    # zero-shot neural engines in this process, from a local checkpoint (stages/engines/zero_shot_local.py)
    "f5-tts": "stages.engines.zero_shot_local:F5TtsEngine",
    "cosyvoice-local": "stages.engines.zero_shot_local:CosyVoiceLocalEngine",
}

_LOADED: dict[str, Engine] = {}


class Engine(Protocol):
    name: str
    sample_rate: int
    languages: tuple[str, ...]  # language prefixes it can speak, e.g. ("en",)

    def fingerprint(self, voice: Voice) -> str:
        """Return a string that changes whenever the audio for `voice` could change."""
        ...

    def synthesize(self, text: str, voice: Voice) -> np.ndarray:
        """Return mono float32 audio in [-1, 1] at `sample_rate`."""
        ...


def get_engine(name: str) -> Engine:
    """Return the engine registered as `name`, loading it once per process."""
    if name not in ENGINES:
        raise UserError(f"unknown engine {name!r}; choose one of: {', '.join(ENGINES)}")
    if name not in _LOADED:
        module_name, _, class_name = ENGINES[name].partition(":")
        _LOADED[name] = getattr(importlib.import_module(module_name), class_name)()
    return _LOADED[name]


def speaks(engine: Engine, language: str) -> bool:
    """Return True if `engine` can speak `language` (a BCP 47 tag)."""
    primary = language.lower().split("-")[0]
    return primary in engine.languages
