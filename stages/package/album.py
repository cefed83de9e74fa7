"""The album a listener gets: one tagged MP3 per chapter (ACX's format) and one M4B with chapter marks.

Tags follow the conventions audiobook players read: author as artist and album artist, narrator as
composer (MP3 TCOM, MP4 ©wrt) plus an explicit NARRATOR field, and `stik` = 2 marking an audiobook.
The synthetic-narration disclosure goes in the comment (COMM, ©cmt) and a DISCLOSURE field; the voices,
their licences, engine and model in a VOICES field (stages/voices/provenance.py).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stages import files
from stages.errors import StageError, UserError
from stages.ffmpeg import base_args, encode_pcm, stage_error
from stages.wav import wav_info

MP3_SAMPLE_RATE_HZ = 44100
MP3_BITRATE_KBPS = 192  # ACX: constant bit rate, 192 kbps or more, 44.1 kHz
M4B_SAMPLE_RATE_HZ = 44100
M4B_BITRATE_KBPS = 80  # mono AAC-LC speech
M4B_AAC_CODER = "fast"  # about 4x faster than ffmpeg's "twoloop", and clean at 80 kbps mono
MPEG1_L3_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)  # the CBR rates MPEG-1 layer III has
MPEG1_RATES_HZ = (32000, 44100, 48000)
LAME_TAG_VERSION = b"LAME3.100"  # the libmp3lame release ffmpeg links (the current one since 2017)
LAME_VBR_METHOD_CBR = 1
LAME_TAG_BYTES = 36
LAME_TAG_CRC_BYTES = 190  # the tag's CRC covers the frame's first 190 bytes
MP4_STIK_AUDIOBOOK = 2
ID3_VERSION = 3  # ID3v2.3: read by every player; mutagen stores text as UTF-16 in it
ID3_COVER_FRONT = 3  # APIC picture type "Cover (front)"
NARRATOR_KEY = "NARRATOR"
DISCLOSURE_KEY = "DISCLOSURE"
VOICES_KEY = "VOICES"
ISO639_2 = {"en": "eng", "zh": "chi", "fr": "fre", "de": "ger", "es": "spa", "it": "ita", "ja": "jpn", "pt": "por"}


@dataclass(frozen=True)
class AlbumTags:
    """What every file of the album is tagged with."""

    album: str  # the book's title
    author: str
    narrator: str
    year: str = ""
    genre: str = "Audiobook"
    cover: bytes | None = None  # image file bytes
    cover_mime: str = "image/jpeg"  # or "image/png"
    language: str = "en"  # BCP 47
    disclosure: str = ""  # the synthetic-narration disclosure line, from the narrator voice's licence
    voices: str = ""  # provenance summary: each voice with its licence, engine and model


def _pcm(audio: np.ndarray, what: str) -> np.ndarray:
    pcm = np.asarray(audio, dtype=np.float32)
    if pcm.ndim != 1 or pcm.size == 0:
        raise StageError(f"{what}: expected non-empty mono audio, got shape {pcm.shape}; assemble the chapter first")
    return pcm


def write_chapter_mp3(
    audio: np.ndarray, sample_rate: int, path: Path, *, title: str, track: int, total: int, tags: AlbumTags,
    bitrate_kbps: int = MP3_BITRATE_KBPS, rate_hz: int = MP3_SAMPLE_RATE_HZ,
) -> Path:
    """Write one chapter as a tagged mono CBR MP3 (44.1 kHz, 192 kbps unless told) at `path`; return the path."""
    if not 1 <= track <= total:
        raise UserError(f"{path}: track {track} of {total} is out of range; number chapters from 1")
    if bitrate_kbps not in MPEG1_L3_KBPS or rate_hz not in MPEG1_RATES_HZ:
        raise UserError(f"{path}: {bitrate_kbps} kbps at {rate_hz} Hz is not an MPEG-1 layer III format; "
                        f"choose kbps from {MPEG1_L3_KBPS} and a rate from {MPEG1_RATES_HZ}")
    pcm = _pcm(audio, f"MP3 {path}")
    args = ["-map_metadata", "-1", "-c:a", "libmp3lame", "-b:a", f"{bitrate_kbps}k", "-abr", "0"]
    args += ["-ar", str(rate_hz), "-ac", "1", "-id3v2_version", "0", "-write_id3v1", "0"]
    args += ["-write_xing", "1", "-f", "mp3"]  # the Xing/LAME frame carries encoder delay and padding
    with files.atomic_path(path) as tmp:
        encode_pcm([pcm], sample_rate, [*args, str(tmp)], f"encode chapter {track} to MP3 {path}")
        _mark_lame_tag(tmp, bitrate_kbps)
        _tag_mp3(tmp, title=title, track=track, total=total, tags=tags)
    return Path(path)


def _crc16(data: bytes) -> int:
    """Return the CRC-16 (reflected polynomial 0xA001, start 0) that the LAME tag uses."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def _mark_lame_tag(path: Path, bitrate_kbps: int = MP3_BITRATE_KBPS) -> None:
    """Label the Info frame's encoder-delay tag as LAME's (the encoder it describes), CBR, with a fresh CRC.

    ffmpeg fills in LAME's tag layout (delay, padding, length) but signs it "Lavc", and readers such as
    mutagen and most players then ignore the delay and padding and report about 30 ms too much.
    """
    with open(path, "r+b") as f:
        frame = bytearray(f.read(LAME_TAG_CRC_BYTES))
        if len(frame) < LAME_TAG_CRC_BYTES or frame[0] != 0xFF or frame[1] & 0xE0 != 0xE0:
            return
        mpeg1, mono = frame[1] & 0x18 == 0x18, frame[3] >> 6 == 3
        info = (21 if mono else 36) if mpeg1 else (13 if mono else 21)
        if frame[info : info + 4] not in (b"Xing", b"Info"):
            return
        flags = int.from_bytes(frame[info + 4 : info + 8], "big")
        tag = info + 8 + 4 * bool(flags & 1) + 4 * bool(flags & 2) + 100 * bool(flags & 4) + 4 * bool(flags & 8)
        if tag + LAME_TAG_BYTES > len(frame) or frame[tag : tag + 4] not in (b"Lavc", b"LAME"):
            return
        frame[tag : tag + 9] = LAME_TAG_VERSION
        frame[tag + 9] = (frame[tag + 9] & 0xF0) | LAME_VBR_METHOD_CBR
        frame[tag + 20] = min(bitrate_kbps, 255)  # the CBR bitrate byte
        crc_at = tag + LAME_TAG_BYTES - 2
        frame[crc_at : crc_at + 2] = b"\0\0"
        frame[crc_at : crc_at + 2] = _crc16(frame[:LAME_TAG_CRC_BYTES]).to_bytes(2, "big")
        f.seek(0)
        f.write(frame)


