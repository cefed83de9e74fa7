"""Casting by voice distinctness: the plan on a measured similarity table, then a corpus book with real embeddings."""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path

from stages.attribute import attribute
from stages.cast import cast, embedding_similarity, load_library, read_sheet
from stages.casting_plan import DISTINCT_TARGET, main_characters, plan, scenes
from stages.ingest import read_book
from stages.model import NARRATOR, Voice

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"

# Cosines measured between the speaker embeddings of six shaped voices (bench/voice_similarity.py style):
# two male, three female, one narrator; "m2" and "f1" are close, "f1" and "f2" closer still.
LIBRARY = {
    "narr": Voice("narr", "N", gender="male", role="narrator"),
    "m1": Voice("m1", "M1", gender="male"), "m2": Voice("m2", "M2", gender="male"),
    "f1": Voice("f1", "F1", gender="female"), "f2": Voice("f2", "F2", gender="female"),
    "f3": Voice("f3", "F3", gender="female"),
}
TABLE = {
    ("narr", "m1"): 0.76, ("narr", "m2"): 0.81, ("narr", "f1"): 0.69, ("narr", "f2"): 0.74, ("narr", "f3"): 0.50,
    ("m1", "m2"): 0.68, ("m1", "f1"): 0.63, ("m1", "f2"): 0.65, ("m1", "f3"): 0.58, ("m2", "f1"): 0.87,
    ("m2", "f2"): 0.94, ("m2", "f3"): 0.67, ("f1", "f2"): 0.97, ("f1", "f3"): 0.82, ("f2", "f3"): 0.75,
}


def table(a: str, b: str) -> float:
    return 1.0 if a == b else TABLE.get((a, b), TABLE.get((b, a)))


def test_main_characters_get_the_most_distinct_voices_of_their_gender():
    lines = Counter({"Elizabeth": 100, "Jane": 60, "Darcy": 50, "Mrs. Long": 3, "Mr. Long": 2})
    genders = {"Elizabeth": "female", "Jane": "female", "Darcy": "male", "Mrs. Long": "female", "Mr. Long": "male"}
    got = plan(lines, genders, LIBRARY, ["m1", "m2", "f1", "f2", "f3"], {NARRATOR: "narr"}, table,
               [{"Elizabeth", "Jane", "Mrs. Long"}, {"Darcy", "Mr. Long"}])
    assert got.main == ("Elizabeth", "Jane", "Darcy")
    # Elizabeth: the female voice least like the narrator (f3, 0.50); Jane: least like both (f2: max 0.75, not f1: 0.82)
    assert got.voices["Elizabeth"] == "f3" and got.voices["Jane"] == "f2"
    assert got.voices["Darcy"] == "m1"  # m1's worst is 0.76 against the narrator; m2's is 0.94 against Jane's f2
    # Mrs. Long shares a scene with Elizabeth (f3) and Jane (f2): she gets the one female voice left
    assert got.voices["Mrs. Long"] == "f1"
    assert got.voices["Mr. Long"] == "m2" and got.clashes == ()


def test_a_scene_with_more_speakers_than_voices_reports_the_clash():
    lines = Counter({"A": 10, "B": 9, "C": 8})
    got = plan(lines, {"A": "male", "B": "male", "C": "male"}, LIBRARY, ["m1", "m2"], {NARRATOR: "narr"}, table,
               [{"A", "B", "C"}])
    assert len(set(got.voices[s] for s in "ABC")) == 2
    assert len(got.clashes) == 1 and got.clashes[0][2] in ("m1", "m2")


@functools.lru_cache(maxsize=None)
def pride():
    return attribute(read_book(CORPUS / "jane-austen_pride-and-prejudice.epub")[0])


def test_scenes_and_main_characters_of_pride_and_prejudice():
    book = pride()
    found = scenes(book)
    assert 40 <= len(found) <= 200
    assert any({"Elizabeth", "Mr. Darcy"} <= s for s in found)
    assert all(NARRATOR not in s and "unknown" not in s for s in found)
    lines = Counter(s.speaker for s in book.segments if s.kind == "dialogue")
    assert main_characters(lines)[:2] == ["Elizabeth", "Mrs. Bennet"]


def test_casting_a_corpus_book_with_real_speaker_embeddings(tmp_path):
    book = pride()
    library = load_library()
    similarity = embedding_similarity(library, tmp_path / "embeddings")
    sheet = tmp_path / "cast.toml"
    casting = cast(book, library, sheet, similarity=similarity)
    mains = casting.main
    assert mains and mains[0] == "Elizabeth"
    voices = [casting.voices[m] for m in mains]
    females = [v for m, v in zip(mains, voices) if library[v].gender == "female"]
    assert len(females) == 3 and len(set(females)) == 3  # Elizabeth, Mrs. Bennet, Jane: three different voices
    assert len(casting.clashes) < 30  # with eight voices a few crowded scenes still share one (14 when written)
    assert all(library[casting.voices[m]].role == "character" for m in mains)
    for a, b, c in casting.spread:  # the report is the real cosine of the two voices' embeddings
        assert abs(c - similarity(casting.voices[a], casting.voices[b])) < 1e-9
        assert -1.0 <= c < 0.999
    text = sheet.read_text(encoding="utf-8")
    assert f"aim <= {DISTINCT_TARGET}" in text and "Elizabeth" in text
    assert read_sheet(sheet, library)["Elizabeth"] == casting.voices["Elizabeth"]
    # a producer's edit survives a re-cast
    edited = text.replace(f'"Jane" = "{casting.voices["Jane"]}"', '"Jane" = "joe-deep"')
    sheet.write_text(edited, encoding="utf-8")
    assert cast(book, library, sheet, similarity=similarity).voices["Jane"] == "joe-deep"
