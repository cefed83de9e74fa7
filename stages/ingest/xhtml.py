"""Turn one EPUB content document (XHTML) into chapter units made of blocks.

Semantics come from epub:type on the raw markup (body, section, blockquote, td, i ...), which is
why the bytes are parsed here directly rather than through ebooklib's re-serialised copy.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from stages.ingest.blocks import Block, listener_title
from stages.ingest.sentences import clean_text, has_words

OPS_NS = "http://www.idpf.org/2007/ops"
HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
SECTIONING = frozenset({"section", "article"})
CONTAINERS = frozenset({"div", "section", "article", "header", "footer", "main", "ul", "ol", "dl", "blockquote",
                        "body", "center", "tbody", "thead", "tfoot"})
LEAF_BLOCKS = frozenset({"p", "li", "dt", "dd", "pre", "address", "caption"})
SKIPPED = frozenset({"script", "style", "figure", "img", "svg", "image", "nav", "audio", "video", "object",
                     "iframe", "math", "rt", "rp", "head", "title", "aside"})
VERSE_TYPES = ("poem", "verse", "song", "lyrics", "hymn")
PART_TYPES = ("part", "volume", "division")
_SCENE_BREAK = re.compile(r"[\s*·•⁂~#=_\-–—]+")
_NOTE_MARK = re.compile(r"\W*(?:\d+|[*†‡§]+|[ivx]+)\W*")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Unit:
    """One top-level chapter inside a document: its id, the heading the book gives it, its blocks."""

    id: str
    heading: str
    blocks: tuple[Block, ...]
    part: bool = False  # a part / volume / division heading that leads into the chapters after it


def parse_document(data: bytes, name: str = "", warn: bool = True):
    """Return the root element of an XHTML document; a file that is not well-formed is read by lxml's
    forgiving HTML parser, with a warning naming it (`name`) unless `warn` is False."""
    from lxml import etree, html

    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
        return etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as e:
        if warn:
            log.warning("%s: not well-formed XHTML (%s); read it with the forgiving HTML parser: check that "
                        "chapter's text, or repair the file (EPUBCheck finds such errors)", name or "a document", e)
    try:
        return html.document_fromstring(data)
    except (etree.ParserError, ValueError):
        return html.document_fromstring("<html><body></body></html>")


def local(el) -> str:
    """Return the element's tag without namespace, lowercased ("" for comments and processing instructions)."""
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1].lower()


def types(el) -> tuple[str, ...]:
    """Return the element's epub:type tokens, prefixes stripped ("z3998:poem" -> "poem")."""
    raw = el.get(f"{{{OPS_NS}}}type") or el.get("epub:type") or ""
    return tuple(t.rsplit(":", 1)[-1] for t in raw.split())


def find_body(root):
    """Return the document's body element (or the root when there is none)."""
    for el in root.iter():
        if local(el) == "body":
            return el
    return root


def element_children(el) -> list:
    return [c for c in el if local(c)]


def inline_runs(el, direction: bool = False) -> list[tuple[str, bool]]:
    """Return the element's text as (text, is_stage_direction) runs; notes, images and ruby readings left out."""
    runs: list[tuple[str, bool]] = []
    _collect(el, direction, runs, top=True)
    return runs


def _collect(el, direction: bool, runs: list[tuple[str, bool]], top: bool = False) -> None:
    tag = local(el)
    if not top and _is_skipped_inline(el, tag):
        return
    direction = direction or "stage-direction" in types(el)
    if tag == "br":
        runs.append(("\n", direction))
        return
    if tag in LEAF_BLOCKS and not top:
        runs.append((" ", direction))
    if el.text:
        runs.append((_squash(el.text), direction))
    for child in el:
        if local(child):
            _collect(child, direction, runs)
        if child.tail:
            runs.append((_squash(child.tail), direction))


def _is_skipped_inline(el, tag: str) -> bool:
    if tag in SKIPPED or tag == "":
        return True
    t = types(el)
    if "pagebreak" in t or "backlink" in t or el.get("role") in ("doc-pagebreak", "doc-backlink"):
        return True
    return _is_noteref(el, tag)


def _is_noteref(el, tag: str) -> bool:
    """Return True for a note reference: marked as one, or a link inside the book shown as a number or mark."""
    if "noteref" in types(el) or el.get("role") == "doc-noteref":
        return True
    if tag == "a" and "#" in (el.get("href") or ""):
        return bool(_NOTE_MARK.fullmatch("".join(el.itertext()).strip()))
    if tag == "sup":
        links = [c for c in el.iter() if local(c) == "a"]
        return bool(links) and all("#" in (a.get("href") or "") for a in links)
    return False


