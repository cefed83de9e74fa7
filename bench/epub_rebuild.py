"""Time the read-along EPUB of a rendered album: a full write, a re-write after one chapter's MP3 changed, the check.

    python bench/epub_rebuild.py --album DIR --manuscript FILE [--work DIR] [--chapter N] [--repeat K] [--verify]

The album folder is not written to: its MP3s and sync maps are hard-linked (or copied, across file systems)
into WORK/album (default /tmp/epub-rebuild), where chapter N's MP3 (default 15) is then replaced by a copy
with one more ID3 tag (new bytes, same audio). Prints wall seconds of each step (the re-writes and the check
K times each, default 3: the fastest, then all, as the machine is shared). --verify also builds the
second EPUB from scratch and says whether its members equal the re-written one's (dcterms:modified aside).
Targets on 2 cores, Pride and Prejudice (61 chapters, ~1 GB EPUB): re-write <= 1.5 s, check <= 1.0 s.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stages import files  # noqa: E402
from stages.model import Manuscript  # noqa: E402
from stages.package import overlay  # noqa: E402
from stages.produce import chapter_stem  # noqa: E402

MODIFIED = re.compile(rb'<meta property="dcterms:modified">[^<]*</meta>')


def shadow_album(album: Path, work: Path) -> Path:
    """Return WORK/album holding links to the album's MP3s and sync maps (a fresh folder each run)."""
    shadow = work / "album"
    shutil.rmtree(shadow, ignore_errors=True)
    shadow.mkdir(parents=True)
    for src in album.iterdir():
        if src.name.endswith((".mp3", ".sync.json")):
            try:
                os.link(src, shadow / src.name)
            except OSError:
                shutil.copy2(src, shadow / src.name)
    return shadow


def retag(mp3: Path) -> None:
    """Replace `mp3` (atomically, a new file) by a copy carrying one more ID3 comment: new bytes, same audio."""
    import mutagen.id3

    with files.atomic_path(mp3) as tmp:
        shutil.copyfile(mp3, tmp)
        tags = mutagen.id3.ID3(tmp)
        tags.add(mutagen.id3.COMM(encoding=3, lang="eng", desc="bench", text=f"retagged {time.time()}"))
        tags.save(tmp)


def members(epub: Path) -> dict[str, bytes]:
    """Return every member's bytes by name, the OPF's dcterms:modified blanked."""
    with zipfile.ZipFile(epub) as z:
        return {i.filename: MODIFIED.sub(b"", z.read(i)) for i in z.infolist()}


def timed(label: str, fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    print(f"{label:<34} {time.perf_counter() - start:6.2f} s", flush=True)
    return result


def best(label: str, repeat: int, fn, *args, **kwargs):
    """Run `fn` `repeat` times; print the fastest wall time and every one; return its last result."""
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        seconds.append(time.perf_counter() - start)
    print(f"{label:<34} {min(seconds):6.2f} s  ({' '.join(f'{s:.2f}' for s in seconds)})", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--album", type=Path, required=True)
    parser.add_argument("--manuscript", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/epub-rebuild"))
    parser.add_argument("--chapter", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=3, help="time each re-write and check this many times")
    parser.add_argument("--verify", action="store_true")
    args = parser.parse_args()

    manuscript = Manuscript.load(args.manuscript)
    album = shadow_album(args.album, args.work)
    produced = manuscript.with_chapters(
        [c for c in manuscript.chapters if (album / f"{chapter_stem(c.number, c.title)}.sync.json").is_file()]
    )
    out = args.work / f"{manuscript.slug}.epub"
    out.unlink(missing_ok=True)
    stamp = args.work / "epub.json"
    stamp.unlink(missing_ok=True)
    kwargs = {"stamp": stamp}
    print(f"{len(produced.chapters)} chapters from {args.album}; best of {args.repeat} where repeated")
    timed("full write", overlay.write_overlay_epub, produced, album, out, **kwargs)
    print(f"{'EPUB size':<34} {out.stat().st_size / 1e6:6.0f} MB")
    best("write again, nothing changed", args.repeat, overlay.write_overlay_epub, produced, album, out, **kwargs)
    (changed,) = [c for c in produced.chapters if c.number == args.chapter]
    mp3 = album / f"{chapter_stem(changed.number, changed.title)}.mp3"

    def rewrite():
        retag(mp3)
        start = time.perf_counter()
        overlay.write_overlay_epub(produced, album, out, **kwargs)
        return time.perf_counter() - start

    seconds = [rewrite() for _ in range(args.repeat)]
    print(f"{f're-write, chapter {args.chapter} MP3 changed':<34} {min(seconds):6.2f} s  "
          f"({' '.join(f'{s:.2f}' for s in seconds)})")
    problems = best("check_overlays", args.repeat, overlay.check_overlays, out)
    print(f"problems: {len(problems)}", *problems[:3], sep="\n  ")
    if args.verify:
        scratch = args.work / "scratch.epub"
        overlay.write_overlay_epub(produced, album, scratch)  # no stamp: every chapter made anew
        same = members(out) == members(scratch)
        print(f"re-written EPUB's members equal a from-scratch build's: {same}")
        scratch.unlink()


if __name__ == "__main__":
    main()
