"""The character bible, characters.toml: who is in the book, as the producer wants them voiced.

A re-run must never undo a human edit, so beside characters.toml sits a hidden copy, .characters.machine.toml, of
what the machine last wrote. On merge, a field whose value in characters.toml differs from the hidden copy was
edited by a person and is kept; a field still equal to it takes the fresh machine value. Characters a person added
are kept. With no hidden copy, every field already in characters.toml counts as a human's. A record is matched
across runs by any shared name or alias, so renaming a character keeps the match.

A series folder holds a series bible in the same form, plus `books`: the slugs of the books each character speaks
in. It is laid under each book's bible when attributing (`combine`): a field a person edited in the book wins, then
one a person edited in the series, then the machine's value (a gender, age group or description the book leaves
unknown comes from the series). The book's bible shows the series' edits as machine values, so a later series edit
still reaches it. Line counts and first segments are per book, so they live only in the book's bible; a series
bible records `books` instead. After a run, every series folder given learns the book (`add_book`): new characters
are appended, known ones get the slug; in fields no person edited there, the name stays the series' own (a name the
book uses instead joins the aliases), aliases gather across books, and a known gender, age or description replaces
an unknown one. A book's own edits never reach the series, except a renamed character's new name, as an alias.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

from stages import files
from stages.errors import UserError

MACHINE_COPY_PREFIX = "."  # characters.toml -> .characters.machine.toml
EDITABLE = ("name", "aliases", "gender", "age_group", "description", "lines", "first_segment")
PER_BOOK = ("lines", "first_segment")  # counted in one book: kept in its bible, never written to a series bible
SERIES_EDITABLE = tuple(f for f in EDITABLE if f not in PER_BOOK)
GENDERS = ("male", "female", "unknown")
FILLED = ("gender", "age_group", "description")  # a book's unknown value here is filled from its series
BIBLE_FILE = "characters.toml"  # the same name in a book's folder and in a series folder


@dataclass(frozen=True)
class Character:
    """One person in the book as the bible records them."""

    name: str  # canonical name, the speaker written on segments
    aliases: tuple[str, ...] = ()
    gender: str = "unknown"  # one of GENDERS
    age_group: str = "unknown"  # "child", "young", "adult", "elderly" or "unknown"
    description: str = ""  # a line for the casting director
    lines: int = 0  # dialogue segments attributed to them
    first_segment: str = ""  # id of the first segment they speak
    books: tuple[str, ...] = ()  # series bible only: slugs of the books they speak in, in the order first run

    def names(self) -> set[str]:
        return {self.name, *self.aliases}

    def to_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict, where: str = "characters.toml") -> Character:
        if not isinstance(data.get("name"), str) or not data["name"].strip():
            raise UserError(f"{where}: a [[character]] has no name; give each one name = \"...\"")
        if data.get("gender", "unknown") not in GENDERS:
            raise UserError(f"{where}: {data['name']!r} has gender {data['gender']!r}; use one of {', '.join(GENDERS)}")
        known = {f.name for f in fields(cls)}
        clean = {k: v for k, v in data.items() if k in known}
        clean["aliases"] = tuple(clean.get("aliases", ()))
        clean["books"] = tuple(clean.get("books", ()))
        return cls(**clean)


@dataclass(frozen=True)
class Bible:
    """The characters of a book, plus what the machine last wrote for them (to tell human edits apart)."""

    characters: tuple[Character, ...] = ()
    machine: tuple[Character, ...] = ()  # the machine's last version; empty when unknown

    def find(self, name: str) -> Character | None:
        """Return the character answering to `name` (canonical or alias), or None."""
        return next((c for c in self.characters if name in c.names()), None)

    @classmethod
    def load(cls, path: Path) -> Bible:
        """Return the bible in `path` with its hidden machine copy; an empty bible when the file is absent."""
        path = Path(path)
        if not path.exists():
            return cls()
        return cls(_read(path), _read(machine_path(path)) if machine_path(path).exists() else ())

    def save(self, path: Path) -> Path:
        """Write a book's characters.toml and its hidden machine copy atomically; return the path."""
        return _save(self, Path(path), HEADER, omit=("books",))

    def machine_record(self, names: set[str]) -> Character | None:
        """Return what the machine last wrote for the character with any of `names`, or None (a person added it)."""
        k = _match(self.machine, names)
        return None if k is None else self.machine[k]

    def edited(self, character: Character, editable: Sequence[str] = EDITABLE) -> frozenset[str]:
        """Return the fields of `character` a person changed: all of them when no machine record answers to it."""
        old = self.machine_record(character.names())
        return frozenset(f for f in editable if old is None or getattr(character, f) != getattr(old, f))

    def merge(self, fresh: Bible) -> Bible:
        """Return `fresh` (a new machine build) with every field a person changed in this bible kept."""
        out: list[Character] = []
        used: set[int] = set()
        for new in fresh.characters:
            k = _match(self.characters, new.names())
            if k is None:
                out.append(new)
                continue
            used.add(k)
            human = self.characters[k]
            old = self.machine_record(human.names() | new.names())
            keep = {f: getattr(human, f) for f in EDITABLE if old is None or getattr(human, f) != getattr(old, f)}
            out.append(replace(new, **keep))
        out += [c for k, c in enumerate(self.characters) if k not in used]
        return Bible(tuple(out), fresh.characters)

    def add_book(self, fresh: Bible, slug: str) -> Bible:
        """Return this series bible after the book `slug` ran: its new characters appended, the others given `slug`
        in `books` and what the machine found merged into every field no person edited here; the order is kept."""
        out = list(self.characters)
        machine = [self.machine_record(c.names()) for c in self.characters]
        for new in fresh.characters:
            new = replace(new, lines=0, first_segment="", books=(slug,))
            k = _match(self.characters, new.names())
            if k is None:
                out.append(new)
                machine.append(new)
                continue
            human = self.characters[k]
            old = self.machine_record(human.names() | new.names())
            learned = _learn(old, new, human) if old is not None else new
            books = human.books + ((slug,) if slug not in human.books else ())
            keep = {f: getattr(human, f) for f in SERIES_EDITABLE
                    if old is None or getattr(human, f) != getattr(old, f)}
            out[k], machine[k] = replace(learned, **keep, books=books), replace(learned, books=books)
        return Bible(tuple(out), tuple(m for m in machine if m is not None))

