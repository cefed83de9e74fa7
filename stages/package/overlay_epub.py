"""The read-along EPUB written again in a fraction of the time when one chapter of a novel changed.

A chapter's XHTML and SMIL are made from the manuscript's chapter, its sync map and its MP3 (and the code
that writes them). A stamp in the book's work folder files, by a digest of the first two and the code, the
MP3's size and mtime and the overlay's length of every chapter of the EPUB last written; a chapter whose
digest and MP3 still match is taken from that EPUB as it is, so only changed chapters are made again.
The stamp counts only while the EPUB is the one it describes (the same size and mtime); the audio is
copied in again every time (the zip is always written whole, atomically).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from stages import files
from stages.errors import UserError
from stages.model import Chapter, Manuscript
from stages.package import epubzip, overlay, sync
from stages.package.overlay import (
    BOOK_CSS,
    CONTAINER_XML,
    MODIFIED_FORMAT,
    OPF_PATH,
    chapter_smil,
    chapter_xhtml,
    nav_xhtml,
    overlay_chapter,
    package_opf,
    sync_map_path,
)

_MODIFIED = re.compile(r'<meta property="dcterms:modified">([^<]*)</meta>')


@dataclass(frozen=True)
class PackedChapter:
    """One chapter as it goes into the EPUB: its documents, its MP3 and the length its overlay plays."""

    chapter: Chapter
    mp3: Path
    duration_ms: int
    xhtml: str
    smil: str
    key: str  # what the documents were made from (see chapter_key); the rebuild stamp files them under it
    mp3_facts: dict  # the audio file's size and mtime_ns when the documents were made

    @property
    def name(self) -> str:
        return self.chapter.id

    @property
    def audio(self) -> str:
        return overlay.audio_member(self.chapter, self.mp3)


@functools.cache
def _code_key() -> str:
    """Return a digest of the code that writes a chapter's documents: a changed writer makes every chapter anew."""
    return hashlib.sha256(Path(overlay.__file__).read_bytes() + Path(sync.__file__).read_bytes()).hexdigest()


def chapter_key(chapter: Chapter, language: str, sync_path: Path) -> str:
    """Return the digest of what a chapter's XHTML and SMIL are made from: the chapter, its sync map, the code."""
    parts = (_code_key(), language, repr(chapter))
    return hashlib.sha256("\0".join(parts).encode() + b"\0" + Path(sync_path).read_bytes()).hexdigest()


def pack_chapter(chapter: Chapter, album_dir: Path, language: str, audio: Path | None = None) -> PackedChapter:
    """Return the chapter's documents, made from its sync map in `album_dir` and its `audio` (default: its MP3)."""
    key = chapter_key(chapter, language, sync_map_path(chapter, album_dir))
    item = overlay_chapter(chapter, album_dir, audio)
    return PackedChapter(chapter, item.mp3, item.duration_ms, chapter_xhtml(chapter, language, item.words),
                         chapter_smil(item), key, _file_facts(item.mp3))


def _file_facts(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _reused(chapter: Chapter, album_dir: Path, language: str, made: dict, old,
            audio: Path | None) -> PackedChapter | None:
    """Return the chapter as the previous EPUB `old` holds it if nothing it is made from changed since, else None."""
    key = chapter_key(chapter, language, sync_map_path(chapter, album_dir))  # the sync map names its MP3
    entry = made.get(key)
    mp3 = Path(album_dir) / entry["mp3"] if entry else None  # a plain name is the album's MP3, else a path
    if mp3 is not None and (mp3 != Path(audio) if audio is not None else mp3.parent != Path(album_dir)):
        return None  # the EPUB holds other audio for it (its MP3 where its AAC part is wanted, or the reverse)
    facts = _file_facts(mp3) if mp3 is not None and mp3.is_file() else None
    if facts is None or facts != {k: entry.get(k) for k in facts}:
        return None
    try:
        xhtml, smil = (old.read(f"OEBPS/{chapter.id}.{ext}").decode("utf-8") for ext in ("xhtml", "smil"))
    except (KeyError, zipfile.BadZipFile, UnicodeDecodeError):
        return None
    return PackedChapter(chapter, mp3, entry["duration_ms"], xhtml, smil, key, facts)


def _previous_build(stamp: Path | None, out: Path) -> dict:
    """Return the stamp's chapters (by key) if it describes the EPUB now at `out`, else {}."""
    try:
        recorded = json.loads(Path(stamp).read_text(encoding="utf-8")) if stamp else {}
        chapters = recorded["chapters"] if recorded.get("epub") == _file_facts(Path(out)) else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}
    valid = isinstance(chapters, dict) and all(isinstance(entry, dict) for entry in chapters.values())
    return chapters if valid else {}


