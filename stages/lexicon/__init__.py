"""The pronunciation lexicon: how names and rare words are said, per series and per book.

A producer writes `lexicon.pls` (W3C PLS 1.0), `lexicon.toml` or `lexicon.csv` beside the
manuscript (and, for a series, in a shared folder). The render stage hands each segment to the
engine through `apply`, and the take cache keys on that applied text, so changing one entry
re-renders exactly the segments that contain the word.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from pathlib import Path

from stages.errors import UserError
from stages.lexicon.core import PHONEME_BLOCK_ENGINES, Lexicon, Pronunciation, apply, respoken
from stages.lexicon.formats import Entry, read_lexicon_file
from stages.lexicon.ipa import check_ipa, phoneme_symbols
from stages.lexicon.suggestions import Suggestion, suggest, write_lexicon_template

log = logging.getLogger(__name__)

LEXICON_FILES = ("lexicon.pls", "lexicon.csv", "lexicon.toml")  # read in this order within one folder

__all__ = [
    "LEXICON_FILES",
    "PHONEME_BLOCK_ENGINES",
    "Lexicon",
    "Pronunciation",
    "Suggestion",
    "apply",
    "load_lexicon",
    "read_folder",
    "respoken",
    "suggest",
    "write_lexicon_template",
]


def load_lexicon(
    book_dir: Path, series_dirs: Sequence[Path] = (), *, symbols: Collection[str] | None = None
) -> Lexicon:
    """Return the series lexicons (in order) merged with the book's own; the book wins on a shared word.

    Every IPA symbol is checked against `symbols` (by default the bundled Piper voice's phoneme map).
    A series folder that does not exist is an error; a book folder without lexicon files is an empty lexicon.
    """
    for folder in series_dirs:
        if not Path(folder).is_dir():
            raise UserError(f"series lexicon folder {folder} does not exist; create it or fix the configured path")
    lexicon = Lexicon()
    for folder in (*series_dirs, book_dir):
        lexicon = lexicon.merged(read_folder(Path(folder), symbols=symbols))
    if len(lexicon):
        log.info("lexicon: %d entries from %s", len(lexicon), ", ".join(lexicon.sources))
    return lexicon


def read_folder(folder: Path, *, symbols: Collection[str] | None = None) -> Lexicon:
    """Return the lexicon of one folder (its lexicon.pls, .csv and .toml); a word may be defined once."""
    entries: dict[str, Entry] = {}
    sources = []
    for name in LEXICON_FILES:
        path = folder / name
        if not path.is_file():
            continue
        sources.append(str(path))
        for entry in read_lexicon_file(path):
            if (first := entries.get(entry.word)) is not None:
                raise UserError(
                    f"{entry.where}: {entry.word!r} is already defined at {first.where}; keep one of the two"
                )
            entries[entry.word] = entry
    if any(e.pronunciation.ipa for e in entries.values()):
        known = phoneme_symbols() if symbols is None else symbols
        for entry in entries.values():
            if entry.pronunciation.ipa:
                check_ipa(entry.pronunciation.ipa, known, f"{entry.where} ({entry.word!r})")
    return Lexicon({word: e.pronunciation for word, e in entries.items()}, tuple(sources))

