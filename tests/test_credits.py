"""Spoken opening and closing credits: the real flow on the sample book, files read back and checked."""

import contextlib
import datetime
import io
import json
import tomllib
from pathlib import Path

import mutagen.mp3
import pytest

from conftest import SAMPLE_EPUB
from flows.cli import main
from stages.cast import load_library
from stages.ffmpeg import decode_audio
from stages.package.album import read_m4b_chapters
from stages.voices.card import load_cards


def produce(root: Path) -> dict:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["produce", str(SAMPLE_EPUB), "--root", str(root), "--json"]) == 0  # as conftest's sample_album
    return json.loads(printed.getvalue())


@pytest.fixture(scope="module")
def album(sample_album):
    root, summary = sample_album  # the sample book's first run, take QA on; shared with test_cli
    out = Path(summary["output"])
    return root, summary, out, json.loads((out / "report.json").read_text())


def test_credits_files_exist_with_plausible_durations_and_the_disclosure(album):
    _, summary, out, report = album
    disclosure = load_cards()["joe"].licence.disclosure
    chapters = len(summary["chapters"])
    credits = report["book"]["credits"]
    assert [credits[k]["file"] for k in ("opening", "closing")] == ["00-opening-credits.mp3", "99-closing-credits.mp3"]
    for kind, track in (("opening", 1), ("closing", chapters + 2)):
        entry = credits[kind]
        mp3 = mutagen.mp3.MP3(out / entry["file"])
        decoded_s = len(decode_audio(out / entry["file"], 44100)) / 44100
        assert 4 <= decoded_s <= 20 and abs(decoded_s - entry["duration_s"]) < 0.010
        assert str(mp3.tags["TXXX:DISCLOSURE"]) == disclosure and str(mp3.tags.getall("COMM")[0]) == disclosure
        assert str(mp3.tags["TIT2"]) == entry["title"] and str(mp3.tags["TRCK"]) == f"{track}/{chapters + 2}"
        assert str(mp3.tags["TALB"]) == report["book"]["title"] and str(mp3.tags["TPE1"]) == "Lewis Carroll"
        assert entry["acx"]["passes"] and -21 <= entry["acx"]["rms_dbfs"] <= -19
        assert disclosure in entry["text"]
        qa = entry["qa"]  # the credits are heard back like every take
        assert qa["asr"] and qa["checked"] >= 4 and qa["passed"] + len(qa["flagged"]) == qa["checked"]
    for chapter in summary["chapters"]:  # chapter n is track n+1: the opening credits come first
        assert str(mutagen.mp3.MP3(out / chapter["mp3"]).tags["TRCK"]) == f"{chapter['number'] + 1}/{chapters + 2}"


def test_the_opening_credits_say_title_author_narrator_cast_and_disclosure(album):
    root, summary, _, report = album
    book = report["book"]
    library = load_library()
    sheet = tomllib.loads((root / "manuscripts" / summary["slug"] / "cast.toml").read_text())
    characters = sorted(set(sheet["speakers"].values()) - {"joe"})
    assert characters, "the sample casts character voices"
    names = [library[v].name for v in characters]
    joint = "; " if any("," in n for n in names) else ", "  # a name with a comma of its own: "Joe, bright"
    cast = names[0] if len(names) == 1 else f"{joint.join(names[:-1])} and {names[-1]}"
    disclosure = load_cards()["joe"].licence.disclosure
    assert book["credits"]["opening"]["text"] == (
        f"{book['title']}. Written by {book['author']}. Narrated by Joe. Character voices: {cast}. {disclosure}"
    )
    assert book["credits"]["closing"]["text"] == (
        f"The end. {book['title']}, written by {book['author']}. {disclosure} "
        f"Production copyright {datetime.date.today().year}."
    )
    assert book["author"] == "Lewis Carroll"


def test_the_m4b_opens_and_closes_with_the_credits(album):
    _, summary, out, report = album
    marks = read_m4b_chapters(out / f"{summary['slug']}.m4b")
    titles = [c["title"] for c in summary["chapters"]]
    assert [t for t, _ in marks] == ["Opening Credits", *titles, "Closing Credits"]  # N chapters + 2 credits
    join = 2 * 1024 / 44100  # the opening credits' AAC part adds its priming and at most a frame of padding
    assert marks[0][1] == 0 and 0 <= marks[1][1] - report["book"]["credits"]["opening"]["duration_s"] < join
    assert len(report["chapters"]) == len(titles)  # the book's chapters keep their numbers and entries
    assert [c["number"] for c in summary["chapters"]] == list(range(1, len(titles) + 1))


def test_a_second_run_synthesizes_nothing_and_keeps_the_credits_files(album):
    root, summary, out, _ = album
    before = {n: (out / n).stat().st_mtime_ns for n in ("00-opening-credits.mp3", "99-closing-credits.mp3")}
    again = produce(root)
    assert [c["stats"]["synthesized"] > 0 for c in summary["credits"]] == [True, True]
    assert again["synthesized"] == 0
    assert [c["stats"]["synthesized"] for c in again["credits"]] == [0, 0]
    assert [c["reused"] for c in again["credits"]] == [True, True]
    assert {n: (out / n).stat().st_mtime_ns for n in before} == before


def test_credits_sentences_name_the_character_voices_only_when_there_are_some():
    from stages.model import Chapter, Manuscript, Voice
    from stages.produce import credits_chapter, credits_sentences

    ms = Manuscript(slug="emma", title="Emma", author="Jane Austen", language="en", source="emma.txt",
                    source_sha256="", chapters=(Chapter(1, "Chapter 1", ()),))
    joe, deep, alto = Voice("joe", "Joe"), Voice("joe-deep", "Deep"), Voice("joe-alto", "Alto")
    alone = credits_sentences(ms, joe, [], "Synthetic voice.", 1815)
    assert " ".join(alone["opening"]) == "Emma. Written by Jane Austen. Narrated by Joe. Synthetic voice."
    assert " ".join(alone["closing"]) == "The end. Emma, written by Jane Austen. Synthetic voice. Production copyright 1815."
    cast = credits_sentences(ms, joe, [deep, alto], "Synthetic voice.", 1815)
    assert cast["opening"][2:4] == ["Narrated by Joe.", "Character voices: Deep and Alto."]
    chapter = credits_chapter("closing", 99, cast["closing"], "en")
    assert [s.id for s in chapter.segments] == [f"credits-close-s0{n}" for n in range(1, 5)]
    assert chapter.segments[-1].spoken == "Production copyright eighteen fifteen."
    named = credits_sentences(ms, joe, [Voice("joe-bright", "Joe, bright"), alto], "Synthetic voice (Piper "
                              "en_US-joe-medium), not a human.", 1815)
    assert named["opening"][3] == "Character voices: Joe, bright and Alto."  # one comma-named voice: unambiguous
    three = credits_sentences(ms, joe, [Voice("joe-bright", "Joe, bright"), Voice("joe-deep", "Joe, deep"), alto],
                              "x", 1815)
    assert three["opening"][3] == "Character voices: Joe, bright; Joe, deep and Alto."
    said = credits_chapter("opening", 0, named["opening"], "en").segments[-1]
    assert said.text == "Synthetic voice (Piper en_US-joe-medium), not a human."  # shown as the licence words it
    assert said.spoken == "Synthetic voice, not a human."  # ... and said without the model id
    assert {s.speaker for s in chapter.segments} == {"narrator"}
