"""Zero-shot neural engines in this process (torch), for users who have the weights: F5-TTS and CosyVoice2.

Nothing is downloaded: each voice card names a local checkpoint directory, and a missing package or
file is an error saying what is needed and where it goes. The reference clip and its words clone
the voice, as for the HTTP adapters (same card keys: reference_audio, reference_dir,
reference_text). Takes are seeded (`seed`, default 0), so a retake can ask for another seed. The
fingerprint hashes the checkpoint and the clip, so new weights or a new clip re-render the voice.
These models generate one text at a time (their own chunking inside a call), so the book-wide
scheduler does not batch them; chapters run them through the usual per-segment path.

- `f5-tts` (engine "f5-tts"): `pip install f5-tts`; checkpoint_dir holds model_*.safetensors (or .pt),
  vocab.txt, and vocos/ (the charactr/vocos-mel-24khz vocoder: config.yaml, pytorch_model.bin). 24 kHz.
- `cosyvoice-local` (engine "cosyvoice-local"): CosyVoice's repository on PYTHONPATH (it has no
  PyPI package); checkpoint_dir is a CosyVoice2-0.5B model folder (cosyvoice2.yaml, llm.pt, flow.pt,
  hift.pt, campplus.onnx, speech_tokenizer_v2.onnx, CosyVoice-BlankEN/). 24 kHz.
"""

from __future__ import annotations

import threading
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from stages.engines import http_common as hc
from stages.errors import UserError
from stages.model import Voice

SAMPLE_RATE_HZ = 24000


def checkpoint(voice: Voice, label: str, needed: dict[str, str]) -> Path:
    """Return the voice's checkpoint_dir after checking it holds every file `needed` (glob -> what it is)."""
    raw = voice.params.get("checkpoint_dir")
    if not raw:
        raise UserError(f"voice {voice.id!r} ({label}) has no checkpoint_dir; set it to the folder holding "
                        f"{', '.join(needed)} (weights are not downloaded here)")
    folder = Path(str(raw)).expanduser()
    missing = [f"{pattern} ({what})" for pattern, what in needed.items() if not any(folder.glob(pattern))]
    if missing:
        raise UserError(f"{label} checkpoint {folder} lacks {'; '.join(missing)}; put the model's files there "
                        f"(voice {voice.id!r}, checkpoint_dir)")
    return folder


def _need_module(module: str, label: str, how: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise UserError(f"{label} needs the Python module {module!r} ({e}); {how}") from None


class _LocalEngine:
    label = ""
    needed: dict[str, str] = {}
    sample_rate = SAMPLE_RATE_HZ

    def __init__(self) -> None:
        self._models: dict[str, object] = {}
        self._lock = threading.Lock()  # one generation at a time per process: the GPU is the bottleneck

    def fingerprint(self, voice: Voice) -> str:
        folder = checkpoint(voice, self.label, self.needed)
        weights = sorted(p for pattern in self.needed for p in folder.glob(pattern) if p.is_file())
        parts = [f"{self.name}={self._version()}", *(f"{p.name}={hc.file_sha256(p)}" for p in weights)]
        parts.append(f"reference={hc.file_sha256(hc.reference_path(voice, self.label))}")
        return ";".join(parts + [f"seed={int(voice.params.get('seed', 0))}"])

    def synthesize(self, text: str, voice: Voice) -> np.ndarray:
        hc.require_text(text, self.label, voice)
        folder = checkpoint(voice, self.label, self.needed)
        clip = hc.reference_path(voice, self.label)
        words = hc.param(voice, "reference_text", self.label, "set it to the exact words spoken in reference_audio")
        with self._lock:
            if str(folder) not in self._models:
                self._models[str(folder)] = self._load(folder, voice)
            audio, rate = self._generate(self._models[str(folder)], text, clip, str(words), int(voice.params.get("seed", 0)))
        audio = hc.to_rate(np.asarray(audio, np.float32).reshape(-1), rate, self.sample_rate)
        gain_db = float(voice.params.get("gain_db", 0.0))
        return (audio * np.float32(10 ** (gain_db / 20))).astype(np.float32) if gain_db else audio

    def _version(self) -> str:
        return "unknown"


class F5TtsEngine(_LocalEngine):
    """F5-TTS (flow matching over a DiT) through its own Python API, from a local checkpoint."""

    name = "f5-tts"
    label = "F5-TTS"
    languages = ("en", "zh")
    needed = {"model_*.*": "the F5-TTS weights, .safetensors or .pt", "vocab.txt": "its vocabulary",
              "vocos/config.yaml": "the vocos-mel-24khz vocoder's config", "vocos/pytorch_model.bin": "its weights"}

    def _version(self) -> str:
        try:
            return version("f5-tts")
        except PackageNotFoundError:
            return "missing"

    def _load(self, folder: Path, voice: Voice):
        api = _need_module("f5_tts.api", self.label, "pip install f5-tts (and torch with CUDA for speed)")
        weights = sorted(folder.glob("model_*.*"))[-1]
        return api.F5TTS(model=str(voice.params.get("model", "F5TTS_v1_Base")), ckpt_file=str(weights),
                         vocab_file=str(folder / "vocab.txt"), vocoder_local_path=str(folder / "vocos"),
                         device=voice.params.get("device"))

    def _generate(self, model, text: str, clip: Path, words: str, seed: int):
        wav, rate, _ = model.infer(ref_file=str(clip), ref_text=words, gen_text=text, seed=seed, remove_silence=False)
        return wav, rate


class CosyVoiceLocalEngine(_LocalEngine):
    """CosyVoice2 in this process (its repository's cosyvoice.cli.cosyvoice.CosyVoice2), zero-shot from a clip."""

    name = "cosyvoice-local"
    label = "CosyVoice (local)"
    languages = ("zh", "en", "ja", "ko", "yue")
    needed = {"cosyvoice2.yaml": "the model config", "llm.pt": "the language model", "flow.pt": "the flow decoder",
              "hift.pt": "the vocoder", "campplus.onnx": "the speaker encoder",
              "speech_tokenizer_v2.onnx": "the speech tokenizer", "CosyVoice-BlankEN": "the text LLM folder"}

    def _load(self, folder: Path, voice: Voice):
        cli = _need_module("cosyvoice.cli.cosyvoice", self.label,
                           "clone FunAudioLLM/CosyVoice, install its requirements and put it (and its "
                           "third_party/Matcha-TTS) on PYTHONPATH")
        return cli.CosyVoice2(str(folder), load_jit=False, load_trt=False, fp16=bool(voice.params.get("fp16", False)))

    def _generate(self, model, text: str, clip: Path, words: str, seed: int):
        import torch

        file_utils = _need_module("cosyvoice.utils.file_utils", self.label, "put CosyVoice's repository on PYTHONPATH")
        torch.manual_seed(seed)
        prompt = file_utils.load_wav(str(clip), 16000)
        pieces = [out["tts_speech"].reshape(-1).cpu().numpy()
                  for out in model.inference_zero_shot(text, words, prompt, stream=False)]
        return (np.concatenate(pieces) if pieces else np.zeros(0, np.float32)), model.sample_rate
