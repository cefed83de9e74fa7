"""Read an EPUB 2 or 3 into raw chapters: spine order, front/back matter skipped, titles from nav or NCX.

ebooklib opens the package (manifest, spine, metadata); every content document is parsed from its
raw bytes because ebooklib's get_content() drops the body's epub:type, which says what is story.
"""

from __future__ import annotations

import logging
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from stages.errors import UserError
from stages.ingest.blocks import RawChapter, listener_title
from stages.ingest.cover import Cover, find_cover
from stages.ingest.package import check_package, open_book
from stages.ingest.xhtml import document_units, find_body, inline_text, local, parse_document, types
from stages.model import SkippedPart

log = logging.getLogger(__name__)

FRONT_BACK = ("frontmatter", "backmatter")
SKIP_TYPES = frozenset({
    "cover", "titlepage", "halftitlepage", "title-page", "imprint", "colophon", "copyright-page", "copyright",
    "toc", "dedication", "epigraph", "preface", "foreword", "introduction", "acknowledgments", "acknowledgements",
    "dramatis-personae", "loi", "lot", "index", "endnotes", "footnotes", "rearnotes", "bibliography", "glossary",
    "appendix", "afterword", "landmarks", "other-credits", "contributors", "errata", "frontispiece",
})
STORY_TYPES = frozenset({"chapter", "part", "volume", "division", "prologue", "epilogue", "short-story",
                         "bodymatter", "text", "conclusion"})
# Whole words in a file name that mark front or back matter when the markup says nothing ("title_page.html").
SKIP_NAME_WORDS = frozenset({
    "cover", "title", "titlepage", "halftitle", "halftitlepage", "copyright", "colophon", "imprint", "toc",
    "contents", "dedication", "epigraph", "acknowledgements", "acknowledgments", "about", "preface", "foreword",
    "frontmatter", "backmatter", "index", "endnotes", "footnotes", "license", "uncopyright", "legal",
})
DOCUMENT_TYPES = ("application/xhtml+xml", "text/html", "application/x-dtbook+xml")


@dataclass(frozen=True)
class EpubBook:
    title: str
    author: str
    language: str
    chapters: list[RawChapter]
    skipped: tuple[SkippedPart, ...]
    cover: Cover | None


def read_epub(path: Path, notes: str = "skip") -> EpubBook:
    """Return the story chapters, metadata and cover of the EPUB at `path`.

    notes="aside" reads each footnote or endnote after the paragraph that refers to it. A spine document
    missing from the zip is skipped with a warning (kind "missing"); if nothing is left that is an error.
    """
    check_package(path)
    book, missing = open_book(path)
    titles = toc_titles(book)
    guide = _guide_types(book)
    found = _all_notes(book) if notes == "aside" else None
    chapters: list[RawChapter] = []
    skipped: list[SkippedPart] = []
    for idref, linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is None:
            log.warning("%s: the spine lists %r, which is not in the manifest; skipped it", path, idref)
            continue
        if item.media_type not in DOCUMENT_TYPES:
            continue
        if item.content is None:
            log.warning("%s: %s is in the spine but missing from the EPUB; skipped it (re-export the book "
                        "to get it back)", path, item.file_name)
            skipped.append(SkippedPart(source=item.file_name, kind="missing", title=titles.get(item.file_name, "")))
            continue
        body = find_body(parse_document(item.content, f"{path.name}: {item.file_name}"))
        kind = classify(item.file_name, body, guide.get(item.file_name, ""), linear)
        if kind != "story":
            title = _doc_title(item.file_name, titles, body)
            if kind == "empty":
                log.warning("%s: %s has no text; left out of the album", path, item.file_name)
            skipped.append(SkippedPart(source=item.file_name, kind=kind, title=title))
            continue
        chapters.extend(_chapters(item.file_name, body, titles, found))
    if not chapters and missing:
        raise UserError(
            f"{path}: no chapter could be read: {len(missing)} file(s) the package lists are missing from the "
            f"EPUB ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); re-download or re-export the book"
        )
    skipped.extend(_unlisted_nav(book, {s.source for s in skipped}))
    return EpubBook(
        title=_meta(book, "title") or path.stem,
        author=_meta(book, "creator"),
        language=_meta(book, "language"),
        chapters=chapters,
        skipped=tuple(skipped),
        cover=find_cover(book),
    )


def _all_notes(book) -> dict[str, str]:
    """Return {"file#id": text} for the notes in every content document of the book."""
    from stages.ingest.notes import collect_notes

    found: dict[str, str] = {}
    for item in book.get_items():
        if item.media_type in DOCUMENT_TYPES and item.content:
            found.update(collect_notes(item.file_name, parse_document(item.content, item.file_name, warn=False)))
    return found


def _meta(book, name: str) -> str:
    values = [v for v, _ in book.get_metadata("DC", name) if v and v.strip()]
    return re.sub(r"\s+", " ", values[0]).strip() if values else ""


