"""Level matching across voices: real Piper takes, a character voice made 6 dB quiet, matched to the narrator."""

import json
from dataclasses import replace

import numpy as np
import pytest

from stages import master, produce
from stages.attribute import attribute
from stages.cache import TakeCache
from stages.cast import cast, load_library
from stages.ingest import ingest
from stages.model import NARRATOR, Workspace
from stages.qa import QaConfig
from stages.render import render_chapter

QUIET_DB = -6.0


@pytest.fixture(scope="module")
def quiet_cast_album(tmp_path_factory, small_book):
    """Chapter 2 of the small book (narrator, Mr. Bennet, Mr. Bingley), every character voice made 6 dB quieter."""
    ws = Workspace(tmp_path_factory.mktemp("workspace"))
    ms = attribute(ingest(small_book, ws.manuscript_dir))
    library = load_library()
    casting = cast(ms, library, ws.manuscript_dir(ms.slug) / "cast.toml")
    narrator = casting.voice_for(NARRATOR)
    quiet = {
        k: replace(v, params=v.params | {"gain_db": QUIET_DB}) if k != narrator else v for k, v in library.items()
    }
    tags = produce.album_tags(ms, ws, library["joe"])
    result = produce.produce_chapter(ms, 2, workspace=ws, casting=casting, library=quiet, tags=tags,
                                     qa=QaConfig(enabled=False))  # levels, not words, are checked here
    paths = produce.finish_album(ms, [result], workspace=ws, tags=tags, facts={})
    return narrator, result, json.loads(paths["report"].read_text(encoding="utf-8"))


def test_a_quiet_voice_is_brought_to_the_narrator(quiet_cast_album):
    narrator, result, _ = quiet_cast_album
    levels = result.levels
    assert levels["reference"] == narrator == "joe"
    others = [v for v in levels["voices"] if v != narrator]
    assert others, "the chapter should have a character voice"
    print("\nlevels:", json.dumps(levels, indent=1))
    assert levels["spread_before_lu"] > 4.0
    assert levels["spread_after_lu"] <= 1.0
    assert levels["spread_mastered_lu"] <= 1.0  # compression and limiting do not bring the jump back
    assert levels["voices"][narrator]["gain_db"] == 0.0
    for v in others:
        assert levels["voices"][v]["gain_db"] > 4.0  # the 6 dB taken off is put back, near enough
    assert result.acx.passes


def test_report_json_carries_the_levels(quiet_cast_album):
    narrator, result, report = quiet_cast_album
    entry = report["chapters"][0]["levels"]
    assert entry == json.loads(json.dumps(result.levels))
    for figures in entry["voices"].values():
        assert set(figures) == {"speech_s", "lufs_before", "gain_db", "lufs_after", "lufs_mastered"}
    assert entry["voices"][narrator]["lufs_before"] == entry["voices"][narrator]["lufs_after"]


def test_a_narrator_only_chapter_is_left_bit_identical(tmp_path):
    chapter = produce.credits_chapter(
        "opening", 0, ["Pride and Prejudice.", "Written by Jane Austen.", "Narrated by Joe."], "en"
    )
    library = load_library()
    casting = cast_narrator_only(tmp_path, library)
    takes, _ = render_chapter(chapter, casting=casting, library=library, cache=TakeCache(tmp_path / "cache"))
    voice_of = {s.id: ("joe", 0.0) for s in chapter.segments}
    gains, levels = master.match_levels(chapter, takes, voice_of, reference="joe")
    assert set(gains.values()) == {0.0}
    assert levels["spread_after_lu"] is None and list(levels["voices"]) == ["joe"]
    plain, cues = master.assemble_chapter(chapter, takes)
    matched, matched_cues = master.assemble_chapter(chapter, takes, gains_db=gains)
    assert cues == matched_cues
    rate = master.MASTER_SAMPLE_RATE_HZ
    assert np.array_equal(master.master(plain, rate), master.master(matched, rate))


def cast_narrator_only(tmp_path, library):
    """Return a Casting of a one-sentence book: the narrator and nobody else."""
    book = tmp_path / "narrator-only.txt"
    book.write_text("NARRATOR ONLY\n\nCHAPTER 1\n\nIt was a quiet morning.\n", encoding="utf-8")
    ms = attribute(ingest(book, Workspace(tmp_path / "ws").manuscript_dir))
    return cast(ms, library, tmp_path / "cast.toml")


def test_gains_are_capped_and_unmeasured_voices_keep_their_level():
    gains = master.voice_gains({"joe": -20.0, "faint": -35.0, "loud": -16.5, "brief": None}, "joe")
    assert gains == {"joe": 0.0, "faint": master.LEVEL_MATCH_MAX_DB, "loud": -3.5, "brief": 0.0}
    assert master.voice_gains({"joe": None, "x": -30.0}, "joe") == {"joe": 0.0, "x": 0.0}
    spread = master.loudness_spread({"joe": -20.0, "x": -21.5, "short": -30.0}, {"joe": 9.0, "x": 4.0, "short": 1.5})
    assert spread == 1.5