def _members(manuscript: Manuscript, packed: Sequence[PackedChapter], modified: datetime):
    """Return the EPUB's audio members (name, MP3 file) and text members (name, text), in the order written."""
    texts = [("META-INF/container.xml", CONTAINER_XML), (OPF_PATH, package_opf(manuscript, packed, modified=modified)),
             ("OEBPS/nav.xhtml", nav_xhtml(manuscript, packed)), ("OEBPS/style.css", BOOK_CSS)]
    for p in packed:
        texts += [(f"OEBPS/{p.name}.xhtml", p.xhtml), (f"OEBPS/{p.name}.smil", p.smil)]
    return [(f"OEBPS/{p.audio}", p.mp3) for p in packed], texts


def _holds(old: zipfile.ZipFile, manuscript: Manuscript, packed: Sequence[PackedChapter]) -> bool:
    """Return whether the EPUB `old`, whose chapters are `packed`, is what writing `manuscript` would make anew."""
    if not (found := _MODIFIED.search(old.read(OPF_PATH).decode("utf-8"))):
        return False
    audio, texts = _members(manuscript, packed, datetime.strptime(found.group(1), MODIFIED_FORMAT))
    if old.namelist() != ["mimetype", *(name for name, _ in audio), *(name for name, _ in texts)]:
        return False
    book_texts = texts[:-2 * len(packed)]  # the chapters' own are those `old` holds: see _reused
    return all(old.read(name).decode("utf-8") == text for name, text in book_texts)


@dataclass(frozen=True)
class EpubPlan:
    """What write_planned writes: the chapters packed (the changed ones made anew), or nothing at all."""

    manuscript: Manuscript
    out: Path
    packed: tuple[PackedChapter, ...]
    album_dir: Path
    stamp: Path | None
    unchanged: bool  # the EPUB at `out` already is what writing would make


def plan_overlay_epub(manuscript: Manuscript, album_dir: Path, out: Path, *, stamp: Path | None = None,
                      audio: dict[int, Path] | None = None) -> EpubPlan:
    """Return the plan for the EPUB of `manuscript`'s chapters in `album_dir`: each chapter's documents, taken
    from the EPUB at `out` where nothing they are made from changed (see the module's docstring). `audio` gives
    chapters (by number) their audio file, such as the AAC part the M4B is joined from; the rest use their MP3."""
    audio = audio or {}
    if not manuscript.chapters:
        raise UserError(f"manuscript {manuscript.slug!r} has no chapters; ingest the book again")
    made, packed, fresh = _previous_build(stamp, out), [], 0
    with contextlib.ExitStack() as stack:
        try:
            old = stack.enter_context(zipfile.ZipFile(out)) if made else None
        except (OSError, zipfile.BadZipFile):
            made, old = {}, None
        for chapter in manuscript.chapters:
            chosen = audio.get(chapter.number)
            reused = _reused(chapter, album_dir, manuscript.language, made, old, chosen) if made else None
            fresh += reused is None
            packed.append(reused or pack_chapter(chapter, album_dir, manuscript.language, chosen))
        unchanged = old is not None and not fresh and _holds(old, manuscript, packed)
    return EpubPlan(manuscript, Path(out), tuple(packed), Path(album_dir), stamp, unchanged)


def write_planned(plan: EpubPlan) -> Path:
    """Write the EPUB `plan` describes (nothing when it is unchanged), atomically; return its path."""
    return commit_planned(plan, stage_planned(plan))


def stage_planned(plan: EpubPlan) -> files.Staged | None:
    """Write the EPUB `plan` describes under a temporary name (see files.Staged); None when it is unchanged."""
    if plan.unchanged:
        return None  # nothing changed: the EPUB there is the one this call would write
    return epubzip.stage_epub(plan.out, *_members(plan.manuscript, plan.packed, datetime.now(timezone.utc)))


def commit_planned(plan: EpubPlan, staged: files.Staged | None) -> Path:
    """Put the `staged` EPUB of `plan` in place (synced, renamed) and record what it holds; return its path."""
    if staged is None:
        return plan.out
    staged.commit()
    if plan.stamp:
        chapters = {p.key: {"mp3": _stamp_name(p.mp3, plan.album_dir), **p.mp3_facts, "duration_ms": p.duration_ms}
                    for p in plan.packed}
        files.write_json(Path(plan.stamp), {"epub": _file_facts(plan.out), "chapters": chapters})
    return plan.out


def _stamp_name(audio: Path, album_dir: Path) -> str:
    """Return how the stamp names a chapter's audio: an MP3 of the album by its name, another file by its path."""
    return audio.name if audio.parent == Path(album_dir) else str(audio)


def write_overlay_epub(manuscript: Manuscript, album_dir: Path, out: Path, *, stamp: Path | None = None,
                       audio: dict[int, Path] | None = None) -> Path:
    """Write the EPUB of `manuscript`'s chapters in `album_dir` to `out`, remaking only what changed; return `out`;
    `audio` as for plan_overlay_epub."""
    return write_planned(plan_overlay_epub(manuscript, album_dir, out, stamp=stamp, audio=audio))
