"""Read and write mono WAV files (16/24/32-bit PCM or 32/64-bit float) with numpy alone."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from stages import files
from stages.errors import StageError

FORMAT_PCM = 1
FORMAT_FLOAT = 3
FORMAT_EXTENSIBLE = 0xFFFE
PCM16_FULL_SCALE = 32768.0


def _chunks(data: bytes, path: Path) -> dict[bytes, tuple[int, int]]:
    """Return {chunk id: (offset, size)} for the chunks of a RIFF/WAVE file."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise StageError(f"{path} is not a WAV file (no RIFF/WAVE header); re-render it")
    found: dict[bytes, tuple[int, int]] = {}
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        found.setdefault(cid, (pos + 8, min(size, len(data) - pos - 8)))
        pos += 8 + size + (size & 1)
    return found


def _decode(raw: bytes, fmt: int, bits: int, path: Path) -> np.ndarray:
    """Return the interleaved samples of a data chunk as float32 in [-1, 1]."""
    if fmt == FORMAT_FLOAT and bits in (32, 64):
        return np.frombuffer(raw, dtype=f"<f{bits // 8}").astype(np.float32)
    if fmt == FORMAT_PCM and bits == 16:
        return np.frombuffer(raw, dtype="<i2").astype(np.float32) / PCM16_FULL_SCALE
    if fmt == FORMAT_PCM and bits == 32:
        return (np.frombuffer(raw, dtype="<i4") / 2.0**31).astype(np.float32)
    if fmt == FORMAT_PCM and bits == 24:
        b = np.frombuffer(raw[: len(raw) // 3 * 3], dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        return (v / 2.0**23).astype(np.float32)
    raise StageError(f"{path}: unsupported WAV encoding (format {fmt}, {bits} bit); write 16-bit PCM or float")


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Return (mono float32 samples, sample rate) of a WAV file; several channels are averaged."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise StageError(f"cannot read WAV {path}: {e.strerror}; re-render the take") from e
    chunks = _chunks(data, path)
    if b"fmt " not in chunks or b"data" not in chunks:
        raise StageError(f"{path} has no fmt or data chunk; re-render the take")
    off, _ = chunks[b"fmt "]
    fmt, channels, rate = struct.unpack("<HHI", data[off : off + 8])
    bits = struct.unpack("<H", data[off + 14 : off + 16])[0]
    if fmt == FORMAT_EXTENSIBLE:
        fmt = struct.unpack("<H", data[off + 24 : off + 26])[0]
    off, size = chunks[b"data"]
    frame = channels * bits // 8
    samples = _decode(data[off : off + size - size % max(frame, 1)], fmt, bits, path)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype(np.float32)
    return samples, rate


def write_wav(path: Path, audio: np.ndarray, sample_rate: int, *, float32: bool = False) -> Path:
    """Write mono `audio` (floats in [-1, 1]) as 16-bit PCM, or 32-bit float, WAV atomically."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if float32:
        fmt, bits, body = FORMAT_FLOAT, 32, audio.astype("<f4").tobytes()
    else:
        ints = np.clip(np.round(audio * PCM16_FULL_SCALE), -32768, 32767).astype("<i2")
        fmt, bits, body = FORMAT_PCM, 16, ints.tobytes()
    block = bits // 8
    fmt_chunk = struct.pack("<HHIIHH", fmt, 1, sample_rate, sample_rate * block, block, bits)
    header = b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt_chunk) + 8 + len(body)) + b"WAVE"
    header += b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk + b"data" + struct.pack("<I", len(body))
    return files.write_bytes(path, header + body)
