"""Read a plain-text or Markdown book: decode it, find title and author, cut it into chapters at headings."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path

from stages.errors import UserError
from stages.ingest.blocks import Block, RawChapter, listener_title, smart_title_case
from stages.ingest.sentences import clean_text, has_words
from stages.model import SkippedPart

FRONT_MATTER_MAX_LINES = 12  # title/author lines are looked for only this far before the first chapter
TITLE_MAX_CHARS = 120
HEADING_MAX_CHARS = 100
CONTROL_SHARE_MAX = 0.01  # more control characters than this and the file is binary, not text
HAN_SHARE_MIN = 0.3  # GB18030 is believed only when this share of the non-ASCII text is Han

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
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
_GUTENBERG_START = re.compile(r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG.*$", re.M | re.I)
_GUTENBERG_END = re.compile(r"^\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG.*$", re.M | re.I)
_BY_LINE = re.compile(r"(?:by|BY|By)\s+(.+)")
_ZH_AUTHOR_LINE = re.compile(r"(.{1,20}?)[\s\u3000]*(?:编著|著|撰)")
_MD_RULE = re.compile(r"(?:[*_-][ \t]*){3,}|\*(?:[ \t]+\*){2,}")


@dataclass(frozen=True)
class TextBook:
    title: str
    author: str
    chapters: list[RawChapter]
    skipped: tuple[SkippedPart, ...]
    text: str  # the decoded text, for language detection


def decode(data: bytes, path: Path) -> str:
    """Return the text of a UTF-8 (with or without BOM), UTF-16 (with BOM), GB18030 or Windows-1252 file."""
    if data.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    else:
        candidates = ["utf-8", "gb18030", "cp1252"]
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if encoding == "gb18030" and not _mostly_han(text):
            continue
        if len(_CONTROL.findall(text)) > CONTROL_SHARE_MAX * max(len(text), 1):
            break
        return text.replace("\r\n", "\n").replace("\r", "\n")
    raise UserError(f"{path}: not a text file (binary or in an unknown encoding); save the book as UTF-8 text")


def _mostly_han(text: str) -> bool:
    non_ascii = [c for c in text if ord(c) > 127]
    return bool(non_ascii) and len(_HAN.findall(text)) >= HAN_SHARE_MIN * len(non_ascii)


def read_text_book(text: str, path: Path, markdown: bool) -> TextBook:
    """Return the title, author and chapters of a decoded .txt or .md book."""
    text, skipped = _strip_gutenberg(text)
    entries = _markdown_blocks(text) if markdown else _text_blocks(text)
    first = next((i for i, (kind, _, _) in enumerate(entries) if kind == "chapter"), None)
    title, author, used = _front_matter(entries, before_heading=first)
    front = entries[: first if first is not None else used]
    if front:
        skipped.append(SkippedPart(source=f"lines {front[0][2]}-{front[-1][2]}", kind="frontmatter", title=title))
    chapters: list[RawChapter] = []
    for kind, value, line in entries[len(front):]:
        if kind == "chapter":
            chapters.append(RawChapter(title=value, source=f"line {line}", blocks=()))
            continue
        if not chapters:
            chapters.append(RawChapter(title="", source=f"line {line}", blocks=()))
        last = chapters[-1]
        chapters[-1] = RawChapter(last.title, last.source, (*last.blocks, value))
    title = title or path.stem
    chapters = [c if c.title else RawChapter(title, c.source, c.blocks) for c in chapters]
    return TextBook(title=title, author=author, chapters=chapters, skipped=tuple(skipped), text=text)


def _strip_gutenberg(text: str) -> tuple[str, list[SkippedPart]]:
    skipped = []
    start, end = _GUTENBERG_START.search(text), _GUTENBERG_END.search(text)
    if start:
        skipped.append(SkippedPart(source="line 1", kind="license", title="Project Gutenberg header"))
        text = "\n" * text.count("\n", 0, start.end()) + text[start.end():]
    if end:
        skipped.append(SkippedPart(source=f"line {text.count(chr(10), 0, end.start()) + 1}", kind="license",
                                   title="Project Gutenberg licence"))
        text = text[: end.start()]
    return text, skipped


def _paragraph_runs(text: str) -> list[tuple[list[str], int]]:
    """Return groups of lines (a paragraph each) with their first line number; one line each if no blank lines."""
    lines = text.split("\n")
    blank_separated = sum(1 for ln in lines if not ln.strip()) >= max(1, len(lines) // 20)
    groups: list[tuple[list[str], int]] = []
    current: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or not blank_separated:
            if current:
                groups.append((current, number - len(current)))
                current = []
            if line.strip():
                groups.append(([line], number))
            continue
        current.append(line)
    if current:
        groups.append((current, len(lines) - len(current) + 1))
    return groups


def _join_lines(lines: list[str]) -> str:
    out = ""
    for line in (ln.strip() for ln in lines):
        if out and not (_HAN.match(line[:1]) and _HAN.match(out[-1:])):
            out += " "
        out += line
    return out


def _text_blocks(text: str) -> list[tuple[str, object, int]]:
    """Return ("chapter", title, line) and ("block", Block, line) entries for a plain-text book."""
    out: list[tuple[str, object, int]] = []
    for lines, number in _paragraph_runs(text):
        joined = _join_lines(lines)
        title = _txt_heading(joined) if len(lines) == 1 else None
        if title:
            out.append(("chapter", title, number))
        elif re.fullmatch(r"[\s*·•⁂~#=_\-–—]+", joined):
            out.append(("block", Block("scene_break"), number))
        else:
            out.append(("block", Block("text", joined), number))
    return out


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


def _markdown_blocks(text: str) -> list[tuple[str, object, int]]:
    """Return ("chapter", title, line) and ("block", Block, line) entries for a Markdown book."""
    groups = _paragraph_runs(text)
    levels = [len(m.group(1)) for lines, _ in groups if (m := _MD_HEADING.fullmatch(lines[0].strip()))]
    chapter_level = next((lv for lv in sorted(set(levels)) if levels.count(lv) >= 2), min(levels, default=0))
    out: list[tuple[str, object, int]] = []
    for lines, number in groups:
        first = lines[0].strip()
        m = _MD_HEADING.fullmatch(first) if len(lines) == 1 else None
        if m and len(m.group(1)) == chapter_level:
            out.append(("chapter", listener_title(strip_markdown(m.group(2))), number))
        elif m:
            out.append(("block", Block("heading", listener_title(strip_markdown(m.group(2)), "Part")), number))
        elif _MD_RULE.fullmatch(first) and len(lines) == 1:
            out.append(("block", Block("scene_break"), number))
        elif all(ln.lstrip().startswith(">") for ln in lines):
            verse = "\n".join(strip_markdown(re.sub(r"^\s*>\s?", "", ln)) for ln in lines)
            out.append(("block", Block("verse", verse), number))
        elif not re.match(r"\[\^[^\]]+\]:", first):
            out.append(("block", Block("text", strip_markdown(_join_md_lines(lines))), number))
    return out


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
