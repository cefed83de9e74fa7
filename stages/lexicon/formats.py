"""Reading lexicon files: W3C PLS 1.0 (`lexicon.pls`), `lexicon.toml` and `lexicon.csv`.

Each reader returns the file's entries with where each one was written, so a later check (an
IPA symbol the voice lacks, a word defined twice) can name the file and line.
"""

from __future__ import annotations

import csv
import json
import io
import re
import tomllib
from pathlib import Path
from typing import NamedTuple

from stages import files
from stages.errors import UserError
from stages.lexicon.core import Pronunciation
from stages.lexicon.ipa import tidy_ipa, xsampa_to_ipa

PLS_NAMESPACE = "http://www.w3.org/2005/01/pronunciation-lexicon"
ALPHABETS = ("ipa", "x-sampa")
TOML_KEYS = ("respelling", "ipa", "x-sampa")
CSV_COLUMNS = ("word", "respelling", "ipa")  # the order of a CSV without a header row
CSV_OPTIONAL_COLUMNS = ("x-sampa",)
HOW_TOML = 'write entries under [words] as "Darcy" = "DAR-see" or "Bingley" = { ipa = "ˈbɪŋli" }'


class Entry(NamedTuple):
    word: str
    pronunciation: Pronunciation
    where: str  # "path line 12" or "path entry 'Darcy'"


def read_lexicon_file(path: Path) -> list[Entry]:
    """Return the entries of a lexicon file, chosen by its suffix (.pls, .toml or .csv)."""
    readers = {".pls": read_pls, ".toml": read_toml, ".csv": read_csv}
    if path.suffix not in readers:
        raise UserError(f"lexicon {path} has an unknown format; use lexicon.pls, lexicon.toml or lexicon.csv")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"lexicon {path} is not UTF-8 text (byte {e.start}); save it as UTF-8") from e
    return readers[path.suffix](text, path)


def _word(raw: str, where: str) -> str:
    word = " ".join(raw.split())
    if not word or not re.search(r"[^\W\d_]", word):
        raise UserError(f"{where}: the word {raw!r} has no letters; write the word as it appears in the book")
    if "[[" in word or "]]" in word:
        raise UserError(f"{where}: the word {raw!r} contains [[ or ]]; remove them")
    return word


def _pronunciation(respelling: str | None, ipa: str | None, xsampa: str | None, where: str) -> Pronunciation:
    if respelling is not None:
        respelling = " ".join(respelling.split())
        if not respelling or "[[" in respelling or "]]" in respelling:
            raise UserError(f"{where}: the respelling is empty or contains [[ ]]; write how it sounds, e.g. DAR-see")
    if xsampa is not None:
        if ipa is not None:
            raise UserError(f"{where}: both IPA and X-SAMPA are given; keep one of them")
        ipa = xsampa_to_ipa(xsampa.strip(), where)
    if ipa is not None:
        ipa = tidy_ipa(ipa)
        if not ipa:
            raise UserError(f"{where}: the IPA is empty; write the pronunciation (e.g. ˈbɪŋli) or leave it out")
    if not respelling and not ipa:
        raise UserError(f"{where}: no pronunciation; give a respelling (DAR-see) or IPA (ˈdɑːɹsi)")
    return Pronunciation(respelling or None, ipa or None)


