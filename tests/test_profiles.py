"""Delivery profiles: looked up by name, covers checked against the retailer's size, long chapters split,
and one real acx album: split parts, MP3 format and retail sample read back, the report's checks and notes."""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import replace

import mutagen.mp3
import pytest

from flows.cli import main
from stages import produce, profiles
from stages.errors import UserError
from stages.ffmpeg import run_ffmpeg
from stages.model import Chapter, Manuscript, Paragraph, Segment, Workspace
from stages.package import sync
from stages.qa import QaConfig


def png_header(width: int, height: int, colour: int = 2) -> bytes:
    """Return the start of a PNG (signature and IHDR) of the given size: all that the size check reads."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def jpeg(tmp_path, width: int, height: int):
    path = tmp_path / f"cover-{width}x{height}.jpg"
    run_ffmpeg(["-f", "lavfi", "-i", f"color=c=0x336699:s={width}x{height}", "-frames:v", "1", str(path)], "cover")
    return path


def test_each_profile_by_name_fixes_format_and_checks():
    acx = profiles.get_profile("acx")
    assert (acx.chapter_mp3s, acx.m4b) == (True, False)
    assert (acx.mp3_bitrate_kbps, acx.sample_rate_hz, acx.channels) == (192, 44100, 1)
    assert (acx.max_file_minutes, acx.sample_minutes, acx.credits) == (120.0, (1.0, 5.0), True)
    assert (acx.cover_min_px, acx.cover_square, acx.rms_dbfs, acx.peak_max_dbfs, acx.noise_floor_max_dbfs) == (
        2400, True, (-23.0, -18.0), -3.0, -60.0)
    assert (acx.head_s, acx.tail_s) == ((0.5, 1.0), (1.0, 5.0))
    assert profiles.get_profile("ACX ") is acx
    apple, google = profiles.get_profile("apple"), profiles.get_profile("google")
    assert (apple.m4b, apple.chapter_mp3s, apple.cover_min_px, apple.cover_square) == (True, False, 2400, True)
    assert (google.m4b, google.aac_min_kbps, google.cover_min_px, google.cover_max_px, google.cover_square) == (
        True, 128, 1024, 7200, False)
    findaway = profiles.get_profile("findaway")
    assert (findaway.chapter_mp3s, findaway.max_file_minutes, findaway.cover_min_px) == (True, 120.0, 2400)
    generic = profiles.get_profile(None)
    assert generic.name == "generic" and generic.m4b and generic.chapter_mp3s
    assert (generic.cover_min_px, generic.max_file_minutes) == (None, None)
    assert profiles.profile_from_config({"retail": {"profile": "apple"}}) == "apple"
    assert profiles.profile_from_config({}) is None
    with pytest.raises(UserError, match=r"audiobook.toml \[retail\] profile = 'kindle' is not a delivery profile"):
        profiles.profile_from_config({"retail": {"profile": "kindle"}})


def test_unknown_profile_is_refused_with_the_choices(capsys, tmp_path):
    with pytest.raises(UserError, match="unknown delivery profile 'kobo'; choose one of: acx, apple, google, "
                                        "findaway, generic"):
        profiles.get_profile("kobo")
    book = tmp_path / "book.txt"
    book.write_text("A Book\n\nCHAPTER I\n\nSome text.\n", encoding="utf-8")
    assert main(["produce", str(book), "--root", str(tmp_path), "--profile", "audible"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown delivery profile 'audible'") and "acx, apple" in err
    assert not (tmp_path / "output").exists()


def test_cover_sizes_are_read_from_the_image_and_checked(tmp_path):
    small = jpeg(tmp_path, 1400, 2100)  # a Standard Ebooks cover's shape: tall, not square
    info = profiles.image_info(small.read_bytes())
    assert (info.format, info.width, info.height, info.rgb) == ("jpeg", 1400, 2100, True)
    with pytest.raises(UserError) as err:
        profiles.check_cover(small, profiles.get_profile("acx"))
    message = str(err.value)
    assert str(small) in message and "1400 x 2100 px, too small" in message
    assert "square, at least 2400 x 2400 px" in message and "--cover" in message
    good = jpeg(tmp_path, 2400, 2400)
    assert profiles.check_cover(good, profiles.get_profile("acx")).width == 2400
    tall = tmp_path / "tall.png"
    tall.write_bytes(png_header(2400, 3000))
    with pytest.raises(UserError, match=r"2400 x 3000 px, not square: ACX / Audible needs square, at least 2400"):
        profiles.check_cover(tall, profiles.get_profile("acx"))
    assert profiles.check_cover(tall, profiles.get_profile("google")).height == 3000  # square only recommended
    huge, grey = tmp_path / "huge.png", tmp_path / "grey.png"
    huge.write_bytes(png_header(8000, 8000))
    grey.write_bytes(png_header(3000, 3000, colour=0))
    with pytest.raises(UserError, match="8000 x 8000 px, too large: .*at most 7200 x 7200 px"):
        profiles.check_cover(huge, profiles.get_profile("google"))
    with pytest.raises(UserError, match="not 8-bit RGB"):
        profiles.check_cover(grey, profiles.get_profile("findaway"))
    with pytest.raises(UserError, match="acx profile needs a cover image .*at least 2400 x 2400 px"):
        profiles.check_cover(None, profiles.get_profile("acx"))
    assert profiles.check_cover(None, profiles.get_profile("generic")) is None
    not_image = tmp_path / "cover.jpg"
    not_image.write_bytes(b"GIF89a....")
    with pytest.raises(UserError, match="not a PNG or JPEG"):
        profiles.check_cover(not_image, profiles.get_profile("apple"))


def test_a_retail_cover_replaces_the_books_after_its_check(tmp_path):
    ms = synthetic_book([10], chars=50)
    good = jpeg(tmp_path, 2400, 2400)
    book_dir = tmp_path / "manuscripts" / ms.slug
    used = profiles.use_cover(ms, book_dir, good, profiles.get_profile("acx"))
    assert used.cover == "retail-cover.jpg" and (book_dir / "retail-cover.jpg").read_bytes() == good.read_bytes()
    with pytest.raises(UserError, match="too small"):
        profiles.use_cover(ms, tmp_path / "other", jpeg(tmp_path, 600, 600), profiles.get_profile("apple"))
    assert not (tmp_path / "other").exists()  # nothing copied for a refused cover


def synthetic_book(paragraphs_per_chapter: list[int], chars: int) -> Manuscript:
    """A manuscript whose every paragraph says `chars` characters, in chapters of the given sizes."""
    chapters = []
    for number, count in enumerate(paragraphs_per_chapter, start=1):
        heading = Paragraph(f"c{number:02d}-p0001", "heading",
                            (Segment(f"c{number:02d}-p0001-s01", f"Chapter {number}", f"Chapter {number}", "heading"),))
        body = tuple(
            Paragraph(f"c{number:02d}-p{p:04d}", "text",
                      (Segment(f"c{number:02d}-p{p:04d}-s01", "x" * chars, "x" * (chars - 1) + ".", "narration"),))
            for p in range(2, count + 2)
        )
        chapters.append(Chapter(number, f"Chapter {number}", (heading, *body)))
    return Manuscript("synthetic", "Synthetic", "Nobody", "en", "synthetic.txt", "0" * 64, tuple(chapters))


def test_a_long_chapter_splits_at_paragraph_boundaries_with_notes():
    ms = synthetic_book([400, 20], chars=1000)  # chapter 1: 400,000 characters, about 7 hours at 16 a second
    acx = profiles.get_profile("acx")
    split, notes = profiles.split_long_chapters(ms, acx)
    budget_s = 120 * 60 * profiles.SPLIT_MARGIN
    parts = [c for c in split.chapters if c.title.startswith("Chapter 1")]
    assert len(parts) == 5 and [c.number for c in split.chapters] == [1, 2, 3, 4, 5, 6]
    assert [c.title for c in parts] == ["Chapter 1 (part 1)", *(f"Chapter 1 (part {k})" for k in range(2, 6))]
    assert split.chapters[-1].title == "Chapter 2" and split.chapters[-1].paragraphs == ms.chapters[1].paragraphs
    for part in parts:
        assert profiles.estimated_seconds(part.paragraphs, profiles.SPOKEN_CHARS_PER_S) <= budget_s
    original = [p for p in ms.chapters[0].paragraphs]
    kept = [p for c in parts for p in c.paragraphs if "-part" not in p.id]
    assert kept == original  # whole paragraphs, in order, none lost or cut: segment ids stay as they were
    for k, part in enumerate(parts[1:], start=2):  # each later part opens with its own spoken heading
        heading = part.paragraphs[0]
        assert heading.kind == "heading" and heading.segments[0].id == f"c01-part{k}-s01"
        words = {2: "two", 3: "three", 4: "four", 5: "five"}
        assert heading.segments[0].text == f"Chapter 1 (part {k})"
        assert heading.segments[0].spoken == f"Chapter one, part {words[k]}."  # normalized like any heading
    ids = [s.id for s in split.segments]
    assert len(ids) == len(set(ids))
    assert sorted(notes) == [1, 2, 3, 4, 5]
    assert "over ACX / Audible's 120-minute limit" in notes[2] and "into 5 parts; this is part 2" in notes[2]
    assert profiles.split_long_chapters(ms, acx) == (split, notes)  # deterministic
    assert profiles.split_long_chapters(ms, profiles.get_profile("apple")) == (ms, {})  # no file limit for an M4B


def test_split_points_keep_every_part_under_budget():
    assert profiles.split_points([10, 10, 10], 30) == []
    assert profiles.split_points([10, 10, 10, 10], 20) == [2]
    cuts = profiles.split_points([5, 30, 5, 5, 30, 5, 5], 40)
    bounds = [0, *cuts, 7]
    lengths = [5, 30, 5, 5, 30, 5, 5]
    assert all(sum(lengths[a:b]) <= 40 for a, b in zip(bounds, bounds[1:]))


@pytest.fixture(scope="module")
def acx_album(tmp_path_factory, small_book):
    """The small book for an acx profile whose file limit is 30 s (so both chapters split) and sample at most 15 s."""
    from stages.attribute import attribute
    from stages.cast import cast, load_library
    from stages.ingest import ingest

    ws = Workspace(tmp_path_factory.mktemp("acx"))
    profile = replace(profiles.get_profile("acx"), max_file_minutes=0.5, sample_minutes=(0.1, 0.25))
    whole = attribute(ingest(small_book, ws.manuscript_dir))
    ms, notes = profiles.split_long_chapters(whole, profile)
    library = load_library()
    casting = cast(ms, library, ws.manuscript_dir(ms.slug) / "cast.toml")
    tags = produce.album_tags(ms, ws, library["joe"])
    no_qa = QaConfig(enabled=False)  # takes are not heard back here: tests/test_qa.py and test_produce.py do that
    results = [produce.produce_chapter(ms, c.number, workspace=ws, casting=casting, library=library, tags=tags,
                                       profile=profile, qa=no_qa) for c in ms.chapters]
    credits = produce.produce_credits(ms, workspace=ws, casting=casting, library=library, tags=tags, qa=no_qa)
    paths = produce.finish_album(ms, results, workspace=ws, tags=tags, facts={}, credits=credits, profile=profile,
                                 notes=notes)
    return ws, whole, ms, notes, results, paths


def test_acx_album_splits_and_reports_the_split(acx_album):
    ws, whole, ms, notes, results, paths = acx_album
    assert len(ms.chapters) > len(whole.chapters)  # the first chapter, about a minute, was split
    assert ms.chapters[0].title == "Chapter I (part 1)" and ms.chapters[1].title == "Chapter I (part 2)"
    out = ws.output_dir(ms.slug)
    _, cues = sync.read_sync_map(out / results[1].sync)
    assert cues[0].id == "c01-part2-s01" and cues[0].text == "Chapter I (part 2)"
    assert [c.id for c in cues[1:]] == [s.id for p in ms.chapters[1].paragraphs[1:] for s in p.segments]
    report = json.loads(paths["report"].read_text(encoding="utf-8"))
    entries = {c["number"]: c for c in report["chapters"]}
    assert "split at paragraph boundaries" in entries[1]["note"] and entries[2]["note"] == notes[2]
    for r in results:
        checks = {c["check"]: c for c in entries[r.number]["checks"]}
        assert checks["length"]["passes"] and r.duration_s <= 30  # the estimate kept each part in its limit
        assert all(c["passes"] for c in checks.values()), checks
        assert checks["MP3 format"]["value"] == "192 kbps CBR, 44100 Hz, 1 channel(s)"
    assert "m4b" not in paths and not list(out.glob("*.m4b"))  # ACX takes MP3s only
    assert report["delivery"]["profile"]["name"] == "acx"
    html = paths["report_html"].read_text(encoding="utf-8")
    assert html.count("split at paragraph boundaries") == len(notes)


def test_acx_mp3s_read_back_in_the_profiles_format(acx_album):
    ws, _, ms, _, results, _ = acx_album
    for r in results:
        info = mutagen.mp3.MP3(ws.output_dir(ms.slug) / r.mp3).info
        assert (info.sample_rate, info.channels) == (44100, 1) and info.bitrate == pytest.approx(192000, rel=1e-4)
        assert info.bitrate_mode == mutagen.mp3.BitrateMode.CBR


def test_retail_sample_is_cut_at_segment_boundaries_and_tagged(acx_album):
    ws, _, ms, _, results, paths = acx_album
    sample = paths["sample"]
    assert sample.name == f"{ms.slug}-retail-sample.mp3"
    mp3 = mutagen.mp3.MP3(sample)
    assert (mp3.info.sample_rate, mp3.info.channels, mp3.info.bitrate_mode) == (44100, 1, mutagen.mp3.BitrateMode.CBR)
    assert mp3.info.bitrate == pytest.approx(192000, rel=1e-4)  # averaged from the Info frame's byte count
    assert str(mp3.tags["TIT2"]) == "Pride and Prejudice (retail sample)" and str(mp3.tags["TRCK"]) == "1/1"
    assert str(mp3.tags["TPE1"]) == "Jane Austen"
    report = json.loads(paths["report"].read_text(encoding="utf-8"))
    facts = report["delivery"]["sample"]
    assert 6 <= mp3.info.length <= 15 and abs(mp3.info.length - facts["duration_s"]) < 0.01
    _, cues = sync.read_sync_map(ws.output_dir(ms.slug) / results[0].sync)
    body = cues[1:]  # after the chapter heading
    assert facts["start_s"] == pytest.approx(body[0].start_ms / 1000 - profiles.SAMPLE_LEAD_S, abs=0.001)
    last = body[facts["segments"] - 1]
    assert facts["end_s"] == pytest.approx(last.end_ms / 1000 + profiles.SAMPLE_TAIL_S, abs=0.001)
    assert facts["end_s"] - facts["start_s"] <= 15 < body[facts["segments"]].end_ms / 1000 + 1.5 - facts["start_s"]
    checks = {c["check"]: c for c in report["delivery"]["checks"]}
    assert checks["retail sample length"]["passes"] and checks["opening and closing credits"]["passes"]
    assert facts["file"] in report["delivery"]["files"]


def test_a_cover_too_small_for_the_retailer_stops_the_run_before_rendering(tmp_path, capsys, prefect_harness):
    from conftest import SAMPLE_EPUB

    code = main(["produce", str(SAMPLE_EPUB), "--root", str(tmp_path), "--profile", "apple"])
    err = capsys.readouterr().err
    assert code == 2
    cover = tmp_path / "manuscripts" / "alices-adventures-in-wonderland-sample" / "cover.jpg"
    assert err.strip() == (f"error: cover {cover} is 600 x 900 px, too small: Apple Books needs square, at least "
                           "2400 x 2400 px, JPEG or PNG; give a cover that fits with --cover FILE")
    assert not list((tmp_path / "output").rglob("*.mp3")) and not list((tmp_path / "output").rglob("takes/*"))
