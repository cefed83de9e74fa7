"""The album files read back: MP3 format and tags, M4B brand, chapters, tags and durations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stages.errors import StageError, UserError
from stages.ffmpeg import decode_audio, run_ffmpeg
from stages.package.album import AlbumTags, read_m4b_chapters, write_chapter_mp3
from stages.package.m4b import write_m4b
from stages.wav import write_wav

RATE = 44100
TOLERANCE_S = 0.030


def voiced(seconds: float, seed: int) -> np.ndarray:
    """A mastered-level 150 Hz sawtooth with a speech-like envelope and short gaps."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    phase = np.cumsum(150.0 * (1 + 0.05 * np.sin(2 * np.pi * 0.5 * t))) / RATE
    envelope = np.clip(np.sin(2 * np.pi * 3.5 * t + rng.uniform(0, 6)), 0, None)
    noise = rng.standard_normal(t.size) * 3e-4  # room tone
    return (0.4 * (2 * (phase - np.floor(phase + 0.5))) * envelope + noise).astype(np.float32)


MPEG1_L3_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)


def frame_bitrates(data: bytes, start: int) -> list[int]:
    """Return the bitrate (kbps) in the header of every MPEG-1 layer III frame from `start` on."""
    found, pos = [], start
    while pos + 4 <= len(data) and data[pos] == 0xFF and data[pos + 1] & 0xE0 == 0xE0:
        kbps = MPEG1_L3_KBPS[data[pos + 2] >> 4]
        found.append(kbps)
        pos += 144 * kbps * 1000 // RATE + ((data[pos + 2] >> 1) & 1)
    assert pos == len(data), f"stray bytes at {pos} of {len(data)}"
    return found


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    n = min(a.size, b.size)
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


@pytest.fixture(scope="module")
def tags(tmp_path_factory) -> AlbumTags:
    cover = tmp_path_factory.mktemp("cover") / "cover.jpg"
    run_ffmpeg(["-f", "lavfi", "-i", "color=c=0x336699:s=64x64", "-frames:v", "1", str(cover)], "make a test cover")
    data = cover.read_bytes()
    assert data[:2] == b"\xff\xd8"  # a real JPEG
    return AlbumTags(album="Pride and Prejudice", author="Jane Austen", narrator="Joe", year="1813", cover=data)


def test_chapter_mp3_is_acx_format_with_tags_and_honest_length(tmp_path, tags):
    from mutagen.mp3 import MP3, BitrateMode

    audio = voiced(7.3, seed=1)
    title = "Chapter 1 \u2014 \u7b2c\u4e00\u7ae0"
    path = write_chapter_mp3(audio, RATE, tmp_path / "01.mp3", title=title, track=1, total=61, tags=tags)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01.mp3"]  # no temp file left behind

    mp3 = MP3(path)
    assert (mp3.info.sample_rate, mp3.info.channels) == (44100, 1)
    assert mp3.info.bitrate == pytest.approx(192000, rel=1e-4)  # averaged from the Info frame's byte count
    assert mp3.info.bitrate_mode == BitrateMode.CBR
    assert set(frame_bitrates(path.read_bytes(), mp3.tags.size)) == {192}  # every frame, not just the average
    assert mp3.info.length == pytest.approx(audio.size / RATE, abs=0.001)  # delay and padding accounted for
    t = mp3.tags
    assert t.version[:2] == (2, 3)
    assert str(t["TIT2"]) == title
    assert str(t["TRCK"]) == "1/61"
    assert (str(t["TALB"]), str(t["TPE1"]), str(t["TPE2"])) == ("Pride and Prejudice", "Jane Austen", "Jane Austen")
    assert str(t["TCOM"]) == "Joe" and str(t["TXXX:NARRATOR"]) == "Joe"
    assert (str(t["TCON"]), str(t["TLAN"])) == ("Audiobook", "eng")
    apic = t.getall("APIC")
    assert len(apic) == 1 and apic[0].type == 3 and apic[0].mime == "image/jpeg" and apic[0].data == tags.cover

    decoded = decode_audio(path, RATE)
    assert abs(decoded.size - audio.size) / RATE <= TOLERANCE_S
    assert decoded.size == audio.size  # gapless: ffmpeg trims exactly the encoder delay and padding
    assert correlation(decoded, audio) > 0.99  # sample-aligned, same content


def test_chapter_mp3_takes_a_profiles_bit_rate_and_refuses_one_mp3_lacks(tmp_path, tags):
    from mutagen.mp3 import MP3, BitrateMode

    path = write_chapter_mp3(voiced(2.0, seed=5), RATE, tmp_path / "hi.mp3", title="x", track=1, total=1, tags=tags,
                             bitrate_kbps=256)
    mp3 = MP3(path)
    assert mp3.info.bitrate == pytest.approx(256000, rel=1e-4) and mp3.info.bitrate_mode == BitrateMode.CBR
    assert set(frame_bitrates(path.read_bytes(), mp3.tags.size)) == {256}
    with pytest.raises(UserError, match="100 kbps at 44100 Hz is not an MPEG-1 layer III format"):
        write_chapter_mp3(voiced(1, 0), RATE, tmp_path / "odd.mp3", title="x", track=1, total=1, tags=tags,
                          bitrate_kbps=100)
    assert not (tmp_path / "odd.mp3").exists()


def test_mp3_track_number_out_of_range_is_refused(tmp_path, tags):
    with pytest.raises(UserError, match="track 3 of 2"):
        write_chapter_mp3(voiced(1, 0), RATE, tmp_path / "x.mp3", title="x", track=3, total=2, tags=tags)