def toc_titles(book) -> dict[str, str]:
    """Return {"path" or "path#fragment": title} from the EPUB 3 nav, else the EPUB 2 NCX (first entry wins)."""
    titles: dict[str, str] = {}
    for item in book.get_items():
        props = getattr(item, "properties", None) or []
        is_nav = "nav" in props or type(item).__name__ == "EpubNav"
        if is_nav:
            _nav_entries(item, titles)
    if not titles:
        for item in book.get_items():
            if item.media_type == "application/x-dtbncx+xml":
                _ncx_entries(item, titles)
    return titles


def _resolve(base_file: str, href: str) -> str:
    path, _, frag = unquote(href).partition("#")
    full = posixpath.normpath(posixpath.join(posixpath.dirname(base_file), path)) if path else base_file
    return f"{full}#{frag}" if frag else full


def _nav_entries(item, titles: dict[str, str]) -> None:
    if item.content is None:
        log.warning("the table of contents %s is missing from the EPUB; chapter titles come from headings",
                    item.file_name)
        return
    root = parse_document(item.content, item.file_name)
    for nav in root.iter():
        if local(nav) != "nav" or ("toc" not in types(nav) and nav.get("id") != "toc"):
            continue
        for a in nav.iter():
            if local(a) == "a" and a.get("href"):
                titles.setdefault(_resolve(item.file_name, a.get("href")), inline_text(a).replace("\n", " "))


def _ncx_entries(item, titles: dict[str, str]) -> None:
    if item.content is None:
        return
    root = parse_document(item.content, item.file_name)
    for point in root.iter():
        if local(point) != "navpoint":
            continue
        label = next((el for el in point.iter() if local(el) == "text"), None)
        content = next((el for el in point if local(el) == "content"), None)
        if label is not None and content is not None and content.get("src"):
            text = re.sub(r"\s+", " ", label.text or "").strip()
            titles.setdefault(_resolve(item.file_name, content.get("src")), text)


def _guide_types(book) -> dict[str, str]:
    """Return {path: type} from the EPUB 2 guide (cover, title-page, toc, text ...)."""
    out: dict[str, str] = {}
    for ref in getattr(book, "guide", None) or []:
        if ref.get("href") and ref.get("type"):
            out.setdefault(unquote(ref["href"]).partition("#")[0], ref["type"].lower())
    return out


def classify(file_name: str, body, guide_type: str, linear: str) -> str:
    """Return "story" for a story document, else the kind of front/back matter it is."""
    body_types = types(body)
    section_types = [t for el in body.iter() if local(el) in ("section", "article", "nav", "div") for t in types(el)]
    if any(t in FRONT_BACK for t in body_types):
        named = [t for t in section_types if t in SKIP_TYPES or t not in STORY_TYPES]
        return named[0] if named else next(t for t in body_types if t in FRONT_BACK)
    if "bodymatter" in body_types:
        return "story" if re.search(r"\w", inline_text(body)) else "empty"
    for t in section_types[:1]:
        if t in SKIP_TYPES:
            return t
        if t in STORY_TYPES:
            return "story"
    if guide_type in SKIP_TYPES or guide_type.replace("-", "") in SKIP_TYPES:
        return guide_type
    words = re.split(r"[^a-z]+", posixpath.splitext(posixpath.basename(file_name))[0].lower())
    word = None if "split" in words else next((w for w in words if w in SKIP_NAME_WORDS), None)
    if word and guide_type != "text":
        return word
    if linear == "no":
        return "non-linear"
    if not re.search(r"\w", inline_text(body)):
        return "empty"
    return "story"


def _doc_title(file_name: str, titles: dict[str, str], body) -> str:
    if file_name in titles:
        return titles[file_name]
    for el in body.iter():
        if local(el) in ("h1", "h2", "h3"):
            return inline_text(el).replace("\n", " ")
    return ""


def _chapters(file_name: str, body, titles: dict[str, str], notes: dict[str, str] | None) -> list[RawChapter]:
    out = []
    for k, unit in enumerate(document_units(body)):
        key = f"{file_name}#{unit.id}" if unit.id else ""
        title = titles.get(key) or (titles.get(file_name) if k == 0 else "") or unit.heading
        source = f"{file_name}#{unit.id}" if unit.id else file_name
        blocks = unit.blocks if notes is None else tuple(_with_notes(file_name, unit.blocks, notes))
        out.append(RawChapter(title=listener_title(title) if title else "", source=source, blocks=blocks,
                              kind="part" if unit.part else "chapter"))
    return out


def _with_notes(file_name: str, blocks, notes: dict[str, str]):
    from stages.ingest.notes import with_notes

    return with_notes(blocks, lambda href: notes.get(_resolve(file_name, href)), where=file_name)


def _unlisted_nav(book, listed: set[str]) -> list[SkippedPart]:
    """Return the nav / NCX documents outside the spine, so the skipped list shows the table of contents too."""
    out = []
    for item in book.get_items():
        props = getattr(item, "properties", None) or []
        if ("nav" in props or type(item).__name__ in ("EpubNav", "EpubNcx")) and item.file_name not in listed:
            out.append(SkippedPart(source=item.file_name, kind="toc", title="Table of Contents"))
    return out
