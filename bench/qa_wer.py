"""Take QA on a whole chapter: WER before and after retakes, what was retaken and flagged, and what it cost.

    python bench/qa_wer.py [--chapter 1] [--book PATH] [--retakes 4]

Renders one chapter of Pride and Prejudice (default chapter 1: 66 takes, about 4 minutes) with the
bundled voice (en_US-joe-medium) for every line, into a fresh take cache, then hears every take
with the bundled Whisper tiny.en and retakes the failing ones, as a production run does. The WER
before retakes counts each retaken take's first attempt, as its stored verdict records it.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_BOOK = ROOT.parent / "shared" / "corpus" / "jane-austen_pride-and-prejudice.epub"

from stages.qa import RETAKES  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--book", type=Path, default=DEFAULT_BOOK)
    parser.add_argument("--chapter", type=int, default=1)
    parser.add_argument("--retakes", type=int, default=RETAKES)
    parser.add_argument("--work", type=Path, default=None, help="workspace folder (default: a new temporary one)")
    args = parser.parse_args()

    from stages.cache import TakeCache
    from stages.cast import Casting, load_library
    from stages.ingest import ingest
    from stages.model import NARRATOR
    from stages.qa import QaConfig, stamp, stored_verdict
    from stages.render import chapter_qa, render_chapter

    work = args.work or Path(tempfile.mkdtemp(prefix="qa-wer-"))
    manuscript = ingest(args.book, lambda slug: work / "manuscripts" / slug)
    chapter = manuscript.chapter(args.chapter)
    library = load_library()
    common = dict(casting=Casting({NARRATOR: "joe"}), library=library, cache=TakeCache(work / "cache"))
    language = manuscript.language

    started = time.perf_counter()
    takes, stats = render_chapter(chapter, **common)
    render_s = time.perf_counter() - started
    print(f"{manuscript.title}, {chapter.title}: {len(chapter.segments)} segments, {stats.audio_s:.1f} s of audio "
          f"({stats.synthesized} synthesized), render {render_s:.1f} s wall, engine {stats.engine_s:.1f} s")

    config = QaConfig(retakes=args.retakes)
    started = time.perf_counter()
    takes, stats = render_chapter(chapter, **common, qa=config, language=language)
    wall = time.perf_counter() - started
    report = chapter_qa(chapter, takes, qa=config, language=language)
    verdicts = [stored_verdict(takes[s.id].path, stamp(config, language, [])) for s in chapter.segments]
    verdicts = [v for v in verdicts if v is not None and v.checked]
    words = sum(v.words for v in verdicts)
    before = sum(v.errors if v.first_errors is None else v.first_errors for v in verdicts)
    after = sum(v.errors for v in verdicts)
    print(f"take QA, up to {args.retakes} retakes (max WER {config.max_wer:.0%} a take, at least "
          f"{config.min_errors} wrong words): {report['checked']} takes heard by {report['asr']}")
    print(f"  WER before retakes {before / words:.2%} ({before} of {words} words), "
          f"after {after / words:.2%} ({after} of {words}); report says {report['wer']:.2%}")
    print(f"  passed {report['passed']}, retaken {report['retaken']}, flagged {len(report['flagged'])}, "
          f"not checked {report['not_checked']}")
    print(f"  QA wall {wall:.1f} s: ASR {stats.asr_s:.1f} s ({stats.asr_s / stats.audio_s:.3f} x the audio), "
          f"retake synthesis {stats.engine_s:.1f} s ({stats.retakes} retakes made)")
    for flag in report["flagged"]:
        print(f"  flagged {flag['segment']}: {flag['reason']}; heard {flag['heard']!r}")
    print(f"\nworkspace: {work}")


if __name__ == "__main__":
    main()
