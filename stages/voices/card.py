"""Voice cards: a voice folder's voice.toml read into a checked VoiceCard, and written back atomically.

A card keeps the keys stages.cast.load_library reads (id, name, engine, language, gender, role,
description, [params]) and adds what the library needs: the languages, age group and styles it suits,
its reference clips with their hashes, the [licence] it may be used under, and whether it is an
estate's protected voice. Loading checks the card's shape; `file_problems` checks the files it names.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from dataclasses import asdict, dataclass, fields
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any

from stages import files
from stages.files import sha256_file  # noqa: F401  (part of this module's API)
from stages.errors import UserError
from stages.model import Voice

BUNDLED_VOICES_DIR = Path(__file__).resolve().parents[2] / "voices"
CARD_FILE = "voice.toml"
AGE_GROUPS = ("child", "young", "adult", "elderly")
USES = ("audiobook", "retail-sample", "promotion")
ANY_LICENSEE = "*"
WORLDWIDE = "worldwide"
VOICE_KEYS = ("id", "name", "engine", "language", "gender", "role", "description", "params")
CARD_KEYS = (*VOICE_KEYS, "languages", "age_group", "styles", "protected", "fingerprint", "reference", "licence")
HASH_SHOWN_CHARS = 12  # how much of a sha256 a message shows
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class Reference:
    """One reference clip in the voice folder."""

    path: str  # relative to the voice folder, e.g. "reference.wav"
    transcript: str
    sha256: str  # of the file's bytes
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Licence:
    """The terms a voice may be used under; every render is checked against them first."""

    id: str  # e.g. "joe-cc0" or "estate-2026-001"
    licensor: str
    licensee: str  # "*" = anyone (public licences such as CC0)
    titles: tuple[str, ...] = ()  # book slugs or titles it covers; titles == series == () means any title
    series: tuple[str, ...] = ()  # series names (the --series folder's name) it covers
    territories: tuple[str, ...] = (WORLDWIDE,)
    valid_from: str = ""  # ISO date, "" = no start limit
    valid_to: str = ""  # ISO date, "" = no end
    uses: tuple[str, ...] = ("audiobook",)  # of USES
    disclosure: str = ""  # the AI-narration disclosure line the album must carry
    consent: str = ""  # consent document's file name in the voice folder
    consent_sha256: str = ""  # its sha256; a mismatch or missing file = no consent record
    terms: str = ""  # the licence's name for people, e.g. "CC0 1.0 (voice model)"

    def to_dict(self) -> dict[str, Any]:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}


@dataclass(frozen=True)
class VoiceCard:
    """A voice of the library: what engines see, what casting needs, and its rights."""

    voice: Voice  # stages.model.Voice: what engines and the cache see
    folder: Path
    languages: tuple[str, ...]
    age_group: str = "adult"  # child / young / adult / elderly
    styles: tuple[str, ...] = ()
    references: tuple[Reference, ...] = ()
    licence: Licence | None = None
    protected: bool = False  # an estate's voice: its fingerprint guards `voices add`
    fingerprint: str = ""  # file name of the stored embedding ("fingerprint.npy"), "" when none

    @property
    def id(self) -> str:
        return self.voice.id

    @property
    def path(self) -> Path:
        return self.folder / CARD_FILE

    def to_dict(self) -> dict[str, Any]:
        """Return the card as voice.toml holds it (tables for params, licence and references)."""
        v = self.voice
        d: dict[str, Any] = {"id": v.id, "name": v.name, "engine": v.engine, "language": v.language,
                             "languages": list(self.languages), "gender": v.gender, "age_group": self.age_group,
                             "role": v.role, "styles": list(self.styles), "description": v.description,
                             "protected": self.protected}
        if self.fingerprint:
            d["fingerprint"] = self.fingerprint
        d["params"] = dict(v.params)
        if self.licence is not None:
            d["licence"] = self.licence.to_dict()
        if self.references:
            d["reference"] = [r.to_dict() for r in self.references]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], folder: Path) -> VoiceCard:
        return card_from_dict(data, folder)


def licence_digest(licence: Licence | None) -> str:
    """Return a sha256 of the licence's terms, to tell when a card's licence was changed ("" when none)."""
    if licence is None:
        return ""
    return hashlib.sha256(json.dumps(licence.to_dict(), sort_keys=True).encode("utf-8")).hexdigest()


def _strings(value: Any, where: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise UserError(f"{where}: {key} must be a list of non-empty strings, e.g. {key} = [\"...\"]; fix the card")
    return tuple(v.strip() for v in value)


def _text(value: Any, where: str, key: str, *, required: bool = False) -> str:
    if not isinstance(value, str) or (required and not value.strip()):
        raise UserError(f"{where}: {key} must be {'a non-empty' if required else 'a'} string; fix the card")
    return value.strip()


def _inside(value: Any, where: str, key: str) -> str:
    """Return a file name relative to the voice folder, refusing absolute paths and '..'."""
    name = _text(value, where, key, required=True)
    parts = PurePosixPath(name).parts
    if PurePosixPath(name).is_absolute() or ".." in parts or "\\" in name:
        raise UserError(f"{where}: {key} = {name!r} must name a file inside the voice folder (no '..', not absolute)")
    return name


def _sha(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str) or not _SHA256.match(value):
        raise UserError(f"{where}: {key} must be a 64-character lowercase sha256 hex digest; "
                        f"compute it with `sha256sum` and fix the card")
    return value


def _date(value: Any, where: str, key: str) -> str:
    if isinstance(value, date):  # TOML's bare dates arrive as date objects
        return value.isoformat()
    text = _text(value, where, f"[licence] {key}")
    if not text:
        return ""
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise UserError(f"{where}: [licence] {key} = {text!r} is not a date; write it as YYYY-MM-DD") from None


def parse_licence(data: Any, where: str) -> Licence:
    """Return the Licence a [licence] table describes, or raise UserError naming `where` and the fix."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: licence must be a [licence] table; see README 'Voice library and rights'")
    known = [f.name for f in fields(Licence)]
    if unknown := sorted(set(data) - set(known)):
        raise UserError(f"{where}: [licence] has unknown key(s) {', '.join(unknown)}; use only {', '.join(known)}")
    for key in ("id", "licensor", "licensee"):
        if key not in data:
            raise UserError(f"{where}: [licence] lacks {key}; add {key} = \"...\" (licensee \"*\" means anyone)")
    lists = {k: _strings(data[k], where, f"[licence] {k}") for k in ("titles", "series", "territories", "uses")
             if k in data}
    texts = {k: _text(data[k], where, f"[licence] {k}", required=k in ("id", "licensor", "licensee"))
             for k in ("id", "licensor", "licensee", "disclosure", "terms") if k in data}
    dates = {k: _date(data[k], where, k) for k in ("valid_from", "valid_to") if k in data}
    licence = Licence(**texts, **lists, **dates)
    if bad := [u for u in licence.uses if u not in USES]:
        raise UserError(f"{where}: [licence] uses has unknown use {bad[0]!r}; choose from {', '.join(USES)}")
    if not licence.uses or not licence.territories:
        raise UserError(f"{where}: [licence] {'uses' if not licence.uses else 'territories'} is empty; "
                        f"a licence must permit at least one")
    if licence.valid_from and licence.valid_to and licence.valid_from > licence.valid_to:
        raise UserError(f"{where}: [licence] valid_from {licence.valid_from} is after valid_to {licence.valid_to}; "
                        f"fix the dates")
    if data.get("consent", "") != "" or data.get("consent_sha256", "") != "":  # "" and "": no consent record
        if not (data.get("consent") and data.get("consent_sha256")):
            raise UserError(f"{where}: [licence] needs both consent (the document's file name) and consent_sha256")
        consent = _inside(data["consent"], where, "[licence] consent")
        return Licence(**(asdict(licence) | {"consent": consent,
                                             "consent_sha256": _sha(data["consent_sha256"], where, "consent_sha256")}))
    return licence


