"""The Piper voices run by the torch VITS (stages/engines/vits_torch.py): many segments per call, CPU or CUDA.

Text is phonemized by piper-tts (its built-in espeak) exactly as the `piper` engine does; the ids of
every sentence of every segment in a batch go through the model together and each segment's
sentences are joined again. The voice card's length, reshaping and gain apply as for `piper`. Noise
is off by default and seeded when on, so takes are repeatable. Takes differ from onnxruntime's by
float rounding only (correlation 1.000000), but the fingerprint names torch, so the two engines
never share cached takes. Word timings come from the model's own phoneme durations, as for `piper`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import cache
from types import SimpleNamespace
from importlib.metadata import version

import numpy as np

from stages.engines.piper import BUNDLED_MODEL, _file_sha256, _load_voice, _reshapes, finish_take, model_files
from stages.engines.piper import voice_length_scale, word_times
from stages.errors import UserError
from stages.model import Voice

NOISE_SEED = 0


@dataclass(frozen=True)
class Sentence:
    phonemes: tuple[str, ...]
    ids: tuple[int, ...]


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

    def _phonemizer(self, voice: Voice):
        model = voice.params.get("model", BUNDLED_MODEL)
        with self._lock:
            if model not in self._phonemizers:
                self._phonemizers[model] = _load_voice(model)
            return self._phonemizers[model]

    def sentences(self, text: str, voice: Voice) -> list[Sentence]:
        """Return each sentence of `text` as piper-tts phonemizes it: its phonemes and their ids."""
        if not text or not text.strip():
            raise UserError(f"Piper in torch was asked to speak empty text with voice {voice.id!r}; a segment must "
                            "contain words (fix the manuscript, or the lexicon entry that emptied it)")
        pv = self._phonemizer(voice)
        with self._lock:  # espeak is one per process
            return [Sentence(tuple(p), tuple(pv.phonemes_to_ids(p))) for p in pv.phonemize(text) if p]

    def phoneme_ids(self, text: str, voice: Voice) -> list[list[int]]:
        """Return the phoneme ids of each sentence of `text`, as piper-tts makes them."""
        return [list(s.ids) for s in self.sentences(text, voice)]

    def synthesize(self, text: str, voice: Voice) -> np.ndarray:
        return self.synthesize_timed(text, voice)[0]

    def synthesize_timed(self, text: str, voice: Voice) -> tuple[np.ndarray, list[dict] | None]:
        """Return the take and where each word falls in it, from the model's own phoneme durations."""
        return self.synthesize_segments([text], [self.sentences(text, voice)], voice)[0]

    def synthesize_ids(self, segments: list[list[list[int]]], voice: Voice, device: str | None = None) -> list[np.ndarray]:
        """Return one take per segment (given as its sentences' phoneme ids), all sentences in one batch."""
        return [audio for audio, _ in self._render(segments, voice, device)]

    def synthesize_segments(self, texts: list[str], sentences: list[list[Sentence]], voice: Voice,
                            device: str | None = None) -> list[tuple[np.ndarray, list[dict] | None]]:
        """Return (take, word timings) per segment, all of their sentences in one batch."""
        made = self._render([[list(s.ids) for s in seg] for seg in sentences], voice, device)
        pv = self._phonemizer(voice)
        out = []
        for text, seg, (audio, durations) in zip(texts, sentences, made):
            chunks = [SimpleNamespace(phoneme_alignments=_alignments(pv, s, d)) for s, d in zip(seg, durations)]
            with self._lock:  # word_times phonemizes each word
                out.append((audio, word_times(pv, text, chunks)))
        return out

    def _render(self, segments: list[list[list[int]]], voice: Voice, device: str | None):
        """Return per segment its take and each sentence's samples per phoneme id."""
        from stages.engines.vits_torch import synthesize_batch

        params = voice.params
        name = params.get("model", BUNDLED_MODEL)
        model, (rate, default_length) = _model(name), _config(name)
        made = synthesize_batch(
            model, [ids for seg in segments for ids in seg],
            length_scale=voice_length_scale(params, default_length) or default_length,
            noise_scale=params.get("noise_scale", 0.0), noise_w_scale=params.get("noise_w_scale", 0.0),
            device=device, seed=NOISE_SEED,
        )
        self.sample_rate = rate
        takes, at = [], 0
        for seg in segments:
            pieces = made[at : at + len(seg)]
            at += len(seg)
            raw = np.concatenate([a for a, _ in pieces]) if pieces else np.zeros(0, np.float32)
            takes.append((finish_take(np.clip(raw, -1.0, 1.0), rate, params), [d for _, d in pieces]))
        return takes


def _alignments(pv, sentence: Sentence, durations: np.ndarray) -> list[SimpleNamespace] | None:
    """Return each phoneme of the sentence (start and end marks included) with the samples it lasts.

    piper-tts gives every phoneme its ids followed by the pad id (the end mark has no pad), so the
    ids, and the model's samples per id, are cut back into phonemes in that order.
    """
    from piper.const import BOS, EOS, PAD

    id_map, pad = pv.config.phoneme_id_map, len(pv.config.phoneme_id_map.get(PAD, []))
    out, at = [], 0
    for phoneme in (BOS, *sentence.phonemes, EOS):
        width = len(id_map.get(phoneme, [])) + (pad if phoneme != EOS else 0)
        if at + width > len(durations):
            return None  # ids and phonemes disagree: no word timings rather than wrong ones
        out.append(SimpleNamespace(phoneme=phoneme, num_samples=int(np.sum(durations[at : at + width]))))
        at += width
    return out if at == len(durations) else None
