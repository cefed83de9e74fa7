"""Render the first chapters of Pride and Prejudice end to end and print where the time goes.

    python bench/render_chapters.py [--chapters 1-3] [--book PATH]

Prints: audio seconds, engine-only synthesis seconds, end-to-end wall seconds (cold cache), their
ratio (target <= 1.10), peak RSS, and the wall time of a second run with every take cached.
The Prefect server starts before the clock does (a no-op flow warms it up).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import flows  # noqa: E402,F401  (Prefect defaults)
from prefect import flow  # noqa: E402

from flows.produce import produce_flow  # noqa: E402

DEFAULT_BOOK = REPO.parent / "shared" / "corpus" / "jane-austen_pride-and-prejudice.epub"


@flow(name="warm-up")
def warm_up() -> None:
    """Start Prefect's local server so its start-up is not counted."""


def peak_rss_mib() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--book", type=Path, default=DEFAULT_BOOK)
    parser.add_argument("--chapters", default="1-3")
    parser.add_argument("--keep", action="store_true", help="keep the workspace and print its path")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-render-"))
    warm_up()
    started = time.perf_counter()
    cold = produce_flow(args.book, root, chapters=args.chapters, interactive=False)
    cold_s = time.perf_counter() - started
    started = time.perf_counter()
    warm = produce_flow(args.book, root, chapters=args.chapters, interactive=False)
    warm_s = time.perf_counter() - started
    audio_s = sum(c["duration_s"] for c in cold["chapters"])
    own, children = peak_rss_mib()
    print(f"book                 {args.book.name}, chapters {args.chapters} ({len(cold['chapters'])})")
    print(f"segments             {cold['synthesized']} synthesized, {cold['cached']} cached (cold run)")
    print(f"audio                {audio_s:8.1f} s")
    print(f"engine-only synth    {cold['engine_s']:8.1f} s  ({audio_s / cold['engine_s']:.1f}x real time)")
    print(f"end-to-end wall      {cold_s:8.1f} s  ({audio_s / cold_s:.1f}x real time)")
    print(f"end-to-end / engine  {cold_s / cold['engine_s']:8.3f}    (target <= 1.10)")
    print(f"peak RSS             {own:8.0f} MiB (this process), {children:.0f} MiB (largest child: ffmpeg)")
    print(f"second run (cached)  {warm_s:8.1f} s  ({warm['synthesized']} synthesized)")
    if args.keep:
        print(f"workspace            {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
