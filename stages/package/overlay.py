"""An EPUB 3 of the book whose text follows its own narration: Media Overlays built from the sync maps.

Each chapter becomes one XHTML file with one `<span>` per segment (its stable id as the element id), one
SMIL overlay that pairs every span with its clip of the chapter's MP3, and the MP3 itself inside the book.
Clips are contiguous (each runs to the next segment's start, the last to the end of the audio), so a
reading system that plays the overlay plays the whole recording, pauses and room tone included.
Where the sync map times a segment's words, each word is a `<span>` of its own and the segment's
clip is cut into one contiguous clip per word (a `<seq>` of `<par>`s), so the reader follows word by word.
"""

from __future__ import annotations

import html
import io
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from stages.align import WordTiming
from stages.errors import UserError
from stages.model import Chapter, Manuscript, Paragraph
from stages.package import sync

if TYPE_CHECKING:
    from stages.package.overlay_epub import PackedChapter

ACTIVE_CLASS = "-epub-media-overlay-active"
ACTIVE_CSS = f".{ACTIVE_CLASS} {{ background-color: #ffe58a; color: #000; }}\n"
BOOK_CSS = "body { margin: 0 5%; line-height: 1.5; }\np.verse { margin-left: 2em; }\n" + ACTIVE_CSS
AUDIO_TYPES = {".mp3": "audio/mpeg", ".m4a": "audio/mp4"}  # both are EPUB 3 core media types
DURATION_TOLERANCE_MS = 50  # declared vs. measured durations may differ by this much
CLIP_SLACK_MS = 0.5  # a clip end may pass the audio end by rounding only
OPF_PATH = "OEBPS/content.opf"
IDENTIFIER_NAMESPACE = uuid.UUID("6f1c3c52-8f0e-4c53-9a55-2f1d7f0a3b10")  # book ids are uuid5(this, slug)
NS = {
    "opf": "http://www.idpf.org/2007/opf",
    "smil": "http://www.w3.org/ns/SMIL",
    "xhtml": "http://www.w3.org/1999/xhtml",
    "container": "urn:oasis:names:tc:opendocument:xmlns:container",
}
EPUB_OPS_NS = "http://www.idpf.org/2007/ops"
EPUB_TEXTREF = f"{{{EPUB_OPS_NS}}}textref"
SMIL_SEQ, SMIL_PAR, SMIL_TEXT, SMIL_AUDIO = (f"{{{NS['smil']}}}{tag}" for tag in ("seq", "par", "text", "audio"))
MODIFIED_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # dcterms:modified, UTC
_XML_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_CLOCK = re.compile(r"^(?:(?:(\d+):)?(\d{1,2}):)?(\d+(?:\.\d+)?)$")
_TIMECOUNT = re.compile(r"^(\d+(?:\.\d+)?)(h|min|s|ms)$")
_TIMECOUNT_MS = {"h": 3_600_000, "min": 60_000, "s": 1000, "ms": 1}
CONTAINER_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">\n'
    f'  <rootfiles><rootfile full-path="{OPF_PATH}" media-type="application/oebps-package+xml"/></rootfiles>\n'
    "</container>\n"
)


@dataclass(frozen=True)
class OverlayChapter:
    """One chapter as the EPUB holds it: its files and the clip of audio behind each segment."""

    chapter: Chapter
    mp3: Path  # the chapter's audio file, copied into the EPUB as `audio`: its AAC part, else the album's MP3
    clips: tuple[tuple[str, int, int], ...]  # (segment id, clip begin ms, clip end ms), contiguous
    words: Mapping[str, tuple[WordTiming, ...]] = field(default_factory=dict)  # timed words by segment id

    @property
    def name(self) -> str:
        return self.chapter.id  # "c01"

    @property
    def audio(self) -> str:
        return audio_member(self.chapter, self.mp3)

    @property
    def duration_ms(self) -> int:
        return sum(end - begin for _, begin, end in self.clips)


def audio_member(chapter: Chapter, audio: Path) -> str:
    """Return the EPUB member (below OEBPS/) of a chapter's audio file: "audio/03.m4a", "audio/03.mp3"."""
    return f"audio/{chapter.number:02d}{Path(audio).suffix.lower()}"


