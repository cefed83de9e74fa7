"""Casting and the editable cast sheet."""

import pytest

from stages.cast import cast, guess_gender, load_library, read_sheet
from stages.errors import UserError
from stages.model import Chapter, Manuscript, Paragraph, Segment


def book(*speakers: str) -> Manuscript:
    segs = tuple(
        Segment(id=f"c01-p0001-s{i:02d}", text="“Hi.”", spoken="“Hi.”", kind="dialogue", speaker=s)
        for i, s in enumerate(speakers, 1)
    )
    chapter = Chapter(1, "One", (Paragraph("c01-p0001", "text", segs),))
    return Manuscript("b", "B", "A", "en", "b.txt", "0" * 64, (chapter,))


def test_library_has_the_narrator_and_distinct_character_voices():
    library = load_library()
    assert library["joe"].role == "narrator"
    chars = [v for v in library.values() if v.role == "character"]
    assert {v.gender for v in chars} == {"male", "female"}
    assert len({tuple(sorted(v.params.items())) for v in chars}) == len(chars)


def test_cast_by_gender_and_line_count_then_honour_edits(tmp_path):
    library = load_library()
    sheet = tmp_path / "cast.toml"
    ms = book("Mrs. Bennet", "Mrs. Bennet", "Mr. Bennet", "Elizabeth", "narrator", "unknown")
    casting = cast(ms, library, sheet)
    assert casting.voices["narrator"] == "joe" and casting.voices["unknown"] == "joe"
    assert library[casting.voices["Mrs. Bennet"]].gender == "female"
    assert library[casting.voices["Mr. Bennet"]].gender == "male"
    text = sheet.read_text()
    assert '"Mrs. Bennet" = ' in text and "# 2 segments" in text
    # a producer's edit survives the next run
    sheet.write_text(text.replace(f'"Elizabeth" = "{casting.voices["Elizabeth"]}"', '"Elizabeth" = "joe-soprano"'))
    assert cast(ms, library, sheet).voices["Elizabeth"] == "joe-soprano"
    assert read_sheet(sheet, library)["Elizabeth"] == "joe-soprano"


def test_unknown_voice_in_sheet_is_a_clear_error(tmp_path):
    library = load_library()
    sheet = tmp_path / "cast.toml"
    sheet.write_text('[speakers]\nnarrator = "nobody"\n')
    with pytest.raises(UserError, match=r"cast.toml \[speakers\] 'narrator': unknown voice 'nobody'; choose one of: joe"):
        cast(book("narrator"), library, sheet)


def test_guess_gender():
    assert guess_gender("Lady Catherine") == "female"
    assert guess_gender("Sir William") == "male"
    assert guess_gender("Elizabeth") == ""


def test_one_line_in_another_voice_is_kept_in_the_sheet_and_says_only_that_line(tmp_path):
    from stages.cache import TakeCache
    from stages.render import plan_takes

    library = load_library()
    sheet = tmp_path / "cast.toml"
    ms = book("Mrs. Bennet", "Mrs. Bennet", "narrator")
    first = cast(ms, library, sheet)
    one, two, _ = ms.segments
    sheet.write_text(sheet.read_text() + f'\n[lines]\n"{two.id}" = "joe-deep"\n')  # as the studio writes it
    casting = cast(ms, library, sheet)
    assert casting.lines == {two.id: "joe-deep"} and f'"{two.id}" = "joe-deep"' in sheet.read_text()  # kept
    assert casting.voice_for_segment(two) == "joe-deep"
    assert casting.voice_for_segment(one) == first.voices["Mrs. Bennet"] == casting.voice_for("Mrs. Bennet")
    assert casting.voice_ids(ms) == sorted({first.voices["Mrs. Bennet"], "joe", "joe-deep"})
    cache = TakeCache(tmp_path / "cache")
    before, after = (plan_takes(ms.chapters[0], casting=c, library=library, cache=cache) for c in (first, casting))
    assert [b[0] == a[0] for b, a in zip(before, after)] == [True, False, True]  # only that line gets a new take
    assert after[1][2].id == "joe-deep"
    sheet.write_text(sheet.read_text().replace('= "joe-deep"', '= "nobody"'))
    with pytest.raises(UserError, match=r"\[lines\] 'c01-p0001-s02'.*unknown voice 'nobody'"):
        cast(ms, library, sheet)