def read_licence_file(path: Path) -> Licence:
    """Return the licence in a TOML file: a [licence] table, or the licence's keys at the top level."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"licence file {path} does not exist; give the path of a .toml licence") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"licence file {path} is not valid TOML ({e}); fix it") from e
    return parse_licence(data.get("licence", data), str(path))


def _reference(data: Any, where: str) -> Reference:
    if not isinstance(data, dict) or set(data) != {"path", "transcript", "sha256", "seconds"}:
        raise UserError(f"{where}: each [[reference]] needs exactly path, transcript, sha256 and seconds; fix the card")
    seconds = data["seconds"]
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds < math.inf:
        raise UserError(f"{where}: [[reference]] seconds must be a positive number; fix the card")
    return Reference(_inside(data["path"], where, "[[reference]] path"),
                     _text(data["transcript"], where, "[[reference]] transcript", required=True),
                     _sha(data["sha256"], where, "[[reference]] sha256"), float(seconds))


def card_from_dict(data: dict[str, Any], folder: Path) -> VoiceCard:
    """Return the VoiceCard a parsed voice.toml describes, or raise UserError naming the card and the fix."""
    folder = Path(folder)
    where = str(folder / CARD_FILE)
    if unknown := sorted(set(data) - set(CARD_KEYS)):
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; use only {', '.join(CARD_KEYS)}")
    if data.get("id") != folder.name:
        raise UserError(f"voice card {where} has id {data.get('id')!r}; it must match its folder name")
    _text(data.get("name"), where, "name", required=True)
    if not isinstance(data.get("params", {}), dict):
        raise UserError(f"{where}: params must be a [params] table; fix the card")
    voice = Voice.from_dict(data)
    if data.get("age_group", "adult") not in AGE_GROUPS:
        raise UserError(f"{where}: age_group {data['age_group']!r} is not one of {', '.join(AGE_GROUPS)}; fix the card")
    if not isinstance(data.get("protected", False), bool):
        raise UserError(f"{where}: protected must be true or false; fix the card")
    references = data.get("reference", [])
    if not isinstance(references, list):
        raise UserError(f"{where}: reference clips must be [[reference]] tables; fix the card")
    return VoiceCard(
        voice=voice,
        folder=folder,
        languages=_strings(data["languages"], where, "languages") if "languages" in data else (voice.language,),
        age_group=data.get("age_group", "adult"),
        styles=_strings(data.get("styles", []), where, "styles"),
        references=tuple(_reference(r, where) for r in references),
        licence=parse_licence(data["licence"], where) if "licence" in data else None,
        protected=data.get("protected", False),
        fingerprint=_inside(data["fingerprint"], where, "fingerprint") if data.get("fingerprint") else "",
    )


def read_card(path: Path) -> VoiceCard:
    """Return the card in a voice.toml file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"voice card {path} is not valid TOML ({e}); fix or remove it") from e
    return card_from_dict(data, path.parent)


