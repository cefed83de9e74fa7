"""How long an MP4 audio file plays, read from its `moov` box alone (the read-along EPUB's AAC chapters).

An AAC file begins with the encoder's priming samples; the track's edit list (`elst`) says which
samples are played, so the length a player presents is the edit's duration, not the media's. Only box
headers and the `moov` box are read, so a chapter stored inside an EPUB is measured in place.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from stages.errors import UserError


def mp4_duration_ms(source: Path | BinaryIO, *, where: str) -> float:
    """Return how long the first track of an MP4 (a path or a seekable file) plays, in ms: its edit list's
    duration where it has one, else its movie header's."""
    if isinstance(source, Path):
        with open(source, "rb") as f:
            return mp4_duration_ms(f, where=where)
    moov = top_level_box(source, b"moov")
    if moov is None:
        raise UserError(f"{where} is not an MP4 file (no moov box); produce the chapter again")
    mvhd = _child(moov, b"mvhd", where)
    version = mvhd[0]
    timescale, duration = struct.unpack_from(">IQ" if version == 1 else ">II", mvhd, 20 if version == 1 else 12)
    trak = _child(moov, b"trak", where)
    elst = _find(_find(trak, b"edts") or b"", b"elst")
    if elst:
        version, count = elst[0], struct.unpack_from(">I", elst, 4)[0]
        entry = struct.Struct(">Qq" if version == 1 else ">Ii")
        played = [entry.unpack_from(elst, 8 + k * (entry.size + 4)) for k in range(count)]
        duration = sum(length for length, media_time in played if media_time != -1)  # -1: an empty edit
    if not timescale:
        raise UserError(f"{where} is not a playable MP4 (its timescale is 0); produce the chapter again")
    return duration * 1000 / timescale


def top_level_box(f: BinaryIO, kind: bytes) -> bytes | None:
    """Return the body of the top-level box `kind` of the open MP4 `f` (None if it has none), reading only box
    headers on the way."""
    f.seek(0, 2)
    end, pos = f.tell(), 0
    while pos + 8 <= end:
        f.seek(pos)
        size, name = struct.unpack(">I4s", f.read(8))
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", f.read(8))[0], 16
        elif size == 0:
            size = end - pos
        if size < header:
            break
        if name == kind:
            return f.read(size - header)
        pos += size
    return None


def _find(data: bytes, kind: bytes) -> bytes | None:
    """Return the body of the first box `kind` among the boxes in `data`, or None."""
    pos = 0
    while pos + 8 <= len(data):
        size, name = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = len(data) - pos
        if size < header:
            return None
        if name == kind:
            return data[pos + header : pos + size]
        pos += size
    return None


def _child(data: bytes, kind: bytes, where: str) -> bytes:
    found = _find(data, kind)
    if found is None:
        raise UserError(f"{where} is not a playable MP4 (no {kind.decode()} box); produce the chapter again")
    return found
