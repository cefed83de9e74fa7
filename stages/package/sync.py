"""Transcripts that follow the audio: WebVTT captions and a JSON sync map per chapter.

Both carry one cue per segment, identified by the segment's stable id, so a player, a
captioning tool or the read-along page can find any sentence in the chapter's audio.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stages import files
from stages.errors import UserError
from stages.model import NARRATOR, Chapter, Cue

VTT_HEADER = "WEBVTT"
SYNC_MAP_KEYS = ("chapter", "title", "audio", "duration_ms", "segments")
MS_PER_SECOND = 1000
MS_PER_MINUTE = 60 * MS_PER_SECOND
MS_PER_HOUR = 60 * MS_PER_MINUTE

_TIMESTAMP = re.compile(r"^(?:(\d{2,}):)?([0-5]\d):([0-5]\d)\.(\d{3})$")
_TIMING_LINE = re.compile(r"^(\S+)[ \t]+-->[ \t]+(\S+)")
_VOICE_SPAN = re.compile(r"^<v(?:\.[^ \t>]*)?[ \t]+([^>]*)>(.*?)(?:</v>)?$", re.DOTALL)
_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")


def format_timestamp(ms: int) -> str:
    """Return `ms` as a WebVTT timestamp, HH:MM:SS.mmm (hours grow past two digits if needed)."""
    if ms < 0:
        raise UserError(f"negative cue time {ms} ms cannot go in a WebVTT file; fix the cue timings")
    hours, rest = divmod(int(ms), MS_PER_HOUR)
    minutes, rest = divmod(rest, MS_PER_MINUTE)
    seconds, millis = divmod(rest, MS_PER_SECOND)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def parse_timestamp(text: str, *, where: str = "") -> int:
    """Return the milliseconds of a WebVTT timestamp, HH:MM:SS.mmm or MM:SS.mmm."""
    m = _TIMESTAMP.match(text.strip())
    if not m:
        raise UserError(f"bad WebVTT timestamp {text!r}{where}; expected HH:MM:SS.mmm")
    hours, minutes, seconds, millis = (int(g or 0) for g in m.groups())
    return hours * MS_PER_HOUR + minutes * MS_PER_MINUTE + seconds * MS_PER_SECOND + millis


def ordered_cues(cues: Sequence[Cue], *, where: str) -> list[Cue]:
    """Return the cues sorted by start time (stable), after checking ids and timings."""
    seen: set[str] = set()
    for cue in cues:
        if not cue.id or "-->" in cue.id or "\n" in cue.id:
            raise UserError(f"cue id {cue.id!r} in {where} is empty or not one line; give every segment an id")
        if cue.id in seen:
            raise UserError(f"cue id {cue.id!r} appears twice in {where}; segment ids must be unique")
        seen.add(cue.id)
        if cue.start_ms < 0 or cue.end_ms < cue.start_ms:
            raise UserError(
                f"cue {cue.id} in {where} runs from {cue.start_ms} to {cue.end_ms} ms; "
                "a cue must start at or after 0 and end at or after its start"
            )
    return sorted(cues, key=lambda c: (c.start_ms, c.end_ms))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cue_payload(cue: Cue) -> str:
    text = _BLANK_LINES.sub("\n", cue.text.replace("\r\n", "\n").replace("\r", "\n")).strip()
    body = _escape(text)
    if cue.speaker and cue.speaker != NARRATOR:
        speaker = _escape(" ".join(cue.speaker.split()))
        return f"<v {speaker}>{body}</v>"
    return body


def vtt_text(cues: Sequence[Cue], *, where: str = "cues") -> str:
    """Return the WebVTT document for `cues`, ordered by start time."""
    blocks = [VTT_HEADER]
    for cue in ordered_cues(cues, where=where):
        timing = f"{format_timestamp(cue.start_ms)} --> {format_timestamp(cue.end_ms)}"
        blocks.append(f"{cue.id}\n{timing}\n{_cue_payload(cue)}")
    return "\n\n".join(blocks) + "\n"


def write_vtt(cues: Sequence[Cue], path: Path) -> Path:
    """Write `cues` as a WebVTT file at `path`; return the path."""
    return files.write_text(path, vtt_text(cues, where=str(path)))


def _read_cue_block(lines: list[str], path: Path, line_no: int) -> Cue:
    where = f" in {path} near line {line_no}"
    if "-->" in lines[0]:
        cue_id, rest = "", lines
    else:
        cue_id, rest = lines[0].strip(), lines[1:]
    if not rest or not (m := _TIMING_LINE.match(rest[0])):
        raise UserError(f"cue without a timing line{where}; expected 'HH:MM:SS.mmm --> HH:MM:SS.mmm'")
    start = parse_timestamp(m.group(1), where=where)
    end = parse_timestamp(m.group(2), where=where)
    payload = "\n".join(rest[1:])
    speaker = NARRATOR
    if v := _VOICE_SPAN.match(payload):
        speaker, payload = html.unescape(v.group(1).strip()), v.group(2)
    return Cue(id=cue_id, text=html.unescape(payload), speaker=speaker, start_ms=start, end_ms=end)


def _blocks(text: str):
    """Yield (first line number, lines) for each run of non-blank lines."""
    block: list[str] = []
    start = 0
    for number, line in enumerate(text.split("\n"), 1):
        if line.strip():
            start = start if block else number
            block.append(line)
        elif block:
            yield start, block
            block = []
    if block:
        yield start, block


def parse_vtt(path: Path) -> list[Cue]:
    """Return the cues of a WebVTT file, in file order; a `<v Name>` span becomes the speaker."""
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    if not re.match(rf"{VTT_HEADER}(?:[ \t\n]|$)", text):
        raise UserError(f"{path} is not a WebVTT file: it must start with {VTT_HEADER!r}")
    cues: list[Cue] = []
    for line_no, lines in _blocks(text):
        if line_no > 1 and not lines[0].startswith(("NOTE", "STYLE", "REGION")):
            cues.append(_read_cue_block(lines, path, line_no))
    return cues


def sync_map(*, chapter: Chapter, audio_file: str, duration_ms: int, cues: Sequence[Cue]) -> dict[str, Any]:
    """Return the JSON-able sync map of one chapter."""
    where = f"chapter {chapter.number} ({audio_file})"
    if duration_ms < 0:
        raise UserError(f"{where} has a negative duration {duration_ms} ms; measure the chapter audio again")
    return {
        "chapter": chapter.number,
        "title": chapter.title,
        "audio": Path(audio_file).name,
        "duration_ms": int(duration_ms),
        "segments": [c.to_dict() for c in ordered_cues(cues, where=where)],
    }


def write_sync_map(path: Path, *, chapter: Chapter, audio_file: str, duration_ms: int, cues: Sequence[Cue]) -> Path:
    """Write the chapter's JSON sync map (title, audio file, duration, one entry per segment); return the path."""
    data = sync_map(chapter=chapter, audio_file=audio_file, duration_ms=duration_ms, cues=cues)
    return files.write_json(path, data)


def read_sync_map(path: Path) -> tuple[dict[str, Any], list[Cue]]:
    """Return a sync map's chapter facts (everything but the segments) and its cues."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read sync map {path}: {e}; write it again with the package stage") from e
    missing = [k for k in SYNC_MAP_KEYS if not isinstance(data, dict) or k not in data]
    if missing:
        raise UserError(f"sync map {path} lacks {', '.join(missing)}; write it again with the package stage")
    try:
        cues = [Cue.from_dict(s) for s in data["segments"]]
    except TypeError as e:
        raise UserError(f"sync map {path} has a malformed segment ({e}); write it again with the package stage") from e
    return {k: v for k, v in data.items() if k != "segments"}, cues
