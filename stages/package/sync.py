"""Transcripts that follow the audio: WebVTT captions, a JSON sync map and an enhanced LRC per chapter.

All carry one cue per segment, identified by the segment's stable id (the LRC, which has no ids,
one line per segment), so a player, a captioning tool or the read-along page can find any sentence
in the chapter's audio. Where a segment's words are timed (stages/align.py) each word's start goes
in too: WebVTT cue timestamps (`<00:00:01.250>`), LRC word tags (`<00:01.25>`), and in the sync map
a "words" list with the source of the timings ("engine" or "asr"; null where there are none).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stages import files
from stages.errors import UserError
from stages.align import SegmentWords, WordTiming
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
_CUE_TIMESTAMP = re.compile(r"<((?:\d{2,}:)?[0-5]\d:[0-5]\d\.\d{3})>")
_LRC_TAG = re.compile(r"[<\[](\d{2,}):([0-5]\d)\.(\d{2})[>\]]")
MS_PER_CENTISECOND = 10


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


def word_offsets(text: str, words: Sequence[WordTiming]) -> list[int | None]:
    """Return where each word starts in `text`, searching on from the previous one (None: not found)."""
    out: list[int | None] = []
    at = 0
    for w in words:
        pos = text.find(w.text, at) if w.text else -1
        out.append(None if pos < 0 else pos)
        at = pos + len(w.text) if pos >= 0 else at
    return out


def word_pieces(text: str, words: Sequence[WordTiming]) -> list[dict]:
    """Return `text` cut into pieces: each timed word found in it ({"text", "start", "end"} in ms) and the text
    between them ({"text"}: spaces, punctuation), so a page can show the line as written with its words timed."""
    pieces: list[dict] = []
    at = 0
    for w, pos in zip(words, word_offsets(text, words)):
        if pos is None:
            continue
        if pos > at:
            pieces.append({"text": text[at:pos]})
        pieces.append({"text": w.text, "start": w.start_ms, "end": w.end_ms})
        at = pos + len(w.text)
    return pieces + ([{"text": text[at:]}] if at < len(text) else [])


def _tagged(text: str, words: Sequence[WordTiming], tag, escape=lambda t: t) -> str:
    """Return `text` with `tag(word)` before each word found in it (a tag may be "" to leave a word out)."""
    pieces, at = [], 0
    for w, pos in zip(words, word_offsets(text, words)):
        if pos is None:
            continue
        pieces += [escape(text[at:pos]), tag(w)]
        at = pos
    return "".join(pieces) + escape(text[at:])


def _cue_payload(cue: Cue, words: Sequence[WordTiming] = ()) -> str:
    text = _BLANK_LINES.sub("\n", cue.text.replace("\r\n", "\n").replace("\r", "\n")).strip()
    last = [cue.start_ms]

    def tag(w: WordTiming) -> str:  # a cue timestamp must lie inside its cue and after the one before it
        if not last[0] < w.start_ms < cue.end_ms:
            return ""
        last[0] = w.start_ms
        return f"<{format_timestamp(w.start_ms)}>"

    body = _tagged(text, words, tag, _escape)
    if cue.speaker and cue.speaker != NARRATOR:
        speaker = _escape(" ".join(cue.speaker.split()))
        return f"<v {speaker}>{body}</v>"
    return body


def _words_of(words: Mapping[str, SegmentWords] | None, cue: Cue) -> Sequence[WordTiming]:
    timed = (words or {}).get(cue.id)
    return timed.words if timed is not None and timed.timed else ()


def vtt_text(cues: Sequence[Cue], *, where: str = "cues", words: Mapping[str, SegmentWords] | None = None) -> str:
    """Return the WebVTT document for `cues`, ordered by start time, with each timed word's start inline."""
    blocks = [VTT_HEADER]
    for cue in ordered_cues(cues, where=where):
        timing = f"{format_timestamp(cue.start_ms)} --> {format_timestamp(cue.end_ms)}"
        blocks.append(f"{cue.id}\n{timing}\n{_cue_payload(cue, _words_of(words, cue))}")
    return "\n\n".join(blocks) + "\n"


def write_vtt(cues: Sequence[Cue], path: Path, words: Mapping[str, SegmentWords] | None = None) -> Path:
    """Write `cues` (and the start of each timed word in `words`, by cue id) as a WebVTT file; return the path."""
    return files.write_text(path, vtt_text(cues, where=str(path), words=words))


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
    payload = _CUE_TIMESTAMP.sub("", "\n".join(rest[1:]))
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


def vtt_word_starts(path: Path) -> dict[str, list[tuple[int, str]]]:
    """Return, per cue id of a WebVTT file, its inline cue timestamps with the text that follows each."""
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    out: dict[str, list[tuple[int, str]]] = {}
    for line_no, lines in _blocks(text):
        if line_no == 1 or lines[0].startswith(("NOTE", "STYLE", "REGION")) or "-->" in lines[0]:
            continue
        parts = _CUE_TIMESTAMP.split(re.sub(r"</?v[^>]*>", "", "\n".join(lines[2:])))
        out[lines[0].strip()] = [(parse_timestamp(parts[k], where=f" in {path} near line {line_no}"),
                                  html.unescape(parts[k + 1]).strip()) for k in range(1, len(parts) - 1, 2)]
    return out


def _segment_entry(cue: Cue, words: Mapping[str, SegmentWords] | None) -> dict[str, Any]:
    timed = (words or {}).get(cue.id)
    if timed is None or not timed.timed:
        return cue.to_dict() | {"word_timing": None, "words": None}
    return cue.to_dict() | {"word_timing": timed.source, "words": [w.to_dict() for w in timed.words]}


