"""The M4B joined from AAC parts by copying frames, checked against ffmpeg's own stream-copy join."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from mutagen.mp4 import MP4

from stages.errors import StageError
from stages.ffmpeg import decode_audio, run_ffmpeg
from stages.package import mp4join
from stages.package.album import AlbumTags, read_m4b_chapters
from stages.package.m4b import assemble_m4b, encode_part

RATE = 44100


def tone(seconds: float, hz: float, seed: int) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    noise = np.random.default_rng(seed).standard_normal(t.size) * 1e-3
    return (0.3 * np.sin(2 * np.pi * hz * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t)) + noise).astype(np.float32)


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("parts")
    audio = [tone(2.0, 220, 1), tone(3.3, 330, 2), tone(1.1, 440, 3)]
    return [encode_part(a, RATE, folder / f"{i}.m4a") for i, a in enumerate(audio)], audio


def test_joined_frames_decode_exactly_as_ffmpegs_own_join(parts, tmp_path):
    paths, audio = parts
    ours = assemble_m4b(paths, ["One", "Two", "Three"], tmp_path / "ours.m4b", tags=AlbumTags("Book", "Author", "Joe"))
    listing = tmp_path / "parts.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in paths), encoding="utf-8")
    reference = tmp_path / "ffmpeg.m4a"
    run_ffmpeg(["-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(reference)], "join for reference")
    a, b = decode_audio(ours, RATE), decode_audio(reference, RATE)
    assert a.size == b.size and np.array_equal(a, b)  # the same frames, in the same order, nothing lost

    frames = [mp4join.read_part(p).frames for p in paths]
    starts = [sum(frames[:i]) * 1024 / RATE for i in range(3)]
    assert [s for _, s in read_m4b_chapters(ours)] == pytest.approx(starts, abs=1e-3)
    assert [(c.title, round(c.start, 3)) for c in MP4(ours).chapters] == list(zip(["One", "Two", "Three"],
                                                                               [round(s, 3) for s in starts]))
    info = MP4(ours).info
    assert (info.sample_rate, info.channels) == (RATE, 1)
    assert info.length == pytest.approx((sum(frames) * 1024 - (1024 - mp4join.read_part(paths[-1]).last_frame_samples))
                                        / RATE, abs=1e-6)
    assert 70_000 < info.bitrate < 90_000  # 80 kbps AAC, as the parts were encoded
    for i, chapter in enumerate(audio):  # each chapter's audio starts one priming frame after its mark
        at = sum(frames[:i]) * 1024 + 1024
        piece = a[at : at + chapter.size]
        assert float(np.corrcoef(piece, chapter[: piece.size])[0, 1]) > 0.95


def test_parts_encoded_differently_are_refused(parts, tmp_path):
    paths, _ = parts
    other = tmp_path / "other.m4a"
    run_ffmpeg(["-f", "lavfi", "-i", "sine=frequency=300:sample_rate=22050:duration=1", "-c:a", "aac",
                "-ac", "1", str(other)], "encode a part at another rate")
    with pytest.raises(StageError, match="encoded differently"):
        assemble_m4b([paths[0], other], ["One", "Two"], tmp_path / "mixed.m4b", tags=AlbumTags("B", "A", "N"))
    assert not (tmp_path / "mixed.m4b").exists()


def test_a_file_that_is_not_a_part_is_a_clear_error(tmp_path):
    bogus = tmp_path / "bogus.m4a"
    bogus.write_bytes(struct.pack(">I4s", 16, b"ftyp") + b"M4A " + bytes(4))
    with pytest.raises(StageError, match=r"not an AAC part this release wrote \(no moov box\); delete it to re-encode"):
        mp4join.read_part(bogus)


def test_long_books_get_64_bit_offsets_and_durations():
    offsets = mp4join._chunk_offsets([8, 2**32 + 5])
    assert offsets[4:8] == b"co64" and struct.unpack(">2Q", offsets[16:]) == (8, 2**32 + 5)
    assert mp4join._chunk_offsets([8, 2**32 - 1])[4:8] == b"stco"
    mvhd = mp4join._mvhd(2**33, RATE)  # 54 hours at 44.1 kHz
    assert mvhd[8] == 1 and struct.unpack_from(">IQ", mvhd, 28) == (RATE, 2**33)