def _atom_renamed(data: bytes, atom: bytes, to: bytes) -> bytes:
    at = data.index(atom)
    return data[:at] + to + data[at + 4 :]


def test_m4b_has_brand_chapters_tags_and_length(tmp_path, tags):
    from mutagen.mp4 import MP4

    chapters = [voiced(3.0, 2), voiced(4.5, 3), voiced(2.25, 4)]
    titles = ["Chapter 1", "Chapter 2: = ; # \\ odd characters", "\u7b2c\u4e09\u7ae0"]
    second = write_wav(tmp_path / "02.wav", chapters[1], RATE, float32=True)  # a chapter may come as its WAV
    path = write_m4b([chapters[0], second, chapters[2]], RATE, titles, tmp_path / "book.m4b", tags=tags)
    # each chapter is its own AAC part: 1024 priming samples, then its audio, padded to whole 1024-sample frames
    frames = [math.ceil((c.size + 1024) / 1024) for c in chapters]
    starts = [round(sum(frames[:i]) * 1024 / RATE, 3) for i in range(3)]
    assert starts[1:] == pytest.approx([3.042, 7.570], abs=0.001)

    data = path.read_bytes()
    assert data[4:8] == b"ftyp" and data[8:12] == b"M4B "

    read = read_m4b_chapters(path)
    assert [t for t, _ in read] == titles
    assert [s for _, s in read] == pytest.approx(starts, abs=TOLERANCE_S)
    nero = MP4(path).chapters  # mutagen reads the Nero `chpl` list
    assert [(c.title, round(c.start, 3)) for c in nero] == [(t, s) for t, s in zip(titles, starts)]
    quicktime_only = tmp_path / "no-chpl.m4b"  # hide `chpl`: ffmpeg must find the QuickTime chapter track
    quicktime_only.write_bytes(_atom_renamed(data, b"chpl", b"free"))
    assert read_m4b_chapters(quicktime_only) == read

    mp4 = MP4(path)
    assert mp4.tags["stik"] == [2]
    assert mp4.tags["\u00a9nam"] == ["Pride and Prejudice"] and mp4.tags["\u00a9alb"] == ["Pride and Prejudice"]
    assert mp4.tags["\u00a9ART"] == ["Jane Austen"] and mp4.tags["aART"] == ["Jane Austen"]
    assert mp4.tags["\u00a9wrt"] == ["Joe"] and mp4.tags["\u00a9gen"] == ["Audiobook"]
    assert bytes(mp4.tags["covr"][0]) == tags.cover
    assert (mp4.info.sample_rate, mp4.info.channels) == (44100, 1)
    # each part adds its 1024 priming samples and pads to a whole frame; only the last part's padding is trimmed
    assert 9.75 + 3 * 1024 / RATE <= mp4.info.length < 9.75 + (3 * 1024 + 2 * 1023) / RATE

    decoded = decode_audio(path, RATE)
    for i, chapter in enumerate(chapters):  # every chapter's audio begins 1024 samples (the priming) after its mark
        at = sum(frames[:i]) * 1024 + 1024
        assert correlation(decoded[at : at + chapter.size], chapter) > 0.95  # 1 ms off would drop this far lower


def test_m4b_refuses_bad_chapter_lists(tmp_path, tags):
    with pytest.raises(UserError, match="2 chapters of audio but 1 titles"):
        write_m4b([voiced(1, 0), voiced(1, 1)], RATE, ["only one"], tmp_path / "b.m4b", tags=tags)
    slow = write_wav(tmp_path / "22k.wav", voiced(1, 0), 22050)
    with pytest.raises(StageError, match=r"chapter 2 \('Two'\).*44100 samples at 22050 Hz; expected audio at 44100"):
        write_m4b([voiced(1, 0), slow], RATE, ["One", "Two"], tmp_path / "b.m4b", tags=tags)
    sixteen = write_wav(tmp_path / "16.wav", voiced(1, 0), RATE).read_bytes()
    eight_bit = tmp_path / "8bit.wav"  # its header passes the check; its samples fail while streaming
    eight_bit.write_bytes(sixteen.replace(b"\x02\x00\x10\x00data", b"\x02\x00\x08\x00data"))
    with pytest.raises(StageError, match="unsupported WAV encoding"):
        write_m4b([voiced(1, 0), eight_bit], RATE, ["One", "Two"], tmp_path / "b.m4b", tags=tags)
    assert not (tmp_path / "b.m4b").exists()


def test_google_profile_m4b_is_encoded_above_its_minimum_bitrate(tmp_path, tags):
    from stages import profiles
    from stages.package.m4b import assemble_m4b, encode_part

    google = profiles.get_profile("google")
    quiet = np.concatenate([voiced(2.0, 5), np.zeros(RATE, np.float32)])  # speech with a pause, as chapters have
    part = encode_part(quiet, RATE, tmp_path / "part.m4a", google.m4b_bitrate_kbps)
    book = assemble_m4b([part], ["One"], tmp_path / "google.m4b", tags=tags)
    check = profiles.album_checks(google, m4b=book)[0]
    assert check["check"] == "M4B AAC bit rate" and check["passes"], check
    default = assemble_m4b([encode_part(quiet, RATE, tmp_path / "80.m4a")], ["One"], tmp_path / "80.m4b", tags=tags)
    assert not profiles.album_checks(google, m4b=default)[0]["passes"]  # the default 80 kbps is too low for Google
