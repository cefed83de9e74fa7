"""Delivery profiles: what a retailer takes (files, format, cover) and the checks each file must pass.

A profile is picked by name (`--profile acx`). It fixes the deliverable (one MP3 per chapter, or one
M4B with chapter marks), the audio format, the longest file allowed, the retail sample, the cover's
size and shape, and the level targets. A chapter that would run past the longest file a retailer
takes is split at a paragraph boundary before rendering (`split_long_chapters`); a cover the
retailer would refuse stops the run before anything is rendered (`check_cover`).
"""

from __future__ import annotations

import itertools
import math
import struct
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from stages.errors import UserError
from stages.model import Chapter, Manuscript, Paragraph, Segment

# Measured: the Alice sample's two chapters, mastered with the bundled joe voice (pauses and room tone
# included), run at 16.0 and 16.8 characters of spoken text per second.
SPOKEN_CHARS_PER_S = 16.0
SPLIT_MARGIN = 0.85  # plan parts at most this share of the limit: slower voices and sad lines run longer
SECONDS_PER_MINUTE = 60
PART_TITLE = "{title} (part {part})"
PART_SPOKEN = "{title}, part {part}."
JPEG_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
PNG_TRUECOLOR_TYPES = (2, 6)  # RGB and RGBA
JPEG_RGB_COMPONENTS = 3

# ACX (Audible's production site), "Audio Submission Requirements" and "Cover Art Requirements".
ACX_BITRATE_KBPS = 192  # ACX: MP3 at 192 kbps or higher, constant bit rate
ACX_SAMPLE_RATE_HZ = 44100  # ACX: 44.1 kHz
ACX_MAX_FILE_MINUTES = 120.0  # ACX: each file no longer than 120 minutes
ACX_SAMPLE_MIN_MINUTES, ACX_SAMPLE_MAX_MINUTES = 1.0, 5.0  # ACX: a retail sample between one and five minutes
ACX_COVER_MIN_PX = 2400  # ACX: cover at least 2400 x 2400 px, square, RGB, JPG or PNG
ACX_RMS_DBFS = (-23.0, -18.0)  # ACX: RMS between -23 dB and -18 dB
ACX_PEAK_MAX_DBFS = -3.0  # ACX: peaks at or below -3 dB
ACX_NOISE_FLOOR_MAX_DBFS = -60.0  # ACX: noise floor at most -60 dB
ACX_HEAD_S = (0.5, 1.0)  # ACX: 0.5 to 1 s of room tone at the head of each file
ACX_TAIL_S = (1.0, 5.0)  # ACX: 1 to 5 s of room tone at the tail
# Findaway Voices (now INaudio), "Audiobook Mastering Guide": the same levels, format, credits and file
# limits as ACX; cover square, at least 2400 x 2400 px.
FINDAWAY_MAX_FILE_MINUTES = 120.0
# Apple Books audiobooks: M4B (AAC) preferred, with chapters; cover square, at least 2400 x 2400 px.
APPLE_COVER_MIN_PX = 2400
# Google Play Books partner help, "Book file guidelines": M4A/AAC over 128 kbps mono; cover JPG or PNG,
# 1,024 to 7,200 px on each side, square recommended (not required); the audiobook at least 5 minutes.
GOOGLE_AAC_MIN_KBPS = 128
GOOGLE_M4B_KBPS = 192  # well over the minimum: speech with pauses averages below the encoder's target
GOOGLE_COVER_MIN_PX, GOOGLE_COVER_MAX_PX = 1024, 7200