def load_cards(*dirs: Path) -> dict[str, VoiceCard]:
    """Return every card in the bundled voices/ and then `dirs` (a later folder's card overrides), by id."""
    cards: dict[str, VoiceCard] = {}
    for folder in (BUNDLED_VOICES_DIR, *dirs):
        for path in sorted(Path(folder).glob(f"*/{CARD_FILE}")):
            card = read_card(path)
            cards[card.id] = card
    if not cards:
        raise UserError(f"no voices found in {BUNDLED_VOICES_DIR}; the voice library is missing from this checkout")
    return cards


def file_problems(card: VoiceCard) -> list[str]:
    """Return one line for each file the card names that is missing or differs from its recorded sha256."""
    problems = []
    for ref in card.references:
        problems += _file_problem(card, ref.path, ref.sha256, "reference clip",
                                  "restore the original clip, or add the voice again with `audiobook voices add`")
    if card.licence is not None and card.licence.consent:
        problems += _file_problem(card, card.licence.consent, card.licence.consent_sha256, "consent document",
                                  "restore the signed document, or record the reviewed document's hash in "
                                  "[licence] consent_sha256")
    if card.fingerprint and not (card.folder / card.fingerprint).is_file():
        problems.append(f"{card.folder / card.fingerprint}: the voice's stored fingerprint is missing; "
                        f"add the voice again with `audiobook voices add`")
    return problems


def _file_problem(card: VoiceCard, name: str, expected: str, what: str, fix: str) -> list[str]:
    path = card.folder / name
    if not path.is_file():
        return [f"{path}: {what} of voice {card.id!r} is missing; {fix}"]
    actual = sha256_file(path)
    if actual != expected:
        return [f"{path}: {what} of voice {card.id!r} has changed (sha256 {actual[:HASH_SHOWN_CHARS]}, the card "
                f"records {expected[:HASH_SHOWN_CHARS]}); {fix}"]
    return []


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v, where) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v, where)}" for k, v in value.items()) + "}"
    raise UserError(f"{where}: cannot write {value!r} ({type(value).__name__}) to TOML; use strings, numbers, lists")


def card_toml(card: VoiceCard) -> str:
    """Return the voice.toml text for `card`: top-level keys, then [params], [licence], [[reference]]."""
    where = str(card.path)
    data = card.to_dict()
    lines = [f"{_toml_key(k)} = {_toml_value(v, where)}" for k, v in data.items()
             if k not in ("params", "licence", "reference")]
    for table in ("params", "licence"):
        if table in data:
            lines += ["", f"[{table}]"] + [f"{_toml_key(k)} = {_toml_value(v, where)}" for k, v in data[table].items()]
    for ref in data.get("reference", []):
        lines += ["", "[[reference]]"] + [f"{k} = {_toml_value(v, where)}" for k, v in ref.items()]
    return "\n".join(lines) + "\n"


def write_card(card: VoiceCard) -> Path:
    """Write `card` to its folder's voice.toml atomically, after checking it reads back as the same card."""
    text = card_toml(card)
    if card_toml(card_from_dict(tomllib.loads(text), card.folder)) != text:
        raise UserError(f"{card.path}: the card does not survive writing and reading back; check its values")
    return files.write_text(card.path, text)
