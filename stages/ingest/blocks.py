"""The format-neutral middle of ingest: readers produce blocks, this module makes the manuscript's chapters.

Every reader (EPUB, text, Markdown) turns its book into RawChapters of Blocks; numbering,
sentence segmentation and segment ids happen here once, so they are the same for every format.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

from stages.ingest.sentences import clean_text, has_words, segment_text, spoken_form
from stages.model import NARRATOR, UNKNOWN_SPEAKER, Chapter, Paragraph, Segment, SkippedPart

log = logging.getLogger(__name__)

PLAY_RULE = "play-persona"
PLAY_CONFIDENCE = 1.0
SINGLE_QUOTE_MIN_PARAGRAPHS = 3  # a book needs this many ‘-opened paragraphs to count as single-quoted
NOTE_LEAD = {"en": "Note:", "zh": "注："}  # said before a note read as an aside, by language

_ROMAN = r"[IVXLCDM]+"
_BARE_NUMBER = re.compile(rf"({_ROMAN}|\d+)\.?")
_NUMBER_THEN_TITLE = re.compile(rf"({_ROMAN}|\d+)[.:]\s+(\S.*)")
_ROMAN_LOOKALIKES = frozenset({"i", "mix", "dim", "mid", "lid", "vid", "civil", "mild", "mill", "ill", "dill"})
_SMALL_WORDS = frozenset("a an and as at but by for in nor of on or the to up via with".split())
_PART_TITLE = re.compile(r"(?i:part|book|volume|vol\.)\b|第.{1,8}[卷部篇]")


@dataclass(frozen=True)
class Block:
    """One block of a chapter as a reader found it, before segmentation."""

    kind: str  # "text", "verse", "heading", "scene_break", "speech" (a play's line) or "note" (read as an aside)
    text: str = ""
    persona: str = ""  # speech: the character the book names for the line
    runs: tuple[tuple[str, bool], ...] = ()  # speech: (text, is_stage_direction) in order
    notes: tuple[str, ...] = ()  # the footnotes / endnotes the block refers to, as the reader's own keys


@dataclass(frozen=True)
class RawChapter:
    """A chapter as a reader found it: its title, where it came from and its blocks."""

    title: str
    source: str
    blocks: tuple[Block, ...]
    kind: str = "chapter"  # "part" for a part / book / volume title page that leads into its chapters


def listener_title(title: str, label: str = "Chapter") -> str:
    """Return `title` with a bare number made audible: "I" -> "Chapter I", "I: Down" -> "Chapter I: Down"."""
    title = clean_text(title).replace("\n", " ")
    if _BARE_NUMBER.fullmatch(title):
        return f"{label} {title.rstrip('.')}"
    m = _NUMBER_THEN_TITLE.fullmatch(title)
    if m:
        return f"{label} {m.group(1)}: {m.group(2)}"
    return title


def smart_title_case(text: str) -> str:
    """Return an ALL-CAPS `text` in title case ("PRIDE AND PREJUDICE" -> "Pride and Prejudice"); else unchanged."""
    if not text.isupper():
        return text
    words = text.lower().split(" ")
    out = []
    for i, word in enumerate(words):
        bare = word.rstrip(".:,")
        if i and re.fullmatch(r"[ivxlcdm]+", bare) and bare not in _ROMAN_LOOKALIKES:
            out.append(word.upper())
        elif i and word in _SMALL_WORDS and not words[i - 1].endswith((".", ":")):
            out.append(word)
        else:
            out.append(word[:1].upper() + word[1:])
    return " ".join(out)


def uses_single_quotes(raws: list[RawChapter]) -> bool:
    """Return True when the book opens speech with ‘ rather than “ (British single-quote style)."""
    single = double = 0
    for raw in raws:
        for block in raw.blocks:
            first = block.text.lstrip()[:1]
            single += first == "‘"
            double += first in "“\"「"
    return single >= SINGLE_QUOTE_MIN_PARAGRAPHS and single > double


def build_chapters(raws: Iterable[RawChapter], language: str) -> tuple[Chapter, ...]:
    """Return numbered chapters with segmented paragraphs; heading-only parts lead into the next chapter."""
    return assemble(raws, language)[0]


def assemble(raws: Iterable[RawChapter], language: str,
             single: bool | None = None) -> tuple[tuple[Chapter, ...], tuple[SkippedPart, ...]]:
    """Return the numbered chapters and the empty chapters left out (kind "empty"), reading `raws` once.

    A part's title page is said before the chapter that follows it. A chapter with only a heading
    lends its title to a following untitled document (a split title page), else it is empty.
    `single` says whether speech opens with ‘; None works it out, which needs `raws` as a whole.
    """
    if single is None:
        raws = list(raws)
        single = uses_single_quotes(raws)
    chapters: list[Chapter] = []
    skipped: list[SkippedPart] = []
    carried: list[Block] = []
    orphan: RawChapter | None = None  # a chapter heading with no text yet
    for raw in raws:
        if not any(_speakable(b) for b in raw.blocks):
            if raw.title and (raw.kind == "part" or _PART_TITLE.match(raw.title)):
                carried.append(Block("heading", raw.title))  # a part's title page: say it before the next chapter
                continue
            if orphan is not None:
                skipped.append(_empty(orphan))
            orphan = raw
            continue
        if orphan is not None and not raw.title and orphan.title:
            raw = RawChapter(orphan.title, raw.source, raw.blocks, raw.kind)
        elif orphan is not None:
            skipped.append(_empty(orphan))
        orphan = None
        number = len(chapters) + 1
        title = raw.title or (f"第{number}章" if language.lower().startswith("zh") else f"Chapter {number}")
        blocks = [*carried, Block("heading", title), *raw.blocks]
        carried = []
        paragraphs = _paragraphs(number, blocks, language, single)
        chapters.append(Chapter(number=number, title=title, paragraphs=paragraphs, source=raw.source))
    if orphan is not None:
        skipped.append(_empty(orphan))
    return tuple(chapters), tuple(skipped)


def _empty(raw: RawChapter) -> SkippedPart:
    log.warning("%s: chapter %s has no text; left out of the album", raw.source, repr(raw.title) if raw.title else "")
    return SkippedPart(source=raw.source, kind="empty", title=raw.title)


def _speakable(block: Block) -> bool:
    if block.kind == "speech":
        return any(has_words(text) for text, _ in block.runs)
    return block.kind in ("text", "verse") and has_words(block.text)


def _paragraphs(number: int, blocks: list[Block], language: str, single: bool) -> tuple[Paragraph, ...]:
    out: list[Paragraph] = []
    for block in _tidy_breaks(blocks):
        pid = f"c{number:02d}-p{len(out) + 1:04d}"
        if block.kind == "scene_break":
            out.append(Paragraph(id=pid, kind="scene_break"))
            continue
        segments = _segments(pid, block, language, single)
        if segments:
            kind = "verse" if block.kind == "verse" else "heading" if block.kind == "heading" else "text"
            out.append(Paragraph(id=pid, kind=kind, segments=segments))
    return tuple(out)


def _tidy_breaks(blocks: list[Block]) -> list[Block]:
    """Drop scene breaks at a chapter's ends, repeated ones and empty blocks."""
    kept: list[Block] = []
    for block in blocks:
        if block.kind == "scene_break":
            if kept and kept[-1].kind not in ("scene_break", "heading"):
                kept.append(block)
        elif block.kind == "speech" or has_words(block.text):
            kept.append(block)
    while kept and kept[-1].kind == "scene_break":
        kept.pop()
    return kept


