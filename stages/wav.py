"""Read and write mono WAV files (16/24/32-bit PCM or 32/64-bit float) with numpy alone."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stages import files
from stages.errors import StageError

FORMAT_PCM = 1
FORMAT_FLOAT = 3
FORMAT_EXTENSIBLE = 0xFFFE
PCM16_FULL_SCALE = 32768.0


@dataclass(frozen=True)
class WavInfo:
    """What a WAV file's header says."""

    sample_rate: int
    channels: int
    encoding: int  # FORMAT_PCM or FORMAT_FLOAT
    bits: int
    data_offset: int  # where the samples start in the file
    data_bytes: int

    @property
    def frames(self) -> int:
        return self.data_bytes // max(1, self.channels * self.bits // 8)


def wav_info(path: Path) -> WavInfo:
    """Return the header of a WAV file, reading only its chunk headers."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(0)
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                raise StageError(f"{path} is not a WAV file (no RIFF/WAVE header); re-render it")
            fmt, data = None, None
            pos = 12
            while pos + 8 <= size and (fmt is None or data is None):
                f.seek(pos)
                cid, length = struct.unpack("<4sI", f.read(8))
                if cid == b"fmt ":
                    fmt = f.read(min(length, 40))
                elif cid == b"data":
                    data = (pos + 8, min(length, size - pos - 8))
                pos += 8 + length + (length & 1)
    except OSError as e:
        raise StageError(f"cannot read WAV {path}: {e.strerror}; re-render it") from e
    if fmt is None or data is None or len(fmt) < 16:
        raise StageError(f"{path} has no fmt or data chunk; re-render it")
    encoding, channels, rate = struct.unpack("<HHI", fmt[:8])
    bits = struct.unpack("<H", fmt[14:16])[0]
    if encoding == FORMAT_EXTENSIBLE and len(fmt) >= 26:
        encoding = struct.unpack("<H", fmt[24:26])[0]
    return WavInfo(rate, channels, encoding, bits, data[0], data[1])


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
    info = wav_info(path)
    frame = info.channels * info.bits // 8
    with open(path, "rb") as f:
        f.seek(info.data_offset)
        raw = f.read(info.frames * frame)
    samples = _decode(raw, info.encoding, info.bits, Path(path))
    if info.channels > 1:
        samples = samples.reshape(-1, info.channels).mean(axis=1).astype(np.float32)
    return samples, info.sample_rate


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