@dataclass(frozen=True)
class Profile:
    """What one retailer takes and how each file is checked."""

    name: str
    retailer: str  # who it is for, in words
    chapter_mp3s: bool  # the delivery is one MP3 per chapter (plus credits files)
    m4b: bool  # the delivery includes one M4B (AAC) with a chapter mark per chapter
    mp3_bitrate_kbps: int = ACX_BITRATE_KBPS
    sample_rate_hz: int = ACX_SAMPLE_RATE_HZ
    channels: int = 1  # every file mono
    aac_min_kbps: int | None = None  # the M4B's least AAC bit rate the retailer takes, if it names one
    m4b_bitrate_kbps: int = 80  # what the M4B is encoded at: mono AAC-LC speech, unless a retailer asks for more
    max_file_minutes: float | None = None  # the longest one audio file may run
    sample_minutes: tuple[float, float] | None = None  # retail sample length, least and most
    credits: bool = True  # opening and closing credits as their own files
    cover_min_px: int | None = None  # least width and height of the cover, px
    cover_max_px: int | None = None
    cover_square: bool = False
    cover_rgb: bool = False  # 8-bit RGB(A): no CMYK or greyscale
    rms_dbfs: tuple[float, float] = ACX_RMS_DBFS
    peak_max_dbfs: float = ACX_PEAK_MAX_DBFS
    noise_floor_max_dbfs: float = ACX_NOISE_FLOOR_MAX_DBFS
    head_s: tuple[float, float] | None = None  # room tone before the first word, least and most
    tail_s: tuple[float, float] | None = None  # after the last word

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def cover_rule(self) -> str:
        """Return the cover requirement in words, e.g. "square, at least 2400 x 2400 px"."""
        parts = ["square"] if self.cover_square else []
        if self.cover_min_px:
            parts.append(f"at least {self.cover_min_px} x {self.cover_min_px} px")
        if self.cover_max_px:
            parts.append(f"at most {self.cover_max_px} x {self.cover_max_px} px")
        return ", ".join(parts + (["RGB"] if self.cover_rgb else []) + ["JPEG or PNG"])


_ACX_LIKE = dict(chapter_mp3s=True, m4b=False, max_file_minutes=ACX_MAX_FILE_MINUTES,
                 sample_minutes=(ACX_SAMPLE_MIN_MINUTES, ACX_SAMPLE_MAX_MINUTES), cover_min_px=ACX_COVER_MIN_PX,
                 cover_square=True, cover_rgb=True, head_s=ACX_HEAD_S, tail_s=ACX_TAIL_S)
# Apple and Google cut their own previews: a sample of at most 5 minutes is made for them, its length unchecked.
UNCHECKED_SAMPLE_MINUTES = (0.0, ACX_SAMPLE_MAX_MINUTES)
# Apple and Google publish no level targets: the ACX ones stay the house standard (one master for every shop).
PROFILES: dict[str, Profile] = {
    "acx": Profile("acx", "ACX / Audible", **_ACX_LIKE),
    "apple": Profile("apple", "Apple Books", chapter_mp3s=False, m4b=True, cover_min_px=APPLE_COVER_MIN_PX,
                     cover_square=True, sample_minutes=UNCHECKED_SAMPLE_MINUTES),
    "google": Profile("google", "Google Play Books", chapter_mp3s=False, m4b=True, aac_min_kbps=GOOGLE_AAC_MIN_KBPS,
                      m4b_bitrate_kbps=GOOGLE_M4B_KBPS,
                      cover_min_px=GOOGLE_COVER_MIN_PX, cover_max_px=GOOGLE_COVER_MAX_PX,
                      sample_minutes=UNCHECKED_SAMPLE_MINUTES),
    "findaway": Profile("findaway", "Findaway Voices (INaudio)",
                        **(_ACX_LIKE | {"max_file_minutes": FINDAWAY_MAX_FILE_MINUTES})),
    "generic": Profile("generic", "any player", chapter_mp3s=True, m4b=True, credits=False,
                       sample_minutes=UNCHECKED_SAMPLE_MINUTES),
}
DEFAULT_PROFILE = "generic"


def get_profile(name: str | None) -> Profile:
    """Return the profile called `name` (the default one for None); an unknown name lists the choices."""
    key = (name or DEFAULT_PROFILE).strip().lower()
    if key not in PROFILES:
        raise UserError(f"unknown delivery profile {name!r}; choose one of: {', '.join(PROFILES)}")
    return PROFILES[key]


def profile_from_config(config: dict) -> str | None:
    """Return the profile name in a project config's [retail] table (`profile = "acx"`), or None."""
    table = config.get("retail") or {}
    name = table.get("profile") if isinstance(table, dict) else None
    if name is not None and (not isinstance(name, str) or name.strip().lower() not in PROFILES):
        raise UserError(f"audiobook.toml [retail] profile = {name!r} is not a delivery profile; "
                        f"choose one of: {', '.join(PROFILES)}")
    return name


@dataclass(frozen=True)
class ImageInfo:
    """What a cover file is, read from its header."""

    format: str  # "jpeg" or "png"
    width: int
    height: int
    rgb: bool  # 8-bit colour (RGB or RGBA), not CMYK or greyscale


