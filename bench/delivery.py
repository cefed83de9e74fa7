"""Measured effect of each delivery (emotion -> speed, pitch, level) against its table value.

    python bench/delivery.py [VOICE ...]        # default: joe joe-alto

Synthesizes 20 Pride and Prejudice sentences (from the middle of the novel) with each voice, neutral and with
every emotion at intensity 1 and 0.5, and prints the geometric-mean duration and median-F0 ratios and the mean
RMS change beside the table's values. Prints figures; asserts nothing.
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

from stages.cast import load_library  # noqa: E402
from stages.delivery import DELIVERIES, deliver  # noqa: E402
from stages.engines import get_engine  # noqa: E402

BOOK = REPO.parent / "shared" / "corpus" / "jane-austen_pride-and-prejudice.txt"
SENTENCES = 20
SPAN = slice(150_000, 190_000)  # characters of the book the sentences come from


def sentences() -> list[str]:
    raw = BOOK.read_text(encoding="utf-8")[SPAN]
    found = [s.strip().replace("\n", " ") for s in re.split(r"(?<=[.!?])\s+", raw)]
    return [s for s in found if 20 < len(s) < 140][:SENTENCES]


def median_f0(audio: np.ndarray, rate: int) -> float:
    import parselmouth

    f0 = parselmouth.Sound(audio.astype(np.float64), rate).to_pitch().selected_array["frequency"]
    return float(np.median(f0[f0 > 0]))


def rms_db(audio: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(audio.astype(np.float64) ** 2))))


def main(voice_ids: list[str]) -> None:
    library, engine = load_library(), get_engine("piper")
    lines = sentences()
    for vid in voice_ids:
        voice = library[vid]
        started = time.perf_counter()
        base = [engine.synthesize(s, voice) for s in lines]
        print(f"{vid}: {len(lines)} sentences, {sum(map(len, base)) / engine.sample_rate:.1f} s of neutral audio")
        for emotion, row in DELIVERIES.items():
            if emotion == "neutral":
                continue
            for k in (1.0, 0.5):
                out = [engine.synthesize(s, deliver(voice, emotion, k)) for s in lines]
                d = np.exp(np.mean([np.log(len(a) / len(b)) for a, b in zip(out, base)]))
                p = np.exp(np.mean([np.log(median_f0(a, engine.sample_rate) / median_f0(b, engine.sample_rate))
                                    for a, b in zip(out, base)]))
                g = np.mean([rms_db(a) - rms_db(b) for a, b in zip(out, base)])
                print(f"  {emotion:9s} i={k}: duration x{d:.3f} (table {row.length_ratio ** k:.3f})  "
                      f"F0 x{p:.3f} (table {row.pitch_ratio ** k:.3f})  RMS {g:+.2f} dB (table {row.gain_db * k:+.2f})")
        print(f"  ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main(sys.argv[1:] or ["joe", "joe-alto"])