def audio_duration_ms(source: Path | BinaryIO, name: str, *, where: str) -> float:
    """Return how long an audio file plays in ms, by its name's extension: an MP4 (.m4a) or an MP3."""
    if name.lower().endswith((".m4a", ".mp4")):
        from stages.package.mp4info import mp4_duration_ms

        return mp4_duration_ms(source, where=where)
    return mp3_duration_ms(source, where=where)


def clock_value(ms: int) -> str:
    """Return `ms` as a SMIL full clock value, H:MM:SS.mmm."""
    hours, rest = divmod(int(ms), 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def parse_clock(text: str) -> float:
    """Return the milliseconds of a SMIL clock value ("0:01:02.5", "62.5s", "1.2min", "62.5")."""
    text = text.strip()
    if m := _TIMECOUNT.match(text):
        return float(m.group(1)) * _TIMECOUNT_MS[m.group(2)]
    if m := _CLOCK.match(text):
        hours, minutes, seconds = m.groups()
        return ((int(hours or 0) * 60 + int(minutes or 0)) * 60 + float(seconds)) * 1000
    raise UserError(f"bad SMIL clock value {text!r}; expected H:MM:SS.mmm or a count such as 12.5s")


def mp3_duration_ms(source: bytes | Path | BinaryIO, *, where: str) -> float:
    """Return the duration of an MP3 (its bytes, path or open file) in ms, read by mutagen from its frame headers.

    Only the stream's headers are read (its ID3 tags are skipped, not parsed): as MP3(...).info, 40x faster.
    """
    import mutagen.mp3

    try:
        if isinstance(source, bytes):
            return mutagen.mp3.MPEGInfo(io.BytesIO(source)).length * 1000
        if isinstance(source, Path):
            with open(source, "rb") as f:
                return mutagen.mp3.MPEGInfo(f).length * 1000
        return mutagen.mp3.MPEGInfo(source).length * 1000
    except mutagen.MutagenError as e:
        raise UserError(f"{where} is not a readable MP3 ({e}); produce the chapter again") from e


def sync_map_path(chapter: Chapter, album_dir: Path) -> Path:
    """Return the path of the chapter's sync map in `album_dir`; a UserError if it is not there."""
    from stages.produce import chapter_stem

    path = Path(album_dir) / f"{chapter_stem(chapter.number, chapter.title)}.sync.json"
    if not path.is_file():
        raise UserError(f"no sync map for chapter {chapter.number} at {path}; produce the chapter first")
    return path


def overlay_chapter(chapter: Chapter, album_dir: Path, audio: Path | None = None) -> OverlayChapter:
    """Return the chapter's clips, read from its sync map in `album_dir` and fitted to the length of its `audio`
    (an AAC part of the same master; default: the MP3 the sync map names)."""
    sync_path = sync_map_path(chapter, album_dir)
    facts, cues, timed = sync.read_sync(sync_path)
    mp3 = Path(audio) if audio is not None else sync_path.parent / facts["audio"]
    if not mp3.is_file():
        raise UserError(f"the audio {mp3} of chapter {chapter.number} ({sync_path}) is missing; produce the chapter "
                        "again")
    known = {s.id for s in chapter.segments}
    for cue in cues:
        if cue.id not in known or not _XML_ID.match(cue.id):
            raise UserError(f"{sync_path} has segment {cue.id!r}, which is not a segment id of chapter "
                            f"{chapter.number} in the manuscript; produce the chapter again")
    end_ms = int(min(facts["duration_ms"], audio_duration_ms(mp3, mp3.name, where=str(mp3))))
    if not cues or cues[-1].end_ms > end_ms:
        raise UserError(f"{sync_path} has no segments or runs past its audio's {end_ms} ms; produce the chapter again")
    starts = [0] + [c.start_ms for c in cues[1:]] + [end_ms]
    clips = tuple((c.id, starts[i], starts[i + 1]) for i, c in enumerate(cues))
    words = {k: v.words for k, v in timed.items() if v.timed and v.words}
    return OverlayChapter(chapter=chapter, mp3=mp3, clips=clips, words=words)


def word_id(segment_id: str, index: int) -> str:
    """Return the element id of a segment's word (0-based `index` in its timed words): "c01-p0002-s01-w003"."""
    return f"{segment_id}-w{index + 1:03d}"


def _segment_html(segment_id: str, text: str, words: Sequence[WordTiming]) -> str:
    """Return a segment's text, escaped, with a `<span>` around each timed word found in it."""
    pieces, at = [], 0
    for k, (w, pos) in enumerate(zip(words, sync.word_offsets(text, words))):
        if pos is None:
            continue
        pieces.append(html.escape(text[at:pos], quote=False))
        pieces.append(f'<span id="{word_id(segment_id, k)}">{html.escape(w.text, quote=False)}</span>')
        at = pos + len(w.text)
    return "".join(pieces) + html.escape(text[at:], quote=False)


def word_clips(
    segment_id: str, text: str, words: Sequence[WordTiming], begin: int, end: int
) -> list[tuple[str, int, int]]:
    """Return (word id, clip begin, clip end) cutting the segment's clip [begin, end) at each word's start.

    The first word's clip starts with the segment's, the last ends with it, so the clips stay contiguous;
    a word starting no later than the one before it (or outside the clip) has no clip of its own.
    """
    cuts: list[tuple[int, int]] = []
    for k, (w, pos) in enumerate(zip(words, sync.word_offsets(text, words))):
        if pos is None:
            continue
        start = begin if not cuts else w.start_ms
        if not cuts or cuts[-1][1] < start < end:
            cuts.append((k, start))
    return [(word_id(segment_id, k), start, cuts[i + 1][1] if i + 1 < len(cuts) else end)
            for i, (k, start) in enumerate(cuts)]


def _paragraph_xhtml(paragraph: Paragraph, words: Mapping[str, Sequence[WordTiming]]) -> str:
    spans = " ".join(f'<span id="{s.id}">{_segment_html(s.id, s.text, words.get(s.id, ()))}</span>'
                     for s in paragraph.segments)
    if paragraph.kind == "scene_break" and not spans:
        return "<hr/>"
    if not spans:
        return ""
    if paragraph.kind == "heading":
        tag, attrs = "h2", ""
    else:
        tag, attrs = "p", ' class="verse"' if paragraph.kind == "verse" else ""
    return f'<{tag} id="{paragraph.id}"{attrs}>{spans}</{tag}>'


def chapter_xhtml(chapter: Chapter, language: str, words: Mapping[str, Sequence[WordTiming]] | None = None) -> str:
    """Return the XHTML document of one chapter: a paragraph per paragraph, a span per segment (and timed word)."""
    for segment in chapter.segments:
        if not _XML_ID.match(segment.id):
            raise UserError(
                f"segment id {segment.id!r} in chapter {chapter.number} is not an XML id; ingest the book again"
            )
    body = "\n".join(p for p in (_paragraph_xhtml(para, words or {}) for para in chapter.paragraphs) if p)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n'
        f'<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops" '
        f'lang="{language}" xml:lang="{language}">\n'
        f'<head><meta charset="utf-8"/><title>{html.escape(chapter.title)}</title>'
        '<link rel="stylesheet" type="text/css" href="style.css"/></head>\n'
        f'<body>\n<section id="{chapter.id}" epub:type="chapter">\n{body}\n</section>\n</body>\n</html>\n'
    )