def image_info(data: bytes, where: str = "the cover") -> ImageInfo:
    """Return the format, pixel size and colour model of PNG or JPEG bytes."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) >= 26:
        width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
        return ImageInfo("png", width, height, depth == 8 and colour in PNG_TRUECOLOR_TYPES)
    if data.startswith(b"\xff\xd8"):
        pos = 2
        while pos + 9 < len(data):
            if data[pos] != 0xFF:
                break
            marker = data[pos + 1]
            if marker == 0xFF:  # fill byte
                pos += 1
                continue
            if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
                pos += 2
                continue
            length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
            if marker in JPEG_SOF_MARKERS:
                depth, height, width, components = struct.unpack(">BHHB", data[pos + 4 : pos + 10])
                return ImageInfo("jpeg", width, height, depth == 8 and components == JPEG_RGB_COMPONENTS)
            pos += 2 + length
    raise UserError(f"{where} is not a PNG or JPEG image this program can read; save it as .jpg or .png")


def check_cover(path: Path | None, profile: Profile) -> ImageInfo | None:
    """Return the cover's facts; raise UserError naming the size the profile's retailer needs if it is refused."""
    needs = profile.cover_min_px or profile.cover_square
    if path is None:
        if needs:
            raise UserError(f"the {profile.name} profile needs a cover image ({profile.cover_rule()}); "
                            "give one with --cover FILE")
        return None
    info = image_info(Path(path).read_bytes(), str(path))
    size = f"{info.width} x {info.height} px"
    fix = f"{profile.retailer} needs {profile.cover_rule()}; give a cover that fits with --cover FILE"
    if profile.cover_min_px and min(info.width, info.height) < profile.cover_min_px:
        raise UserError(f"cover {path} is {size}, too small: {fix}")
    if profile.cover_max_px and max(info.width, info.height) > profile.cover_max_px:
        raise UserError(f"cover {path} is {size}, too large: {fix}")
    if profile.cover_square and info.width != info.height:
        raise UserError(f"cover {path} is {size}, not square: {fix}")
    if profile.cover_rgb and not info.rgb:
        raise UserError(f"cover {path} is not 8-bit RGB (CMYK or greyscale): {fix}")
    return info


def estimated_seconds(paragraphs: tuple[Paragraph, ...] | list[Paragraph], chars_per_s: float) -> float:
    """Return how long `paragraphs` should run once spoken and mastered, from their spoken text's length."""
    return sum(len(s.spoken) for p in paragraphs for s in p.segments) / chars_per_s


def split_points(lengths: list[int], budget: int) -> list[int]:
    """Return the paragraph indexes where parts start (after 0) so no part's length passes `budget`, parts even."""
    total = sum(lengths)
    if total <= budget:
        return []
    parts = math.ceil(total / budget)
    ends = list(itertools.accumulate(lengths))
    while True:
        cuts, start = [], 0
        for k in range(1, parts):
            target = total * k / parts
            best = min(range(start + 1, len(lengths)), key=lambda i: (abs(ends[i - 1] - target), i), default=None)
            if best is None:
                break
            cuts.append(best)
            start = best
        bounds = [0, *cuts, len(lengths)]
        if all(sum(lengths[a:b]) <= budget for a, b in zip(bounds, bounds[1:])) or parts >= len(lengths):
            return cuts
        parts += 1


def _part(chapter: Chapter, paragraphs: tuple[Paragraph, ...], part: int, language: str) -> Chapter:
    """Return one part of `chapter`; parts after the first open with a spoken "Title, part N." heading."""
    from stages.ingest.sentences import spoken_form

    title = PART_TITLE.format(title=chapter.title, part=part)
    if part > 1:
        tag = f"{chapter.id}-part{part}"
        spoken = spoken_form(PART_SPOKEN.format(title=chapter.title, part=part), language)
        heading = Segment(id=f"{tag}-s01", text=title, spoken=spoken, kind="heading")
        paragraphs = (Paragraph(f"{tag}-h", "heading", (heading,)), *paragraphs)
    return Chapter(chapter.number, title, paragraphs, source=chapter.source)


