"""The M4B built from per-chapter AAC parts, so an edit re-encodes only the chapters it changed.

Each chapter is encoded once to its own AAC part (`encode_part`), kept under the chapter's stamp;
`assemble_m4b` joins the parts by stream copy (no re-encoding) and marks each chapter where its part
starts. An AAC part begins with the encoder's 1024 priming samples and ends padded to a whole
1024-sample frame, so each join adds about 23-46 ms of the neighbouring room tone: inaudible, and the
chapter marks are placed from the parts' real frame counts, so they never drift.
"""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stages import files
from stages.errors import StageError, UserError
from stages.ffmpeg import encode_pcm, run_ffmpeg
from stages.package.album import (
    M4B_AAC_CODER,
    M4B_BITRATE_KBPS,
    M4B_SAMPLE_RATE_HZ,
    AlbumTags,
    _chapter_length,
    _ffmetadata_escape,
    _iso639_2,
    _tag_m4b,
)
from stages.wav import read_wav

AAC_FRAME_SAMPLES = 1024
CONTAINERS = (b"moov", b"trak", b"mdia", b"minf", b"stbl")  # the boxes on the way to a track's sample table


def encode_part(audio: np.ndarray | Path, sample_rate: int, out: Path, bitrate_kbps: int = M4B_BITRATE_KBPS) -> Path:
    """Encode one chapter (samples, or its mastered mono WAV) to an AAC part at `out`, atomically."""
    what = f"encode the M4B part {out}"
    _chapter_length(audio, sample_rate, what)
    pcm = read_wav(Path(audio))[0] if isinstance(audio, (str, Path)) else np.asarray(audio, np.float32)
    args = ["-c:a", "aac", "-aac_coder", M4B_AAC_CODER, "-b:a", f"{bitrate_kbps}k",
            "-ar", str(M4B_SAMPLE_RATE_HZ), "-ac", "1", "-f", "mp4"]
    with files.atomic_path(out) as tmp:
        encode_pcm([pcm], sample_rate, [*args, str(tmp)], what)
    return out


def part_frames(part: Path) -> int:
    """Return how many AAC frames a part holds, read from its sample table (the stsz box)."""
    data = Path(part).read_bytes()
    body = _box(data, 0, len(data), CONTAINERS, part)
    stsz = _find(data, *body, b"stsz", part)
    return struct.unpack_from(">I", data, stsz[0] + 8)[0]  # version/flags, sample size, then the count


def _box(data: bytes, start: int, end: int, path_: Sequence[bytes], part: Path) -> tuple[int, int]:
    for name in path_:
        start, end = _find(data, start, end, name, part)
    return start, end


def _find(data: bytes, start: int, end: int, name: bytes, part: Path) -> tuple[int, int]:
    """Return (body start, body end) of the first `name` box between start and end."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header:
            break
        if kind == name:
            return pos + header, pos + size
        pos += size
    raise StageError(f"{part} is not an AAC part this release wrote (no {name.decode()} box); delete it to re-encode")


def assemble_m4b(parts: Sequence[Path], titles: Sequence[str], path: Path, *, tags: AlbumTags) -> Path:
    """Join AAC `parts` by stream copy into the M4B at `path`, one chapter mark per part; return the path."""
    if not parts or len(parts) != len(titles):
        raise StageError(f"{path}: {len(parts)} parts but {len(titles)} titles; give one title per part")
    starts, lengths = [], []
    position = 0
    for part in parts:
        length = part_frames(part) * AAC_FRAME_SAMPLES
        starts.append(position)
        lengths.append(length)
        position += length
    lines = [";FFMETADATA1"]
    for start, length, title in zip(starts, lengths, titles):
        lines += ["[CHAPTER]", f"TIMEBASE=1/{M4B_SAMPLE_RATE_HZ}", f"START={start}", f"END={start + length}",
                  f"title={_ffmetadata_escape(title)}"]
    listing = "".join(f"file '{_concat_quote(Path(p).resolve())}'\n" for p in parts)
    with tempfile.TemporaryDirectory(prefix="m4b-") as scratch, files.atomic_path(path) as tmp:
        concat_list, meta = Path(scratch) / "parts.txt", Path(scratch) / "chapters.txt"
        concat_list.write_text(listing, encoding="utf-8")
        meta.write_text("\n".join(lines) + "\n", encoding="utf-8")
        args = ["-f", "concat", "-safe", "0", "-i", str(concat_list), "-f", "ffmetadata", "-i", str(meta),
                "-map", "0:a", "-map_metadata", "1", "-map_chapters", "1", "-c", "copy",
                "-metadata:s:a:0", f"language={_iso639_2(tags.language)}", "-brand", "M4B ", "-f", "ipod", str(tmp)]
        run_ffmpeg(args, f"join the chapters of the M4B {path}")
        _tag_m4b(tmp, tags)
    return path


def _concat_quote(path: Path) -> str:
    return str(path).replace("'", "'\\''")  # the concat demuxer's quoting


def write_m4b(
    chapter_audio: list[np.ndarray | Path], sample_rate: int, titles: list[str], path: Path, *, tags: AlbumTags
) -> Path:
    """Write the book as one AAC M4B with a chapter mark at each chapter's start; return the path.

    A chapter is its samples, or the path of its mastered mono WAV (read only while it is encoded,
    so a long book never sits in memory whole).
    """
    if not chapter_audio or len(chapter_audio) != len(titles):
        raise UserError(f"{path}: {len(chapter_audio)} chapters of audio but {len(titles)} titles; give one title each")
    for i, (a, t) in enumerate(zip(chapter_audio, titles)):  # check every chapter before encoding any
        _chapter_length(a, sample_rate, f"M4B {path} chapter {i + 1} ({t!r})")
    with tempfile.TemporaryDirectory(prefix="m4b-parts-") as scratch:
        parts = [encode_part(a, sample_rate, Path(scratch) / f"{i:04d}.m4a") for i, a in enumerate(chapter_audio)]
        return assemble_m4b(parts, titles, path, tags=tags)
