"""Dashes and ellipses become punctuation the engine pauses at; blanks for withheld names are said.

The Piper voice reads "word—word" and "word … word" with no pause at all (espeak-ng drops both
marks), so a dash becomes a comma and an ellipsis a comma or, at the end, a full stop. Marks that
stand next to other punctuation, or open a sentence, simply go.
"""

from __future__ import annotations

import re

from stages.normalize.edits import CLOSERS, INVISIBLE_CHARS, OPENERS, SPACE_CHARS, STOPS, Context, Edit, Rule, any_of

_GAP = f" {SPACE_CHARS}{INVISIBLE_CHARS}"
_DASH = re.compile("(?:[—―]+|-{2,})(?:[ \u2060\u200a]*(?:[—―]+|-{2,}))*|(?<= )–(?= )")
_ELLIPSIS = re.compile("[…⋯]+|\\.{3,}|\\.(?: \\.){2,}")
_BLANK = re.compile("[⸺⸻]+")  # a withheld name: "the ⸺shire", "General ⸻’s regiment"
_IDEOGRAPHIC_SPACE = re.compile("\u3000+")


def pause(m: re.Match, ctx: Context, *, mid: str, end: str, after_stop: str) -> list[Edit]:
    """Return the edit for a dash or ellipsis and the spaces around it: `mid` inside a sentence, `end` at its end."""
    start, stop = m.span()
    while start > 0 and ctx.text[start - 1] in _GAP:
        start -= 1
    while stop < len(ctx.text) and ctx.text[stop] in _GAP:
        stop += 1
    before, after = ctx.work[start - 1 : start] if start else "", ctx.work[stop : stop + 1]
    if not before or before in OPENERS:
        say = ""  # "—A short pause followed", "“……读书人的事"
    elif ctx.ends_here(stop):
        say = "" if before in STOPS else end
    elif after in STOPS:
        say = ""  # "…?" says the question mark, "word—," the comma
    elif before in STOPS:
        say = after_stop  # "library;—their" -> "library; their"
    else:
        say = mid
    return [Edit(start, stop, say)]


def _english_dash(m: re.Match, ctx: Context) -> list[Edit]:
    return pause(m, ctx, mid=", ", end=",", after_stop=" ")


def _english_ellipsis(m: re.Match, ctx: Context) -> list[Edit]:
    return pause(m, ctx, mid=", ", end=".", after_stop=" ")


def _chinese_dash(m: re.Match, ctx: Context) -> list[Edit]:
    return pause(m, ctx, mid="，", end="，", after_stop="")


def _chinese_ellipsis(m: re.Match, ctx: Context) -> list[Edit]:
    return pause(m, ctx, mid="，", end="。", after_stop="")


def _blank(m: re.Match, ctx: Context) -> str:
    before, after = ctx.before(m.start())[-1:], ctx.after(m.end())[:1]
    say = "blank"
    if before.isalnum():
        say = " " + say
    if after.isalpha():
        say += "-"
    return say


def _ideographic_space(m: re.Match, ctx: Context) -> str:
    """Return "，" for a gap between words ("孔乙己　故乡"), nothing for an indent or a gap by punctuation."""
    before, after = ctx.before(m.start())[-1:], ctx.after(m.end())[:1]
    if not before or not after or before in STOPS + OPENERS + CLOSERS or after in STOPS + OPENERS + CLOSERS:
        return ""
    if before == " " or after == " ":
        return ""
    return "，"


_ELLIPSIS_MARKS = any_of("…", "⋯", "..", ". .")
_DASH_MARKS = any_of("—", "―", "--", "–")
_BLANK_MARKS = any_of("⸺", "⸻")
ENGLISH = (
    Rule(_ELLIPSIS, _english_ellipsis, _ELLIPSIS_MARKS),
    Rule(_DASH, _english_dash, _DASH_MARKS),
    Rule(_BLANK, _blank, _BLANK_MARKS),
)
CHINESE = (
    Rule(_ELLIPSIS, _chinese_ellipsis, _ELLIPSIS_MARKS),
    Rule(_DASH, _chinese_dash, _DASH_MARKS),
    Rule(_BLANK, _blank, _BLANK_MARKS),
    Rule(_IDEOGRAPHIC_SPACE, _ideographic_space, any_of("\u3000")),
)
