"""Bad input, one table: each book either fails with a clear UserError (what, where, how to fix) or is read
with a documented recovery (a warning naming the problem, and a manuscript that is still right).

Every case goes through `ingest`, which writes manuscript.json: a refused book leaves nothing behind,
a recovered one leaves exactly the manuscript that `read_book` returns.
"""

from __future__ import annotations

import logging
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from stages.errors import UserError
from stages.ingest import ingest, read_book
from stages.ingest.sentences import MAX_SEGMENT_CHARS
from stages.model import Manuscript, SkippedPart

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
PP_TXT = CORPUS / "jane-austen_pride-and-prejudice.txt"

# --- a small EPUB 3 (Standard Ebooks layout) to break in different ways ---------------------------------------

CONTAINER = ('<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
             '<rootfiles><rootfile full-path="epub/content.opf" media-type="application/oebps-package+xml"/>'
             '</rootfiles></container>')
OPF = """<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
 <metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Three Small Chapters</dc:title>
  <dc:creator>Ann Example</dc:creator><dc:language>en</dc:language><dc:identifier id="id">t</dc:identifier></metadata>
 <manifest>
  <item id="toc" href="toc.xhtml" media-type="application/xhtml+xml" properties="nav"/>
  <item id="c1" href="text/chapter-1.xhtml" media-type="application/xhtml+xml"/>
  <item id="c2" href="text/chapter-2.xhtml" media-type="application/xhtml+xml"/>
  <item id="c3" href="text/chapter-3.xhtml" media-type="application/xhtml+xml"/>
 </manifest>
 <spine><itemref idref="toc"/><itemref idref="c1"/><itemref idref="c2"/><itemref idref="c3"/></spine>
</package>"""
NAV = ('<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml" '
       'xmlns:epub="http://www.idpf.org/2007/ops"><body><nav epub:type="toc"><ol>'
       '<li><a href="text/chapter-1.xhtml">I</a></li><li><a href="text/chapter-2.xhtml">II</a></li>'
       '<li><a href="text/chapter-3.xhtml">III</a></li></ol></nav></body></html>')
PAGE = ('<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml" '
        'xmlns:epub="http://www.idpf.org/2007/ops"><head><title>x</title></head><body epub:type="bodymatter">'
        '<section id="chapter-{n}" epub:type="chapter">{body}</section></body></html>')
TEXTS = {1: "The first chapter begins.", 2: "The second chapter goes on.", 3: "The third chapter ends it."}
DRM = ('<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" xmlns:enc="http://www.w3.org/2001/04/xmlenc#">'
       '<enc:EncryptedData><enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes256-cbc"/>'
       '<enc:CipherData><enc:CipherReference URI="epub/text/chapter-1.xhtml"/></enc:CipherData></enc:EncryptedData>'
       '</encryption>')


def chapter(n: int, body: str | None = None) -> str:
    return PAGE.format(n=n, body=body if body is not None else f"<h2>{['I', 'II', 'III'][n - 1]}</h2><p>{TEXTS[n]}</p>")


def epub(path: Path, replace: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> Path:
    entries = {"mimetype": "application/epub+zip", "META-INF/container.xml": CONTAINER, "epub/content.opf": OPF,
               "epub/toc.xhtml": NAV, **{f"epub/text/chapter-{n}.xhtml": chapter(n) for n in TEXTS}, **(replace or {})}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            if name not in drop:
                zf.writestr(name, data, compress_type=zipfile.ZIP_STORED if name == "mimetype" else None)
    return path


def plain_zip(path: Path, entries: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


# --- the books -------------------------------------------------------------------------------------------------

LONG_WORDS = "the morning light fell across wide fields of barley while distant bells rang for".split()


def long_paragraph(chars: int = 50_000) -> str:
    """Return one paragraph of `chars` characters with commas but no sentence end until the last word."""
    words, size, k = [], 0, 0
    while size < chars:
        word = LONG_WORDS[k % len(LONG_WORDS)] + ("," if k % 13 == 12 else "")
        words.append(word)
        size += len(word) + 1
        k += 1
    return " ".join(words) + "."


MIXED = ("A MIXED BOOK\n\nby Ann Example\n\nCHAPTER I.\n\n“Good morning,” she said — it was early.\n\n"
         "The café sign read “Open” in the window.\n\nCHAPTER II.\n\nThey met again — “at last.”\n")


def mixed_bytes() -> bytes:
    """UTF-8 text with one line pasted in from a Windows-1252 file (é and curly quotes as single bytes)."""
    head, bad, tail = MIXED.partition("The café sign read “Open” in the window.")
    return head.encode("utf-8") + bad.encode("cp1252") + tail.encode("utf-8")


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Path], Path]
    error: str = ""  # a regex the UserError must match (what, where and how to fix), or
    warning: str = ""  # a regex one logged warning must match, when the book is recovered
    check: Callable[[Manuscript], None] | None = None  # what the recovered manuscript must say


def texts(m: Manuscript) -> list[str]:
    return [s.text for s in m.segments if s.kind != "heading"]


