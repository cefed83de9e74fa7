"""Speaker embeddings: what a voice sounds like as a 256-number vector, to compare voices by cosine.

Resemblyzer's GE2E speaker encoder runs on the CPU (its weights ship inside the package, so nothing is
downloaded); torch and resemblyzer are imported only when the first embedding is asked for. A library
voice's embedding comes from its stored fingerprint.npy when it has one, else from a fixed calibration
passage synthesized with the voice, cached on disk by the engine's fingerprint and the voice's params.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np

from stages import files
from stages.engines import get_engine
from stages.errors import UserError
from stages.model import Voice

EMBED_SAMPLE_RATE_HZ = 16000  # the encoder's own rate; preprocess_wav resamples to it
EMBEDDING_SIZE = 256
# torch threads for the encoder: on 2 cores one thread embeds a 5 s clip in 0.05 s and two take 0.08 s
# (0.4-1.1 s while Piper sessions or other processes hold a core). Set process-wide on first use.
ENCODER_THREADS = 1
MIN_EMBED_S = 0.5  # less speech than this (after Resemblyzer trims silences) gives no usable embedding
CACHE_LAYOUT = 1  # bump when the cache key recipe changes
# The calibration passage: Aesop's "The North Wind and the Sun" (about 15 s with the bundled voice).
# Enrolment uses it; the threshold calibration in bench/voice_similarity.py probes with other sentences.
CALIBRATION_PASSAGE = (
    "The North Wind and the Sun were disputing which was the stronger, when a traveler came along wrapped in a "
    "warm cloak. They agreed that the one who first succeeded in making the traveler take his cloak off should "
    "be considered stronger than the other."
)

_LOCK = threading.Lock()
_ENCODER = None
_MEMO: dict[str, np.ndarray] = {}  # cache key -> embedding, for this process


def _encoder():
    """Return the process's one Resemblyzer VoiceEncoder on the CPU, loading it on first use."""
    global _ENCODER
    with _LOCK:
        if _ENCODER is None:
            import torch

            with warnings.catch_warnings():  # resemblyzer and webrtcvad import deprecated scipy and setuptools names
                warnings.simplefilter("ignore")
                from resemblyzer import VoiceEncoder
            torch.set_num_threads(ENCODER_THREADS)
            _ENCODER = VoiceEncoder("cpu", verbose=False)
        return _ENCODER


def embed(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Return the unit-norm 256-d speaker embedding of mono `audio` at `sample_rate`."""
    encoder = _encoder()
    from resemblyzer import preprocess_wav

    wav = preprocess_wav(np.asarray(audio, dtype=np.float32).reshape(-1), source_sr=sample_rate)
    if wav.size < MIN_EMBED_S * EMBED_SAMPLE_RATE_HZ:
        raise UserError(f"only {wav.size / EMBED_SAMPLE_RATE_HZ:.2f} s of speech to fingerprint; "
                        f"give a clip with at least a few seconds of speech")
    with _LOCK:  # one forward pass at a time through the shared module
        vector = encoder.embed_utterance(wav)
    vector = np.asarray(vector, dtype=np.float32)
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Return the cosine similarity of two embeddings (1 = same direction)."""
    a, b = np.asarray(a, dtype=np.float64).reshape(-1), np.asarray(b, dtype=np.float64).reshape(-1)
    return float(a @ b / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


def halves_agree(audio: np.ndarray, sample_rate: int) -> float:
    """Return the cosine between the embeddings of the clip's first and second halves (the one-speaker check)."""
    middle = np.asarray(audio).size // 2
    return cosine(embed(audio[:middle], sample_rate), embed(audio[middle:], sample_rate))


def embedding_bytes(vector: np.ndarray) -> bytes:
    """Return `vector` as the bytes of a .npy file (float32)."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(vector, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()


def load_embedding(path: Path) -> np.ndarray:
    """Return the embedding stored in a .npy file, or raise UserError saying how to restore it."""
    try:
        vector = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise UserError(f"{path} is not a readable fingerprint ({e}); add the voice again with "
                        f"`audiobook voices add`") from e
    if vector.shape != (EMBEDDING_SIZE,) or not np.all(np.isfinite(vector)):
        raise UserError(f"{path} holds a {vector.shape} array, not a {EMBEDDING_SIZE}-d fingerprint; add the voice "
                        f"again with `audiobook voices add`")
    return vector.astype(np.float32)


def embedding_key(voice: Voice) -> str:
    """Return the cache key of `voice`'s calibration embedding: engine fingerprint, params, passage, encoder."""
    engine = get_engine(voice.engine)
    recipe = {"layout": CACHE_LAYOUT, "engine": engine.name, "fingerprint": engine.fingerprint(voice),
              "params": voice.params, "passage": CALIBRATION_PASSAGE,
              "encoder": f"resemblyzer={version('resemblyzer')}"}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def voice_embedding(voice, cache_dir: Path | None = None) -> np.ndarray:
    """Return a voice's embedding: a card's stored fingerprint, else its calibration passage's (cached).

    `voice` is a stages.model.Voice or a stages.voices.card.VoiceCard. With `cache_dir` (for example
    <workspace>/output/.cache/embeddings) the embedding is kept on disk; without it, for this process only.
    """
    fingerprint, folder = getattr(voice, "fingerprint", ""), getattr(voice, "folder", None)
    if fingerprint and folder is not None:
        return load_embedding(Path(folder) / fingerprint)
    voice = getattr(voice, "voice", voice)  # a VoiceCard without a fingerprint: its engine voice
    key = embedding_key(voice)
    path = Path(cache_dir) / key[:2] / f"{key}.npy" if cache_dir is not None else None
    if key in _MEMO:
        return _MEMO[key].copy()
    if path is not None and path.is_file():
        try:
            _MEMO[key] = load_embedding(path)
            return _MEMO[key].copy()
        except UserError:
            pass  # a damaged cache entry is made again
    engine = get_engine(voice.engine)
    audio = engine.synthesize(CALIBRATION_PASSAGE, voice)
    vector = embed(audio, engine.sample_rate)
    if path is not None:
        files.write_bytes(path, embedding_bytes(vector))
    _MEMO[key] = vector
    return vector.copy()