def sync_map(
    *, chapter: Chapter, audio_file: str, duration_ms: int, cues: Sequence[Cue],
    words: Mapping[str, SegmentWords] | None = None,
) -> dict[str, Any]:
    """Return the JSON-able sync map of one chapter; `words` (by cue id) adds each segment's word timings."""
    where = f"chapter {chapter.number} ({audio_file})"
    if duration_ms < 0:
        raise UserError(f"{where} has a negative duration {duration_ms} ms; measure the chapter audio again")
    return {
        "chapter": chapter.number,
        "title": chapter.title,
        "audio": Path(audio_file).name,
        "duration_ms": int(duration_ms),
        "segments": [_segment_entry(c, words) for c in ordered_cues(cues, where=where)],
    }


def write_sync_map(
    path: Path, *, chapter: Chapter, audio_file: str, duration_ms: int, cues: Sequence[Cue],
    words: Mapping[str, SegmentWords] | None = None,
) -> Path:
    """Write the chapter's JSON sync map (title, audio file, duration, one entry per segment); return the path."""
    data = sync_map(chapter=chapter, audio_file=audio_file, duration_ms=duration_ms, cues=cues, words=words)
    return files.write_json(path, data)


def read_sync_map(path: Path) -> tuple[dict[str, Any], list[Cue]]:
    """Return a sync map's chapter facts (everything but the segments) and its cues."""
    facts, cues, _ = read_sync(path)
    return facts, cues


def read_sync_words(path: Path) -> dict[str, SegmentWords]:
    """Return each segment's word timings from a sync map, by segment id (sentence-level maps give none)."""
    return read_sync(path)[2]


def read_sync(path: Path) -> tuple[dict[str, Any], list[Cue], dict[str, SegmentWords]]:
    """Return a sync map's chapter facts, its cues and its word timings by segment id, reading the file once."""
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
    words: dict[str, SegmentWords] = {}
    for s in data["segments"]:
        try:
            timed = None if s.get("words") is None else tuple(WordTiming.from_dict(w) for w in s["words"])
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"sync map {path} has malformed words in segment {s.get('id')!r} ({e}); "
                            "write it again with the package stage") from e
        words[s["id"]] = SegmentWords(s.get("word_timing") if timed is not None else None, timed)
    return {k: v for k, v in data.items() if k != "segments"}, cues, words


def format_lrc_time(ms: int) -> str:
    """Return `ms` as an LRC time, mm:ss.xx (minutes grow past two digits if needed)."""
    if ms < 0:
        raise UserError(f"negative time {ms} ms cannot go in an LRC file; fix the cue timings")
    minutes, rest = divmod(round(ms / MS_PER_CENTISECOND), 60 * 100)
    return f"{minutes:02d}:{rest // 100:02d}.{rest % 100:02d}"


def lrc_text(
    cues: Sequence[Cue], *, title: str = "", album: str = "", artist: str = "", duration_ms: int | None = None,
    words: Mapping[str, SegmentWords] | None = None, where: str = "cues",
) -> str:
    """Return an enhanced LRC document: a `[mm:ss.xx]` line per cue and a `<mm:ss.xx>` tag before each timed word.

    A line's last timed word is followed by a tag at its end, so a player knows when it stops.
    """
    head = [f"[{k}:{' '.join(v.split()).replace(']', ')')}]" for k, v in (("ti", title), ("al", album), ("ar", artist))
            if v.strip()]
    if duration_ms is not None:
        minutes, seconds = divmod(round(duration_ms / MS_PER_SECOND), 60)
        head.append(f"[length:{minutes:02d}:{seconds:02d}]")
    lines = []
    for cue in ordered_cues(cues, where=where):
        text = " ".join(cue.text.split())
        timed = _words_of(words, cue)
        body = _tagged(text, timed, lambda w: f"<{format_lrc_time(w.start_ms)}>")
        if timed and (found := [w for w, p in zip(timed, word_offsets(text, timed)) if p is not None]):
            body += f" <{format_lrc_time(found[-1].end_ms)}>"
        lines.append(f"[{format_lrc_time(cue.start_ms)}]{body}")
    return "\n".join(head + lines) + "\n"


def write_lrc(
    path: Path, cues: Sequence[Cue], *, title: str = "", album: str = "", artist: str = "",
    duration_ms: int | None = None, words: Mapping[str, SegmentWords] | None = None,
) -> Path:
    """Write the chapter's enhanced LRC file; return the path."""
    text = lrc_text(cues, title=title, album=album, artist=artist, duration_ms=duration_ms, words=words,
                    where=str(path))
    return files.write_text(path, text)


def parse_lrc(path: Path) -> list[tuple[int, str, list[tuple[int, str]]]]:
    """Return an LRC file's timed lines: (start ms, text without tags, [(word start ms, word), ...])."""
    def ms(minutes: str, seconds: str, centis: str) -> int:
        return int(minutes) * MS_PER_MINUTE + int(seconds) * MS_PER_SECOND + int(centis) * MS_PER_CENTISECOND

    out = []
    for line in Path(path).read_text(encoding="utf-8-sig").splitlines():
        m = _LRC_TAG.match(line)
        if not m:
            continue  # a header ([ti:...]) or a blank line
        body = line[m.end():]
        parts = _LRC_TAG.split(body)  # text, then (minutes, seconds, centiseconds, text) for each word tag
        words = [(ms(*parts[k : k + 3]), parts[k + 3].strip()) for k in range(1, len(parts), 4)]
        out.append((ms(*m.groups()), _LRC_TAG.sub("", body).strip(), [w for w in words if w[1]]))
    return out
