"""Provenance: which voice, under which licence, on which engine and model, made each take of the album.

Each chapter ships <stem>.provenance.json beside its MP3 (one entry per segment), and every file of the
album carries a one-line summary of its voices (tag VOICES) and the narrator licence's disclosure line.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from stages import files
from stages.errors import UserError
from stages.model import Chapter, Segment, Take, Voice
from stages.voices.card import VoiceCard

DEFAULT_DISCLOSURE = "This audiobook is narrated by a synthetic (AI-generated) voice."
PROVENANCE_SUFFIX = ".provenance.json"
MODEL_SHOWN_CHARS = 12  # how much of the model's sha256 the VOICES tag shows


def voice_provenance(voice: Voice, card: VoiceCard | None) -> dict[str, str]:
    """Return {voice, licence, engine, model, engine_fingerprint} for takes spoken by `voice`."""
    from stages.engines import get_engine

    engine = get_engine(voice.engine)
    fingerprint = engine.fingerprint(voice)
    parts = dict(p.split("=", 1) for p in fingerprint.split(";") if "=" in p)
    licence = card.licence.id if card is not None and card.licence is not None else ""
    model = parts.get("model") or parts.get("weights") or ""  # a model hash or name; HTTP engines name weights
    return {"voice": voice.id, "licence": licence, "engine": engine.name, "model": model,
            "engine_fingerprint": fingerprint}


def take_provenance(
    chapter: Chapter,
    takes: Mapping[str, Take],
    *,
    voice_for: Callable[[Segment], str],
    library: Mapping[str, Voice],
    cards: Mapping[str, VoiceCard],
) -> list[dict[str, str]]:
    """Return one entry per segment of `chapter`: its take's cache key and its voice's provenance.

    `voice_for` returns the voice id that says a segment (Casting.voice_for_segment).
    """
    known: dict[str, dict[str, str]] = {}
    entries = []
    for seg in chapter.segments:
        voice_id = voice_for(seg)
        if voice_id not in known:
            known[voice_id] = voice_provenance(library[voice_id], cards.get(voice_id))
        entries.append({"segment": seg.id, "take": takes[seg.id].key, **known[voice_id]})
    return entries


def voices_summary(entries: Iterable[Mapping[str, str]]) -> str:
    """Return one line naming each voice with its licence, engine and model, e.g. for the VOICES tag."""
    seen: dict[str, Mapping[str, str]] = {}
    for entry in entries:
        seen.setdefault(entry["voice"], entry)
    return "; ".join(f"{v}: licence {e['licence'] or 'none'}, {e['engine']}, "
                     f"model {e['model'][:MODEL_SHOWN_CHARS] or 'n/a'}" for v, e in sorted(seen.items()))


def disclosure(cards: Mapping[str, VoiceCard], narrator_id: str) -> str:
    """Return the narrator licence's disclosure line, or the default one when it sets none."""
    card = cards.get(narrator_id)
    return (card.licence.disclosure if card is not None and card.licence is not None else "") or DEFAULT_DISCLOSURE


def provenance_path(out_dir: Path, stem: str) -> Path:
    return Path(out_dir) / f"{stem}{PROVENANCE_SUFFIX}"


def write_provenance(path: Path, *, chapter: Chapter, audio_file: str, entries: list[dict[str, str]]) -> Path:
    """Write a chapter's provenance manifest (left as it is when already identical); return the path."""
    counts = Counter(e["voice"] for e in entries)
    voices = {e["voice"]: {k: e[k] for k in ("licence", "engine", "model")} | {"takes": counts[e["voice"]]}
              for e in entries}
    data: dict[str, Any] = {"chapter": chapter.number, "title": chapter.title, "audio": audio_file,
                            "voices": voices, "takes": entries}
    try:
        if json.loads(Path(path).read_text(encoding="utf-8")) == data:
            return Path(path)
    except (FileNotFoundError, json.JSONDecodeError):
        pass
    return files.write_json(path, data)


def read_provenance(path: Path) -> dict[str, Any]:
    """Return a chapter's provenance manifest."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read provenance manifest {path}: {e}; produce the chapter again") from e
