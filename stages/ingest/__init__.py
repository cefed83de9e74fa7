"""Ingest: read a book file (EPUB, .txt, .md) into the manuscript, the pipeline's single source of truth.

`read_book` is pure; `ingest` writes manuscript.json and the cover beside it, atomically.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from stages import files
from stages.errors import UserError
from stages.ingest.blocks import assemble
from stages.ingest.cover import Cover
from stages.ingest.sentences import spoken_form
from stages.ingest.summary import summarize
from stages.model import Manuscript

__all__ = ["Cover", "detect_language", "ingest", "read_book", "save_manuscript", "slugify", "spoken_form", "summarize"]

SUPPORTED_SUFFIXES = (".epub", ".txt", ".md")
MANUSCRIPT_FILE = "manuscript.json"
SLUG_MAX_CHARS = 60
HAN_SHARE_ZH = 0.2  # text whose letters are at least this share Han characters is Chinese

LANGUAGE_SAMPLE_CHARS = 20_000  # language is judged on the book's opening text

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_LETTER = re.compile(r"[^\W\d_]")


def read_book(source: Path, *, notes: str = "skip") -> tuple[Manuscript, Cover | None]:
    """Return the manuscript and cover of the book at `source` (.epub, .txt or .md); writes nothing.

    `notes`: "skip" leaves footnotes and endnotes out (their reference marks are never read);
    "aside" reads each note after the paragraph that refers to it, introduced by "Note:".
    """
    from stages.ingest.notes import check_mode

    source = Path(source)
    check_mode(notes)
    suffix = source.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UserError(
            f"cannot read {source}: unsupported file type '{suffix or source.name}'; "
            f"supported: {', '.join(SUPPORTED_SUFFIXES)} (convert the book to one of these)"
        )
    if not source.is_file():
        raise UserError(f"book file not found: {source}; check the path (supported: {', '.join(SUPPORTED_SUFFIXES)})")
    if suffix == ".epub":
        parts = _read_epub(source, notes)
    else:
        parts = _read_text(source, suffix == ".md", notes)
    if not parts["chapters"]:
        raise UserError(
            f"{source}: no chapters with speakable text found; check that the file holds the book's text "
            "(an EPUB needs story documents in its spine, a text file needs paragraphs)"
        )
    title = parts["title"]
    slug = slugify(title) if re.search(r"[A-Za-z0-9]", _ascii(title)) else slugify(source.stem)
    manuscript = Manuscript(
        slug=slug, title=title, author=parts["author"], language=parts["language"], source=str(source),
        source_sha256=parts["sha256"], chapters=parts["chapters"], skipped=parts["skipped"],
    )
    return manuscript, parts["cover"]


def _read_epub(source: Path, notes: str) -> dict:
    from stages.ingest.epub import read_epub

    book = read_epub(source, notes=notes)
    sample = " ".join(b.text for raw in book.chapters[:3] for b in raw.blocks[:50])
    language = book.language or detect_language(sample)
    chapters, empty = assemble(book.chapters, language)
    with open(source, "rb") as f:
        sha256 = hashlib.file_digest(f, "sha256").hexdigest()
    return {"title": book.title, "author": book.author, "language": language, "chapters": chapters,
            "skipped": book.skipped + empty, "cover": book.cover, "sha256": sha256}


def _read_text(source: Path, markdown: bool, notes: str) -> dict:
    """Read a .txt or .md book, building each chapter as it streams in (the raw text is never held whole)."""
    from stages.ingest.text import read_text_book

    book = read_text_book(source, markdown=markdown, notes=notes)
    language = detect_language(book.sample)
    chapters, empty = assemble(book.chapters, language, single=book.single_quotes)
    return {"title": book.title, "author": book.author, "language": language, "chapters": chapters,
            "skipped": (*book.skipped, *empty), "cover": None, "sha256": book.file.sha256}


def detect_language(text: str) -> str:
    """Return "zh" when Han characters are a good share of the letters in `text`, else "en"."""
    text = text[:LANGUAGE_SAMPLE_CHARS]
    letters = len(_LETTER.findall(text))
    return "zh" if letters and len(_HAN.findall(text)) >= HAN_SHARE_ZH * letters else "en"


def ingest(source: Path, out_dir_for_slug: Callable[[str], Path], slug: str | None = None, *,
           notes: str = "skip", save: bool = True) -> Manuscript:
    """Read the book at `source`, write <dir>/manuscript.json and <dir>/cover.jpg|png; return the manuscript.

    `slug` overrides the one made from the title (it is slugified too, so it is always a safe folder name).
    `notes` is passed to read_book. With `save=False` only the cover is written (the caller saves the
    manuscript once a later stage has filled it in).
    """
    manuscript, cover = read_book(source, notes=notes)
    if slug:
        manuscript = replace(manuscript, slug=slugify(slug))
    out_dir = Path(out_dir_for_slug(manuscript.slug))
    if cover is not None:
        name = f"cover{cover.suffix}"
        files.write_bytes(out_dir / name, cover.data)
        for stale in ("cover.jpg", "cover.png"):
            if stale != name:
                (out_dir / stale).unlink(missing_ok=True)
        manuscript = replace(manuscript, cover=name)
    if save:
        save_manuscript(manuscript, out_dir / MANUSCRIPT_FILE)
    return manuscript


def save_manuscript(manuscript: Manuscript, path: Path) -> Path:
    """Write `manuscript` as Manuscript.save does (the same bytes), atomically, one chapter at a time.

    Building the whole JSON document first would hold the book three more times (dicts, text, bytes).
    """
    import json

    head = manuscript.with_chapters(()).to_dict()
    opening, closing = json.dumps(head, ensure_ascii=False, indent=1).rsplit("[]", 1)
    with files.atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(opening + "[")
        for k, chapter in enumerate(manuscript.chapters):
            text = json.dumps(chapter.to_dict(), ensure_ascii=False, indent=1)
            f.write(("," if k else "") + "\n  " + text.replace("\n", "\n  "))
        f.write(("\n ]" if manuscript.chapters else "]") + closing + "\n")
    return Path(path)


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def slugify(text: str, fallback: str | None = None) -> str:
    """Return a lowercase ASCII slug with hyphens ("Alice’s Adventures" -> "alices-adventures").

    Text with no ASCII letters or digits gives `fallback` when one is passed, else "book-" and a short hash.
    """
    plain = _ascii(text).lower()
    plain = re.sub(r"['’`]", "", plain)
    slug = re.sub(r"[^a-z0-9]+", "-", plain).strip("-")
    if len(slug) > SLUG_MAX_CHARS:
        slug = slug[:SLUG_MAX_CHARS].rsplit("-", 1)[0]
    if not slug:
        slug = fallback if fallback is not None else "book-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return slug
