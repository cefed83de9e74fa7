"""Word timings from speech recognition against the engine's own: median and p90 word-boundary error.

    python bench/word_timing.py [N] [--dev]     # default: 24 sentences

Synthesizes N Pride and Prejudice sentences with the bundled voice (en_US-joe-medium), takes Piper's
phoneme-alignment word boundaries as the reference, times the same takes through the Whisper path
(stages/align.py: Whisper tiny.en word timestamps aligned to the known words, then fitted to the
take's pauses) and prints the absolute error of every word start and end, in ms. Target: median
<= 50 ms. `--dev` uses the sentences the Whisper path's constants were tuned on instead of the
held-out ones. Prints figures; asserts nothing.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from stages import align, asr  # noqa: E402
from stages.cache import TakeCache  # noqa: E402
from stages.engines.piper import BUNDLED_MODEL, PiperEngine  # noqa: E402
from stages.model import Segment, Voice  # noqa: E402
from stages.normalize import normalize  # noqa: E402

BOOK = REPO.parent / "shared" / "corpus" / "jane-austen_pride-and-prejudice.txt"
SENTENCES = 24
HELD_OUT = slice(300_000, 360_000)  # characters of the book the measured sentences come from
DEV = slice(60_000, 100_000)  # the sentences the constants in stages/align.py were tuned on
TARGET_MEDIAN_MS = 50.0


def sentences(span: slice, count: int) -> list[str]:
    raw = BOOK.read_text(encoding="utf-8")[span]
    found = [" ".join(s.split()) for s in re.split(r"(?<=[.!?])\s+", raw)]
    return [s for s in found if 40 < len(s) < 220 and "_" not in s][:count]


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    count = int(args[0]) if args else SENTENCES
    texts = sentences(DEV if "--dev" in sys.argv else HELD_OUT, count)
    engine = PiperEngine(sessions=1)
    voice = Voice(id="joe", name="Joe", params={"model": BUNDLED_MODEL})
    starts, ends, raw_errors = [], [], []
    audio_s = asr_s = 0.0
    words = 0
    with tempfile.TemporaryDirectory() as tmp:
        cache = TakeCache(Path(tmp))
        for n, text in enumerate(texts):
            seg = Segment(id=f"b{n:03d}", text=text, spoken=normalize(text, "en").text)
            audio, engine_words = engine.synthesize_timed(seg.spoken, voice)
            take = cache.put(seg.id, f"{n:064x}", audio, engine.sample_rate, words=engine_words)
            audio_s += take.duration_s
            _, ref = align.spoken_times(seg, take, engine_words=engine_words, language="en", transcribe=None)
            began = time.perf_counter()
            source, got = align.spoken_times(seg, take, engine_words=None, language="en",
                                             transcribe=asr.transcribe_take)
            asr_s += time.perf_counter() - began
            heard = asr.transcribe_take(take).words
            raw = align.transfer(*align.heard_words(heard, "en"), [t.text for t in align.tokens(seg.spoken)],
                                 (0.0, take.duration_s))
            words += len(ref)
            for (rs, re_), (gs, ge), (ws, we) in zip(ref, got, raw):
                starts.append(abs(gs - rs) * 1000)
                ends.append(abs(ge - re_) * 1000)
                raw_errors += [abs(ws - rs) * 1000, abs(we - re_) * 1000]
    both = np.array(starts + ends)
    print(f"{len(texts)} sentences, {words} words, {audio_s:.1f} s of audio; Whisper path {asr_s:.1f} s "
          f"({audio_s / max(asr_s, 1e-9):.1f}x real time), model {asr.model_name()}")
    print(f"word-boundary error (ms), {both.size} boundaries: median {np.median(both):.1f}, "
          f"p90 {np.percentile(both, 90):.1f}, mean {both.mean():.1f}  (target median <= {TARGET_MEDIAN_MS:.0f})")
    print(f"  word starts: median {np.median(starts):.1f}, p90 {np.percentile(starts, 90):.1f}")
    print(f"  word ends:   median {np.median(ends):.1f}, p90 {np.percentile(ends, 90):.1f}")
    print(f"  within 50 ms: {np.mean(both <= 50) * 100:.1f}%, within 100 ms: {np.mean(both <= 100) * 100:.1f}%")
    print(f"Whisper's own word times, aligned but not fitted: median {np.median(raw_errors):.1f}, "
          f"p90 {np.percentile(raw_errors, 90):.1f}")


if __name__ == "__main__":
    main()
