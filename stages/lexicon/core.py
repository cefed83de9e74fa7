"""The lexicon itself and how it changes what the engine is asked to say.

An entry matches whole words and their possessive ("Darcy's"). An entry with a capital letter
matches only that spelling, and also its plural ("the Bennets", "the Lucases'"), since that is
a name; an all-lowercase entry matches any capitalisation, and no plural.
A respelling replaces the word with ordinary text; IPA goes to the engine as a raw phoneme block
`[[ ... ]]` (Piper's syntax), with the punctuation that follows the word moved inside the block,
since Piper drops punctuation that starts a text run after a block.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from stages.lexicon.ipa import espeak_stress, possessive

PHONEME_BLOCK_ENGINES = frozenset({"piper"})  # engines that read `[[ phonemes ]]` inline
# punctuation after a word that goes inside its phoneme block, where Piper keeps it as a pause
BLOCK_PUNCTUATION = ".,;:!?"
SUFFIXES = "['’]s|es['’]?|s['’]?|"  # possessive, or plural (and plural possessive) of a name
PLURAL_ES_AFTER = ("s", "x", "z", "ch", "sh")
_ALL_CAPS = re.compile(r"\b[^\W\d_]{2,}\b")
_ADJACENT_BLOCKS = re.compile(r"\]\]\s+\[\[")


@dataclass(frozen=True)
class Pronunciation:
    respelling: str | None = None  # ordinary text said instead of the word: "DAR-see"
    ipa: str | None = None  # phonemes, tidied to the symbols the voice knows: "ˈbɪŋli"

    def to_dict(self) -> dict[str, str | None]:
        return {"respelling": self.respelling, "ipa": self.ipa}

    @classmethod
    def from_dict(cls, data: Mapping[str, str | None]) -> Pronunciation:
        return cls(data.get("respelling"), data.get("ipa"))


@dataclass(frozen=True)
class Lexicon:
    """Word (or phrase) -> how it is said; merged from the series' lexicons and then the book's."""

    entries: Mapping[str, Pronunciation] = field(default_factory=dict)
    sources: tuple[str, ...] = ()  # the files read, in merge order
    _pattern: re.Pattern | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pattern", _compile(self.entries))

    def __len__(self) -> int:
        return len(self.entries)

    def lookup(self, word: str) -> Pronunciation | None:
        """Return the entry for `word` as it appears in the text, honouring the case rule."""
        word = " ".join(word.split())
        if (found := self.entries.get(word)) is not None:
            return found
        lower = word.lower()
        return self.entries.get(lower) if lower != word else None

    def to_dict(self) -> dict:
        return {"entries": {w: p.to_dict() for w, p in self.entries.items()}, "sources": list(self.sources)}

    @classmethod
    def from_dict(cls, data: Mapping) -> Lexicon:
        entries = {w: Pronunciation.from_dict(p) for w, p in data.get("entries", {}).items()}
        return cls(entries, tuple(data.get("sources", ())))

    def merged(self, other: Lexicon) -> Lexicon:
        """Return this lexicon with `other`'s entries added; `other` wins where both have a word."""
        return Lexicon({**self.entries, **other.entries}, self.sources + other.sources)


def _compile(entries: Mapping[str, Pronunciation]) -> re.Pattern | None:
    if not entries:
        return None
    alternatives = []
    for word in sorted(entries, key=lambda w: (-len(w), w)):  # longest first: "Lady Catherine" before "Lady"
        body = r"\s+".join(re.escape(part) for part in word.split())
        alternatives.append(body if word != word.lower() else f"(?i:{body})")
    words = "|".join(alternatives)
    return re.compile(rf"(?<!\w)(?P<word>{words})(?P<suffix>{SUFFIXES})(?!\w)(?P<punct>[{BLOCK_PUNCTUATION}]*)")


def apply(lexicon: Lexicon | None, spoken_text: str, *, phonemes: bool = True) -> str:
    """Return the text the engine should receive for `spoken_text` with the lexicon's entries applied.

    With `phonemes` False (an engine that cannot read `[[ ]]` blocks) IPA-only entries are left as written.
    """
    if lexicon is None or lexicon._pattern is None:
        return spoken_text

    def replace(m: re.Match) -> str:
        entry = lexicon.lookup(m["word"])
        if entry is None or not _suffix_fits(m["word"], m["suffix"]):
            return m[0]
        if entry.ipa and phonemes:
            ipa = espeak_stress(entry.ipa) + (possessive(entry.ipa) if m["suffix"] else "")
            return f"[[{ipa}{m['punct']}]]"
        if entry.respelling:
            return respoken(entry.respelling) + m["suffix"] + m["punct"]
        return m[0]

    text = lexicon._pattern.sub(replace, spoken_text)
    return _ADJACENT_BLOCKS.sub(" ", text) if phonemes else text


def _suffix_fits(word: str, suffix: str) -> bool:
    """Return True for a possessive, or a plural of a name: -es after s, x, z, ch, sh and -s after the rest."""
    if suffix[:1] in ("", "'", "’"):
        return True
    if word == word.lower():
        return False
    return suffix.startswith("es") == word.endswith(PLURAL_ES_AFTER)


def respoken(respelling: str) -> str:
    """Return a respelling as the engine should read it: capitals that mark stress lowercased.

    espeak spells out an all-capitals syllable letter by letter ("DAR" -> D, A, R), so "DAR-see" is
    given to it as "dar-see"; it stresses each hyphenated part by itself.
    """
    return _ALL_CAPS.sub(lambda m: m[0].lower() if m[0].isupper() else m[0], respelling)