def split_long_chapters(
    manuscript: Manuscript, profile: Profile, chars_per_s: float = SPOKEN_CHARS_PER_S
) -> tuple[Manuscript, dict[int, str]]:
    """Return the manuscript with chapters too long for `profile` split at paragraph boundaries, and a note per part.

    Parts are numbered on from the chapter (later chapters move up); segment ids are kept, and each part
    after the first gains a heading segment `<chapter id>-partN-s01`. Without a file limit nothing changes.
    """
    if not profile.max_file_minutes:
        return manuscript, {}
    budget_s = profile.max_file_minutes * SECONDS_PER_MINUTE * SPLIT_MARGIN
    budget = int(budget_s * chars_per_s)
    chapters, notes, shift = [], {}, 0
    for chapter in manuscript.chapters:
        lengths = [sum(len(s.spoken) for s in p.segments) for p in chapter.paragraphs]
        cuts = split_points(lengths, budget)
        if not cuts:
            chapters.append(replace(chapter, number=chapter.number + shift))
            continue
        bounds = [0, *cuts, len(chapter.paragraphs)]
        minutes = estimated_seconds(chapter.paragraphs, chars_per_s) / SECONDS_PER_MINUTE
        for part, (a, b) in enumerate(zip(bounds, bounds[1:]), start=1):
            piece = _part(chapter, chapter.paragraphs[a:b], part, manuscript.language)
            number = chapter.number + shift + part - 1
            chapters.append(replace(piece, number=number))
            notes[number] = (
                f"{chapter.title} runs about {minutes:.0f} min, over {profile.retailer}'s "
                f"{profile.max_file_minutes:g}-minute limit per file: split at paragraph boundaries into "
                f"{len(bounds) - 1} parts; this is part {part}, from paragraph {chapter.paragraphs[a].id}"
            )
        shift += len(cuts)
    return manuscript.with_chapters(chapters), notes


def _check(name: str, value: str, limit: str, passes: bool) -> dict[str, Any]:
    return {"check": name, "value": value, "limit": limit, "passes": bool(passes)}


def _within(value: float | None, bounds: tuple[float, float] | None) -> bool:
    return bounds is None or (value is not None and bounds[0] <= value <= bounds[1])


def level_checks(profile: Profile, figures) -> list[dict[str, Any]]:
    """Return the profile's level checks of one file's ACX figures (RMS, sample peak, noise floor)."""
    lo, hi = profile.rms_dbfs
    return [
        _check("RMS", f"{figures.rms_dbfs:.1f} dBFS", f"{lo:g} to {hi:g} dBFS", lo <= figures.rms_dbfs <= hi),
        _check("peak", f"{figures.peak_dbfs:.1f} dBFS", f"at most {profile.peak_max_dbfs:g} dBFS",
               figures.peak_dbfs <= profile.peak_max_dbfs),
        _check("noise floor", f"{figures.noise_floor_dbfs:.1f} dBFS", f"at most {profile.noise_floor_max_dbfs:g} dBFS",
               figures.noise_floor_dbfs <= profile.noise_floor_max_dbfs),
    ]


def chapter_checks(
    profile: Profile, figures, duration_s: float, *, head_s: float | None = None, tail_s: float | None = None,
    mp3: Path | None = None,
) -> list[dict[str, Any]]:
    """Return the profile's checks of one chapter file: levels, length, room tone at each end, MP3 format."""
    checks = level_checks(profile, figures)
    if profile.max_file_minutes:
        checks.append(_check("length", f"{duration_s / SECONDS_PER_MINUTE:.1f} min",
                             f"at most {profile.max_file_minutes:g} min", duration_s <= profile.max_file_minutes * 60))
    for name, value, bounds in (("room tone at the head", head_s, profile.head_s),
                                ("room tone at the tail", tail_s, profile.tail_s)):
        if bounds is not None and value is not None:
            checks.append(_check(name, f"{value:.2f} s", f"{bounds[0]:g} to {bounds[1]:g} s", _within(value, bounds)))
    if mp3 is not None and profile.chapter_mp3s:
        checks.append(mp3_format_check(profile, mp3))
    return checks


def mp3_format_check(profile: Profile, path: Path) -> dict[str, Any]:
    """Return the check of an MP3's format as read back from the file: bit rate, CBR, sample rate, channels."""
    from mutagen.mp3 import MP3, BitrateMode

    info = MP3(path).info
    kbps = round(info.bitrate / 1000)
    cbr = info.bitrate_mode in (BitrateMode.CBR, BitrateMode.UNKNOWN)  # UNKNOWN: no Info tag, every frame alike
    found = f"{kbps} kbps {'CBR' if cbr else 'VBR/ABR'}, {info.sample_rate} Hz, {info.channels} channel(s)"
    wanted = f"{profile.mp3_bitrate_kbps} kbps CBR, {profile.sample_rate_hz} Hz, {profile.channels} channel(s)"
    passes = cbr and kbps >= profile.mp3_bitrate_kbps and info.sample_rate == profile.sample_rate_hz
    return _check("MP3 format", found, wanted, passes and info.channels == profile.channels)