def _tag_mp3(path: Path, *, title: str, track: int, total: int, tags: AlbumTags) -> None:
    from mutagen.id3 import APIC, COMM, ID3, TALB, TCOM, TCON, TDRC, TIT2, TLAN, TPE1, TPE2, TRCK, TXXX

    utf8 = 3
    id3 = ID3()
    id3.add(TIT2(encoding=utf8, text=title))
    id3.add(TRCK(encoding=utf8, text=f"{track}/{total}"))
    id3.add(TALB(encoding=utf8, text=tags.album))
    id3.add(TPE1(encoding=utf8, text=tags.author))
    id3.add(TPE2(encoding=utf8, text=tags.author))
    id3.add(TCOM(encoding=utf8, text=tags.narrator))
    id3.add(TXXX(encoding=utf8, desc=NARRATOR_KEY, text=tags.narrator))
    id3.add(TCON(encoding=utf8, text=tags.genre))
    id3.add(TLAN(encoding=utf8, text=_iso639_2(tags.language)))
    if tags.year:
        id3.add(TDRC(encoding=utf8, text=tags.year))
    if tags.disclosure:
        id3.add(COMM(encoding=utf8, lang=_iso639_2(tags.language), desc="", text=tags.disclosure))
        id3.add(TXXX(encoding=utf8, desc=DISCLOSURE_KEY, text=tags.disclosure))
    if tags.voices:
        id3.add(TXXX(encoding=utf8, desc=VOICES_KEY, text=tags.voices))
    if tags.cover:
        id3.add(APIC(encoding=utf8, mime=tags.cover_mime, type=ID3_COVER_FRONT, desc="Cover", data=tags.cover))
    id3.update_to_v23()
    id3.save(path, v2_version=ID3_VERSION, v1=0)


