"""Speech normalization: the case table, the display <-> spoken mapping, and real corpus sentences."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
from normalize_cases import CASES

from stages.ingest import read_book, spoken_form
from stages.normalize import Span, Spoken, display_range, normalize, spoken_range
from stages.normalize.numbers import cardinal, ordinal, year
from stages.normalize.roman import roman_value
from stages.normalize.zh import cardinal as zh_cardinal

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
PP_TXT = CORPUS / "jane-austen_pride-and-prejudice.txt"
SHERLOCK = CORPUS / "arthur-conan-doyle_the-adventures-of-sherlock-holmes.epub"
LU_XUN = CORPUS / "lu-xun_kong-yiji_gu-xiang_zhu-fu.zh.txt"
WORD = re.compile(r"[\w’'-]+")


@functools.lru_cache(maxsize=None)
def segments(path: Path) -> dict[str, str]:
    """Return {segment text: its spoken form as ingest made it} for a corpus book."""
    return {s.text: s.spoken for s in read_book(path)[0].segments}


def assert_spans_cover(text: str, spoken: Spoken) -> None:
    """The spans tile both texts in order, and an unchanged span really is unchanged."""
    at_display = at_spoken = 0
    for s in spoken.spans:
        assert (s.display_start, s.spoken_start) == (at_display, at_spoken), (text, spoken.spans)
        assert s.display_end >= s.display_start and s.spoken_end >= s.spoken_start
        at_display, at_spoken = s.display_end, s.spoken_end
    assert (at_display, at_spoken) == (len(text), len(spoken.text))


def word_map(text: str, language: str = "en") -> list[tuple[str, str]]:
    """Return (spoken word, displayed text it maps back to) for every word of the spoken form."""
    spoken = normalize(text, language)
    out = []
    for m in WORD.finditer(spoken.text):
        a, b = display_range(spoken, *m.span())
        out.append((m.group(), text[a:b]))
    return out


# --- the case table ----------------------------------------------------------------------------------------------


def test_the_table_is_big_and_covers_both_languages():
    assert len(CASES) >= 150
    assert sum(lang.startswith("zh") for _, lang, _ in CASES) >= 40
    assert len({text for text, _, _ in CASES}) == len(CASES)  # no case twice


@pytest.mark.parametrize(("text", "language", "expected"), CASES, ids=[f"{i:03d}" for i in range(len(CASES))])
def test_case(text, language, expected):
    spoken = normalize(text, language)
    assert spoken.text == expected
    assert_spans_cover(text, spoken)


def test_unchanged_text_is_one_span_and_spoken_form_is_the_text():
    text = "It is a truth universally acknowledged, that a single man must be in want of a wife."
    assert normalize(text, "en-GB") == Spoken(text, (Span(0, len(text), 0, len(text)),))
    assert spoken_form(text, "en-GB") == text
    assert normalize("", "en") == Spoken("", ())


# --- the mapping back to the displayed words ---------------------------------------------------------------------


def test_every_spoken_word_maps_back_to_its_displayed_word():
    assert word_map("Mr. Darcy met Henry VIII in 1813.") == [
        ("Mister", "Mr."), ("Darcy", "Darcy"), ("met", "met"), ("Henry", "Henry"), ("the", "VIII"),
        ("Eighth", "VIII"), ("in", "in"), ("eighteen", "1813"), ("thirteen", "1813")]
    assert word_map("It cost $3.50 on May 5, 1813—at 10:30 a.m.") == [
        ("It", "It"), ("cost", "cost"), ("three", "$3.50"), ("dollars", "$3.50"), ("and", "$3.50"),
        ("fifty", "$3.50"), ("cents", "$3.50"), ("on", "on"), ("May", "May"), ("fifth", "5"),
        ("eighteen", "1813"), ("thirteen", "1813"), ("at", "at"), ("ten", "10:30 a.m."), ("thirty", "10:30 a.m."),
        ("AM", "10:30 a.m.")]
    assert word_map("5 May, Chapter IV: e.g. St. Paul’s") == [
        ("the", "5"), ("fifth", "5"), ("of", "5"), ("May", "May"), ("Chapter", "Chapter"), ("four", "IV"),
        ("for", "e.g."), ("example", "e.g."), ("Saint", "St."), ("Paul’s", "Paul’s")]
    assert word_map("word\u2060—\u2060word\u00a0and co\u00adoperate") == [
        ("word", "word"), ("word", "word"), ("and", "and"), ("cooperate", "co\u00adoperate")]


def test_chinese_characters_map_back_to_their_digits():
    text = "1919年3月，共15人。"
    spoken = normalize(text, "zh")
    assert spoken.text == "一九一九年三月，共十五人。"
    back = [text[slice(*display_range(spoken, i, i + 1))] for i in range(len(spoken.text))]
    # a same-length replacement maps character for character: each year digit to its digit
    assert back == ["1", "9", "1", "9", "年", "3", "月", "，", "共", "1", "5", "人", "。"]
    assert text[slice(*display_range(spoken, 0, 4))] == "1919"
    assert text[slice(*display_range(spoken, 9, 11))] == "15"
    assert spoken_range(spoken, text.index("15"), text.index("15") + 2) == (9, 11)


def test_spoken_range_is_the_inverse_for_unchanged_and_changed_words():
    text = "Dr. Watson paid £5 at 221B, Baker St."
    spoken = normalize(text, "en")
    assert spoken.text == "Doctor Watson paid five pounds at two twenty-one B, Baker Street."
    for word in ("Dr.", "Watson", "£5", "221B", "Baker", "St."):
        start = text.index(word)
        a, b = spoken_range(spoken, start, start + len(word))
        assert display_range(spoken, a, b) == (start, start + len(word)), word
    with pytest.raises(ValueError):
        display_range(spoken, 5, 500)
    with pytest.raises(ValueError):
        spoken_range(spoken, 3, 3)


def test_spoken_round_trips_through_json():
    spoken = normalize("Chapter XII: in 1813—", "en")
    assert Spoken.from_dict(spoken.to_dict()) == spoken


def test_mapping_keeps_order_and_exact_unchanged_words_across_a_real_book():
    for line in PP_TXT.read_text(encoding="utf-8").splitlines()[:600]:
        spoken = normalize(line, "en")
        assert_spans_cover(line, spoken)
        last_start = -1
        for m in WORD.finditer(spoken.text):
            a, b = display_range(spoken, *m.span())
            assert a >= last_start and b > a, (line, m.group())  # words come back in reading order
            last_start = a
            covering = [s for s in spoken.spans if s.spoken_start < m.end() and s.spoken_end > m.start()]
            if all(line[s.display_start : s.display_end] == spoken.text[s.spoken_start : s.spoken_end]
                   for s in covering):
                assert line[a:b] == m.group(), (line, m.group())  # an unchanged word maps to itself exactly


# --- the number words themselves ---------------------------------------------------------------------------------


def test_english_number_words():
    assert [cardinal(n) for n in (0, 13, 21, 100, 105, 999, 1000, 1001, 123456)] == [
        "zero", "thirteen", "twenty-one", "one hundred", "one hundred five", "nine hundred ninety-nine",
        "one thousand", "one thousand one", "one hundred twenty-three thousand four hundred fifty-six"]
    assert [ordinal(n) for n in (1, 2, 3, 5, 8, 9, 12, 20, 21, 40, 101)] == [
        "first", "second", "third", "fifth", "eighth", "ninth", "twelfth", "twentieth", "twenty-first",
        "fortieth", "one hundred first"]
    assert [year(n) for n in (1066, 1813, 1900, 1905, 2000, 2009, 2010, 2024)] == [
        "ten sixty-six", "eighteen thirteen", "nineteen hundred", "nineteen oh five", "two thousand",
        "two thousand nine", "twenty ten", "twenty twenty-four"]


def test_roman_values_accept_only_canonical_numerals():
    assert [roman_value(t) for t in ("I", "IV", "IX", "XIV", "XL", "LXI", "MCMXIV")] == [1, 4, 9, 14, 40, 61, 1914]
    assert [roman_value(t) for t in ("IIII", "CIVIL", "MIXI", "DID", "VX", "")] == [None] * 6


def test_chinese_number_words():
    assert [zh_cardinal(n) for n in (10, 11, 101, 1010, 20000, 100010000, 2000000)] == [
        "十", "十一", "一百零一", "一千零一十", "两万", "一亿零一万", "二百万"]


# --- real sentences through ingest -------------------------------------------------------------------------------


def test_sherlock_holmes_numbers_dates_money_and_addresses():
    spoken = segments(SHERLOCK)
    assert spoken[
        "One night—it was on the twentieth of March, 1888—I was returning from a journey to a patient (for I had "
        "now returned to civil practice), when my way led me through Baker Street."
    ] == (
        "One night, it was on the twentieth of March, eighteen eighty-eight, I was returning from a journey to a "
        "patient (for I had now returned to civil practice), when my way led me through Baker Street."
    )
    assert spoken["Mr. Henry Baker can have the same by applying at 6:30 this evening at 221B, Baker Street.’"] == (
        "Mister Henry Baker can have the same by applying at six thirty this evening at two twenty-one B, "
        "Baker Street.’")
    assert spoken["My gross takings amount to £27 10s."] == (
        "My gross takings amount to twenty-seven pounds ten shillings.")
    assert spoken["“The letter arrived on March 10, 1883."] == (
        "“The letter arrived on March tenth, eighteen eighty-three.")
    assert spoken["It is in New Zealand stock, paying 4½ percent."] == (
        "It is in New Zealand stock, paying four and a half percent.")
    assert spoken["Part II"] == "Part two"
    assert spoken["“It was in the early ’60s at the diggings."] == "“It was in the early sixties at the diggings."


def test_pride_and_prejudice_letters_dashes_and_blanks():
    lines = PP_TXT.read_text(encoding="utf-8").splitlines()
    letter = next(line for line in lines if "Monday, November 18th, by four o’clock" in line)
    assert "Monday, November eighteenth, by four o’clock" in spoken_form(letter, "en")
    shire = next(line for line in lines if "The officers of the ⸺shire were" in line)
    assert "The officers of the blank-shire were in general" in spoken_form(shire, "en")
    said = next(line for line in lines if line.endswith("Mr. Darcy replied with great intrepidity—"))
    assert spoken_form(said, "en").endswith(". Mister Darcy replied with great intrepidity,")
    assert spoken_form("CHAPTER LXI.", "en") == "CHAPTER sixty-one."


def test_chinese_date_lines_and_pauses_from_lu_xun():
    spoken = segments(LU_XUN)
    assert spoken["一九一九年三月。"] == "一九一九年三月。"  # Chinese numerals stay as written
    assert spoken["“我真傻，真的，”"] == "“我真傻，真的，”"
    assert spoken["“窃书不能算偷……"] == "“窃书不能算偷。"
    assert spoken["……读书人的事，能算偷么？”"] == "读书人的事，能算偷么？”"
    assert spoken["我正要问你一件事——”"] == "我正要问你一件事，”"


def test_a_whole_book_normalizes_cleanly():
    text = PP_TXT.read_text(encoding="utf-8")
    spoken = normalize(text, "en")
    assert_spans_cover(text, spoken)
    assert spoken.text.count("Mister ") == text.count("Mr. ") + text.count("Mr.\u00a0")
    assert spoken.text.count("Missus ") == text.count("Mrs. ") + text.count("Mrs.\u00a0")
    assert not re.search(r"[—⸺⸻\n]|  |\bMrs?\.", spoken.text)
    assert "CHAPTER sixty-one." in spoken.text and "CHAPTER I." not in spoken.text
    assert normalize(text, "en") == spoken  # deterministic
