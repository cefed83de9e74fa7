"""A small real book through every stage, without Prefect: files read back and checked."""

import json
import re

import mutagen.mp3
import mutagen.mp4
import numpy as np
import pytest

from stages import produce
from stages.attribute import attribute
from stages.cast import cast, load_library
from stages.ffmpeg import decode_audio
from stages.ingest import ingest
from stages.model import Workspace
from stages.package.album import read_m4b_chapters
from stages.package.sync import parse_vtt, read_sync_map


@pytest.fixture(scope="module")
def album(tmp_path_factory, small_book):
    ws = Workspace(tmp_path_factory.mktemp("workspace"))
    ms = attribute(ingest(small_book, ws.manuscript_dir))
    library = load_library()
    casting = cast(ms, library, ws.manuscript_dir(ms.slug) / "cast.toml")
    tags = produce.album_tags(ms, ws, library["joe"])
    results = [
        produce.produce_chapter(ms, c.number, workspace=ws, casting=casting, library=library, tags=tags)
        for c in ms.chapters
    ]
    credits = produce.produce_credits(ms, workspace=ws, casting=casting, library=library, tags=tags)
    paths = produce.finish_album(ms, results, workspace=ws, tags=tags, facts={}, credits=credits)
    return ws, ms, casting, library, tags, results, paths, credits


def test_chapters_titles_and_mp3_tags(album):
    ws, ms, _, _, _, results, *_ = album
    assert [c.title for c in ms.chapters] == ["Chapter I", "Chapter II"]
    out = ws.output_dir(ms.slug)
    for r in results:
        mp3 = mutagen.mp3.MP3(out / r.mp3)
        assert (mp3.info.sample_rate, mp3.info.channels, mp3.info.bitrate) == (44100, 1, 192000)
        assert mp3.info.bitrate_mode == mutagen.mp3.BitrateMode.CBR
        assert str(mp3.tags["TIT2"]) == r.title
        assert str(mp3.tags["TRCK"]) == f"{r.number + 1}/4"  # 2 chapters + 2 credits; track 1 is the opening credits
        assert str(mp3.tags["TALB"]) == "Pride and Prejudice"
        assert str(mp3.tags["TPE1"]) == "Jane Austen"
        assert str(mp3.tags["TCOM"]) == "Joe (synthetic voice)"
        assert abs(mp3.info.length - r.duration_s) < 0.010


def test_sync_maps_match_the_audio_exactly(album):
    ws, ms, _, _, _, results, *_ = album
    out = ws.output_dir(ms.slug)
    for r, chapter in zip(results, ms.chapters):
        facts, cues = read_sync_map(out / r.sync)
        decoded = decode_audio(out / r.mp3, 44100)
        assert abs(len(decoded) / 44.1 - facts["duration_ms"]) <= 10
        assert [c.id for c in cues] == [s.id for s in chapter.segments]
        assert [c.text for c in cues] == [s.text for s in chapter.segments]
        assert all(a.end_ms <= b.start_ms for a, b in zip(cues, cues[1:]))  # in order, never overlapping
        spoken_ms = sum(c.end_ms - c.start_ms for c in cues)
        # every take's length shows up in the map: the cues cover the takes, pauses are the rest
        assert 0.6 * facts["duration_ms"] < spoken_ms < facts["duration_ms"]
        assert 500 <= cues[0].start_ms <= 1000  # head room tone
        assert 1000 <= facts["duration_ms"] - cues[-1].end_ms <= 5000  # tail room tone
        assert parse_vtt(out / r.vtt) == cues
        # a cue is where its words are: the audio is louder inside cues than in the pauses between them
        inside = np.concatenate([decoded[int(c.start_ms * 44.1): int(c.end_ms * 44.1)] for c in cues])
        gaps = np.concatenate([decoded[int(a.end_ms * 44.1) + 441: int(b.start_ms * 44.1) - 441] for a, b in zip(cues, cues[1:])])
        assert np.sqrt(np.mean(inside**2)) > 10 * np.sqrt(np.mean(gaps**2))


def test_m4b_has_a_marker_per_chapter(album):
    ws, ms, _, _, _, results, paths, credits = album
    tracks = [credits.opening, *results, credits.closing]  # 2 chapters + 2 credits
    marks = read_m4b_chapters(paths["m4b"])
    assert [t for t, _ in marks] == ["Opening Credits", *(r.title for r in results), "Closing Credits"]
    join = 2 * 1024 / 44100  # each chapter is its own AAC part: a join adds its priming and at most a frame of padding
    assert marks[0][1] == 0 and 0 <= marks[1][1] - credits.opening.duration_s < join
    assert 0 <= marks[2][1] - credits.opening.duration_s - results[0].duration_s < 2 * join
    mp4 = mutagen.mp4.MP4(paths["m4b"])
    assert mp4.tags["stik"] == [2] and mp4.tags["\xa9alb"] == ["Pride and Prejudice"]
    assert paths["m4b"].read_bytes()[8:12] == b"M4B "
    # every part adds its priming frame and pads to whole frames; only the last part's padding is trimmed
    assert 4 * 1024 / 44100 <= mp4.info.length - sum(r.duration_s for r in tracks) < (4 * 1024 + 3 * 1023) / 44100