def _check_missing_item(m: Manuscript) -> None:
    assert [c.title for c in m.chapters] == ["Chapter I", "Chapter III"]
    assert texts(m) == [TEXTS[1], TEXTS[3]]
    assert SkippedPart(source="text/chapter-2.xhtml", kind="missing", title="II") in m.skipped


def _check_broken_xhtml(m: Manuscript) -> None:
    assert [c.title for c in m.chapters] == ["Chapter I", "Chapter II", "Chapter III"]
    assert [s.text for s in m.chapters[1].segments] == [
        "Chapter II", "It was a dark night & a cold one.", "Then rain fell &bogus; on—the roofs.", "Café “Open” was shut."]


def _check_empty_epub_chapter(m: Manuscript) -> None:
    assert [c.title for c in m.chapters] == ["Chapter I", "Chapter III"]
    assert [c.number for c in m.chapters] == [1, 2]
    assert SkippedPart(source="text/chapter-2.xhtml#chapter-2", kind="empty", title="Chapter II") in m.skipped


def _check_blank_epub_document(m: Manuscript) -> None:
    assert [c.title for c in m.chapters] == ["Chapter I", "Chapter III"]
    assert SkippedPart(source="text/chapter-2.xhtml", kind="empty", title="II") in m.skipped


def _check_empty_txt_chapter(m: Manuscript) -> None:
    assert [c.title for c in m.chapters] == ["Chapter I", "Chapter III"]
    assert SkippedPart(source="line 7", kind="empty", title="Chapter II") in m.skipped
    assert texts(m) == ["One.", "Three."]


def _check_long_paragraph(m: Manuscript) -> None:
    paragraph = long_paragraph()
    pieces = texts(m)
    assert len(pieces) >= len(paragraph) // MAX_SEGMENT_CHARS
    assert all(0 < len(p) <= MAX_SEGMENT_CHARS for p in pieces)
    assert " ".join(pieces) == paragraph  # every character kept, cuts only at spaces
    words = {w + end for w in LONG_WORDS for end in ("", ",", ".")}
    assert all(set(p.split(" ")) <= words for p in pieces)  # no word was cut in two


def _check_mixed(m: Manuscript) -> None:
    assert [c.title for c in m.chapters] == ["Chapter I", "Chapter II"]
    assert texts(m) == ["“Good morning,”", "she said — it was early.", "The café sign read “Open” in the window.",
                        "They met again —", "“at last.”"]


def _check_no_mimetype(m: Manuscript) -> None:
    assert texts(m) == list(TEXTS.values())


