"""Phoneme strings for the lexicon: X-SAMPA to IPA, tidying, checking against a voice, espeak style.

Piper takes raw phonemes inline as `[[ ... ]]`, one symbol per code point (NFD), and silently
drops symbols its voice does not know. So every IPA entry is tidied and checked against the
voice's phoneme map when the lexicon is loaded, and an unknown symbol is an error there.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Collection
from functools import cache

from stages.errors import UserError

STRESS_MARKS = "ˈˌ"
# vowel symbols a stress mark is moved in front of, as espeak (the voice's training data) places it
VOWELS = frozenset("aeiouyæɐɑɒɔəɘɚɛɜɝɞɤɨɪɵɶʉʊʌʏøœɯᵻ")
VOICELESS_FINALS = frozenset("ptkfθ")  # a possessive after these is /s/
SIBILANT_FINALS = frozenset("szʃʒ")  # ... after these /ɪz/, else /z/
# symbols of a phoneme map that are punctuation or markers, never part of a word's sound
NOT_SOUNDS = frozenset("_^$#!\"'(),-.:;?0123456789")

# what people type for IPA -> the symbol the voice knows; "" drops it
_TIDY = {
    "g": "ɡ",  # ASCII g -> IPA script g (U+0261)
    "'": "ˈ",
    "’": "ˈ",
    ":": "ː",
    ".": "",  # syllable break
    "\u0361": "",  # tie bars: t͡ʃ is spoken as t + ʃ
    "\u035c": "",
    "/": "",
    "[": "",
    "]": "",
}

# X-SAMPA -> IPA, longest sequence first when converting
XSAMPA = {
    "a": "a", "b": "b", "c": "c", "d": "d", "e": "e", "f": "f", "g": "ɡ", "h": "h", "i": "i",
    "j": "j", "k": "k", "l": "l", "m": "m", "n": "n", "o": "o", "p": "p", "q": "q", "r": "r",
    "s": "s", "t": "t", "u": "u", "v": "v", "w": "w", "x": "x", "y": "y", "z": "z",
    "A": "ɑ", "B": "β", "C": "ç", "D": "ð", "E": "ɛ", "F": "ɱ", "G": "ɣ", "H": "ɥ", "I": "ɪ",
    "J": "ɲ", "K": "ɬ", "L": "ʎ", "M": "ɯ", "N": "ŋ", "O": "ɔ", "P": "ʋ", "Q": "ɒ", "R": "ʁ",
    "S": "ʃ", "T": "θ", "U": "ʊ", "V": "ʌ", "W": "ʍ", "X": "χ", "Y": "ʏ", "Z": "ʒ",
    "1": "ɨ", "2": "ø", "3": "ɜ", "4": "ɾ", "5": "ɫ", "6": "ɐ", "7": "ɤ", "8": "ɵ", "9": "œ",
    "&": "ɶ", "?": "ʔ", "@": "ə", "{": "æ", "}": "ʉ", "\"": "ˈ", "%": "ˌ", ":": "ː", ":\\": "ˑ",
    "@`": "ɚ", "3`": "ɝ", "r\\": "ɹ", "r\\`": "ɻ", "h\\": "ɦ", "j\\": "ʝ", "s\\": "ɕ", "z\\": "ʑ",
    "x\\": "ɧ", "l`": "ɭ", "n`": "ɳ", "r`": "ɽ", "s`": "ʂ", "t`": "ʈ", "d`": "ɖ", "z`": "ʐ",
    "?\\": "ʕ", "M\\": "ɰ", "L\\": "ʟ", "N\\": "ɴ", "R\\": "ʀ", "B\\": "ʙ", "G\\": "ɢ", "J\\": "ɟ",
    "I\\": "ᵻ", "U\\": "ᵿ", "@\\": "ɘ", "3\\": "ɞ", "_h": "ʰ", "_j": "ʲ", "'": "ʲ", "~": "\u0303",
    "_~": "\u0303", "=": "\u0329", "_=": "\u0329", "`": "˞", ".": ".", " ": " ", "-": "",
}
_XSAMPA_LONGEST = max(len(k) for k in XSAMPA)


def xsampa_to_ipa(text: str, where: str) -> str:
    """Return the IPA for X-SAMPA `text`; an unknown sequence is a UserError naming `where`."""
    out, i = [], 0
    while i < len(text):
        for n in range(min(_XSAMPA_LONGEST, len(text) - i), 0, -1):
            if (ipa := XSAMPA.get(text[i : i + n])) is not None:
                out.append(ipa)
                i += n
                break
        else:
            raise UserError(
                f"{where}: {text[i]!r} in X-SAMPA {text!r} is not an X-SAMPA symbol; "
                f"correct it or write the entry in IPA instead"
            )
    return "".join(out)


def tidy_ipa(text: str) -> str:
    """Return `text` as the voice reads phonemes: NFD, typed stand-ins replaced, spaces collapsed."""
    text = unicodedata.normalize("NFD", text)
    text = "".join(_TIDY.get(ch, ch) for ch in text)
    return " ".join(text.split())


def check_ipa(ipa: str, symbols: Collection[str], where: str) -> None:
    """Raise UserError naming `where` for the first symbol of `ipa` the voice cannot say."""
    if not ipa:
        raise UserError(f"{where}: the IPA is empty; write the pronunciation, e.g. ˈbɪŋli")
    for ch in ipa:
        if ch == " ":
            continue
        if ch in NOT_SOUNDS or ch not in symbols:
            name = unicodedata.name(ch, "unnamed")
            raise UserError(
                f"{where}: symbol {ch!r} (U+{ord(ch):04X} {name}) in IPA {ipa!r} is not one the voice knows; "
                f"use the voice's symbols (e.g. ɡ ɹ ɜː ɚ ˈ ˌ), as `phoneme_symbols()` lists them"
            )


def espeak_stress(ipa: str) -> str:
    """Return `ipa` with each stress mark moved to just before its syllable's vowel, as espeak writes it."""
    return " ".join(_stress_word(word) for word in ipa.split(" "))


def _stress_word(word: str) -> str:
    chars, i = list(word), 0
    while i < len(chars):
        if chars[i] in STRESS_MARKS:
            j = i + 1
            while j < len(chars) and chars[j] not in VOWELS and chars[j] not in STRESS_MARKS:
                j += 1
            if j < len(chars) and chars[j] in VOWELS:  # else no vowel follows: leave the mark as written
                chars.insert(j - 1, chars.pop(i))
                i = j
        i += 1
    return "".join(chars)


def possessive(ipa: str) -> str:
    """Return the possessive (or plural) ending that follows `ipa`: s, ɪz or z."""
    sounds = [ch for ch in ipa if ch.isalpha()]
    last = sounds[-1] if sounds else ""
    if last in SIBILANT_FINALS:
        return "ɪz"
    return "s" if last in VOICELESS_FINALS else "z"


@cache
def phoneme_symbols(model: str | None = None) -> frozenset[str]:
    """Return the symbols a Piper voice's phoneme map knows (the bundled voice by default)."""
    from stages.engines.piper import BUNDLED_MODEL, model_files

    _, config = model_files(model or BUNDLED_MODEL)
    return frozenset(json.loads(config.read_text(encoding="utf-8"))["phoneme_id_map"]) - NOT_SOUNDS