def _par(item: OverlayChapter, fragment: str, begin: int, end: int) -> str:
    return (f'<par id="par-{fragment}"><text src="{item.name}.xhtml#{fragment}"/>'
            f'<audio src="{item.audio}" clipBegin="{begin / 1000:.3f}s" clipEnd="{end / 1000:.3f}s"/></par>')


def chapter_smil(item: OverlayChapter) -> str:
    """Return the SMIL overlay of one chapter: a `<par>` per segment, or a `<seq>` of one per word where timed."""
    texts = {s.id: s.text for s in item.chapter.segments}
    parts = []
    for sid, begin, end in item.clips:
        clips = word_clips(sid, texts.get(sid, ""), item.words.get(sid, ()), begin, end)
        if len(clips) < 2:
            parts.append(_par(item, sid, begin, end))
            continue
        inner = "\n".join(_par(item, wid, b, e) for wid, b, e in clips)
        parts.append(f'<seq id="seq-{sid}" epub:textref="{item.name}.xhtml#{sid}">\n{inner}\n</seq>')
    pars = "\n".join(parts)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<smil xmlns="http://www.w3.org/ns/SMIL" xmlns:epub="http://www.idpf.org/2007/ops" version="3.0">\n'
        f'<body>\n<seq id="seq-{item.name}" epub:textref="{item.name}.xhtml">\n{pars}\n</seq>\n</body>\n</smil>\n'
    )


