"""Words a producer should give a pronunciation: names and words rare in English.

A name is a capitalised word seen in the middle of a sentence, never written in lowercase in the
book, and not common in English ("Darcy", "Netherfield"; not "Elizabeth" or "London", which the
voice already says well). A rare word is a lowercase word that English text seldom uses. Word
frequencies come from the `wordfreq` package's English list, read offline from the wheel.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from stages import files
from stages.errors import UserError
from stages.lexicon.core import PLURAL_ES_AFTER, Lexicon
from stages.model import Manuscript, Segment

NAME_MAX_ZIPF = 4.0  # a name more common than this (10 per million words: Elizabeth, London) is left out
RARE_MAX_ZIPF = 1.5  # a lowercase word rarer than this (3 per 100 million words) is suggested
CONTEXT_CHARS = 40  # of the first occurrence's text shown each side of the word
MIN_WORD_LETTERS = 2
# after these a capital does not start a sentence ("Mr. Darcy")
ABBREVIATIONS = frozenset(
    "mr mrs ms messrs mme mlle dr st jr sr rev col capt gen lt sgt prof hon gov mt no vol esq".split()
)
# titles before a name, as the book writes them or as speech normalisation spells them out
HONORIFICS = frozenset("mister missus miss misses madam madame sir lady lord colonel captain doctor saint".split())
NOT_NAMES = ABBREVIATIONS | HONORIFICS
SENTENCE_ENDS = ".!?…:"
OPENERS = " \t\"'“‘’«([—–-"  # ’ opens an elision: “ ’Tis

_TOKEN = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_POSSESSIVE = re.compile(r"['’]s$")

Kind = Literal["name", "rare"]
KIND_ORDER = {"name": 0, "rare": 1}


@dataclass(frozen=True)
class Suggestion:
    word: str  # as the lexicon entry should be written: "Darcy" (case-sensitive) or "chuse"
    count: int  # occurrences in the manuscript, possessives included
    first_segment_id: str
    first_context: str  # the first occurrence with some text around it
    kind: Kind

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class _Tally:
    count: int = 0
    mid_capital: int = 0  # capitalised away from a sentence start: evidence of a name
    first: tuple[Segment, int, int] | None = None  # segment, start, end of the first occurrence

    def add(self, seg: Segment, start: int, end: int, mid_capital: bool) -> None:
        self.count += 1
        self.mid_capital += mid_capital
        if self.first is None:
            self.first = (seg, start, end)


def suggest(manuscript: Manuscript, lexicon: Lexicon | None = None) -> list[Suggestion]:
    """Return the names and rare words of an English manuscript that `lexicon` lacks; names first, commonest first."""
    if not manuscript.language.lower().startswith("en"):
        return []  # word frequencies and capitalisation rules here are English ones
    capitalised: dict[str, _Tally] = {}
    lowercase: dict[str, _Tally] = {}
    for seg in manuscript.segments:
        if seg.kind == "heading":
            continue
        for m in _TOKEN.finditer(seg.spoken):
            word = _POSSESSIVE.sub("", m[0])
            if len(word) < MIN_WORD_LETTERS or word.isupper() or word.lower() in NOT_NAMES:
                continue  # initials, acronyms, roman numerals, "Col.", "Esq.", "Mister"
            if word[0].isupper():
                mid = not _starts_sentence(seg.spoken, m.start())
                capitalised.setdefault(word, _Tally()).add(seg, m.start(), m.end(), mid)
            elif word.islower():
                lowercase.setdefault(word, _Tally()).add(seg, m.start(), m.end(), False)
    _fold_plurals(capitalised)
    zipf = _zipf_lookup()
    found: list[Suggestion] = []
    for word, tally in capitalised.items():
        lower = word.lower()
        if lower in lowercase:
            continue  # also written in lowercase: an ordinary word, counted there
        # one only ever seen starting a sentence counts as a name when it is rare as a word
        if zipf(lower) < (NAME_MAX_ZIPF if tally.mid_capital else RARE_MAX_ZIPF):
            found.append(_suggestion(word, tally, "name"))
    for word, tally in lowercase.items():
        caps = capitalised.get(word[0].upper() + word[1:])
        if zipf(word) < RARE_MAX_ZIPF:
            merged = _Tally(tally.count + (caps.count if caps else 0), 0, tally.first)
            found.append(_suggestion(word, merged, "rare"))
    if lexicon is not None:
        found = [s for s in found if lexicon.lookup(s.word) is None]
    return sorted(found, key=lambda s: (KIND_ORDER[s.kind], -s.count, s.word))


def _fold_plurals(capitalised: dict[str, _Tally]) -> None:
    """Count "Bennets" and "Lucases" under "Bennet" and "Lucas", as a lexicon entry for the name covers them."""
    for word in sorted(capitalised, key=len, reverse=True):
        for stem in (word[:-1], word[:-2]) if word.endswith("es") else (word[:-1],) if word.endswith("s") else ():
            if stem in capitalised and stem.endswith(PLURAL_ES_AFTER) == (len(stem) == len(word) - 2):
                plural = capitalised.pop(word)
                capitalised[stem].count += plural.count
                capitalised[stem].mid_capital += plural.mid_capital
                break


def _starts_sentence(text: str, start: int) -> bool:
    """Return True when the word at `start` begins its segment or follows a sentence's end."""
    before = text[:start].rstrip(OPENERS)
    if not before:
        return True
    if before[-1] not in SENTENCE_ENDS:
        return False
    previous = re.search(r"([^\W\d_]+)\.$", before)
    return not (previous and previous[1].lower() in ABBREVIATIONS)


def _suggestion(word: str, tally: _Tally, kind: Kind) -> Suggestion:
    seg, start, end = tally.first
    left = seg.spoken[max(0, start - CONTEXT_CHARS) : start]
    right = seg.spoken[end : end + CONTEXT_CHARS]
    context = ("…" if start > CONTEXT_CHARS else "") + left + seg.spoken[start:end] + right
    context += "…" if end + CONTEXT_CHARS < len(seg.spoken) else ""
    return Suggestion(word, tally.count, seg.id, context, kind)


def _zipf_lookup():
    """Return word -> Zipf frequency in English (log10 of uses per billion words; 0 when unseen)."""
    from wordfreq import zipf_frequency

    return lambda word: zipf_frequency(word.replace("’", "'"), "en", wordlist="large")


def write_lexicon_template(path: Path, suggestions: Sequence[Suggestion], *, overwrite: bool = False) -> Path:
    """Write a lexicon.toml skeleton listing `suggestions` as commented-out entries; return its path."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise UserError(f"{path} already exists; edit it, or move it away to write a fresh template")
    lines = [
        "# Pronunciation lexicon. Uncomment an entry and say how the word sounds, either as a respelling",
        '# read as ordinary English ("Darcy" = "DAR-see") or as IPA ("Bingley" = { ipa = "ˈbɪŋli" }).',
        "# An entry with a capital letter matches only that spelling; an all-lowercase one matches any case.",
        "# Possessives follow the entry (\"Darcy's\"). Entries left commented out change nothing.",
        "",
        "[words]",
    ]
    for kind, heading in (("name", "names"), ("rare", "words rare in English")):
        chosen = [s for s in suggestions if s.kind == kind]
        if chosen:
            lines += ["", f"# {heading}"]
        for s in chosen:
            word = json.dumps(s.word, ensure_ascii=False)  # a TOML basic string
            lines.append(f'# {word} = ""    # {s.count}× — {s.first_segment_id}: {s.first_context}')
    return files.write_text(path, "\n".join(lines) + "\n")
