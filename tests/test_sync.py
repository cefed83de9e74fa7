"""WebVTT and JSON sync maps: exact timings and text survive a write and a read."""

import json

import pytest

from stages.align import NO_WORDS, SegmentWords, WordTiming
from stages.errors import UserError
from stages.model import Chapter, Cue, Paragraph, Segment
from stages.package.sync import (
    format_lrc_time,
    format_timestamp,
    parse_lrc,
    parse_vtt,
    read_sync_map,
    read_sync_words,
    vtt_word_starts,
    write_lrc,
    write_sync_map,
    write_vtt,
)

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
        "word_timing": None,  # no word timings given: sentence level only, said so
        "words": None,
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


def _words(*rows):
    return tuple(WordTiming(*r) for r in rows)


WORDS = {
    # the first word starts with its cue: no inline timestamp is needed (nor allowed) for it
    "c01-p0001-s01": SegmentWords("engine", _words(("Chapter", 0, 600), ("I", 700, 1_200))),
    "c01-p0002-s01": SegmentWords("asr", _words(
        ("Is", 1_900, 2_050), ("3", 2_100, 2_300), ("4", 2_400, 2_600), ("5", 2_700, 2_900), ("2", 3_000, 3_200),
        ("she", 3_400, 3_600), ("asked", 3_650, 4_000), ("twice", 4_300, 4_990),
    )),
    "c01-p0004-s01": SegmentWords("engine", _words(
        ("It", 9_550, 9_700), ("is", 9_750, 9_900), ("a", 9_950, 10_000), ("truth", 10_050, 10_400),
        ("universally", 10_450, 11_100), ("acknowledged", 11_150, 11_990),
    )),
    "c01-p0002-s02": NO_WORDS,
}


def test_vtt_carries_each_words_start_and_reads_back_unchanged(tmp_path):
    path = write_vtt(TRICKY, tmp_path / "01.vtt", words=WORDS)
    assert parse_vtt(path) == TRICKY  # the cue text and timings are as before
    raw = path.read_text(encoding="utf-8")
    assert ("00:00:09.500 --> 00:00:12.004\n"
            "<v unknown><00:00:09.550>It <00:00:09.750>is <00:00:09.950>a <00:00:10.050>truth") in raw
    assert "00:00:00.000 --> 00:00:01.250\nChapter <00:00:00.700>I.\n" in raw
    assert ("<v Elizabeth>“<00:00:01.900>Is <00:00:02.100>3 &lt; <00:00:02.400>4 &amp; <00:00:02.700>5 &gt; "
            "<00:00:03.000>2?” <00:00:03.400>she <00:00:03.650>asked --&gt; <00:00:04.300>twice.</v>") in raw
    starts = vtt_word_starts(path)
    assert starts["c01-p0001-s01"] == [(700, "I.")]
    assert [ms for ms, _ in starts["c01-p0002-s01"]] == [w.start_ms for w in WORDS["c01-p0002-s01"].words]
    assert starts["c01-p0004-s01"][-1] == (11_150, "acknowledged…")
    assert starts["c01-p0002-s02"] == [] and starts["c01-p0003-s01"] == []


def test_sync_map_keeps_word_timings_and_their_source(tmp_path):
    path = write_sync_map(tmp_path / "01.sync.json", chapter=_chapter(TRICKY), audio_file="01.mp3",
                          duration_ms=13_000, cues=TRICKY, words=WORDS)
    assert read_sync_map(path)[1] == TRICKY
    back = read_sync_words(path)
    assert back == {c.id: WORDS.get(c.id, NO_WORDS) for c in TRICKY}
    data = json.loads(path.read_text(encoding="utf-8"))
    first = data["segments"][0]
    assert first["word_timing"] == "engine"
    assert first["words"] == [
        {"text": "Chapter", "start_ms": 0, "end_ms": 600},
        {"text": "I", "start_ms": 700, "end_ms": 1_200},
    ]
    assert data["segments"][3]["word_timing"] is None and data["segments"][3]["words"] is None


def test_enhanced_lrc_has_a_line_per_cue_and_a_tag_per_word(tmp_path):
    assert format_lrc_time(0) == "00:00.00"
    assert format_lrc_time(61_234) == "01:01.23"
    assert format_lrc_time(59_996) == "01:00.00"
    assert format_lrc_time(6_000_000) == "100:00.00"
    path = write_lrc(tmp_path / "01-chapter-i.lrc", TRICKY, title="Chapter I", album="Pride and Prejudice",
                     artist="Jane Austen", duration_ms=12_500, words=WORDS)
    raw = path.read_text(encoding="utf-8")
    assert raw.startswith("[ti:Chapter I]\n[al:Pride and Prejudice]\n[ar:Jane Austen]\n[length:00:12]\n")
    assert "[00:09.50]<00:09.55>It <00:09.75>is <00:09.95>a <00:10.05>truth" in raw
    assert "<00:11.15>acknowledged… <00:11.99>\n" in raw  # the last word's end closes the line
    lines = parse_lrc(path)
    assert [ms for ms, _, _ in lines] == [c.start_ms for c in TRICKY]
    assert [text for _, text, _ in lines] == [c.text for c in TRICKY]
    assert lines[0][2] == [(0, "Chapter"), (700, "I.")]
    assert [ms for ms, _ in lines[1][2]] == [round(w.start_ms, -1) for w in WORDS["c01-p0002-s01"].words]
    assert lines[2][2] == [] and lines[3][2] == []