def test_report_holds_passing_acx_figures(album):
    ws, ms, *_ = album
    report = json.loads((ws.output_dir(ms.slug) / "report.json").read_text())
    assert len(report["chapters"]) == 2
    for ch in report["chapters"]:
        acx = ch["acx"]
        assert -21 <= acx["rms_dbfs"] <= -19 and acx["peak_dbfs"] <= -3.0
        assert -90 <= acx["noise_floor_dbfs"] <= -60 and acx["passes"]
        qa = ch["qa"]  # every take heard back by the bundled Whisper, failing ones retaken or flagged
        assert qa["asr"].startswith("whisper-tiny.en") and (qa["not_checked"], qa["checked"]) == (0, ch["segments"])
        assert qa["passed"] + len(qa["flagged"]) == qa["checked"] and 0 <= qa["wer"] <= 0.10
    page = (ws.output_dir(ms.slug) / "listen.html").read_text()
    shown = re.sub(r"<span[^>]*>|</span>", "", page)  # each timed word is a span of its own
    assert "It is a truth universally acknowledged" in shown and results_files_linked(page, report)


def results_files_linked(page: str, report: dict) -> bool:
    return all(ch["mp3"] in page for ch in report["chapters"])


def test_second_run_synthesizes_nothing_and_keeps_files(album):
    ws, ms, casting, library, tags, results, *_ = album
    before = {r.mp3: (ws.output_dir(ms.slug) / r.mp3).stat().st_mtime_ns for r in results}
    again = [
        produce.produce_chapter(ms, c.number, workspace=ws, casting=casting, library=library, tags=tags)
        for c in ms.chapters
    ]
    assert sum(r.stats.synthesized for r in again) == 0
    assert sum(r.stats.cached for r in again) == len(ms.segments)
    assert [r.acx for r in again] == [r.acx for r in results]
    assert [r.qa for r in again] == [r.qa for r in results] and sum(r.stats.asr_s for r in again) == 0  # not re-heard
    assert {r.mp3: (ws.output_dir(ms.slug) / r.mp3).stat().st_mtime_ns for r in again} == before


def test_takes_have_plausible_speech_lengths(album):
    ws, ms, casting, library, *_ = album
    from stages.cache import TakeCache
    from stages.engines import get_engine

    cache = TakeCache(ws.cache_dir)
    for seg in ms.segments:
        voice = library[casting.voice_for(seg.speaker)]
        take = cache.get(seg.id, cache.key(seg.spoken, voice, get_engine(voice.engine)))
        letters = sum(ch.isalpha() for ch in seg.spoken)
        assert 0.03 < take.duration_s / letters < 0.15, seg.spoken  # about 12-14 letters a second


def test_a_failing_chapter_fails_the_album_after_the_report(album):
    from dataclasses import replace

    from stages.errors import ComplianceError

    ws, ms, _, _, tags, results, *_ = album
    loud = replace(results[1], acx=replace(results[1].acx, peak_dbfs=-1.0, problems=("peak -1.0 dBFS is above -3.0",)))
    with pytest.raises(ComplianceError, match=r"1 chapter\(s\) fail ACX checks \(chapter 2: peak -1.0 dBFS") as err:
        produce.finish_album(ms, [results[0], loud], workspace=ws, tags=tags, facts={})
    assert err.value.exit_code == 1
    report = json.loads((ws.output_dir(ms.slug) / "report.json").read_text())
    assert [c["acx"]["passes"] for c in report["chapters"]] == [True, False]


def test_a_later_chapter_produced_alone_keeps_its_track_number(album, tmp_path):
    ws, ms, casting, library, tags, *_ = album
    from dataclasses import replace

    from stages.qa import QaConfig

    later = ms.with_chapters([replace(ms.chapters[1], number=5)])  # `--chapters 5` of a longer book
    alone = Workspace(tmp_path)
    result = produce.produce_chapter(later, 5, workspace=alone, casting=casting, library=library, tags=tags,
                                     qa=QaConfig(enabled=False))
    mp3 = mutagen.mp3.MP3(alone.output_dir(ms.slug) / result.mp3)
    assert result.mp3.startswith("05-") and str(mp3.tags["TRCK"]) == "6/7"  # after the opening credits, of 5 + 2