def _segments(pid: str, block: Block, language: str, single: bool) -> tuple[Segment, ...]:
    if block.kind == "heading":
        text = clean_text(block.text).replace("\n", " ")
        pieces = [(text, "heading", NARRATOR, 1.0, "")]
    elif block.kind == "speech":
        pieces = _speech_pieces(block, language)
    elif block.kind == "note":
        lead = NOTE_LEAD["zh" if language.lower().startswith("zh") else "en"]
        text = f"{lead}{clean_text(block.text)}" if lead.endswith("：") else f"{lead} {clean_text(block.text)}"
        pieces = [(piece, "narration", NARRATOR, 1.0, "") for piece, _ in segment_text(text, language)]
    else:
        pieces = [
            (text, "dialogue", UNKNOWN_SPEAKER, 0.0, "") if quoted else (text, "narration", NARRATOR, 1.0, "")
            for text, quoted in segment_text(clean_text(block.text), language, single)
        ]
    return tuple(
        Segment(id=f"{pid}-s{n:02d}", text=text, spoken=_spoken(text, language), kind=kind,
                speaker=speaker, confidence=conf, rule=rule)
        for n, (text, kind, speaker, conf, rule) in enumerate(pieces, start=1)
        if has_words(text)
    )


def _spoken(text: str, language: str) -> str:
    """Return the spoken form, sharing the text's string when they are equal (a big book is held once, not twice)."""
    spoken = spoken_form(text, language)
    return text if spoken == text else spoken


def _speech_pieces(block: Block, language: str) -> list[tuple[str, str, str, float, str]]:
    """Return a play line's pieces: the speech as the persona's dialogue, stage directions as narration."""
    persona = clean_text(block.persona).replace("\n", " ") or UNKNOWN_SPEAKER
    merged: list[tuple[str, bool]] = []
    for text, is_direction in block.runs:
        if merged and merged[-1][1] == is_direction:
            merged[-1] = (merged[-1][0] + text, is_direction)
        else:
            merged.append((text, is_direction))
    pieces = []
    for text, is_direction in merged:
        for piece, _ in segment_text(clean_text(text), language):
            if is_direction:
                pieces.append((piece, "narration", NARRATOR, 1.0, ""))
            else:
                pieces.append((piece, "dialogue", persona, PLAY_CONFIDENCE, PLAY_RULE))
    return pieces
