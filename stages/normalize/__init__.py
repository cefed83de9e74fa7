"""Text normalization for speech: what the engine should say for a stretch of displayed text.

`normalize(text, language)` returns the spoken text together with spans that map every changed
stretch of the displayed text to its spoken replacement ("Mr." -> "Mister", "1813" -> "eighteen
thirteen"), and every unchanged stretch to itself. The spans cover both texts in order, so a word
the engine speaks (and an aligner times) can be traced back to the word on the page.

English (any "en*" tag) and Chinese ("zh*") have their own rules; other languages get only the
language-neutral tidying (spaces, invisible characters). Pure and deterministic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from stages.normalize import abbreviations, en, pauses, roman, zh
from stages.normalize.edits import SPACE_RUN, Context, assemble, find_edits, space_edits, work_copy

ENGLISH_RULES = (*en.RULES, *pauses.ENGLISH, *roman.RULES, *abbreviations.RULES)
CHINESE_RULES = (*zh.RULES, *pauses.CHINESE)
ENGLISH_NUMBER_RULES = len(en.RULES)  # the rules that only matter when the text holds a digit
_DIGIT = re.compile(r"[\d½⅓⅔¼¾⅛⅜⅝⅞]")  # numbers, or a fraction sign alone
_LINE_BREAK = re.compile(f"{SPACE_RUN}*\n{SPACE_RUN}*")


@dataclass(frozen=True)
class Span:
    """Display characters [display_start, display_end) are spoken as [spoken_start, spoken_end).

    A stretch whose two sides have equal lengths maps character for character: every unchanged
    stretch, and one-for-one replacements ("2024" -> "二零二四", a no-break space -> " "). Any other
    changed stretch maps as a whole ("1813" <-> "eighteen thirteen"). A deleted stretch (an invisible
    character) has an empty spoken range.
    """

    display_start: int
    display_end: int
    spoken_start: int
    spoken_end: int


@dataclass(frozen=True)
class Spoken:
    """The spoken form of a text and the spans that tie it to the displayed text."""

    text: str
    spans: tuple[Span, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "spans": [[s.display_start, s.display_end, s.spoken_start, s.spoken_end]
                                            for s in self.spans]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Spoken:
        return cls(text=data["text"], spans=tuple(Span(*s) for s in data["spans"]))


def normalize(text: str, language: str) -> Spoken:
    """Return what the engine should say for `text` in `language`, with spans back to `text`.

    Each line is normalized on its own (a line's end counts as the text's end, as in verse). A line
    break is said as a pause: a comma where the line ends without punctuation, else a space.
    """
    if "\n" not in text:
        return _normalize_line(text, language.lower())
    lines, breaks, at = [], [], 0
    for m in _LINE_BREAK.finditer(text):
        lines.append((at, _normalize_line(text[at : m.start()], language.lower())))
        breaks.append(m.span())
        at = m.end()
    lines.append((at, _normalize_line(text[at:], language.lower())))
    more = [False] * len(lines)  # more[k]: a line after line k says something
    for k in range(len(lines) - 2, -1, -1):
        more[k] = more[k + 1] or bool(lines[k + 1][1].text)
    said: list[str] = []
    spans: list[Span] = []
    length, last = 0, ""
    for k, (start, line) in enumerate(lines):
        spans.extend(Span(s.display_start + start, s.display_end + start, s.spoken_start + length,
                          s.spoken_end + length) for s in line.spans)
        said.append(line.text)
        length += len(line.text)
        last = line.text[-1:] or last
        if k < len(breaks):
            gap = _line_break_pause(last, language) if last and last != " " and more[k] else ""
            spans.append(Span(*breaks[k], length, length + len(gap)))
            said.append(gap)
            length += len(gap)
            last = gap or last
    return Spoken("".join(said), tuple(spans))


def _line_break_pause(last: str, language: str) -> str:
    """Return what a line break is said as after a line ending in `last`: a pause the voice honours."""
    if last.isalnum():
        return "，" if language.lower().startswith("zh") else ", "
    return "" if language.lower().startswith("zh") else " "


def _normalize_line(text: str, lang: str) -> Spoken:
    ctx = Context(text, work_copy(text))
    digits = bool(_DIGIT.search(ctx.work))
    if lang.startswith("zh"):
        rules = CHINESE_RULES if digits else CHINESE_RULES[len(zh.RULES):]
    elif lang.startswith("en") or not lang:
        rules = ENGLISH_RULES if digits else ENGLISH_RULES[ENGLISH_NUMBER_RULES:]
    else:
        rules = ()
    edits = find_edits(ctx, rules)
    edits += space_edits(text, edits)
    spoken, spans = assemble(text, edits)
    return Spoken(spoken, tuple(Span(*s) for s in spans))


def display_range(spoken: Spoken, start: int, end: int) -> tuple[int, int]:
    """Return the displayed characters that spoken characters [start, end) come from."""
    if not 0 <= start < end <= len(spoken.text):
        raise ValueError(f"spoken range [{start}, {end}) is not inside the spoken text of length {len(spoken.text)}")
    hits = [_project(s.spoken_start, s.spoken_end, s.display_start, s.display_end, start, end)
            for s in spoken.spans if s.spoken_start < end and s.spoken_end > start]
    return min(a for a, _ in hits), max(b for _, b in hits)


def spoken_range(spoken: Spoken, start: int, end: int) -> tuple[int, int]:
    """Return the spoken characters that displayed characters [start, end) are said as."""
    hits = [_project(s.display_start, s.display_end, s.spoken_start, s.spoken_end, start, end)
            for s in spoken.spans if s.display_start < end and s.display_end > start]
    if start >= end or not hits:
        raise ValueError(f"display range [{start}, {end}) is empty or outside the text")
    return min(a for a, _ in hits), max(b for _, b in hits)


def _project(a0: int, a1: int, b0: int, b1: int, start: int, end: int) -> tuple[int, int]:
    """Map [start, end) ∩ [a0, a1) onto [b0, b1): character for character when lengths match, else whole."""
    if a1 - a0 != b1 - b0:
        return b0, b1
    return b0 + max(start, a0) - a0, b0 + min(end, a1) - a0


__all__ = ["Span", "Spoken", "display_range", "normalize", "spoken_range"]