CASES = [
    Case("zip-that-is-not-an-epub",
         lambda d: plain_zip(d / "photos.epub", {"notes.txt": "hello", "index.html": "<p>hi</p>"}),
         error=r"photos\.epub: not a valid EPUB: it is a zip archive without META-INF/container\.xml or a mimetype "
               r"file; if it is an EPUB, re-export it from its editor, otherwise convert the book to EPUB"),
    Case("word-document-renamed-epub",
         lambda d: plain_zip(d / "draft.epub", {"mimetype": "application/vnd.oasis.opendocument.text",
                                                 "content.xml": "<office:document-content/>"}),
         error=r"draft\.epub: not a valid EPUB: it is a 'application/vnd\.oasis\.opendocument\.text' archive "
               r"without META-INF/container\.xml; .*convert the book to EPUB, \.txt or \.md"),
    Case("epub-without-mimetype-file", lambda d: epub(d / "nomime.epub", drop=("mimetype",)),
         warning=r"nomime\.epub: the mimetype file is missing; reading it as an EPUB anyway",
         check=_check_no_mimetype),
    Case("spine-item-missing-from-zip", lambda d: epub(d / "hole.epub", drop=("epub/text/chapter-2.xhtml",)),
         warning=r"hole\.epub: text/chapter-2\.xhtml is in the spine but missing from the EPUB; skipped it",
         check=_check_missing_item),
    Case("every-spine-item-missing",
         lambda d: epub(d / "hollow.epub", drop=tuple(f"epub/text/chapter-{n}.xhtml" for n in TEXTS)),
         error=r"hollow\.epub: no chapter could be read: 3 file\(s\) the package lists are missing from the EPUB "
               r"\(epub/text/chapter-1\.xhtml, epub/text/chapter-2\.xhtml, epub/text/chapter-3\.xhtml\); "
               r"re-download or re-export the book"),
    Case("broken-xhtml", lambda d: epub(d / "sloppy.epub", {"epub/text/chapter-2.xhtml": chapter(
        2, "<h2>II</h2><p>It was a dark&nbsp;night &amp; a <i>cold one.<p>Then rain fell &bogus; on&mdash;the roofs."
           "</p><p>Caf\u00e9 &#8220;Open&#8221; was shut.").replace("</section>", "")}),
         warning=r"sloppy\.epub: text/chapter-2\.xhtml: not well-formed XHTML \(.*\); read it with the forgiving "
                 r"HTML parser",
         check=_check_broken_xhtml),
    Case("drm-encrypted-epub", lambda d: epub(d / "locked.epub", {"META-INF/encryption.xml": DRM}),
         error=r"locked\.epub: the EPUB is DRM-encrypted \(http://www\.w3\.org/2001/04/xmlenc#aes256-cbc\); "
               r"only DRM-free books can be read: use a DRM-free edition of the book"),
    Case("empty-epub-chapter",
         lambda d: epub(d / "gap.epub", {"epub/text/chapter-2.xhtml": chapter(2, "<h2>II</h2>")}),
         warning=r"text/chapter-2\.xhtml#chapter-2: chapter 'Chapter II' has no text; left out of the album",
         check=_check_empty_epub_chapter),
    Case("blank-epub-document",
         lambda d: epub(d / "blank.epub", {"epub/text/chapter-2.xhtml": chapter(2, "")}),
         warning=r"blank\.epub: text/chapter-2\.xhtml has no text; left out of the album",
         check=_check_blank_epub_document),
    Case("empty-txt-chapter",
         lambda d: write(d / "gap.txt", "GAPS\n\nCHAPTER I.\n\nOne.\n\nCHAPTER II.\n\nCHAPTER III.\n\nThree.\n"),
         warning=r"line 7: chapter 'Chapter II' has no text; left out of the album",
         check=_check_empty_txt_chapter),
    Case("50000-character-paragraph",
         lambda d: write(d / "long.txt", "LONG\n\nCHAPTER I.\n\n" + long_paragraph() + "\n"),
         check=_check_long_paragraph),
    Case("mixed-utf8-and-cp1252",
         lambda d: write(d / "mixed.txt", mixed_bytes()),
         warning=r"mixed\.txt: 3 byte\(s\) are not valid UTF-8 \(the first on line 9\); read as Windows-1252\. "
                 r"Check those lines, and save the file as UTF-8",
         check=_check_mixed),
    Case("png-renamed-txt", lambda d: write(d / "cover.txt", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40),
         error=r"cover\.txt: not a text file: it holds a PNG image, not text; give the book itself "
               r"\(\.epub, or \.txt/\.md saved as UTF-8 text\)"),
    Case("epub-renamed-txt", lambda d: (epub(d / "book.epub").rename(d / "book.txt"), d / "book.txt")[1],
         error=r"book\.txt: not a text file: it holds a zip archive \(an EPUB or a Word file\?\), not text"),
    Case("text-renamed-epub", lambda d: write(d / "notes.epub", "Just some notes.\n"),
         error=r"notes\.epub: not a valid EPUB \(File is not a zip file\); re-download or re-export the book"),
    Case("empty-text-file", lambda d: write(d / "blank.txt", "\n \n\n"),
         error=r"blank\.txt: no chapters with speakable text found; check that the file holds the book's text"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, tmp_path, caplog):
    source = case.make(tmp_path)
    out = tmp_path / "out"
    caplog.set_level(logging.WARNING)
    if case.error:
        with pytest.raises(UserError, match=case.error) as raised:
            ingest(source, lambda slug: out / slug)
        assert "\n" not in str(raised.value)  # printed as one line
        assert not out.exists()  # nothing half-written
        return
    manuscript = ingest(source, lambda slug: out / slug)
    assert Manuscript.load(out / manuscript.slug / "manuscript.json") == manuscript
    assert sorted(p.name for p in (out / manuscript.slug).iterdir()) == ["manuscript.json"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    if case.warning:
        assert any(re.search(case.warning, w) for w in warnings), warnings
    else:
        assert warnings == []
    case.check(manuscript)


def test_unknown_notes_mode_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match=r"unknown notes mode 'inline'; choose one of: skip, aside"):
        read_book(epub(tmp_path / "ok.epub"), notes="inline")


@pytest.mark.slow  # about 40 s on 2 cores: 1,032,450 segments
def test_a_100_mb_text_file_streams_through(tmp_path):
    """Pride and Prejudice 150 times over (9,150 distinct chapter headings): every chapter read, hash right."""
    import hashlib

    text = PP_TXT.read_text(encoding="utf-8")
    head, body = text.split("\n\nCHAPTER I.\n", 1)
    body = "CHAPTER I.\n" + body
    counter = iter(range(1, 10_000))
    source = tmp_path / "huge.txt"
    digest = hashlib.sha256()
    with open(source, "wb") as f:
        for chunk in [head + "\n\n"] + [body] * 150:
            data = re.sub(r"^CHAPTER [IVXLC]+\.$", lambda _: f"CHAPTER {next(counter)}.", chunk, flags=re.M)
            data = (data + "\n\n").encode("utf-8")
            digest.update(data)
            f.write(data)
    assert source.stat().st_size > 100_000_000
    m, _ = read_book(source)
    assert len(m.chapters) == 150 * 61
    assert [c.title for c in m.chapters[:2]] + [m.chapters[-1].title] == ["Chapter 1", "Chapter 2", "Chapter 9150"]
    assert m.source_sha256 == digest.hexdigest()
    one = read_book(PP_TXT)[0]
    assert len(m.segments) == 150 * len(one.segments)
    assert [s.text for s in m.chapters[61 * 149 + 1].segments[1:]] == [s.text for s in one.chapters[1].segments[1:]]