HEADER = ("Character bible. Edit any field: a re-run keeps your edits and updates only the fields you left alone.\n"
          "Speakers on segments use `name`; `aliases` are other names the book uses for the same person.")


SERIES_HEADER = ("Series character bible, shared by the books of a series. Edit any field: every book produced with\n"
                 "this folder as --series uses your edits (unless that book's own characters.toml changes the field),\n"
                 "and a run only adds characters, appends to `books` and updates the fields you left alone.\n"
                 "Line counts are per book: see each book's characters.toml.")


def series_path(folder: Path) -> Path:
    """Return the series bible in a series folder."""
    return Path(folder) / BIBLE_FILE


def load_series(series_dirs: Sequence[Path]) -> Bible:
    """Return the series bibles of `series_dirs` laid one over the next (a later folder wins on a field both edited).

    A folder that does not exist is an error; a folder without characters.toml is an empty bible.
    """
    bible = Bible()
    for folder in series_dirs:
        if not Path(folder).is_dir():
            raise UserError(f"series folder {folder} does not exist; create it (empty is fine) or fix --series")
        bible = combine(bible, Bible.load(series_path(folder)))
    return bible


def combine(series: Bible, book: Bible) -> Bible:
    """Return `book` laid over `series`: a field a person edited in the book wins, then one a person edited in the
    series, then the book's own (machine) value, unless that is unknown or empty and the series knows it; a character
    in only one of them is kept as it is."""
    out: list[Character] = []
    machine: list[Character] = []
    used: set[int] = set()
    for top in book.characters:
        mine, top_old = book.edited(top), book.machine_record(top.names())
        k = _match(series.characters, top.names())
        if k is None:
            out += [top]
            machine += [top_old] if top_old is not None else []
            continue
        used.add(k)
        base = series.characters[k]
        theirs = series.edited(base, SERIES_EDITABLE) - mine
        both = replace(top, **_known(base, top, skip=mine | theirs), **{f: getattr(base, f) for f in theirs},
                       books=_union(base.books, top.books))
        out += [both]
        if top_old is not None and (base_old := series.machine_record(base.names())) is not None:
            machine += [replace(both, **{f: getattr(top_old, f) for f in mine},
                                **{f: getattr(base_old, f) for f in theirs})]
    for k, base in enumerate(series.characters):
        if k not in used:
            out += [base]
            machine += [m] if (m := series.machine_record(base.names())) is not None else []
    return Bible(tuple(out), tuple(machine))