def noterefs(el) -> tuple[str, ...]:
    """Return the targets (href) of the note references inside `el`, in order."""
    out: list[str] = []
    for c in el.iter():
        tag = local(c)
        if tag in ("a", "sup") and _is_noteref(c, tag):
            out.extend(a.get("href") for a in c.iter() if local(a) == "a" and a.get("href"))
    return tuple(dict.fromkeys(out))


def _squash(text: str) -> str:
    """Collapse source-formatting whitespace (ASCII only; no-break and ideographic spaces are the book's)."""
    return re.sub(r"[ \t\r\n\f]+", " ", text)


def inline_text(el) -> str:
    """Return the element's readable text, cleaned, with <br/> kept as newlines."""
    return clean_text("".join(text for text, _ in inline_runs(el)))


def heading_text(el) -> str:
    """Return a heading's text; an <hgroup> joins its parts ("Stave I" + "Marley’s Ghost": "Stave I: Marley’s Ghost")."""
    if local(el) != "hgroup" and not any(local(c) in HEADINGS for c in el.iter() if c is not el):
        return inline_text(el).replace("\n", " ")
    parts = [inline_text(c).replace("\n", " ") for c in element_children(el) if local(c) in HEADINGS | {"p", "span"}]
    parts = [p for p in parts if p]
    title = ""
    for part in parts:
        title = part if not title else (f"{title} {part}" if title[-1] in ":.!?" else f"{title}: {part}")
    return title


def is_heading(el) -> bool:
    tag = local(el)
    if tag in HEADINGS or tag == "hgroup":
        return True
    kids = element_children(el)
    return tag == "header" and bool(kids) and all(local(k) in HEADINGS | {"hgroup", "p"} for k in kids) and any(
        local(k) in HEADINGS | {"hgroup"} for k in kids)


def is_verse(el) -> bool:
    """Return True for a poem: an epub:type poem/verse/song, a poem class, or a blockquote of <br/>-broken lines."""
    if any(t in VERSE_TYPES for t in types(el)):
        return True
    classes = (el.get("class") or "").lower().split()
    if any(c.startswith(("poem", "verse", "stanza", "song")) for c in classes):
        return True
    if local(el) != "blockquote" or types(el):
        return False
    paras = [k for k in element_children(el) if local(k) in LEAF_BLOCKS | {"div"}]
    return bool(paras) and all(any(local(c) == "br" for c in k.iter()) for k in paras)


def document_units(body) -> list[Unit]:
    """Return the chapter units of a body: its top-level sections, or its top-level headings, else one unit."""
    sections = _top_sections(body)
    if sections:
        return [u for s in sections for u in _section_units(s)]
    kids = element_children(body)
    if len(kids) == 1 and local(kids[0]) in CONTAINERS and not is_heading(kids[0]):
        return document_units(kids[0])
    return _split_at_headings(body)


def _top_sections(el) -> list:
    """Return the child sections (or heading-led divs) of `el` that each make a chapter, else []."""
    kids = [k for k in element_children(el) if not _is_boilerplate(k)]
    sections = [k for k in kids if local(k) in SECTIONING or (local(k) == "div" and _starts_with_heading(k))]
    rest = [k for k in kids if k not in sections and not is_heading(k)]
    if not sections or any(has_words(inline_text(k)) for k in rest):
        return []  # no sections, or prose beside them: then they are parts of one chapter
    return sections


def _starts_with_heading(el) -> bool:
    kids = element_children(el)
    return bool(kids) and is_heading(kids[0])


def _is_boilerplate(el) -> bool:
    ident = (el.get("id") or "") + " " + (el.get("class") or "")
    return "pg-header" in ident or "pg-footer" in ident or "pg-boilerplate" in ident


def _section_units(section) -> list[Unit]:
    """Return one unit for a chapter or story; a part wrapper yields its heading, then its chapters."""
    inner = _top_sections(section)
    if inner and any(t in PART_TYPES for t in types(section)):
        heading = _first_heading(section)
        title = heading_text(heading) if heading is not None else ""
        lead = [Unit(section.get("id") or "", title, (), part=True)] if title else []
        return lead + [u for s in inner for u in _section_units(s)]
    heading = _first_heading(section)
    blocks: list[Block] = []
    flow_blocks(section, blocks, skip=heading)
    title = heading_text(heading) if heading is not None else ""
    part = any(t in PART_TYPES for t in types(section))
    return [Unit(section.get("id") or "", title, tuple(blocks), part=part)]


