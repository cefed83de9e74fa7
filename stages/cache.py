"""The content-addressed take cache: one WAV per (spoken text, voice parameters, engine + model).

A take is written to a temporary name and renamed into place, so after any interruption a take
is either complete or absent. Resuming a render is "the file for this key already exists".
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from pathlib import Path

import numpy as np

from stages import files, wav
from stages.engines import Engine
from stages.errors import StageError
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
        if not path.is_file():
            return None
        try:
            info = wav.wav_info(path)
        except StageError:
            return None
        return Take(segment_id, key, str(path), info.sample_rate, info.frames) if info.frames else None

    def words_path(self, key: str) -> Path:
        return self.path(key).with_suffix(".words.json")

    def words(self, key: str) -> list[dict] | None:
        """Return the word timings the engine gave with the take for `key` ({"word", "start_s", "end_s"}), or None."""
        try:
            return json.loads(self.words_path(key).read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def put(
        self, segment_id: str, key: str, audio: np.ndarray, sample_rate: int, words: list[dict] | None = None
    ) -> Take:
        """Store `audio` (float32 in [-1, 1]) under `key` atomically and return its take.

        `words` (the engine's own word timings in the take, if it has them) are written first, so a
        complete WAV always has its timings beside it; a take re-made without them drops stale ones.
        """
        if words is not None:
            files.write_json(self.words_path(key), words)
        else:
            self.words_path(key).unlink(missing_ok=True)
        path = wav.write_wav(self.path(key), audio, sample_rate)
        return Take(segment_id, key, str(path), sample_rate, len(audio))