def inherit(series: Bible, fresh: Bible) -> Bible:
    """Return `fresh` (the machine's build for one book) with every field a person edited in `series` laid over it,
    and a gender, age group or description it lacks filled from `series`: what the book shows where nobody edited."""
    out = []
    for new in fresh.characters:
        k = _match(series.characters, new.names())
        base = series.characters[k] if k is not None else None
        if base is not None:
            theirs = series.edited(base, SERIES_EDITABLE)
            new = replace(new, **_known(base, new, skip=theirs), **{f: getattr(base, f) for f in theirs})
        out.append(new)
    return Bible(tuple(out), tuple(out))


def update_series(series_dirs: Sequence[Path], fresh: Bible, slug: str) -> list[Path]:
    """Add the book `slug`'s machine build to the series bible of each of `series_dirs`; save each; return the paths."""
    paths = []
    for folder in series_dirs:
        path = series_path(folder)
        paths.append(_save(Bible.load(path).add_book(fresh, slug), path, SERIES_HEADER, omit=PER_BOOK))
    return paths


def machine_path(path: Path) -> Path:
    """Return the hidden copy of what the machine last wrote, beside `path`."""
    path = Path(path)
    return path.with_name(f"{MACHINE_COPY_PREFIX}{path.stem}.machine{path.suffix}")


def _match(characters: tuple[Character, ...], names: set[str]) -> int | None:
    exact = next((k for k, c in enumerate(characters) if c.name in names), None)
    return exact if exact is not None else next((k for k, c in enumerate(characters) if c.names() & names), None)


def _learn(old: Character, new: Character, human: Character) -> Character:
    """Return the series' machine record after one more book: the name stays, aliases gather, known facts win."""
    taken = old.names() | human.names()
    return replace(
        old,
        aliases=old.aliases + tuple(n for n in dict.fromkeys((new.name, *new.aliases)) if n not in taken),
        gender=new.gender if new.gender != "unknown" else old.gender,
        age_group=new.age_group if new.age_group != "unknown" else old.age_group,
        description=new.description or old.description,
    )


def _known(series: Character, book: Character, skip: frozenset[str]) -> dict[str, str]:
    """Return the fields the series knows and the book's machine build left unknown or empty."""
    return {f: getattr(series, f) for f in FILLED if f not in skip
            and getattr(book, f) in ("", "unknown") and getattr(series, f) not in ("", "unknown")}


def _union(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*first, *second)))


def _save(bible: Bible, path: Path, header: str, omit: Sequence[str]) -> Path:
    files.write_text(machine_path(path), _toml(bible.machine, "What the machine last wrote; do not edit.", omit))
    return files.write_text(path, _toml(bible.characters, header, omit))


def _read(path: Path) -> tuple[Character, ...]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not valid TOML ({e}); fix the line it names or delete the file to rebuild it") from e
    return tuple(Character.from_dict(d, str(path)) for d in data.get("character", ()))


def _toml(characters: tuple[Character, ...], header: str, omit: Sequence[str] = ()) -> str:
    lines = [f"# {line}" for line in header.splitlines()]
    for c in characters:
        lines += ["", "[[character]]"]
        for key, value in c.to_dict().items():
            if key not in omit:
                lines.append(f"{key} = {_value(value)}")
    return "\n".join(lines) + "\n"


def _value(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return json.dumps(str(value), ensure_ascii=False)
    return str(value)
