"""English abbreviations and symbols said in full: "Mr." -> "Mister", "e.g." -> "for example", "&" -> "and".

An abbreviation's full stop is not a sentence's end, and the voice would pause at it ("Mr. Darcy"
comes out as two sentences), so it goes; it stays where the abbreviation also ends the sentence
("Baker St." -> "Baker Street."). Two abbreviations depend on their neighbours: "St." is "Saint"
before a name and "Street" after one; "Dr." is "Doctor" unless it follows a name and no name
follows ("Mulholland Dr." -> "Mulholland Drive").
"""

from __future__ import annotations

import re

from stages.normalize.edits import OPENERS, Context, Rule, any_of

# titles said in full whenever written with their full stop
TITLES = {"Mr": "Mister", "Mrs": "Missus", "Ms": "Miz", "Messrs": "Messieurs", "Mme": "Madame",
          "Mlle": "Mademoiselle", "Dr": "Doctor", "St": "Saint"}
# titles said in full only before a name (without one "Gen." may be Genesis, "Col." a mountain pass)
NAME_TITLES = {"Prof": "Professor", "Rev": "Reverend", "Capt": "Captain", "Col": "Colonel", "Gen": "General",
               "Lt": "Lieutenant", "Lieut": "Lieutenant", "Sgt": "Sergeant", "Hon": "Honourable",
               "Gov": "Governor", "Fr": "Father", "Mt": "Mount", "Sen": "Senator", "Rep": "Representative"}
# after a name or a firm ("John Smith, Jr.", "Holder & Co.")
SUFFIXES = {"Jr": "Junior", "Sr": "Senior", "Esq": "Esquire", "Bros": "Brothers", "Co": "Company",
            "Ltd": "Limited", "Inc": "Incorporated"}
LATIN = {"e.g.": "for example", "i.e.": "that is", "etc.": "et cetera", "&c.": "et cetera", "viz.": "namely",
         "cf.": "compare", "vs.": "versus", "vs": "versus", "v.": "versus", "approx.": "approximately",
         "inst.": "instant", "ult.": "ultimo", "prox.": "proximo", "ca.": "circa", "c.": "circa",
         "no.": "number", "nos.": "numbers", "p.": "page", "pp.": "pages", "vol.": "volume", "ch.": "chapter",
         "fig.": "figure"}
# these may also end a sentence, so their full stop stays when a sentence could end there
SENTENCE_ENDERS = frozenset({"etc.", "&c.", "inst.", "ult.", "prox.", "approx."})
_BEFORE_NUMBERS = frozenset({"no.", "nos.", "p.", "pp.", "vol.", "ch.", "fig.", "ca.", "c."})  # said only before one
SYMBOLS = {"&": "and", "%": "percent", "°": "degrees", "§": "section", "§§": "sections", "¶": "paragraph",
           "*": "", "†": "", "‡": "", "~": ""}

# finds a full stop that may end a Latin abbreviation, cheaply: the scan is for "." and "vs" only
_LATIN_GATE = re.compile(
    r"\.(?:" + "|".join(f"(?<={re.escape(k)})" for k in (
        "e.g.", "E.g.", "i.e.", "I.e.", "etc.", "Etc.", "&c.", "viz.", "Viz.", "cf.", "Cf.", " v.", "prox.",
        " inst.", " ult.", " ca.", " c.", "No.", "no.", "Nos.", "nos.", " p.", " pp.", "Vol.", "vol.", " ch.",
        "Ch.", "Fig.", "fig.", "e. g.", "i. e.")) + r")|\bvs\b"
)
_NAME = re.compile(r"[A-Z][\w’'\-]*")
_PLACE_BEFORE = re.compile(r"(?:[A-Z][\w’'\-]*|\d+(?:st|nd|rd|th)?)")


def _names_follow(ctx: Context, end: int) -> bool:
    nxt = ctx.next_word(end).lstrip(OPENERS)
    return bool(_NAME.match(nxt))


def _title(m: re.Match, ctx: Context) -> str | None:
    abbr, dot = m.group("abbr"), m.group("dot")
    if ctx.glued(m.start()):
        return None
    name_next = _names_follow(ctx, m.end())
    place_before = bool(_PLACE_BEFORE.fullmatch(ctx.prev_word(m.start())))
    if abbr in ("St", "Dr", "Mt") and place_before and not name_next:
        place = {"St": "Street", "Dr": "Drive", "Mt": "Mount"}[abbr]
        return place + ("." if dot and ctx.sentence_may_end(m.end()) else "")
    if abbr in TITLES and (dot or name_next):
        return TITLES[abbr]
    if abbr in NAME_TITLES and name_next:
        return NAME_TITLES[abbr]
    return None


def _suffix(m: re.Match, ctx: Context) -> str | None:
    prev = ctx.prev_word(m.start())
    if ctx.glued(m.start()) or not (prev == "&" or _NAME.fullmatch(prev.rstrip(","))):
        return None
    return SUFFIXES[m.group("abbr")] + ("." if ctx.sentence_may_end(m.end()) else "")


def _latin(m: re.Match, ctx: Context) -> str | None:
    written = m.group()
    if ctx.glued(m.start(), ".’'"):
        return None
    key = written.lower().replace(" ", "")
    if key in _BEFORE_NUMBERS and not re.match(r"\s?\d", ctx.after(m.end(), 2)):
        return None  # "No." before a number only; "No. I won't" is an answer
    if key == "c." and not re.match(r"\s?\d{3,4}\b", ctx.after(m.end(), 6)):
        return None
    if key == "v." and not (_NAME.fullmatch(ctx.prev_word(m.start())) and _names_follow(ctx, m.end())):
        return None  # "Roe v. Wade" only
    say = LATIN[key]
    if written[0].isupper() and key not in ("no.", "nos."):
        say = say[0].upper() + say[1:]
    if key in SENTENCE_ENDERS and ctx.sentence_may_end(m.end()):
        say += "."
    return say


def _symbol(m: re.Match, ctx: Context) -> str | None:
    written = m.group()
    if written == "/":
        return " " if ctx.before(m.start(), 4) == " and" and ctx.after(m.end(), 3) == "or " else None
    if written == "#":
        return "number " if re.match(r"\d", ctx.after(m.end(), 1)) else None
    say = SYMBOLS[written]
    if say and ctx.before(m.start())[-1:].isalnum():
        say = " " + say
    if say and ctx.after(m.end())[:1].isalnum():
        say += " "
    return say


RULES = (
    Rule(re.compile(r"(?<![\w.’'])(?:[eE]\.\s?g\.|[iI]\.\s?e\.|[Ee]tc\.|&c\.|[Vv]iz\.|[Cc]f\.|vs\.?(?![\w])|v\.|"
                    r"[Aa]pprox\.|inst\.|ult\.|prox\.|ca\.|c\.|[Nn]os?\.|pp?\.|[Vv]ol\.|[Cc]h\.|[Ff]ig\.)"), _latin,
         _LATIN_GATE),
    Rule(re.compile(r"(?P<abbr>" + "|".join([*TITLES, *NAME_TITLES]) + r")(?P<dot>\.)?(?![\w’'.])"), _title),
    Rule(re.compile(r"(?P<abbr>" + "|".join(SUFFIXES) + r")\.(?![\w’'])"), _suffix,
         any_of(*(f"{s}." for s in SUFFIXES))),
    Rule(re.compile(r"§§|[&%°§¶#*†‡~/]"), _symbol, re.compile("[&%°§¶#*†‡~/]")),
)
