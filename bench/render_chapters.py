"""Render the first chapters of Pride and Prejudice end to end and print where the time goes.

    python bench/render_chapters.py [--chapters 1-3] [--book PATH]

Prints: audio seconds, engine-only synthesis seconds (the same segments synthesized again after
the album runs, on as many threads as the renderer uses, with no cache, mastering or encoding), end-to-end wall seconds (cold cache), their
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
from concurrent.futures import ThreadPoolExecutor
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


def cpu_seconds() -> float:
    """Return the CPU time used so far by this process and its finished children (ffmpeg)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def peak_rss_mib() -> float:
    """Return this process's peak resident memory (ffmpeg children are small and short-lived)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def engine_only_seconds(root: Path, slug: str, chapters: list[int]) -> float:
    """Return the wall seconds the engine alone needs for the same segments, run as the renderer runs
    them (RENDER_THREADS at once) but with no cache, no mastering and no encoding."""
    from stages.cast import Casting, load_library, read_sheet
    from stages.engines import get_engine
    from stages.model import Manuscript
    from stages.render import RENDER_THREADS

    manuscript = Manuscript.load(root / "manuscripts" / slug / "manuscript.json")
    library = load_library()
    casting = Casting(read_sheet(root / "manuscripts" / slug / "cast.toml", library))
    jobs = {(s.spoken, casting.voice_for(s.speaker)) for n in chapters for s in manuscript.chapter(n).segments}

    def speak(job: tuple[str, str]) -> None:
        voice = library[job[1]]
        get_engine(voice.engine).synthesize(job[0], voice)

    started = time.perf_counter()
    with ThreadPoolExecutor(RENDER_THREADS) as pool:
        list(pool.map(speak, sorted(jobs, key=lambda j: -len(j[0]))))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--book", type=Path, default=DEFAULT_BOOK)
    parser.add_argument("--chapters", default="1-3")
    parser.add_argument("--keep", action="store_true", help="keep the workspace and print its path")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-render-"))
    warm_up()
    started, cpu = time.perf_counter(), cpu_seconds()
    cold = produce_flow(args.book, root, chapters=args.chapters, interactive=False)
    cold_s, cold_cpu = time.perf_counter() - started, cpu_seconds() - cpu
    started = time.perf_counter()
    warm = produce_flow(args.book, root, chapters=args.chapters, interactive=False)
    warm_s = time.perf_counter() - started
    audio_s = sum(c["duration_s"] for c in cold["chapters"])
    rss = peak_rss_mib()
    cpu = cpu_seconds()
    engine_s = engine_only_seconds(root, cold["slug"], [c["number"] for c in cold["chapters"]])
    engine_cpu = cpu_seconds() - cpu
    print(f"book                 {args.book.name}, chapters {args.chapters} ({len(cold['chapters'])})")
    print(f"segments             {cold['synthesized']} synthesized, {cold['cached']} cached (cold run)")
    print(f"audio                {audio_s:8.1f} s")
    print(f"engine-only synth    {engine_s:8.1f} s  ({audio_s / engine_s:.1f}x real time)")
    print(f"end-to-end wall      {cold_s:8.1f} s  ({audio_s / cold_s:.1f}x real time)")
    print(f"end-to-end / engine  {cold_s / engine_s:8.3f}    (target <= 1.10)")
    print(f"CPU seconds          {cold_cpu:8.1f} end-to-end, {engine_cpu:.1f} engine-only ({cold_cpu / engine_cpu:.2f}x)")
    print(f"peak RSS             {rss:8.0f} MiB")
    print(f"second run (cached)  {warm_s:8.1f} s  ({warm['synthesized']} synthesized)")
    if args.keep:
        print(f"workspace            {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
