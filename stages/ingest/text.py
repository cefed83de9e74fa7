"""Read a plain-text or Markdown book: find title and author, cut it into chapters at headings, as it streams.

Lines come from `decode.TextFile` a block at a time; paragraphs, headings and chapters are made as they
arrive, so a big book is held once (as its chapters), never as one string, list of lines and copies.
The layout (blank-line paragraphs or one per line), Project Gutenberg's header and the quote style are
judged on the opening; a Markdown book is read twice, first for its heading levels and footnotes.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from stages.ingest.blocks import SINGLE_QUOTE_MIN_PARAGRAPHS, Block, RawChapter, listener_title, smart_title_case
from stages.ingest.decode import TextFile
from stages.ingest.sentences import clean_text, has_words
from stages.model import SkippedPart

FRONT_MATTER_MAX_LINES = 12  # title/author lines are looked for only this far before the first chapter
TITLE_MAX_CHARS = 120
HEADING_MAX_CHARS = 100
LAYOUT_SAMPLE_CHARS = 1_000_000  # the opening judged for layout, Gutenberg header and quote style
LANGUAGE_SAMPLE_CHARS = 20_000

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_NUMBER_WORDS = (
    r"(?i:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
    r"seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|first|second|third|fourth|fifth|sixth|seventh|"
    r"eighth|ninth|tenth|last|the\s+last)(?:[-\s](?i:one|two|three|four|five|six|seven|eight|nine))?"
)
_TXT_HEADING = re.compile(
    r"(?:(CHAPTER|Chapter|BOOK|Book|PART|Part|ACT|Act|STAVE|Stave)\s+([IVXLCDM]+|\d+|" + _NUMBER_WORDS + r")\b\.?"
    r"(?:[\s.:—–-]+(\S.*))?"
    r"|(第[一二三四五六七八九十百千零〇两\d]+[章回节卷篇部幕])(?:[\s\u3000]*(.*))?)"
)
_MD_HEADING = re.compile(r"(#{1,6})\s+(.+?)\s*#*")
_MD_FOOTNOTE = re.compile(r"\[\^([^\]]+)\]:\s*")
_MD_NOTEREF = re.compile(r"\[\^([^\]]+)\](?!:)")
_GUTENBERG_START = re.compile(r"\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG.*", re.I)
_GUTENBERG_END = re.compile(r"\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG.*", re.I)
_BY_LINE = re.compile(r"(?:by|BY|By)\s+(.+)")
_ZH_AUTHOR_LINE = re.compile(r"(.{1,20}?)[\s\u3000]*(?:编著|著|撰)")
_MD_RULE = re.compile(r"(?:[*_-][ \t]*){3,}|\*(?:[ \t]+\*){2,}")


@dataclass(frozen=True)
class TextBook:
    """A text book being read; `skipped` and `file.sha256` are complete once `chapters` (one pass) is exhausted."""

    title: str
    author: str
    sample: str  # the opening text, to tell the language by
    single_quotes: bool  # speech opens with ‘ (judged on the opening)
    chapters: Iterator[RawChapter]
    skipped: list[SkippedPart]
    file: TextFile


def read_text_book(path: Path, markdown: bool, notes: str = "skip") -> TextBook:
    """Return the title, author, language and (lazily) the chapters of a .txt or .md book, streaming the file."""
    plan = _markdown_plan(path, notes) if markdown else None
    reader = _Lines(TextFile(path))
    groups = _paragraph_runs(reader.numbered(), reader.blank_separated)
    entries = _markdown_blocks(groups, plan) if plan else _text_blocks(groups)
    front: list[tuple[str, object, int]] = []
    heading = None
    for entry in entries:
        if entry[0] == "chapter":
            heading = entry
            break
        front.append(entry)
    title, author, used = _front_matter(front, before_heading=len(front) if heading else None)
    body = [] if heading else front[used:]
    front = front if heading else front[:used]
    if front:
        reader.skipped.append(SkippedPart(source=f"lines {front[0][2]}-{front[-1][2]}", kind="frontmatter",
                                          title=title))
    title = title or path.stem
    chapters = _chapters(heading, body, entries, title, plan.notes if plan else None)
    return TextBook(title=title, author=author, sample=reader.sample,
                    single_quotes=reader.single_quotes, chapters=chapters, skipped=reader.skipped, file=reader.file)


def _chapters(heading, body: list, entries: Iterator, book_title: str, notes: dict | None) -> Iterator[RawChapter]:
    """Yield one RawChapter per heading (or one named after the book when there is none), block lists kept short."""
    if heading:
        title, source = heading[1], f"line {heading[2]}"
    else:
        title, source = book_title, f"line {body[0][2]}" if body else ""
    blocks = [value for _, value, _ in body]
    for kind, value, line in entries:
        if kind == "chapter":
            yield RawChapter(title, source, tuple(_with_notes(blocks, notes)))
            title, source, blocks = value, f"line {line}", []
        else:
            blocks.append(value)
    if heading or blocks:
        yield RawChapter(title, source, tuple(_with_notes(blocks, notes)))


def _with_notes(blocks: list[Block], notes: dict[str, str] | None) -> list[Block]:
    if notes is None:
        return blocks
    from stages.ingest.notes import with_notes

    return with_notes(blocks, notes.get, where="footnotes")


class _Lines:
    """The numbered lines of a text file after Project Gutenberg's header and licence, and what the opening says."""

    def __init__(self, file: TextFile, report: bool = True):
        self.file = file
        self.skipped: list[SkippedPart] = []
        self._lines = file.lines(report=report)
        self._head: list[str] = []
        size = 0
        for line in self._lines:
            self._head.append(line)
            size += len(line) + 1
            if size >= LAYOUT_SAMPLE_CHARS:
                break
        self._start = 0
        for k, line in enumerate(self._head):
            if _GUTENBERG_START.match(line):
                self.skipped.append(SkippedPart(source="line 1", kind="license", title="Project Gutenberg header"))
                self._start = k + 1
                break
        opening = self._head[self._start:]
        self.blank_separated = sum(1 for ln in opening if not ln.strip()) >= max(1, len(opening) // 20)
        self.sample = "\n".join(opening)[:LANGUAGE_SAMPLE_CHARS]
        firsts = [ln.lstrip("> \t\u3000")[:1] for ln in opening]
        single, double = firsts.count("‘"), sum(firsts.count(q) for q in "“\"「")
        self.single_quotes = single >= SINGLE_QUOTE_MIN_PARAGRAPHS and single > double

    def numbered(self) -> Iterator[tuple[int, str]]:
        """Yield (line number, line) up to Project Gutenberg's licence; the rest of the file is still read."""
        number = self._start
        ended = False
        for line in itertools.chain(self._head[self._start:], self._lines):
            number += 1
            if ended:
                continue
            if _GUTENBERG_END.match(line):
                self.skipped.append(
                    SkippedPart(source=f"line {number}", kind="license", title="Project Gutenberg licence"))
                ended = True
                continue
            yield number, line
        self._head = []


def _paragraph_runs(lines: Iterable[tuple[int, str]], blank_separated: bool) -> Iterator[tuple[list[str], int]]:
    """Yield groups of lines (a paragraph each) with their first line number; one line each if no blank lines."""
    current: list[str] = []
    start = 0
    for number, line in lines:
        if not line.strip() or not blank_separated:
            if current:
                yield current, start
                current = []
            if line.strip():
                yield [line], number
            continue
        if not current:
            start = number
        current.append(line)
    if current:
        yield current, start


def _join_lines(lines: list[str]) -> str:
    """Return a paragraph's lines as one line: joined by a space, or directly between two Han characters."""
    parts: list[str] = []
    last = ""
    for line in (ln.strip() for ln in lines):
        if not line:
            continue
        if parts and not (_HAN.match(line[:1]) and _HAN.match(last)):
            parts.append(" ")
        parts.append(line)
        last = line[-1]
    return "".join(parts)


def _text_blocks(groups: Iterable[tuple[list[str], int]]) -> Iterator[tuple[str, object, int]]:
    """Yield ("chapter", title, line) and ("block", Block, line) entries for a plain-text book."""
    for lines, number in groups:
        joined = _join_lines(lines)
        title = _txt_heading(joined) if len(lines) == 1 else None
        if title:
            yield "chapter", title, number
        elif re.fullmatch(r"[\s*·•⁂~#=_\-–—]+", joined):
            yield "block", Block("scene_break"), number
        else:
            yield "block", Block("text", joined), number


def _txt_heading(line: str) -> str | None:
    """Return the listener title of a heading line ("CHAPTER I." -> "Chapter I"), or None."""
    line = clean_text(line)
    if len(line) > HEADING_MAX_CHARS or not _TXT_HEADING.fullmatch(line):
        return None
    m = _TXT_HEADING.fullmatch(line)
    if m.group(4):
        return None if re.search(r"[。！？，；]", m.group(5) or "") else line  # kept as the book has it
    label, number, rest = m.group(1), m.group(2), m.group(3)
    if rest and re.search(r"[.!?,;]$", rest) and len(rest.split()) > 8:
        return None  # a sentence that happens to start with "Chapter ..."
    head = f"{smart_title_case(label)} {number}"
    return f"{head}: {smart_title_case(rest.rstrip('.'))}" if rest else head


@dataclass(frozen=True)
class _MarkdownPlan:
    """What a first pass over a Markdown book finds: the chapter heading level and the footnotes' text."""

    chapter_level: int
    notes: dict[str, str] | None  # footnote label -> text, when notes are read as asides


def _markdown_plan(path: Path, notes: str) -> _MarkdownPlan:
    """Return the chapter level (the highest level used twice, else the highest) and, for asides, the footnotes."""
    reader = _Lines(TextFile(path), report=False)
    levels: dict[int, int] = {}
    found: dict[str, str] = {}
    for lines, _ in _paragraph_runs(reader.numbered(), reader.blank_separated):
        first = lines[0].strip()
        if m := _MD_HEADING.fullmatch(first):
            levels[len(m.group(1))] = levels.get(len(m.group(1)), 0) + 1
        elif notes == "aside" and _MD_FOOTNOTE.match(first):
            for label, text in _footnotes(lines):
                found.setdefault(label, text)
    level = next((lv for lv in sorted(levels) if levels[lv] >= 2), min(levels, default=0))
    return _MarkdownPlan(chapter_level=level, notes=found if notes == "aside" else None)


def _footnotes(lines: list[str]) -> Iterator[tuple[str, str]]:
    """Yield (label, text) for each footnote definition in a group; a definition runs until the next one."""
    label, parts = "", []
    for line in lines:
        if m := _MD_FOOTNOTE.match(line.strip()):
            if label:
                yield label, strip_markdown(_join_lines(parts))
            label, parts = m.group(1), [line.strip()[m.end():]]
        else:
            parts.append(line)
    if label:
        yield label, strip_markdown(_join_lines(parts))


def _markdown_blocks(groups: Iterable[tuple[list[str], int]], plan: _MarkdownPlan) -> Iterator[tuple[str, object, int]]:
    """Yield ("chapter", title, line) and ("block", Block, line) entries for a Markdown book."""
    for lines, number in groups:
        first = lines[0].strip()
        m = _MD_HEADING.fullmatch(first) if len(lines) == 1 else None
        if m and len(m.group(1)) == plan.chapter_level:
            yield "chapter", listener_title(strip_markdown(m.group(2))), number
        elif m:
            yield "block", Block("heading", listener_title(strip_markdown(m.group(2)), "Part")), number
        elif _MD_RULE.fullmatch(first) and len(lines) == 1:
            yield "block", Block("scene_break"), number
        elif all(ln.lstrip().startswith(">") for ln in lines):
            verse = "\n".join(strip_markdown(re.sub(r"^\s*>\s?", "", ln)) for ln in lines)
            yield "block", Block("verse", verse, notes=_md_refs(lines)), number
        elif not _MD_FOOTNOTE.match(first):
            yield "block", Block("text", strip_markdown(_join_md_lines(lines)), notes=_md_refs(lines)), number


def _md_refs(lines: list[str]) -> tuple[str, ...]:
    return tuple(m.group(1) for ln in lines if "[^" in ln for m in _MD_NOTEREF.finditer(ln))


def _join_md_lines(lines: list[str]) -> str:
    return "\n".join(ln.rstrip() if ln.endswith("  ") else ln for ln in lines if ln.strip()) if any(
        ln.endswith("  ") for ln in lines[:-1]) else _join_lines(lines)


def strip_markdown(text: str) -> str:
    """Return `text` without Markdown markup: emphasis, links, images, footnote refs, inline HTML, list marks."""
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)
    text = re.sub(r"\[\^[^\]]+\]", "", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"</?[A-Za-z][^>]*>", "", text)
    text = re.sub(r"^\s*(?:[-+*]|\d+[.)])\s+", "", text)
    text = re.sub(r"(\*{1,3})(?=\S)(.+?)(?<=\S)\1", r"\2", text)
    text = re.sub(r"(?<!\w)(_{1,3})(?=\S)(.+?)(?<=\S)\1(?!\w)", r"\2", text)
    text = re.sub(r"`([^`]*)`", r"\1", text)
    return re.sub(r"\\([\\`*_{}\[\]()#+\-.!>])", r"\1", text).rstrip()


def _front_matter(entries: list, before_heading: int | None) -> tuple[str, str, int]:
    """Return (title, author, entries used) from the opening lines: a short title line and a by-line."""
    title = author = ""
    used = 0
    limit = before_heading if before_heading is not None else FRONT_MATTER_MAX_LINES
    for k, (kind, block, _) in enumerate(entries[:min(limit, FRONT_MATTER_MAX_LINES)]):
        if kind != "block" or block.kind not in ("text", "heading"):
            break
        line = clean_text(block.text).replace("\n", " ")
        if not author and (m := _BY_LINE.fullmatch(line) or _ZH_AUTHOR_LINE.fullmatch(line)):
            author = m.group(1).strip()
        elif not title and len(line) <= TITLE_MAX_CHARS and has_words(line) and not re.search(r"[.!?。！？”]$", line):
            title = smart_title_case(line)
        else:
            break
        used = k + 1
    return title, author, used
