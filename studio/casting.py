"""The cast page's work: who speaks how many lines in which voice, auditions of a line in every candidate
voice (through the take cache, so an audition heard twice is made once), recasting one speaker and giving
one line another voice (the cast sheet rewritten; the next produce re-renders only those takes)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from stages.cache import TakeCache
from stages.cast import Casting, load_library, read_line_voices, read_sheet, write_sheet
from stages.engines import get_engine
from stages.errors import UserError
from stages.model import Workspace

AUDITION_MAX_CHARS = 160


def _manuscript(root: Path, slug: str) -> dict:
    return json.loads((Workspace(root).manuscript_dir(slug) / "manuscript.json").read_text(encoding="utf-8"))


def _segments(manuscript: dict) -> list[dict]:
    return [s for c in manuscript["chapters"] for p in c["paragraphs"] for s in p["segments"]]


def cast_rows(root: Path, slug: str) -> tuple[list[dict], list[dict]]:
    """Return (one row per speaker: name, voice, lines; most lines first) and the library's voices."""
    workspace = Workspace(root)
    library = load_library(workspace.voices_dir)
    table = read_sheet(workspace.manuscript_dir(slug) / "cast.toml", library)
    lines = Counter(s["speaker"] for s in _segments(_manuscript(root, slug)))
    rows = [{"speaker": name, "voice": voice, "lines": lines.get(name, 0)} for name, voice in table.items()]
    voices = [{"id": v.id, "name": v.name, "gender": v.gender, "role": v.role} for v in library.values()]
    return sorted(rows, key=lambda r: -r["lines"]), voices


def recast(root: Path, slug: str, speaker: str, voice_id: str) -> None:
    """Give `speaker` the voice `voice_id` in the book's cast sheet."""
    workspace = Workspace(root)
    library = load_library(workspace.voices_dir)
    sheet = workspace.manuscript_dir(slug) / "cast.toml"
    table = read_sheet(sheet, library)
    if speaker not in table:
        raise UserError(f"{slug!r} has no speaker {speaker!r} in its cast sheet")
    if voice_id not in library:
        raise UserError(f"no voice {voice_id!r} in the library; choose one of {', '.join(library)}")
    table[speaker] = voice_id
    lines = Counter(s["speaker"] for s in _segments(_manuscript(root, slug)))
    write_sheet(sheet, table, lines, library, Casting(table, lines=read_line_voices(sheet, library)))


def set_line_voice(root: Path, slug: str, segment: str, voice_id: str) -> None:
    """Give one line (`segment`) the voice `voice_id` in the book's cast sheet; "" gives it back its speaker's."""
    workspace = Workspace(root)
    library = load_library(workspace.voices_dir)
    sheet = workspace.manuscript_dir(slug) / "cast.toml"
    table, lines = read_sheet(sheet, library), read_line_voices(sheet, library)
    said = _segments(_manuscript(root, slug))
    if segment not in {s["id"] for s in said}:
        raise UserError(f"{slug!r} has no line {segment!r}")
    if voice_id and voice_id not in library:
        raise UserError(f"no voice {voice_id!r} in the library; choose one of {', '.join(library)}")
    lines = {k: v for k, v in lines.items() if k != segment} | ({segment: voice_id} if voice_id else {})
    write_sheet(sheet, table, Counter(s["speaker"] for s in said), library, Casting(table, lines=lines))


def audition(root: Path, slug: str, speaker: str) -> list[tuple[str, str]]:
    """Return (voice id, take key) for the speaker's first line of some length, made in every library voice."""
    workspace = Workspace(root)
    library = load_library(workspace.voices_dir)
    said = [s for s in _segments(_manuscript(root, slug)) if s["speaker"] == speaker]
    if not said:
        raise UserError(f"{speaker!r} speaks no line in {slug!r}")
    line = next((s for s in said if 40 <= len(s["spoken"]) <= AUDITION_MAX_CHARS), said[0])["spoken"]
    cache = TakeCache(workspace.cache_dir)
    made = []
    for voice in library.values():
        engine = get_engine(voice.engine)
        key = cache.key(line, voice, engine)
        if not cache.path(key).is_file():
            cache.put(f"audition-{voice.id}", key, engine.synthesize(line, voice), engine.sample_rate)
        made.append((voice.id, key))
    return made
