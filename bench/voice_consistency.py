"""Is a voice the same voice in every chapter? The cosine between a voice's speaker embeddings on different chapters.

    python bench/voice_consistency.py [VOICE ...]      # default: every bundled voice

Each voice reads about 30 s from the opening of chapters 1, 20 and 40 of Pride and Prejudice; the three
embeddings (Resemblyzer) are compared pairwise, and with the voice's calibration embedding (what casting uses).
The issue's aim is >= 0.95. Prints figures; asserts nothing.
"""

from __future__ import annotations

import sys
import time
from itertools import combinations
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from stages.cast import load_library  # noqa: E402
from stages.engines import get_engine  # noqa: E402
from stages.ingest import read_book  # noqa: E402
from stages.voices.embed import cosine, embed, voice_embedding  # noqa: E402

BOOK = REPO.parent / "shared" / "corpus" / "jane-austen_pride-and-prejudice.epub"
CHAPTERS = (1, 20, 40)
CHARS = 450  # about 30 s of speech


def passage(manuscript, number: int) -> str:
    text = " ".join(s.spoken for s in manuscript.chapter(number).segments if s.kind != "heading")
    return text[: text.rfind(".", 0, CHARS) + 1]


def main(voice_ids: list[str]) -> None:
    manuscript = read_book(BOOK)[0]
    texts = {n: passage(manuscript, n) for n in CHAPTERS}
    library = load_library()
    worst = 1.0
    for vid in voice_ids or sorted(library):
        started = time.perf_counter()
        voice, engine = library[vid], get_engine(library[vid].engine)
        vectors = {n: embed(engine.synthesize(t, voice), engine.sample_rate) for n, t in texts.items()}
        pairs = [cosine(vectors[a], vectors[b]) for a, b in combinations(CHAPTERS, 2)]
        calib = [cosine(vectors[n], voice_embedding(voice)) for n in CHAPTERS]
        worst = min(worst, *pairs)
        print(f"{vid:12s} chapter pairs {' '.join(f'{c:.3f}' for c in pairs)}   vs calibration "
              f"{' '.join(f'{c:.3f}' for c in calib)}   ({time.perf_counter() - started:.0f} s)")
    print(f"lowest chapter-to-chapter cosine: {worst:.3f} (aim >= 0.95)")


if __name__ == "__main__":
    main(sys.argv[1:])