def _first_heading(el):
    for kid in element_children(el)[:3]:
        if is_heading(kid):
            return kid
    return None


def _split_at_headings(body) -> list[Unit]:
    kids = [k for k in element_children(body) if not _is_boilerplate(k)]
    levels = [local(k) for k in kids if local(k) in HEADINGS]
    level = next((h for h in sorted(set(levels)) if levels.count(h) >= 2), None)
    if level is None:
        heading = _first_heading(body)
        blocks: list[Block] = []
        flow_blocks(body, blocks, skip=heading)
        return [Unit(body.get("id") or "", heading_text(heading) if heading is not None else "", tuple(blocks))]
    units: list[Unit] = []
    title, ident, blocks = "", "", []
    for kid in kids:
        if local(kid) == level:
            if blocks or title:
                units.append(Unit(ident, title, tuple(blocks)))
            title, ident, blocks = heading_text(kid), kid.get("id") or "", []
        else:
            flow_blocks(kid, blocks, top=False)
    units.append(Unit(ident, title, tuple(blocks)))
    return units


def flow_blocks(el, out: list[Block], skip=None, top: bool = True) -> None:
    """Append the blocks of `el` to `out`, handling mixed inline text, verse, tables and scene breaks."""
    tag = local(el)
    if el is skip or _is_boilerplate(el) or (not top and _is_skipped_block(el, tag)):
        return
    if not top and _leaf_block(el, tag, out):
        return
    pending: list[tuple[str, bool]] = []
    refs: list[str] = []
    if el.text:
        pending.append((_squash(el.text), False))
    for child in el:
        ctag = local(child)
        if ctag and (ctag in CONTAINERS or ctag in LEAF_BLOCKS or ctag in HEADINGS or ctag in
                     {"hgroup", "hr", "table", "tr", "td", "th"} or _is_skipped_block(child, ctag)):
            _flush(pending, out, refs)
            flow_blocks(child, out, skip=skip, top=False)
        elif ctag:
            _collect(child, False, pending)
            refs.extend(noterefs(child))
        if child.tail:
            pending.append((_squash(child.tail), False))
    _flush(pending, out, refs)


def _is_skipped_block(el, tag: str) -> bool:
    if tag in SKIPPED:
        return True
    t = types(el)
    return any(x in t for x in ("footnote", "footnotes", "endnote", "endnotes", "rearnote", "pagebreak", "toc"))


def _leaf_block(el, tag: str, out: list[Block]) -> bool:
    """Emit `el` as one block when it is a leaf (paragraph, heading, rule, table, poem); return True if emitted."""
    if tag == "hr":
        out.append(Block("scene_break"))
    elif is_heading(el):
        out.append(Block("heading", _subheading(el)))
    elif tag == "table":
        _table_blocks(el, out)
    elif is_verse(el):
        stanzas = [k for k in element_children(el) if has_words(inline_text(k))] or [el]
        out.extend(Block("verse", inline_text(s), notes=noterefs(s)) for s in stanzas)
    elif tag in LEAF_BLOCKS and not any(local(c) in LEAF_BLOCKS | CONTAINERS for c in el.iter() if c is not el):
        text = inline_text(el)
        if text and _SCENE_BREAK.fullmatch(text) and not has_words(text):
            out.append(Block("scene_break"))
        else:
            out.append(Block("text", text, notes=noterefs(el)))
    else:
        return False
    return True


def _subheading(el) -> str:
    """Return a heading inside a chapter; a bare numeral part heading is said as "Part I"."""
    return listener_title(heading_text(el), label="Part")


def _flush(pending: list[tuple[str, bool]], out: list[Block], refs: list[str]) -> None:
    text = clean_text("".join(t for t, _ in pending))
    if has_words(text):
        out.append(Block("text", text, notes=tuple(dict.fromkeys(refs))))
    pending.clear()
    refs.clear()


def _table_blocks(table, out: list[Block]) -> None:
    """Emit a play's table: persona + speech rows become speech blocks; other rows become text."""
    for row in table.iter():
        if local(row) != "tr":
            continue
        cells = [c for c in element_children(row) if local(c) in ("td", "th")]
        if len(cells) >= 2 and "persona" in types(cells[0]):
            out.append(Block("speech", persona=inline_text(cells[0]), runs=tuple(inline_runs(cells[1])),
                             notes=noterefs(cells[1])))
            continue
        for cell in cells:
            text = inline_text(cell)
            if has_words(text):
                out.append(Block("text", text))