def album_checks(profile: Profile, *, m4b: Path | None = None, sample_s: float | None = None,
                 credits: bool = False) -> list[dict[str, Any]]:
    """Return the profile's album-wide checks: the M4B's AAC bit rate, the retail sample's length, the credits."""
    checks = []
    if profile.m4b and m4b is not None and profile.aac_min_kbps:
        from mutagen.mp4 import MP4

        kbps = round(MP4(m4b).info.bitrate / 1000)
        checks.append(_check("M4B AAC bit rate", f"{kbps} kbps", f"more than {profile.aac_min_kbps} kbps mono",
                             kbps > profile.aac_min_kbps))
    if profile.sample_minutes and sample_s is not None:
        lo, hi = profile.sample_minutes
        checks.append(_check("retail sample length", f"{sample_s / 60:.2f} min", f"{lo:g} to {hi:g} min",
                             lo * 60 <= sample_s <= hi * 60))
    if profile.credits:
        checks.append(_check("opening and closing credits", "present" if credits else "missing",
                             "their own files", credits))
    return checks


SAMPLE_LEAD_S = 0.75  # room tone kept before the sample's first word (ACX: 0.5 to 1 s at the head)
SAMPLE_TAIL_S = 1.5  # ... and after its last word (ACX: 1 to 5 s at the tail)
SAMPLE_FADE_IN_S = 0.05
SAMPLE_FADE_OUT_S = 0.5  # over the tail's room tone, so the sample ends softly


def sample_span(cues, kinds: dict[str, str], duration_s: float, max_s: float) -> tuple[float, float, int]:
    """Return (start s, end s, segments) of a retail sample: from after the chapter's heading to the last whole
    segment that ends in time, with room tone either side; `kinds` maps segment id to its kind."""
    body = list(cues)
    while body and kinds.get(body[0].id) == "heading":
        body.pop(0)
    if not body:
        raise UserError("the retail sample's chapter has nothing but its heading; give the book a chapter with text")
    heading_end = cues[len(cues) - len(body) - 1].end_ms / 1000 if len(body) < len(cues) else 0.0
    start = max(body[0].start_ms / 1000 - SAMPLE_LEAD_S, heading_end, 0.0)
    fits = [c for c in body if c.end_ms / 1000 + SAMPLE_TAIL_S - start <= max_s] or body[:1]
    end = min(fits[-1].end_ms / 1000 + SAMPLE_TAIL_S, duration_s)
    return round(start, 3), round(end, 3), len(fits)


def cut_sample(audio, sample_rate: int, start_s: float, end_s: float):
    """Return audio[start:end] with a short fade in and a longer fade out (float32)."""
    import numpy as np

    clip = np.array(audio[round(start_s * sample_rate) : round(end_s * sample_rate)], dtype=np.float32)
    fade_in = min(clip.size, round(SAMPLE_FADE_IN_S * sample_rate))
    fade_out = min(clip.size, round(SAMPLE_FADE_OUT_S * sample_rate))
    clip[:fade_in] *= np.linspace(0.0, 1.0, fade_in, dtype=np.float32)
    if fade_out:
        clip[-fade_out:] *= np.linspace(1.0, 0.0, fade_out, dtype=np.float32)
    return clip


def use_cover(manuscript: Manuscript, book_dir: Path, cover: Path | None, profile: Profile) -> Manuscript:
    """Return the manuscript with `cover` (copied beside it as retail-cover.jpg|png) as its cover, once the
    profile's retailer would take it; without `cover`, check the book's own cover the same way."""
    from stages import files

    if cover is None:
        check_cover(Path(book_dir) / manuscript.cover if manuscript.cover else None, profile)
        return manuscript
    cover = Path(cover)
    if not cover.is_file():
        raise UserError(f"--cover {cover}: no such file; give the path of a .jpg or .png image")
    info = check_cover(cover, profile)
    name = f"retail-cover.{'png' if info.format == 'png' else 'jpg'}"
    files.write_bytes(Path(book_dir) / name, cover.read_bytes())
    return replace(manuscript, cover=name)
