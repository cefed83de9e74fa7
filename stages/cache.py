"""The content-addressed take cache: one WAV per (spoken text, voice parameters, engine + model).

A take is written to a temporary name and renamed into place, so after any interruption a take
is either complete or absent. Resuming a render is "the file for this key already exists".
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
import wave
from pathlib import Path

import numpy as np

from stages import files
from stages.engines import Engine
from stages.model import Take, Voice

CACHE_LAYOUT = 1  # bump when the key recipe changes


def normalize_text(text: str) -> str:
    """Return the text as the cache sees it: NFC, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFC", text).split())


class TakeCache:
    """Takes stored as 16-bit mono WAV under `root/takes/<k[:2]>/<key>.wav`."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def key(self, text: str, voice: Voice, engine: Engine) -> str:
        """Return the sha256 key for speaking `text` with `voice` on `engine`."""
        recipe = {
            "layout": CACHE_LAYOUT,
            "text": normalize_text(text),
            "engine": engine.name,
            "fingerprint": engine.fingerprint(voice),
            "params": voice.params,
        }
        blob = json.dumps(recipe, sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / "takes" / key[:2] / f"{key}.wav"

    def get(self, segment_id: str, key: str) -> Take | None:
        """Return the cached take for `key`, or None when it was never completed."""
        path = self.path(key)
        try:
            with wave.open(str(path), "rb") as w:
                return Take(segment_id, key, str(path), w.getframerate(), w.getnframes())
        except (FileNotFoundError, EOFError, wave.Error):
            return None

    def put(self, segment_id: str, key: str, audio: np.ndarray, sample_rate: int) -> Take:
        """Store `audio` (float32 in [-1, 1]) under `key` atomically and return its take."""
        path = self.path(key)
        pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2")
        with files.atomic_path(path) as tmp:
            with wave.open(str(tmp), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(sample_rate)
                w.writeframes(pcm.tobytes())
        return Take(segment_id, key, str(path), sample_rate, len(pcm))