def read_pls(text: str, path: Path) -> list[Entry]:
    """Return the lexemes of a PLS 1.0 document: every grapheme with the preferred phoneme and alias."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True, huge_tree=False)
    try:
        root = etree.fromstring(text.encode("utf-8"), parser)
    except etree.XMLSyntaxError as e:
        raise UserError(f"{path} line {e.lineno}: not well-formed XML ({e.msg}); fix the markup") from e
    if etree.QName(root).localname != "lexicon" or etree.QName(root).namespace not in (PLS_NAMESPACE, None):
        raise UserError(f"{path}: the root element must be <lexicon xmlns=\"{PLS_NAMESPACE}\" version=\"1.0\" ...>")
    if root.get("version", "1.0") != "1.0":
        raise UserError(f"{path}: PLS version {root.get('version')!r} is not supported; use version=\"1.0\"")
    default_alphabet = _alphabet(root.get("alphabet", "ipa"), f"{path} line {root.sourceline}")
    entries: list[Entry] = []
    for lexeme in root:
        if not isinstance(lexeme.tag, str) or etree.QName(lexeme).localname != "lexeme":
            continue  # <meta>, <metadata>, processing instructions
        where = f"{path} line {lexeme.sourceline}"
        pronunciation = _pls_pronunciation(lexeme, default_alphabet, where)
        graphemes = [g for g in lexeme if isinstance(g.tag, str) and etree.QName(g).localname == "grapheme"]
        if not graphemes:
            raise UserError(f"{where}: <lexeme> has no <grapheme>; add the word as <grapheme>Darcy</grapheme>")
        entries += [Entry(_word(g.text or "", where), pronunciation, where) for g in graphemes]
    return entries


def _alphabet(name: str, where: str) -> str:
    if name.lower() not in ALPHABETS:
        raise UserError(f"{where}: alphabet {name!r} is not supported; use one of: {', '.join(ALPHABETS)}")
    return name.lower()


def _pls_pronunciation(lexeme, default_alphabet: str, where: str) -> Pronunciation:
    from lxml import etree

    def preferred(name: str):
        found = [e for e in lexeme if isinstance(e.tag, str) and etree.QName(e).localname == name]
        return next((e for e in found if e.get("prefer") == "true"), found[0] if found else None)

    phoneme, alias = preferred("phoneme"), preferred("alias")
    ipa = xsampa = None
    if phoneme is not None:
        alphabet = _alphabet(phoneme.get("alphabet", default_alphabet), where)
        ipa, xsampa = (phoneme.text or "", None) if alphabet == "ipa" else (None, phoneme.text or "")
    respelling = (alias.text or "") if alias is not None else None
    if phoneme is None and alias is None:
        raise UserError(f"{where}: <lexeme> has neither <phoneme> nor <alias>; add one of them")
    return _pronunciation(respelling, ipa, xsampa, where)


def read_toml(text: str, path: Path) -> list[Entry]:
    """Return the entries of the [words] table: a respelling string or a table of respelling/ipa/x-sampa."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML ({e}); {HOW_TOML}") from e
    extra = sorted(set(data) - {"words"})
    if extra:
        raise UserError(f"{path}: unknown key or table {extra[0]!r}; {HOW_TOML}")
    words = data.get("words", {})
    if not isinstance(words, dict):
        raise UserError(f"{path}: `words` must be a table; {HOW_TOML}")
    entries = []
    for raw, value in words.items():
        where = f"{path} line {_toml_line(text, raw)} entry {raw!r}"
        if isinstance(value, str):
            pronunciation = _pronunciation(value, None, None, where)
        elif isinstance(value, dict):
            unknown = sorted(set(value) - set(TOML_KEYS))
            if unknown or not all(isinstance(v, str) for v in value.values()):
                raise UserError(f"{where}: use only the string keys {', '.join(TOML_KEYS)} (found {sorted(value)})")
            pronunciation = _pronunciation(value.get("respelling"), value.get("ipa"), value.get("x-sampa"), where)
        else:
            raise UserError(f"{where}: a pronunciation is a string or a table; {HOW_TOML}")
        entries.append(Entry(_word(raw, where), pronunciation, where))
    return entries


def _toml_line(text: str, key: str) -> int | str:
    """Return the line where `key` is defined under [words], or "?" when it cannot be told."""
    pattern = re.compile(rf"""^\s*(?:"{re.escape(key)}"|'{re.escape(key)}'|{re.escape(key)})\s*=""")
    for number, line in enumerate(text.splitlines(), 1):
        if pattern.match(line):
            return number
    return "?"


def read_csv(text: str, path: Path) -> list[Entry]:
    """Return the rows of a CSV with columns word,respelling,ipa (a header row may name them, and x-sampa)."""
    rows = csv.reader(io.StringIO(text))
    columns: tuple[str, ...] = CSV_COLUMNS
    entries: list[Entry] = []
    first = True
    for row in rows:
        where = f"{path} line {rows.line_num}"
        cells = [c.strip() for c in row]
        if not "".join(cells) or cells[0].startswith("#"):
            continue
        if first and cells[0].lower() == "word":
            columns = tuple(c.lower() for c in cells)
            unknown = [c for c in columns if c not in CSV_COLUMNS + CSV_OPTIONAL_COLUMNS]
            if unknown:
                raise UserError(f"{where}: unknown column {unknown[0]!r}; the header is word,respelling,ipa")
            first = False
            continue
        first = False
        if len(cells) > len(columns):
            raise UserError(
                f"{where}: {len(cells)} fields where {len(columns)} are expected ({','.join(columns)}); "
                f"quote a respelling that contains a comma"
            )
        value = {name: cell for name, cell in zip(columns, cells) if cell}  # an empty cell is no value
        pronunciation = _pronunciation(value.get("respelling"), value.get("ipa"), value.get("x-sampa"), where)
        entries.append(Entry(_word(value.get("word", ""), where), pronunciation, where))
    return entries


def set_toml_entry(path: Path, word: str, *, respelling: str | None = None, ipa: str | None = None) -> Path:
    """Add or replace one entry of a lexicon.toml, keeping the rest of the file (comments too) as it is.

    The result is parsed before it is written, so a bad entry leaves the file untouched.
    """
    if (respelling is None) == (ipa is None):
        raise UserError(f"lexicon entry {word!r}: give a respelling or an IPA transcription (one of them)")
    value = json.dumps(respelling, ensure_ascii=False) if respelling is not None else \
        "{ ipa = " + json.dumps(ipa, ensure_ascii=False) + " }"
    line = f"{json.dumps(word, ensure_ascii=False)} = {value}"
    text = path.read_text(encoding="utf-8") if path.is_file() else "[words]\n"
    if not re.search(r"^\s*\[words\]\s*$", text, re.M):
        text = text.rstrip("\n") + ("\n\n" if text.strip() else "") + "[words]\n"
    pattern = re.compile(rf"""^\s*(?:"{re.escape(word)}"|'{re.escape(word)}'|{re.escape(word)})\s*=.*$""", re.M)
    text = pattern.sub(lambda m: line, text, count=1) if pattern.search(text) else text.rstrip("\n") + f"\n{line}\n"
    read_toml(text, path)  # refuses what the reader would refuse, before anything is written
    return files.write_text(path, text)
