"""The attribution scorer (bench/attribution.py) on a hand-made manuscript, and the dev set against its books."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from bench.attribution import (
    ANNOTATIONS,
    Annotation,
    annotation_files,
    combine,
    main,
    match,
    quotations,
    read_aliases,
    read_annotations,
    same_speaker,
    score,
)
from stages.errors import UserError
from stages.model import Chapter, Manuscript, Paragraph, Segment

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def seg(text: str, speaker: str = "narrator") -> Segment:
    kind = "narration" if speaker == "narrator" else "dialogue"
    return Segment(id=f"s{abs(hash(text)) % 10**6}", text=text, spoken=text, kind=kind, speaker=speaker)


def tiny_manuscript() -> Manuscript:
    """Two chapters: an interrupted quote, a two-sentence quote, a repeated quote and an unattributed one."""
    ch1 = (
        Paragraph("c01-p0001", "text", (seg("“My dear,”", "Mrs. Bennet"), seg("said his lady,"),
                                        seg("“have you heard?”", "Mr. Bennet"))),
        Paragraph("c01-p0002", "text", (seg("“No.", "Lizzy"), seg("Not at all.”", "Lizzy"))),
        Paragraph("c01-p0003", "text", (seg("“Good afternoon!”", "Scrooge"), seg("said Scrooge."))),
        Paragraph("c01-p0004", "text", (seg("“Good afternoon!”", "unknown"),)),
    )
    ch2 = (Paragraph("c02-p0001", "text", (seg("“Humbug!”", "Mr. Darcy"), seg("said he."))),)
    return Manuscript(slug="tiny", title="Tiny", author="A", language="en", source="tiny.txt", source_sha256="0",
                      chapters=(Chapter(1, "One", ch1), Chapter(2, "Two", ch2)))


def ann(chapter: int, quote: str, speaker: str, kind: str = "explicit") -> Annotation:
    return Annotation("tiny.txt", chapter, quote, speaker, kind)


def test_quotations_split_at_opening_marks_and_take_the_first_segments_speaker():
    quotes = quotations(tiny_manuscript(), 1)
    assert [(q.paragraph, q.text, q.speaker) for q in quotes] == [
        ("c01-p0001", "My dear,", "Mrs. Bennet"),
        ("c01-p0001", "have you heard?", "Mr. Bennet"),
        ("c01-p0002", "No. Not at all.", "Lizzy"),
        ("c01-p0003", "Good afternoon!", "Scrooge"),
        ("c01-p0004", "Good afternoon!", "unknown"),
    ]


def test_matching_by_prefix_across_sentences_in_order_and_unmatched_when_absent():
    annotations = [ann(1, "My dear", "Mrs. Bennet"), ann(1, "“No. Not at", "Elizabeth", "implicit"),
                   ann(1, "Good afternoon!", "Scrooge"), ann(1, "Good afternoon!", "Scrooge", "implicit"),
                   ann(1, "Bah!", "Scrooge"), ann(3, "Humbug!", "Scrooge")]
    pairs = match(annotations, tiny_manuscript())
    assert [q.paragraph if q else None for _, q in pairs] == [
        "c01-p0001", "c01-p0002", "c01-p0003", "c01-p0004", None, None]


def test_score_uses_aliases_case_insensitively_and_unknown_is_always_wrong():
    aliases = {"lizzy": "elizabeth", "mr. darcy": "darcy"}
    assert same_speaker("Elizabeth", "LIZZY", aliases)
    assert same_speaker("darcy", "Mr. Darcy", aliases)
    assert not same_speaker("Elizabeth", "Jane", aliases)
    assert not same_speaker("unknown", "unknown", aliases)
    annotations = [ann(1, "My dear", "Mrs. Bennet"), ann(1, "have you", "Mrs. Bennet", "anaphoric"),
                   ann(1, "No.", "Elizabeth", "implicit"), ann(1, "Good afternoon", "Scrooge", "explicit"),
                   ann(1, "Good afternoon", "Scrooge", "implicit"), ann(2, "Humbug", "Darcy", "anaphoric"),
                   ann(2, "Missing", "Darcy", "anaphoric")]
    s = score(match(annotations, tiny_manuscript()), aliases)
    assert (s.annotated, s.matched, s.correct) == (7, 6, 4)
    assert s.by_type == {"explicit": (2, 2), "anaphoric": (2, 1), "implicit": (2, 1)}
    assert round(s.accuracy, 4) == round(4 / 6, 4)
    assert [a.quote for a in s.unmatched] == ["Missing"]
    assert [(a.quote, given) for a, given in s.wrong] == [("have you", "Mr. Bennet"), ("Good afternoon", "unknown")]
    total = combine([s, s])
    assert (total.annotated, total.matched, total.correct, total.by_type["anaphoric"]) == (14, 12, 8, (4, 2))


def test_annotation_and_alias_files_are_read_and_bad_rows_named(tmp_path):
    good = tmp_path / "x.quotes.tsv"
    good.write_text("# comment\nbook\tchapter\tquote\tspeaker\ttype\nb.txt\t2\tHello\tFred\timplicit\n",
                    encoding="utf-8")
    assert read_annotations(good) == [Annotation("b.txt", 2, "Hello", "Fred", "implicit", 3)]
    aliases = tmp_path / "x.aliases.tsv"
    aliases.write_text("# alias\tcanonical\nScrooge’s nephew\tFred\n", encoding="utf-8")
    assert read_aliases(aliases) == {"scrooge's nephew": "fred", "fred": "fred"}
    bad = tmp_path / "y.quotes.tsv"
    bad.write_text("book\tchapter\tquote\tspeaker\ttype\nb.txt\t2\tHello\tFred\tguessed\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"y.quotes.tsv:2: type 'guessed'"):
        read_annotations(bad)
    bad.write_text("b.txt\t2\tHello\tFred\timplicit\n", encoding="utf-8")
    with pytest.raises(UserError, match="header"):
        read_annotations(bad)
    with pytest.raises(UserError, match="no \\*.quotes.tsv"):
        annotation_files(tmp_path, "carol")


@functools.lru_cache(maxsize=None)
def book(name: str) -> Manuscript:
    from stages.ingest import read_book

    return read_book(CORPUS / name)[0]


@pytest.mark.parametrize("path", sorted(ANNOTATIONS.glob("*.quotes.tsv")), ids=lambda p: p.name)
def test_every_dev_set_row_matches_a_quotation_of_its_book(path):
    annotations = read_annotations(path)
    assert len(annotations) >= 30
    names = {a.book for a in annotations}
    assert len(names) == 1
    pairs = match(annotations, book(names.pop()))
    assert [(a.line, a.quote) for a, q in pairs if q is None] == []
    assert {a.type for a in annotations} == {"explicit", "anaphoric", "implicit"}


def test_dev_set_covers_three_books_and_enough_quotes():
    files = sorted(ANNOTATIONS.glob("*.quotes.tsv"))
    assert len(files) >= 3
    assert sum(len(read_annotations(p)) for p in files) >= 200
    assert (ANNOTATIONS / "README.md").is_file()


def test_the_bench_prints_each_book_and_the_total(capsys):
    assert main(["--book", "gu-xiang"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("lu-xun_kong-yiji_gu-xiang_zhu-fu.zh.txt: ")
    assert " annotated, " in out and "accuracy " in out and "implicit" in out and "unmatched" not in out
    assert main(["--book", "no-such-book"]) == 2
