"""The machinery every language's rules share: find edits in the displayed text, then assemble them.

A rule is a regex and a handler. Rules run in priority order over a "work" copy of the text (same
length, odd spaces made plain, full-width digits made ASCII) and each match claims its stretch, so
a later rule never rewrites what an earlier one decided. The edits, always on the original text,
become the spoken text and the spans that map it back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

# spaces that become a plain space in the work copy (and in the spoken text)
SPACE_CHARS = ("\t\n\r\f\v\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029"
               "\u202f\u205f")
# characters with no width on the page: they vanish from the spoken text
INVISIBLE_CHARS = "\u200b\u2060\u00ad\ufeff\u200c\u200d"
FULLWIDTH_DIGITS = "０１２３４５６７８９"
# a run of space-like or invisible characters (U+3000 included; Chinese rules see it first)
SPACE_RUN = f"[ {SPACE_CHARS}{INVISIBLE_CHARS}\u3000]"
OPENERS = "“‘\"'(「『《〔（[«„"
CLOSERS = "”’\"')」』》〕）]»"
STOPS = ".,;:!?…。，、；：！？"

_WORK = str.maketrans(SPACE_CHARS + FULLWIDTH_DIGITS + "％．：", " " * len(SPACE_CHARS) + "0123456789%.:")
_NEEDS_WORK = re.compile(f"[{SPACE_CHARS}{FULLWIDTH_DIGITS}％．：]")
_WHITESPACE = re.compile(f"(?:{SPACE_RUN}{{2,}}|(?! ){SPACE_RUN})" + SPACE_RUN + "*")
_ODD_SPACE = re.compile(f"[{SPACE_CHARS}{INVISIBLE_CHARS}\u3000]|  ")
_INVISIBLE_ONLY = re.compile(f"[{INVISIBLE_CHARS}]+")


@dataclass(frozen=True)
class Edit:
    """Replace display characters [start, end) by `text` in the spoken form."""

    start: int
    end: int
    text: str


Handler = Callable[[re.Match, "Context"], Sequence[Edit] | str | None]


@dataclass(frozen=True)
class Rule:
    """A pattern and what to say for each match.

    The handler returns a string (say this instead of the whole match), a list of edits inside the
    match (an empty list keeps the match as written and protects it from later rules), or None to
    let later rules look at it.
    """

    pattern: re.Pattern
    handler: Handler
    gate: re.Pattern | None = None  # when given, a quick search that must find something first


@dataclass(frozen=True)
class Context:
    """The text a handler looks at: `text` as displayed, `work` the same length with tidy spaces."""

    text: str
    work: str

    def before(self, i: int, chars: int = 48) -> str:
        """Return up to `chars` characters of the work text that end at `i`."""
        return self.work[max(0, i - chars) : i]

    def after(self, i: int, chars: int = 48) -> str:
        """Return up to `chars` characters of the work text that start at `i`."""
        return self.work[i : i + chars]

    def glued(self, i: int, also: str = "") -> bool:
        """Return True when the character before `i` is a letter, a digit or one of `also`."""
        return i > 0 and (self.work[i - 1].isalnum() or self.work[i - 1] == "_" or self.work[i - 1] in also)

    def prev_word(self, i: int) -> str:
        """Return the space-delimited token just before `i` (punctuation kept), or ""."""
        m = _PREV_TOKEN.search(self.before(i))
        return m.group(1) if m else ""

    def next_word(self, i: int) -> str:
        """Return the space-delimited token just after `i` (punctuation kept), or ""."""
        m = _NEXT_TOKEN.match(self.after(i))
        return m.group(1) if m else ""

    def ends_here(self, i: int) -> bool:
        """Return True when only closing quotes, brackets and spaces follow `i`."""
        return _TAIL.match(self.work, i) is not None

    def sentence_may_end(self, i: int) -> bool:
        """Return True when a full stop at `i` could end the sentence: end of text or a capital next."""
        if self.ends_here(i):
            return True
        m = _NEXT_START.match(self.work, i)
        return bool(m and m.group(1).isupper())


_TAIL = re.compile(f"[{re.escape(CLOSERS)} {INVISIBLE_CHARS}\u3000]*\\Z")
_PREV_TOKEN = re.compile(r"(\S+)\s+$")
_NEXT_TOKEN = re.compile(r"\s+(\S+)")
_NEXT_START = re.compile(r"[" + re.escape(CLOSERS) + r"]*\s+[" + re.escape(OPENERS) + r"]*(\w)")


def any_of(*strings: str) -> re.Pattern:
    """Return a pattern that finds any of `strings` (a rule's gate)."""
    return re.compile("|".join(re.escape(s) for s in strings))


def work_copy(text: str) -> str:
    """Return `text` with odd spaces plain and full-width digits ASCII, character for character."""
    return text.translate(_WORK) if _NEEDS_WORK.search(text) else text


def find_edits(ctx: Context, rules: Iterable[Rule]) -> list[Edit]:
    """Return the edits `rules` make to `ctx.text`, earlier rules winning any overlap."""
    claimed = bytearray(len(ctx.text))
    edits: list[Edit] = []
    for rule in rules:
        if rule.gate is not None and not rule.gate.search(ctx.work):
            continue
        for m in rule.pattern.finditer(ctx.work):
            start, end = m.span()
            if start == end or claimed.find(1, start, end) != -1:
                continue
            result = rule.handler(m, ctx)
            if result is None:
                continue
            if isinstance(result, str):
                result = [Edit(start, end, result)]
            if any(claimed.find(1, e.start, e.end) != -1 for e in result):
                continue  # an edit reaching outside its match ran into an earlier rule's stretch
            for a, b in ((start, end), *((e.start, e.end) for e in result)):
                claimed[a:b] = b"\x01" * (b - a)
            edits.extend(e for e in result if ctx.text[e.start : e.end] != e.text)
    return edits


def space_edits(text: str, edits: list[Edit]) -> list[Edit]:
    """Return edits that make every run of spaces outside `edits` one plain space, invisibles nothing."""
    if not _ODD_SPACE.search(text):
        return []
    runs = list(_WHITESPACE.finditer(text))
    touched = bytearray(len(text))
    for e in edits:
        touched[e.start : e.end] = b"\x01" * (e.end - e.start)
    out = []
    for m in runs:
        start, end = m.span()
        i = start
        while i < end:
            if touched[i]:
                i += 1
                continue
            j = touched.find(1, i, end)
            j = end if j == -1 else j
            run = text[i:j]
            say = "" if _INVISIBLE_ONLY.fullmatch(run) else " "
            if run != say:
                out.append(Edit(i, j, say))
            i = j
    return out


def assemble(text: str, edits: list[Edit]) -> tuple[str, list[tuple[int, int, int, int]]]:
    """Return the spoken text and its (display_start, display_end, spoken_start, spoken_end) spans."""
    pieces = _pieces(text, sorted(edits, key=lambda e: e.start))
    pieces = _tidy_spaces(pieces)
    spoken: list[str] = []
    spans: list[tuple[int, int, int, int]] = []
    at = 0
    for d0, d1, say, same in pieces:
        if same and spans and spans[-1][4]:  # two unchanged stretches in a row: one span
            spans[-1] = (spans[-1][0], d1, spans[-1][2], at + len(say), True)
        else:
            spans.append((d0, d1, at, at + len(say), same))
        spoken.append(say)
        at += len(say)
    return "".join(spoken), [s[:4] for s in spans]


def _pieces(text: str, edits: list[Edit]) -> list[tuple[int, int, str, bool]]:
    pieces, pos = [], 0
    for e in edits:
        if e.start < pos:  # overlapping edits cannot happen through find_edits; keep the first
            continue
        if e.start > pos:
            pieces.append((pos, e.start, text[pos : e.start], True))
        pieces.append((e.start, e.end, e.text, False))
        pos = e.end
    if pos < len(text):
        pieces.append((pos, len(text), text[pos:], True))
    return pieces


def _tidy_spaces(pieces: list[tuple[int, int, str, bool]]) -> list[tuple[int, int, str, bool]]:
    """Drop spaces at the ends and doubled spaces where two pieces meet; split unchanged pieces to do it."""
    out: list[tuple[int, int, str, bool]] = []
    after_space = True  # at the start, a leading space is dropped
    for d0, d1, say, same in pieces:
        if after_space and say.startswith(" "):
            k = len(say) - len(say.lstrip(" "))
            if same:
                out.append((d0, d0 + k, "", False))
                d0 += k
            say = say[k:]
        if say or not same:
            out.append((d0, d1, say, same and d1 > d0))
        if say:
            after_space = say.endswith(" ")
    i = len(out) - 1
    while i >= 0:  # trailing spaces, looking back past pieces that say nothing
        d0, d1, say, same = out[i]
        if say and not say.endswith(" "):
            break
        if say:
            keep = say.rstrip(" ")
            cut = d1 - (len(say) - len(keep))
            if same:
                out[i : i + 1] = [*([(d0, cut, keep, True)] if keep else []), (cut, d1, "", False)]
            else:
                out[i] = (d0, d1, keep, False)
            if keep:
                break
        i -= 1
    return out
