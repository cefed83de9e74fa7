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
from stages.ingest.blocks import build_chapters
from stages.ingest.cover import Cover
from stages.ingest.sentences import spoken_form
from stages.model import Manuscript

__all__ = ["Cover", "ingest", "read_book", "slugify", "spoken_form", "detect_language"]

SUPPORTED_SUFFIXES = (".epub", ".txt", ".md")
MANUSCRIPT_FILE = "manuscript.json"
SLUG_MAX_CHARS = 60
HAN_SHARE_ZH = 0.2  # text whose letters are at least this share Han characters is Chinese

LANGUAGE_SAMPLE_CHARS = 20_000  # language is judged on the book's opening text

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_LETTER = re.compile(r"[^\W\d_]")


def read_book(source: Path) -> tuple[Manuscript, Cover | None]:
    """Return the manuscript and cover of the book at `source` (.epub, .txt or .md); writes nothing."""
    source = Path(source)
    suffix = source.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UserError(
            f"cannot read {source}: unsupported file type '{suffix or source.name}'; "
            f"supported: {', '.join(SUPPORTED_SUFFIXES)} (convert the book to one of these)"
        )
    if not source.is_file():
        raise UserError(f"book file not found: {source}; check the path (supported: {', '.join(SUPPORTED_SUFFIXES)})")
    data = source.read_bytes()
    if suffix == ".epub":
        title, author, language, raws, skipped, cover = _read_epub(source)
    else:
        title, author, language, raws, skipped, cover = _read_text(source, data, markdown=suffix == ".md")
    chapters = build_chapters(raws, language)
    if not chapters:
        raise UserError(
            f"{source}: no chapters with speakable text found; check that the file holds the book's text "
            "(an EPUB needs story documents in its spine, a text file needs paragraphs)"
        )
    slug = slugify(title) if re.search(r"[A-Za-z0-9]", _ascii(title)) else slugify(source.stem)
    manuscript = Manuscript(
        slug=slug, title=title, author=author, language=language, source=str(source),
        source_sha256=hashlib.sha256(data).hexdigest(), chapters=chapters, skipped=skipped,
    )
    return manuscript, cover


def _read_epub(source: Path):
    from stages.ingest.epub import read_epub

    book = read_epub(source)
    sample = " ".join(b.text for raw in book.chapters[:3] for b in raw.blocks[:50])
    language = book.language or detect_language(sample)
    return book.title, book.author, language, book.chapters, book.skipped, book.cover


def _read_text(source: Path, data: bytes, markdown: bool):
    from stages.ingest.text import decode, read_text_book

    book = read_text_book(decode(data, source), source, markdown=markdown)
    return book.title, book.author, detect_language(book.text), book.chapters, book.skipped, None


def detect_language(text: str) -> str:
    """Return "zh" when Han characters are a good share of the letters in `text`, else "en"."""
    text = text[:LANGUAGE_SAMPLE_CHARS]
    letters = len(_LETTER.findall(text))
    return "zh" if letters and len(_HAN.findall(text)) >= HAN_SHARE_ZH * letters else "en"


def ingest(source: Path, out_dir_for_slug: Callable[[str], Path], slug: str | None = None) -> Manuscript:
    """Read the book at `source`, write <dir>/manuscript.json and <dir>/cover.jpg|png; return the manuscript.

    `slug` overrides the one made from the title (it is slugified too, so it is always a safe folder name).
    """
    manuscript, cover = read_book(source)
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
    manuscript.save(out_dir / MANUSCRIPT_FILE)
    return manuscript


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
