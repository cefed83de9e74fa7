"""The character bible, characters.toml: who is in the book, as the producer wants them voiced.

A re-run must never undo a human edit, so beside characters.toml sits a hidden copy, .characters.machine.toml, of
what the machine last wrote. On merge, a field whose value in characters.toml differs from the hidden copy was
edited by a person and is kept; a field still equal to it takes the fresh machine value. Characters a person added
are kept. With no hidden copy, every field already in characters.toml counts as a human's. A record is matched
across runs by any shared name or alias, so renaming a character keeps the match.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

from stages import files
from stages.errors import UserError

MACHINE_COPY_PREFIX = "."  # characters.toml -> .characters.machine.toml
EDITABLE = ("name", "aliases", "gender", "age_group", "description", "lines", "first_segment")
GENDERS = ("male", "female", "unknown")


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
        """Write characters.toml and its hidden machine copy atomically; return the path."""
        files.write_text(machine_path(path), _toml(self.machine, "What the machine last wrote; do not edit."))
        return files.write_text(Path(path), _toml(self.characters, HEADER))

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
            old = self.machine[m] if (m := _match(self.machine, human.names() | new.names())) is not None else None
            keep = {f: getattr(human, f) for f in EDITABLE if old is None or getattr(human, f) != getattr(old, f)}
            out.append(replace(new, **keep))
        out += [c for k, c in enumerate(self.characters) if k not in used]
        return Bible(tuple(out), fresh.characters)


HEADER = ("Character bible. Edit any field: a re-run keeps your edits and updates only the fields you left alone.\n"
          "Speakers on segments use `name`; `aliases` are other names the book uses for the same person.")


def machine_path(path: Path) -> Path:
    """Return the hidden copy of what the machine last wrote, beside `path`."""
    path = Path(path)
    return path.with_name(f"{MACHINE_COPY_PREFIX}{path.stem}.machine{path.suffix}")


def _match(characters: tuple[Character, ...], names: set[str]) -> int | None:
    exact = next((k for k, c in enumerate(characters) if c.name in names), None)
    return exact if exact is not None else next((k for k, c in enumerate(characters) if c.names() & names), None)


def _read(path: Path) -> tuple[Character, ...]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not valid TOML ({e}); fix the line it names or delete the file to rebuild it") from e
    return tuple(Character.from_dict(d, str(path)) for d in data.get("character", ()))


def _toml(characters: tuple[Character, ...], header: str) -> str:
    lines = [f"# {line}" for line in header.splitlines()]
    for c in characters:
        lines += ["", "[[character]]"]
        for key, value in c.to_dict().items():
            lines.append(f"{key} = {_value(value)}")
    return "\n".join(lines) + "\n"


def _value(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return json.dumps(str(value), ensure_ascii=False)
    return str(value)
