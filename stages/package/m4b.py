"""The M4B built from per-chapter AAC parts, so an edit re-encodes only the chapters it changed.

Each chapter is encoded once to its own AAC part (`encode_part`), kept under the chapter's stamp;
`assemble_m4b` joins the parts by copying their frames (stages/package/mp4join.py; no re-encoding)
and marks each chapter where its part starts. An AAC part begins with the encoder's 1024 priming samples and ends padded to a whole
1024-sample frame, so each join adds about 23-46 ms of the neighbouring room tone: inaudible, and the
chapter marks are placed from the parts' real frame counts, so they never drift.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stages import files
from stages.errors import StageError, UserError
from stages.ffmpeg import encode_pcm
from stages.package import mp4join
from stages.package.album import (
    M4B_AAC_CODER,
    M4B_BITRATE_KBPS,
    M4B_SAMPLE_RATE_HZ,
    AlbumTags,
    _chapter_length,
    _iso639_2,
    _tag_m4b,
)
from stages.wav import read_wav


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


def assemble_m4b(parts: Sequence[Path], titles: Sequence[str], path: Path, *, tags: AlbumTags) -> Path:
    """Join AAC `parts` by copying their frames into the M4B at `path`, one chapter mark per part; return the path."""
    if not parts or len(parts) != len(titles):
        raise StageError(f"{path}: {len(parts)} parts but {len(titles)} titles; give one title per part")
    read = [mp4join.read_part(p) for p in parts]
    with files.atomic_path(path) as tmp:
        mp4join.join(read, titles, tmp, language=_iso639_2(tags.language))
        _tag_m4b(tmp, tags)
    return path


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
