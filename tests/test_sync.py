"""WebVTT and JSON sync maps: exact timings and text survive a write and a read."""

import json

import pytest

from stages.errors import UserError
from stages.model import Chapter, Cue, Paragraph, Segment
from stages.package.sync import format_timestamp, parse_vtt, read_sync_map, write_sync_map, write_vtt

TRICKY = [
    Cue("c01-p0001-s01", "Chapter I.", "narrator", 0, 1_250),
    Cue("c01-p0002-s01", "“Is 3 < 4 & 5 > 2?” she asked --> twice.", "Elizabeth", 1_850, 4_999),
    Cue("c01-p0002-s02", 'He said "fine" & left; <b>not bold</b> &amp; not an entity.', "narrator", 5_000, 7_321),
    Cue("c01-p0003-s01", "“你好，世界！”他说。", "Mr. Darcy <the elder>", 8_000, 9_001),
    Cue("c01-p0004-s01", "It is a truth universally acknowledged…", "unknown", 9_500, 12_004),
]


def _chapter(cues):
    segs = tuple(Segment(id=c.id, text=c.text, spoken=c.text, speaker=c.speaker) for c in cues)
    return Chapter(number=1, title="Chapter I <of Two> & more", paragraphs=(Paragraph("c01-p0001", "text", segs),))


def test_vtt_round_trips_exact_timings_text_and_speakers(tmp_path):
    path = write_vtt(TRICKY, tmp_path / "01.vtt")
    assert parse_vtt(path) == TRICKY
    raw = path.read_text(encoding="utf-8")
    assert raw.startswith("WEBVTT\n\n")
    assert (
        "c01-p0002-s01\n00:00:01.850 --> 00:00:04.999\n"
        "<v Elizabeth>“Is 3 &lt; 4 &amp; 5 &gt; 2?” she asked --&gt; twice.</v>"
    ) in raw
    assert "<v Mr. Darcy &lt;the elder&gt;>“你好，世界！”他说。</v>" in raw
    assert "&amp;amp; not an entity" in raw
    # narration carries no voice span; every payload line is free of raw markup from the text
    assert "\nChapter I.\n" in raw and "<v narrator>" not in raw
    assert "<b>" not in raw


def test_vtt_timestamps_past_an_hour(tmp_path):
    long = [
        Cue("c09-p0001-s01", "Late.", "narrator", 3_599_999, 3_600_000),
        Cue("c09-p0001-s02", "Later.", "narrator", 3_600_001, 3 * 3_600_000 + 25 * 60_000 + 7_089),
        Cue("c09-p0001-s03", "Much later.", "narrator", 100 * 3_600_000, 100 * 3_600_000 + 1),
    ]
    assert format_timestamp(0) == "00:00:00.000"
    assert format_timestamp(3_599_999) == "00:59:59.999"
    assert format_timestamp(3 * 3_600_000 + 25 * 60_000 + 7_089) == "03:25:07.089"
    assert format_timestamp(100 * 3_600_000) == "100:00:00.000"
    path = write_vtt(long, tmp_path / "09.vtt")
    raw = path.read_text(encoding="utf-8")
    assert "00:59:59.999 --> 01:00:00.000" in raw
    assert "01:00:00.001 --> 03:25:07.089" in raw
    assert "100:00:00.000 --> 100:00:00.001" in raw
    assert parse_vtt(path) == long


def test_cues_come_out_ordered_by_start(tmp_path):
    shuffled = [TRICKY[3], TRICKY[0], TRICKY[4], TRICKY[2], TRICKY[1]]
    vtt = parse_vtt(write_vtt(shuffled, tmp_path / "01.vtt"))
    assert [c.id for c in vtt] == [c.id for c in TRICKY]
    meta, cues = read_sync_map(
        write_sync_map(
            tmp_path / "01.json", chapter=_chapter(TRICKY), audio_file="x/01.mp3", duration_ms=13_000, cues=shuffled
        )
    )
    assert [c.start_ms for c in cues] == sorted(c.start_ms for c in TRICKY)
    assert cues == TRICKY


def test_sync_map_round_trips_and_has_the_documented_shape(tmp_path):
    chapter = _chapter(TRICKY)
    path = write_sync_map(
        tmp_path / "01 - Chapter I.json",
        chapter=chapter,
        audio_file="output/book/01 - Chapter I.mp3",
        duration_ms=12_500,
        cues=TRICKY,
    )
    meta, cues = read_sync_map(path)
    assert meta == {
        "chapter": 1,
        "title": "Chapter I <of Two> & more",
        "audio": "01 - Chapter I.mp3",
        "duration_ms": 12_500,
    }
    assert cues == TRICKY
    data = json.loads(path.read_text(encoding="utf-8"))
    assert list(data) == ["chapter", "title", "audio", "duration_ms", "segments"]
    assert data["segments"][3] == {
        "id": "c01-p0003-s01",
        "text": "“你好，世界！”他说。",
        "speaker": "Mr. Darcy <the elder>",
        "start_ms": 8_000,
        "end_ms": 9_001,
    }
    assert "你好" in path.read_text(encoding="utf-8")  # stored as UTF-8, not \\u escapes


def test_blank_lines_in_text_cannot_end_a_cue_early(tmp_path):
    verse = [Cue("c02-p0001-s01", "How doth the little crocodile\n\n  Improve his shining tail", "narrator", 10, 2_000)]
    back = parse_vtt(write_vtt(verse, tmp_path / "v.vtt"))
    text = "How doth the little crocodile\nImprove his shining tail"
    assert back == [Cue("c02-p0001-s01", text, "narrator", 10, 2_000)]


@pytest.mark.parametrize(
    "cues, message",
    [
        ([Cue("a", "x", "narrator", 500, 400)], "end at or after its start"),
        ([Cue("a", "x", "narrator", -1, 400)], "start at or after 0"),
        ([Cue("a", "x", "narrator", 0, 1), Cue("a", "y", "narrator", 2, 3)], "appears twice"),
        ([Cue("", "x", "narrator", 0, 1)], "empty or not one line"),
    ],
)
def test_bad_cues_are_refused_with_a_useful_message(tmp_path, cues, message):
    with pytest.raises(UserError, match=message):
        write_vtt(cues, tmp_path / "bad.vtt")
    assert not (tmp_path / "bad.vtt").exists()


def test_reading_a_broken_file_names_it(tmp_path):
    bad = tmp_path / "broken.vtt"
    bad.write_text("WEBVTT\n\nc01\n00:00:01.000 -> 00:00:02.000\nhello\n", encoding="utf-8")
    with pytest.raises(UserError, match="broken.vtt near line 3"):
        parse_vtt(bad)
    not_vtt = tmp_path / "plain.vtt"
    not_vtt.write_text("WEBVTTX\n", encoding="utf-8")
    with pytest.raises(UserError, match="not a WebVTT file"):
        parse_vtt(not_vtt)
    partial = tmp_path / "partial.json"
    partial.write_text('{"chapter": 1, "segments": []}', encoding="utf-8")
    with pytest.raises(UserError, match="lacks title, audio, duration_ms"):
        read_sync_map(partial)
