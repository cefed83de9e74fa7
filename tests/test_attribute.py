"""Built-in speaker attribution on single paragraphs and on the real Pride and Prejudice, Alice and Lu Xun."""

from __future__ import annotations

import functools
from pathlib import Path

from stages.attribute import attribute, attribute_paragraph
from stages.ingest import read_book
from stages.ingest.blocks import Block, RawChapter, build_chapters
from stages.model import Manuscript, Paragraph

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@functools.lru_cache(maxsize=None)
def attributed(name: str) -> Manuscript:
    return attribute(read_book(CORPUS / name)[0])


def para(text: str, language: str = "en") -> Paragraph:
    """Return `text` ingested as one paragraph and attributed."""
    chapter = build_chapters([RawChapter("T", "test", (Block("text", text),))], language)[0]
    return attribute_paragraph(chapter.paragraphs[1], zh=language == "zh")


def who(paragraph: Paragraph) -> list[tuple[str, str, str]]:
    return [(s.text, s.speaker, s.rule) for s in paragraph.segments if s.kind == "dialogue"]


def test_named_tag_after_the_quote_and_shared_with_the_rest_of_the_paragraph():
    p = para("“I am,” said Elizabeth, “very glad.”")
    assert who(p) == [("“I am,”", "Elizabeth", "verb-before-name"), ("“very glad.”", "Elizabeth", "verb-before-name")]
    assert [s.confidence for s in p.segments if s.kind == "dialogue"] == [0.9, 0.9]
    p = para("“I like her appearance,” said Elizabeth, struck with other ideas. “She looks sickly and cross.”")
    assert who(p)[1] == ("“She looks sickly and cross.”", "Elizabeth", "same-paragraph")
    assert p.segments[2].speaker == "Elizabeth" and p.segments[2].confidence == 0.7


def test_honorifics_stay_part_of_the_name_and_name_before_verb_works():
    assert who(para("“You are right,” said Mr. Darcy, looking down."))[0][1:] == ("Mr. Darcy", "verb-before-name")
    assert who(para("“Nonsense!” replied Mrs. Bennet."))[0][1] == "Mrs. Bennet"
    assert who(para("“It began with the tea,” the Hatter replied."))[0][1:] == ("Hatter", "name-before-verb")
    assert who(para("“Yes,” Darcy replied."))[0][1:] == ("Darcy", "name-before-verb")
    assert who(para("Elizabeth said, “Let us go.”"))[0][1:] == ("Elizabeth", "name-before-verb")
    assert who(para("Then said Lady Catherine: “You may go.”"))[0][1:] == ("Lady Catherine", "verb-before-name")


def test_pronouns_descriptions_and_the_narrators_i_are_not_names():
    p = para("“I am,” said he, “very glad.”")
    assert [(s.speaker, s.rule, s.confidence) for s in p.segments if s.kind == "dialogue"] == [
        ("unknown", "pronoun", 0.2), ("unknown", "pronoun", 0.2)]
    assert who(para("“Seven!” I answered."))[0][1:] == ("unknown", "pronoun")
    assert who(para("“Do not you want to know?” cried his wife impatiently."))[0][1:] == ("unknown", "descriptor")
    assert who(para("“What a night!” said Scrooge’s nephew."))[0][1:] == ("unknown", "descriptor")
    assert who(para("“What is his name?”")) == [("“What is his name?”", "unknown", "none")]
    assert all(s.speaker == "narrator" and s.rule == "" for s in para("“Go,” said Jane.").segments if s.kind == "narration")


def test_a_tag_that_introduces_the_next_quote_does_not_reach_back_and_adjacent_quotes_are_not_shared():
    p = para("“Where is he?” Then Jane said, “He has gone.”")
    assert who(p) == [("“Where is he?”", "unknown", "none"), ("“He has gone.”", "Jane", "name-before-verb")]
    p = para("“Who is it?” said Kitty. “Lydia.”")
    assert who(p)[1] == ("“Lydia.”", "Kitty", "same-paragraph")
    p = para("Jane said, “Who is it?” “Lydia.”")
    assert who(p) == [("“Who is it?”", "Jane", "name-before-verb"), ("“Lydia.”", "unknown", "none")]


def test_chinese_tags_name_the_speaker_before_the_verb():
    p = para("“你休息一两天，我们便可以走了。”母亲说。", "zh")
    assert who(p) == [("“你休息一两天，我们便可以走了。”", "母亲", "name-before-verb")]
    assert who(para("他说，“好。”", "zh"))[0][1:] == ("unknown", "pronoun")
    assert who(para("掌柜也说，“好。”", "zh"))[0][1:] == ("掌柜", "name-before-verb")
    assert who(para("我知道，“好。”", "zh"))[0][1:] == ("unknown", "none")


def test_pride_and_prejudice_chapter_one():
    m = attributed("jane-austen_pride-and-prejudice.epub")
    chapter = m.chapters[0]
    lady = chapter.paragraphs[3]
    assert [(s.text, s.speaker, s.rule) for s in lady.segments] == [
        ("“My dear Mr. Bennet,”", "unknown", "descriptor"),
        ("said his lady to him one day,", "narrator", ""),
        ("“have you heard that Netherfield Park is let at last?”", "unknown", "descriptor"),
    ]
    returned = chapter.paragraphs[5]
    assert [s.rule for s in returned.segments if s.kind == "dialogue"] == ["pronoun", "pronoun"]
    said_elizabeth = [s for c in m.chapters[:5] for s in c.segments if s.speaker == "Elizabeth"]
    assert said_elizabeth and said_elizabeth[0].rule in ("verb-before-name", "name-before-verb")


def test_pride_and_prejudice_named_share_and_speakers():
    m = attributed("jane-austen_pride-and-prejudice.epub")
    dialogue = [s for s in m.segments if s.kind == "dialogue"]
    named = [s for s in dialogue if s.speaker != "unknown"]
    assert len(dialogue) == 3962
    assert 750 <= len(named) <= 900  # 801 when written; a big move means a rule broke
    speakers = {s.speaker for s in named}
    assert {"Elizabeth", "Jane", "Mrs. Bennet", "Mr. Bennet", "Darcy", "Mr. Darcy", "Lady Catherine"} <= speakers
    assert not speakers & {"I", "He", "She", "Then", "The", "Mr.", "Mrs."}
    assert all(0.0 <= s.confidence <= 1.0 for s in dialogue)
    assert all(s.speaker == "narrator" for s in m.segments if s.kind in ("narration", "heading"))


def test_play_personas_are_kept_and_attribute_is_pure_and_idempotent():
    source = read_book(CORPUS / "oscar-wilde_the-importance-of-being-earnest.epub")[0]
    before = source.to_dict()
    once = attribute(source)
    assert source.to_dict() == before  # the input is untouched
    assert once == source  # every line of the play already has its persona
    alice = attributed("lewis-carroll_alices-adventures-in-wonderland.epub")
    assert attribute(alice) == alice
    assert sum(s.speaker == "Alice" for s in alice.segments) >= 300