def _iso639_2(language: str) -> str:
    primary = language.split("-")[0].lower()
    return ISO639_2.get(primary, primary)


def _chapter_length(audio: np.ndarray | Path, sample_rate: int, what: str) -> int:
    """Return the number of samples of a chapter given as audio or as a mono WAV at `sample_rate`."""
    if not isinstance(audio, (str, Path)):
        return _pcm(audio, what).size
    info = wav_info(Path(audio))
    if info.sample_rate != sample_rate or info.frames == 0:
        found = f"{info.frames} samples at {info.sample_rate} Hz"
        raise StageError(f"{what}: {audio} holds {found}; expected audio at {sample_rate} Hz (re-master the chapter)")
    return info.frames


def _tag_m4b(path: Path, tags: AlbumTags) -> None:
    from mutagen.mp4 import MP4, MP4Cover, MP4FreeForm

    mp4 = MP4(path)
    if mp4.tags is None:
        mp4.add_tags()
    t = mp4.tags
    t["©nam"] = [tags.album]
    t["©alb"] = [tags.album]
    t["©ART"] = [tags.author]
    t["aART"] = [tags.author]
    t["©wrt"] = [tags.narrator]
    t["----:com.apple.iTunes:" + NARRATOR_KEY] = [MP4FreeForm(tags.narrator.encode("utf-8"))]
    t["©gen"] = [tags.genre]
    t["stik"] = [MP4_STIK_AUDIOBOOK]
    if tags.year:
        t["©day"] = [tags.year]
    if tags.disclosure:
        t["©cmt"] = [tags.disclosure]
        t["----:com.apple.iTunes:" + DISCLOSURE_KEY] = [MP4FreeForm(tags.disclosure.encode("utf-8"))]
    if tags.voices:
        t["----:com.apple.iTunes:" + VOICES_KEY] = [MP4FreeForm(tags.voices.encode("utf-8"))]
    if tags.cover:
        fmt = MP4Cover.FORMAT_PNG if tags.cover_mime == "image/png" else MP4Cover.FORMAT_JPEG
        t["covr"] = [MP4Cover(tags.cover, imageformat=fmt)]
    mp4.save()


def read_m4b_chapters(path: Path) -> list[tuple[str, float]]:
    """Return (title, start seconds) of each chapter of an M4B, as ffmpeg's demuxer reads them."""
    cmd = base_args()[:-1] + ["-i", str(path), "-f", "ffmetadata", "pipe:1"]
    try:
        text = subprocess.run(cmd, check=True, capture_output=True).stdout.decode("utf-8")
    except subprocess.CalledProcessError as e:
        raise stage_error(f"read the chapters of {path}", e.stderr) from e
    chapters: list[tuple[str, float]] = []
    for block in re.split(r"^\[CHAPTER\]\s*$", text, flags=re.M)[1:]:
        fields = _ffmetadata_fields(block)
        num, den = (int(v) for v in fields.get("TIMEBASE", "1/1000").split("/"))
        chapters.append((fields.get("title", ""), int(fields["START"]) * num / den))
    return chapters


def _ffmetadata_fields(block: str) -> dict[str, str]:
    """Return key=value pairs of one ffmetadata section, unescaped (stops at the next section)."""
    found: dict[str, str] = {}
    for line in re.split(r"(?<!\\)\n", block):
        if line.startswith("["):
            break
        key, sep, value = line.partition("=")
        if sep:
            found[key.strip()] = re.sub(r"\\(.)", r"\1", value, flags=re.S)
    return found