def nav_xhtml(manuscript: Manuscript, items: Sequence[OverlayChapter | PackedChapter]) -> str:
    """Return the EPUB navigation document: a table of contents with one entry per chapter."""
    entries = "\n".join(f'<li><a href="{i.name}.xhtml">{html.escape(i.chapter.title)}</a></li>' for i in items)
    lang = manuscript.language
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops" '
        f'lang="{lang}" xml:lang="{lang}">\n'
        f'<head><meta charset="utf-8"/><title>{html.escape(manuscript.title)}</title></head>\n'
        f'<body>\n<nav epub:type="toc" id="toc"><h1>Contents</h1>\n<ol>\n{entries}\n</ol></nav>\n</body>\n</html>\n'
    )


def package_opf(manuscript: Manuscript, items: Sequence[OverlayChapter | PackedChapter], *, modified: datetime) -> str:
    """Return the package document: metadata with overlay durations, manifest, spine."""
    book_id = f"urn:uuid:{uuid.uuid5(IDENTIFIER_NAMESPACE, manuscript.slug)}"
    durations = "\n".join(
        f'<meta property="media:duration" refines="#mo-{i.name}">{clock_value(i.duration_ms)}</meta>' for i in items
    )
    total = clock_value(sum(i.duration_ms for i in items))
    manifest = "\n".join(
        f'<item id="{i.name}" href="{i.name}.xhtml" media-type="application/xhtml+xml" media-overlay="mo-{i.name}"/>\n'
        f'<item id="mo-{i.name}" href="{i.name}.smil" media-type="application/smil+xml"/>\n'
        f'<item id="audio-{i.name}" href="{i.audio}" media-type="{AUDIO_TYPES[Path(i.audio).suffix]}"/>'
        for i in items
    )
    spine = "\n".join(f'<itemref idref="{i.name}"/>' for i in items)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="book-id">\n'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">\n'
        f'<dc:identifier id="book-id">{book_id}</dc:identifier>\n'
        f"<dc:title>{html.escape(manuscript.title)}</dc:title>\n"
        f"<dc:creator>{html.escape(manuscript.author or 'Unknown')}</dc:creator>\n"
        f"<dc:language>{html.escape(manuscript.language)}</dc:language>\n"
        f'<meta property="dcterms:modified">{modified.strftime(MODIFIED_FORMAT)}</meta>\n'
        f'<meta property="media:active-class">{ACTIVE_CLASS}</meta>\n'
        f'{durations}\n<meta property="media:duration">{total}</meta>\n</metadata>\n'
        '<manifest>\n<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>\n'
        f'<item id="css" href="style.css" media-type="text/css"/>\n{manifest}\n</manifest>\n'
        f"<spine>\n{spine}\n</spine>\n</package>\n"
    )


def write_overlay_epub(manuscript: Manuscript, album_dir: Path, out: Path, *, stamp: Path | None = None,
                       audio: Mapping[int, Path] | None = None) -> Path:
    """Write an EPUB 3 with Media Overlays of every chapter produced into `album_dir`; return `out`.

    With a `stamp` (a JSON file of the book's work folder) a chapter whose manuscript text, sync map and
    MP3 are unchanged since the EPUB at `out` was written is taken from that EPUB, not made again; when
    nothing changed at all, the EPUB is left as it is. `audio` gives chapters (by number) another audio file
    than their MP3: the AAC part of the same master that the M4B is joined from. See stages/package/overlay_epub.py.
    """
    from stages.package import overlay_epub

    return overlay_epub.write_overlay_epub(manuscript, album_dir, out, stamp=stamp, audio=dict(audio or {}))


def check_overlays(epub_path: Path, *, known: Path | None = None) -> list[str]:
    """Return what is wrong with the EPUB's Media Overlays that EPUBCheck does not check ([] when all is well);
    `known` keeps each overlay's findings for the next check (see stages/package/overlay_check.py)."""
    from stages.package import overlay_check

    return overlay_check.check_overlays(epub_path, known=known)
