"""Roman numerals, read only where they are numbers: headings, regnal names and lines of their own.

"Chapter IV" -> "Chapter four", "Henry VIII" -> "Henry the Eighth", "World War II" -> "World War two",
a title that is only "XII" -> "twelve". Never the pronoun "I", never words spelt with the same
letters ("Mix", "CIVIL", "Did"), never initials ("C. S. Lewis") and never all-capital text after a
name ("HENRY VIII" stays as written: in capitals every word looks like a name).
"""

from __future__ import annotations

import re

from stages.normalize.edits import Context, Rule
from stages.normalize.numbers import cardinal, ordinal

MAX_REGNAL = 39  # regnal and similar numbers go no higher (Louis XVIII, John XXIII)

_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
_CANONICAL = re.compile(r"M{0,3}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})")
# words after which a numeral counts: "Chapter IV" -> "Chapter four"
HEADING_WORDS = frozenset(
    "chapter chap part book volume vol act scene stave canto section appendix fytte psalm".split())
# names that take a cardinal, not "the Nth": "World War II" -> "World War two"
CARDINAL_WORDS = frozenset("War Type Class Phase Mark Stage Level Grade Tier Vatican Bowl Apollo Gemini Title".split())
# capitalised words that are not names, so "And I" or "When IV" say nothing about numerals
NOT_NAMES = frozenset(
    "A An And As At But By Do Did For From Had Has Have He Her Here His How If In Is It Its May Might Must My No "
    "Nor Not Now Of Oh On Or Our Perhaps Said Says She Should So Such That The Their Then There These They This "
    "Those Though Till To Too Was We Well Were What When Where Whether Which While Who Why Will With Would Yes "
    "Yet You Your Indeed Albany Both Could Can Shall Sometimes Am".split()
)
# monarchs and popes: only after these is "I" a numeral ("Charles I"), and only at a phrase's end
MONARCHS = frozenset(
    "Henry Edward George William Charles James Richard Elizabeth Mary Anne Victoria Louis Philip Peter "
    "Catherine Frederick Napoleon Alexander Nicholas Ferdinand Francis Leopold Pius Leo Gregory Innocent "
    "Benedict Clement Urban Boniface Alfonso Carlos Pedro Otto Rudolf Wilhelm Ivan Gustav Gustavus Christian "
    "Haakon Olaf Harald Canute Robert David Malcolm Alfred Ethelred Edmund Stephen Isabella Constantine "
    "Justinian Theodosius Selim Mehmed Suleiman Ptolemy Darius Xerxes Cyrus Artaxerxes Antiochus".split()
)
_TOKEN = re.compile(r"([IVXLCDM]+)(?![\w\-])(?!['’](?![sS]\b))")
_LINE = re.compile(r"\s*[IVXLCDM]+[.:]?\s*")
_PHRASE_END = re.compile(r"[’']s\b|\s*[,.;:!?”’)]|\s*$|\s+(?:of|and)\b")
_HEADING_END = re.compile(r"\s*[,.;:!?”’)—–-]|\s*$|\s+(?:[A-Z]|of\b|and\b|to\b)")


def roman_value(token: str) -> int | None:
    """Return the value of a canonically written Roman numeral ("XIV" -> 14), or None."""
    if not token or not _CANONICAL.fullmatch(token):
        return None
    total = 0
    for a, b in zip(token, token[1:] + " "):
        value = _VALUES[a]
        total += -value if b != " " and _VALUES[b] > value else value
    return total


def _heading_word(word: str) -> bool:
    bare = word.rstrip(".")
    return bare.lower() in HEADING_WORDS and (bare[0].isupper()) and (bare.istitle() or bare.isupper())


def _is_name(word: str) -> bool:
    return bool(re.fullmatch(r"[A-Z][a-z]+", word)) and word not in NOT_NAMES


def _say(m: re.Match, ctx: Context) -> str | None:
    token = m.group(1)
    value = roman_value(token)
    if value is None or ctx.glued(m.start(), "’'.-"):
        return None
    start, end = m.span(1)
    prev = ctx.prev_word(start)
    if token == "I" and prev not in MONARCHS and prev not in CARDINAL_WORDS and not _heading_word(prev):
        return None  # the pronoun, nearly always
    after = ctx.after(end, 24)
    if _heading_word(prev):
        if token == "I" and not _HEADING_END.match(after):
            return None  # "Part I think": the pronoun
        return cardinal(value)
    if _LINE.fullmatch(ctx.work) and token != "I":
        return cardinal(value)  # a line of its own: a section number
    if not _is_name(prev) or not re.fullmatch(r"[IVX]+", token) or value > MAX_REGNAL or token == "X":
        return None
    if token == "I" and not _PHRASE_END.match(after):
        return None  # "Charles I think": the pronoun; "Charles I." / "Charles I of England": the numeral
    if prev in CARDINAL_WORDS:
        return cardinal(value)
    return "the " + ordinal(value).capitalize()


RULES = (Rule(_TOKEN, _say),)
