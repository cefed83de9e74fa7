"""Ingest on the real corpus (EPUB 3, .txt, .md, Chinese) and on tiny books built here (EPUB 2, DRM, corrupt)."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import zipfile
from pathlib import Path

import pytest

from stages.errors import UserError
from stages.ingest import Cover, detect_language, ingest, read_book, save_manuscript, slugify, spoken_form, summarize
from stages.ingest.decode import TextFile
from stages.ingest.sentences import clean_text, segment_text, split_long, split_sentences
from stages.model import Manuscript

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
PP_EPUB = CORPUS / "jane-austen_pride-and-prejudice.epub"
PP_TXT = CORPUS / "jane-austen_pride-and-prejudice.txt"
SHERLOCK = CORPUS / "arthur-conan-doyle_the-adventures-of-sherlock-holmes.epub"
CAROL = CORPUS / "charles-dickens_a-christmas-carol.epub"
ALICE_EPUB = CORPUS / "lewis-carroll_alices-adventures-in-wonderland.epub"
ALICE_MD = CORPUS / "lewis-carroll_alices-adventures-in-wonderland.md"
EARNEST = CORPUS / "oscar-wilde_the-importance-of-being-earnest.epub"
LU_XUN = CORPUS / "lu-xun_kong-yiji_gu-xiang_zhu-fu.zh.txt"
SEGMENT_ID = re.compile(r"c\d{2}-p\d{4}-s\d{2,}")
ROMAN = "I II III IV V VI VII VIII IX X XI XII".split()


@functools.lru_cache(maxsize=None)
def book(path: Path) -> tuple[Manuscript, Cover | None]:
    return read_book(path)


def titles(path: Path) -> list[str]:
    return [c.title for c in book(path)[0].chapters]


# --- the corpus ------------------------------------------------------------------------------------------------


def test_pride_and_prejudice_epub_chapters_metadata_and_front_matter():
    m, cover = book(PP_EPUB)
    assert (m.title, m.author, m.language, m.slug) == ("Pride and Prejudice", "Jane Austen", "en-GB", "pride-and-prejudice")
    assert len(m.chapters) == 61
    assert titles(PP_EPUB)[:3] == ["Chapter I", "Chapter II", "Chapter III"]
    assert titles(PP_EPUB)[-1] == "Chapter LXI"
    first = m.chapters[0]
    assert first.source == "text/chapter-1.xhtml#chapter-1"
    assert first.paragraphs[0].kind == "heading"
    assert [s.text for s in first.paragraphs[0].segments] == ["Chapter I"]
    assert first.paragraphs[0].segments[0].kind == "heading"
    assert first.paragraphs[1].segments[0].text == (
        "It is a truth universally acknowledged, that a single man in possession of a good fortune, "
        "must be in want of a wife."
    )
    kinds = {s.kind: s.source for s in m.skipped}
    assert kinds == {"titlepage": "text/titlepage.xhtml", "imprint": "text/imprint.xhtml",
                     "colophon": "text/colophon.xhtml", "copyright-page": "text/uncopyright.xhtml", "toc": "toc.xhtml"}
    assert cover is not None and cover.mime == "image/jpeg" and cover.suffix == ".jpg"
    assert cover.data[:2] == b"\xff\xd8" and len(cover.data) > 100_000
    assert sum(p.kind == "scene_break" for c in m.chapters for p in c.paragraphs) == 6


def test_pride_and_prejudice_txt_says_the_same_as_the_epub():
    txt, cover = book(PP_TXT)
    epub = book(PP_EPUB)[0]
    assert cover is None
    assert (txt.title, txt.author, txt.language) == ("Pride and Prejudice", "Jane Austen", "en")
    assert titles(PP_TXT) == titles(PP_EPUB)
    assert [s.kind for s in txt.skipped] == ["frontmatter"]
    # Same ids, kinds and spoken words; only a letter's <br/> line break differs in Segment.text.
    assert [(s.id, s.kind, s.spoken) for s in txt.segments] == [(s.id, s.kind, s.spoken) for s in epub.segments]
    assert not any(s.spoken.startswith("CHAPTER") for s in txt.segments)


def test_sherlock_has_one_chapter_per_story_with_its_parts_as_headings():
    m, cover = book(SHERLOCK)
    assert len(m.chapters) == 12
    assert titles(SHERLOCK)[0] == "A Scandal in Bohemia"
    assert titles(SHERLOCK)[1] == "The Redheaded League"
    assert titles(SHERLOCK)[-1] == "The Adventure of the Copper Beeches"
    headings = [p.segments[0].text for p in m.chapters[0].paragraphs if p.kind == "heading"]
    assert headings == ["A Scandal in Bohemia", "Part I", "Part II", "Part III"]
    assert cover is not None and cover.data[:2] == b"\xff\xd8"


def test_christmas_carol_staves_join_hgroup_headings_and_skip_the_preface():
    m, _ = book(CAROL)
    assert titles(CAROL) == [
        "Stave I: Marley’s Ghost", "Stave II: The First of the Three Spirits",
        "Stave III: The Second of the Three Spirits", "Stave IV: The Last of the Spirits", "Stave V: The End of It",
    ]
    assert {"titlepage", "imprint", "preface", "halftitlepage", "colophon"} <= {s.kind for s in m.skipped}
    assert not any("Ghostly little book" in s.text for s in m.segments)  # the preface's words
    song = [p for c in m.chapters for p in c.paragraphs if p.kind == "verse"]
    assert [s.text for s in song[0].segments] == ["“God bless you, merry gentleman,\nMay nothing you dismay!”"]
    assert song[0].segments[0].spoken == "“God bless you, merry gentleman, May nothing you dismay!”"


def test_alice_epub_and_markdown_agree():
    epub, cover = book(ALICE_EPUB)
    md, _ = book(ALICE_MD)
    assert len(epub.chapters) == len(md.chapters) == 12
    assert titles(ALICE_EPUB) == titles(ALICE_MD)
    assert titles(ALICE_MD)[0] == "Chapter I: Down the Rabbit-Hole"
    assert titles(ALICE_MD)[-1] == "Chapter XII: Alice’s Evidence"
    assert (md.title, md.author) == ("Alice’s Adventures in Wonderland", "Lewis Carroll")
    assert [(s.id, s.kind, s.text) for s in md.segments] == [(s.id, s.kind, s.text) for s in epub.segments]
    assert not any("*" in s.text for s in md.segments)
    assert "epigraph" in {s.kind for s in epub.skipped}
    verse = [p for c in md.chapters for p in c.paragraphs if p.kind == "verse"]
    assert len(verse) == 38
    assert verse[1].segments[0].text.startswith("“How doth the little crocodile\nImprove his shining tail,")
    assert cover is not None and cover.mime == "image/jpeg"


def test_earnest_play_lines_are_dialogue_of_their_persona_and_directions_are_narration():
    m, _ = book(EARNEST)
    assert titles(EARNEST) == ["Act I", "Act II", "Act III"]
    assert {"dramatis-personae", "halftitlepage"} <= {s.kind for s in m.skipped}
    act1 = m.chapters[0]
    line = next(p for p in act1.paragraphs if p.segments and p.segments[0].text == "Did you hear what I was playing, Lane?")
    assert (line.segments[0].kind, line.segments[0].speaker, line.segments[0].rule) == ("dialogue", "Algernon", "play-persona")
    salver = next(p for p in act1.paragraphs if any(s.text == "Hands them on a salver." for s in p.segments))
    assert [(s.kind, s.speaker, s.text) for s in salver.segments] == [
        ("dialogue", "Lane", "Yes, sir."), ("narration", "narrator", "Hands them on a salver.")]
    speakers = {s.speaker for s in m.segments if s.kind == "dialogue"}
    assert {"Jack", "Algernon", "Lady Bracknell", "Miss Prism", "Cecily", "Gwendolen"} <= speakers
    assert "unknown" not in speakers


def test_chinese_text_chapters_title_author_and_sentences():
    m, cover = book(LU_XUN)
    assert cover is None
    assert m.language == "zh"
    assert (m.title, m.author) == ("鲁迅小说三篇：孔乙己\u3000故乡\u3000祝福", "鲁迅")
    assert titles(LU_XUN) == ["第一章\u3000孔乙己", "第二章\u3000故乡", "第三章\u3000祝福"]
    assert m.slug == "lu-xun-kong-yiji-gu-xiang-zhu-fu-zh"
    first = m.chapters[0].paragraphs[1].segments
    assert first[0].text == "鲁镇的酒店的格局，是和别处不同的：都是当街一个曲尺形的大柜台，柜里面预备着热水，可以随时温酒。"
    assert not any(s.text.startswith("\u3000") for s in m.segments)
    quoted = [s.text for s in m.segments if s.kind == "dialogue"]
    assert "“我真傻，真的，”" in quoted
    assert all(s.kind == "dialogue" for s in m.segments if s.text.startswith("“") and s.text.endswith("”"))


def test_segment_ids_are_unique_well_formed_and_stable_across_reads():
    first = book(CAROL)[0]
    again = read_book(CAROL)[0]
    assert first.to_dict() == again.to_dict()
    ids = [s.id for s in first.segments]
    assert len(ids) == len(set(ids))
    assert all(SEGMENT_ID.fullmatch(i) for i in ids)
    assert ids[0] == "c01-p0001-s01"
    for chapter in first.chapters:
        for paragraph in chapter.paragraphs:
            assert paragraph.id.startswith(chapter.id + "-p")
            assert all(s.id.startswith(paragraph.id + "-s") for s in paragraph.segments)


def test_every_corpus_book_has_clean_bounded_segments():
    for path in (PP_EPUB, SHERLOCK, CAROL, ALICE_EPUB, EARNEST, ALICE_MD, LU_XUN):
        m = book(path)[0]
        for seg in m.segments:
            assert seg.text.strip() and re.search(r"\w", seg.text), seg.id
            assert len(seg.text) <= 400, seg.id
            assert not re.search("[\u2060\u200b\u00ad\u00a0\u200a]", seg.text), seg.id
            assert seg.spoken.strip() and "\n" not in seg.spoken, seg.id


# --- sentences --------------------------------------------------------------------------------------------------


def test_sentences_do_not_break_after_titles_initials_or_mid_exclamation():
    text = "I saw Mr. Darcy and Mrs. Bennet at St. Paul’s with J. K. Smith, e.g. on Monday. Then we left."
    assert split_sentences(text, "en") == [
        "I saw Mr. Darcy and Mrs. Bennet at St. Paul’s with J. K. Smith, e.g. on Monday.", "Then we left."]
    assert split_sentences("“Oh! single, my dear, to be sure! A single man.”", "en") == [
        "“Oh! single, my dear, to be sure!", "A single man.”"]
    assert split_sentences("I wonder … Perhaps not. “Seven!” I answered.", "en") == [
        "I wonder …", "Perhaps not.", "“Seven!”", "I answered."]


def test_quotes_and_narration_become_separate_segments():
    assert segment_text("“I am,” said he, “very glad.”", "en") == [
        ("“I am,”", True), ("said he,", False), ("“very glad.”", True)]
    # A paragraph of a speech that goes on into the next one never closes its quote: still dialogue.
    assert segment_text("“It was late. We went home.", "en") == [("“It was late.", True), ("We went home.", True)]
    # A short quoted title inside a sentence is part of the narration.
    assert segment_text("It was labelled “Orange Marmalade,” but it was empty.", "en") == [
        ("It was labelled “Orange Marmalade,” but it was empty.", False)]
    # Apostrophes are not quotes; with single-quote books ‘…’ is speech.
    assert segment_text("‘I don’t know,’ said Jo.", "en", single_quotes=True) == [
        ("‘I don’t know,’", True), ("said Jo.", False)]
    assert segment_text("「好。」他说。", "zh") == [("「好。」", True), ("他说。", False)]


def test_chinese_sentences_split_on_full_stops_and_keep_closing_quotes():
    text = "“我真傻，真的，”她说，“我单知道雪天是野兽在深山里没有食吃。我不知道春天也会有。”"
    assert segment_text(text, "zh") == [
        ("“我真傻，真的，”", True), ("她说，", False),
        ("“我单知道雪天是野兽在深山里没有食吃。", True), ("我不知道春天也会有。”", True)]
    assert split_sentences("孩子们看着笑……那时我们走了！", "zh") == ["孩子们看着笑……", "那时我们走了！"]


def test_long_sentences_are_cut_at_semicolons_then_commas():
    sentence = "; ".join(["the rain fell on the roofs of the town all through the night"] * 12) + "."
    pieces = split_long(sentence)
    assert len(pieces) > 1 and all(len(p) <= 400 for p in pieces)
    assert all(p.endswith(";") for p in pieces[:-1])
    assert " ".join(pieces) == sentence


def test_invisible_characters_go_and_spoken_form_collapses_spaces():
    assert clean_text("Oh!\u2060\u200a\u2060… by\u00a0the way, co\u00adoperate\u200b") == "Oh! … by the way, cooperate"
    assert spoken_form("line one\nline  two", "en") == "line one, line two"  # verse line ends pause
    assert detect_language("鲁镇的酒店的格局") == "zh" and detect_language("It is a truth") == "en"


def test_slugify():
    assert slugify("Alice’s Adventures in Wonderland") == "alices-adventures-in-wonderland"
    assert slugify("Les Misérables: Tome I") == "les-miserables-tome-i"
    zh = slugify("鲁迅小说三篇")
    assert zh.startswith("book-") and zh.isascii() and zh == slugify("鲁迅小说三篇") != slugify("故乡")
    assert slugify("第一章　孔乙己", fallback="") == ""


# --- text and markdown built here -------------------------------------------------------------------------------


def test_text_encodings_utf16_bom_utf8_bom_and_gb18030(tmp_path):
    body = "第一章　开始\n\n　　“你好，”他说。\n\n第二章　结束\n\n　　完了。\n"
    for name, data in [("a.txt", body.encode("utf-16")), ("b.txt", b"\xef\xbb\xbf" + body.encode()),
                       ("c.txt", body.encode("gb18030"))]:
        (tmp_path / name).write_bytes(data)
        m, _ = read_book(tmp_path / name)
        assert [c.title for c in m.chapters] == ["第一章　开始", "第二章　结束"], name
        assert [s.text for s in m.chapters[0].segments] == ["第一章　开始", "“你好，”", "他说。"], name
        assert m.language == "zh" and m.title == name[0]


def test_markdown_strips_markup_and_reads_verse_and_scene_breaks(tmp_path):
    source = tmp_path / "tale.md"
    source.write_text(
        "# The Tale\n\nby Ann Example\n\n## Chapter 1\n\nIt was **very** _dark_ and [stormy](http://x).![a map](m.png)"
        "[^1]\n\n* * *\n\n> Twinkle, twinkle,  \n> little star.\n\n## Chapter 2\n\nThe end.\n\n[^1]: A note.\n",
        encoding="utf-8")
    m, _ = read_book(source)
    assert (m.title, m.author) == ("The Tale", "Ann Example")
    assert [c.title for c in m.chapters] == ["Chapter 1", "Chapter 2"]
    paragraphs = m.chapters[0].paragraphs
    assert [p.kind for p in paragraphs] == ["heading", "text", "scene_break", "verse"]
    assert paragraphs[1].segments[0].text == "It was very dark and stormy."
    assert paragraphs[2].segments == ()
    assert paragraphs[3].segments[0].text == "Twinkle, twinkle,\nlittle star."
    assert [s.text for s in m.chapters[1].segments] == ["Chapter 2", "The end."]


def test_text_without_headings_is_one_chapter_named_after_the_book(tmp_path):
    source = tmp_path / "note.txt"
    source.write_text("A SHORT NOTE\n\nby Someone\n\nHello there. Goodbye.\n", encoding="utf-8")
    m, _ = read_book(source)
    assert [c.title for c in m.chapters] == ["A Short Note"]
    assert [s.text for s in m.segments] == ["A Short Note", "Hello there.", "Goodbye."]


# --- EPUB 2 and broken EPUBs built here -------------------------------------------------------------------------

CONTAINER = ('<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
             '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
             '</rootfiles></container>')
OPF2 = """<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="2.0" unique-identifier="id">
 <metadata xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:opf="http://www.idpf.org/2007/opf">
  <dc:title>A Tiny Tale</dc:title><dc:creator opf:role="aut">Ann Example</dc:creator>
  <dc:language>en</dc:language><dc:identifier id="id">tiny-1</dc:identifier><meta name="cover" content="cover-img"/>
 </metadata>
 <manifest>
  <item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>
  <item id="cover-img" href="images/front.jpg" media-type="image/jpeg"/>
  <item id="coverpage" href="cover.xhtml" media-type="application/xhtml+xml"/>
  <item id="copy" href="copyright.xhtml" media-type="application/xhtml+xml"/>
  <item id="text1" href="text/part1.xhtml" media-type="application/xhtml+xml"/>
  <item id="text2" href="text/part2.xhtml" media-type="application/xhtml+xml"/>
 </manifest>
 <spine toc="ncx"><itemref idref="coverpage" linear="no"/><itemref idref="copy"/>
  <itemref idref="text1"/><itemref idref="text2"/></spine>
 <guide><reference type="cover" title="Cover" href="cover.xhtml"/></guide>
</package>"""
NCX = """<?xml version="1.0" encoding="utf-8"?>
<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1"><navMap>
 <navPoint id="n1" playOrder="1"><navLabel><text>The Beginning</text></navLabel><content src="text/part1.xhtml#c1"/></navPoint>
 <navPoint id="n2" playOrder="2"><navLabel><text>The Middle</text></navLabel><content src="text/part1.xhtml#c2"/></navPoint>
 <navPoint id="n3" playOrder="3"><navLabel><text>The End</text></navLabel><content src="text/part2.xhtml"/></navPoint>
</navMap></ncx>"""
PAGE = ('<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
        '<head><title>x</title></head><body>{}</body></html>')
PART1 = PAGE.format(
    '<h2 id="c1">1</h2><p>“Hello,” said Tom.<a href="notes.xhtml#n1"><sup>1</sup></a> '
    '<img src="a.png" alt="A picture of Tom"/>It was co\u00adoperative.</p><p>* * *</p><p>Later.</p>'
    '<h2 id="c2">2</h2><p>Mrs. Smith waved.</p><hr/><p>Then she left.</p>')
PART2 = PAGE.format('<div><h1>3</h1><p>The end came.</p></div>')
JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + b"\x00" * 64 + b"\xff\xd9"


def make_epub(path: Path, extra: dict[str, bytes | str] | None = None, skip: tuple[str, ...] = ()) -> Path:
    files = {
        "META-INF/container.xml": CONTAINER, "OEBPS/content.opf": OPF2, "OEBPS/toc.ncx": NCX,
        "OEBPS/images/front.jpg": JPEG, "OEBPS/cover.xhtml": PAGE.format('<img src="images/front.jpg" alt="Cover"/>'),
        "OEBPS/copyright.xhtml": PAGE.format("<p>Copyright 2024. All rights reserved.</p>"),
        "OEBPS/text/part1.xhtml": PART1, "OEBPS/text/part2.xhtml": PART2, **(extra or {}),
    }
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        for name, data in files.items():
            if name not in skip:
                zf.writestr(name, data)
    return path


def test_epub2_titles_from_ncx_chapters_split_at_headings_and_cover_from_meta(tmp_path):
    m, cover = read_book(make_epub(tmp_path / "tiny.epub"))
    assert (m.title, m.author, m.language) == ("A Tiny Tale", "Ann Example", "en")
    assert [c.title for c in m.chapters] == ["The Beginning", "The Middle", "The End"]
    assert [c.source for c in m.chapters] == ["text/part1.xhtml#c1", "text/part1.xhtml#c2", "text/part2.xhtml"]
    assert [(s.kind, s.text) for s in m.chapters[0].segments] == [
        ("heading", "The Beginning"), ("dialogue", "“Hello,”"), ("narration", "said Tom."),
        ("narration", "It was cooperative."), ("narration", "Later.")]
    assert [p.kind for p in m.chapters[0].paragraphs] == ["heading", "text", "scene_break", "text"]
    assert [p.kind for p in m.chapters[1].paragraphs] == ["heading", "text", "scene_break", "text"]
    assert [(s.kind, s.source) for s in m.skipped] == [("cover", "cover.xhtml"), ("copyright", "copyright.xhtml"),
                                                       ("toc", "toc.ncx")]
    assert cover == Cover(data=JPEG, mime="image/jpeg")


def test_font_obfuscation_is_not_drm(tmp_path):
    fonts = ('<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
             'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
             '<enc:EncryptionMethod Algorithm="http://www.idpf.org/2008/embedding"/>'
             '<enc:CipherData><enc:CipherReference URI="OEBPS/fonts/a.otf"/></enc:CipherData>'
             '</enc:EncryptedData></encryption>')
    m, _ = read_book(make_epub(tmp_path / "fonts.epub", {"META-INF/encryption.xml": fonts}))
    assert len(m.chapters) == 3


def test_drm_epub_is_refused_with_a_clear_message(tmp_path):
    drm = ('<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
           'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
           '<enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>'
           '<enc:CipherData><enc:CipherReference URI="OEBPS/text/part1.xhtml"/></enc:CipherData>'
           '</enc:EncryptedData></encryption>')
    path = make_epub(tmp_path / "locked.epub", {"META-INF/encryption.xml": drm})
    with pytest.raises(UserError, match=r"locked\.epub: the EPUB is DRM-encrypted \(.*aes128-cbc\).*DRM-free"):
        read_book(path)


def test_corrupt_epubs_are_refused(tmp_path):
    junk = tmp_path / "junk.epub"
    junk.write_bytes(b"PK\x03\x04 this is not really a zip file" * 10)
    with pytest.raises(UserError, match=r"junk\.epub: not a valid EPUB"):
        read_book(junk)
    no_opf = make_epub(tmp_path / "no-opf.epub", skip=("OEBPS/content.opf",))
    with pytest.raises(UserError, match=r"no-opf\.epub: not a valid EPUB"):
        read_book(no_opf)
    no_container = make_epub(tmp_path / "no-container.epub", skip=("META-INF/container.xml",))
    with pytest.raises(UserError, match=r"no-container\.epub: not a valid EPUB"):
        read_book(no_container)


def test_missing_unsupported_binary_and_empty_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match=r"book file not found: .*nothing\.epub"):
        read_book(tmp_path / "nothing.epub")
    for name in ("report.docx", "scan.pdf"):
        (tmp_path / name).write_bytes(b"%PDF-1.4")
        with pytest.raises(UserError, match=r"unsupported file type.*\.epub, \.txt, \.md"):
            read_book(tmp_path / name)
    binary = tmp_path / "image.txt"
    binary.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(UserError, match=r"image\.txt: not a text file"):
        read_book(binary)
    empty = tmp_path / "empty.md"
    empty.write_text("\n\n* * *\n\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"empty\.md: no chapters with speakable text"):
        read_book(empty)


# --- ingest writes files ----------------------------------------------------------------------------------------


def test_ingest_writes_manuscript_and_cover_beside_it(tmp_path):
    manuscript = ingest(EARNEST, lambda slug: tmp_path / "manuscripts" / slug)
    folder = tmp_path / "manuscripts" / "the-importance-of-being-earnest"
    assert manuscript.cover == "cover.jpg"
    assert (folder / "cover.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    assert Manuscript.load(folder / "manuscript.json") == manuscript
    data = json.loads((folder / "manuscript.json").read_text(encoding="utf-8"))
    assert data["cover"] == "cover.jpg" and len(data["chapters"]) == 3
    assert sorted(p.name for p in folder.iterdir()) == ["cover.jpg", "manuscript.json"]  # no temp files left
    assert manuscript.source_sha256 == "3ef71d05b9329edd862087dce470a8a87107913bae5866d2f2aaca826c7379cd"
    renamed = ingest(LU_XUN, lambda slug: tmp_path / slug, slug="Lu Xun: Three Stories")
    assert renamed.slug == "lu-xun-three-stories" and renamed.cover is None
    assert Manuscript.load(tmp_path / "lu-xun-three-stories" / "manuscript.json") == renamed


OPF3 = """<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
 <metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Parts</dc:title><dc:identifier id="id">p</dc:identifier>
  <dc:creator>Ann Example</dc:creator></metadata>
 <manifest>
  <item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>
  <item id="cover" href="cover.png" media-type="image/png" properties="cover-image"/>
  <item id="ded" href="dedication.xhtml" media-type="application/xhtml+xml"/>
  <item id="p1" href="part-1.xhtml" media-type="application/xhtml+xml"/>
  <item id="c1" href="chapter-1.xhtml" media-type="application/xhtml+xml"/>
 </manifest>
 <spine><itemref idref="nav"/><itemref idref="ded"/><itemref idref="p1"/><itemref idref="c1"/></spine>
</package>"""
NAV3 = ('<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml" '
        'xmlns:epub="http://www.idpf.org/2007/ops"><body><nav epub:type="toc"><ol>'
        '<li><a href="part-1.xhtml">Part One</a><ol><li><a href="chapter-1.xhtml">1</a></li></ol></li>'
        '</ol></nav></body></html>')
PAGE3 = ('<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml" '
         'xmlns:epub="http://www.idpf.org/2007/ops"><head><title>x</title></head><body epub:type="{}">{}</body></html>')
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def test_epub3_part_title_page_leads_into_its_first_chapter(tmp_path):
    path = make_epub(tmp_path / "parts.epub", {
        "OEBPS/content.opf": OPF3, "OEBPS/nav.xhtml": NAV3, "OEBPS/cover.png": PNG,
        "OEBPS/dedication.xhtml": PAGE3.format("frontmatter", '<section epub:type="dedication"><p>For Bo.</p></section>'),
        "OEBPS/part-1.xhtml": PAGE3.format("bodymatter", '<section id="part-1" epub:type="part"><h2>Part One</h2></section>'),
        "OEBPS/chapter-1.xhtml": PAGE3.format("bodymatter", '<section id="part-1" epub:type="part">'
                                              '<section id="chapter-1" epub:type="chapter"><h3>1</h3>'
                                              '<blockquote epub:type="z3998:poem"><p><span>Roses,</span><br/>'
                                              '<span>violets.</span></p></blockquote><p>Dr. No left.</p>'
                                              '</section></section>'),
    }, skip=("OEBPS/toc.ncx",))
    m, cover = read_book(path)
    assert m.language == "en"  # no dc:language: detected from the text
    assert [c.title for c in m.chapters] == ["Chapter 1"]
    assert [(p.kind, [s.text for s in p.segments]) for p in m.chapters[0].paragraphs] == [
        ("heading", ["Part One"]), ("heading", ["Chapter 1"]), ("verse", ["Roses,\nviolets."]),
        ("text", ["Dr. No left."])]
    assert [(s.kind, s.source) for s in m.skipped] == [("toc", "nav.xhtml"), ("dedication", "dedication.xhtml")]
    assert cover == Cover(data=PNG, mime="image/png") and cover.suffix == ".png"


# --- the chapter list matches each book's own table of contents -------------------------------------------------


def nav_chapter_titles(path: Path) -> list[str]:
    """Return the story entries of an EPUB's nav, read here with lxml alone.

    Rule: walk the nav's <ol>; an entry whose document is front or back matter (its <body> epub:type says
    so) is dropped, but its own sub-list is walked in its place (Standard Ebooks nests the chapters under
    the half-title page); an entry whose document is bodymatter is one chapter, and its sub-entries (the
    parts of a story, as in Sherlock) are not. A title that is a bare numeral, or a numeral and a name, is
    said with "Chapter" before it ("I" -> "Chapter I", "I: Down the Rabbit-Hole" -> "Chapter I: Down ...").
    """
    from lxml import etree

    ops = "{http://www.idpf.org/2007/ops}type"
    with zipfile.ZipFile(path) as zf:
        nav_doc = etree.fromstring(zf.read("epub/toc.xhtml"))

        def body_types(href: str) -> list[str]:
            doc = etree.fromstring(zf.read("epub/" + href.partition("#")[0]))
            body = next(el for el in doc.iter() if etree.QName(el).localname == "body")
            return (body.get(ops) or "").split()

        def walk(ol) -> list[str]:
            out = []
            for li in (el for el in ol if etree.QName(el).localname == "li"):
                a = next(el for el in li if etree.QName(el).localname == "a")
                sub = next((el for el in li if etree.QName(el).localname == "ol"), None)
                if "bodymatter" in body_types(a.get("href")):
                    out.append(" ".join("".join(a.itertext()).split()))
                elif sub is not None:
                    out.extend(walk(sub))
            return out

        nav = next(el for el in nav_doc.iter() if etree.QName(el).localname == "nav" and el.get(ops) == "toc")
        titles = walk(next(el for el in nav if etree.QName(el).localname == "ol"))
    return [re.sub(r"^([IVXLC]+)(?=$|:)", r"Chapter \1", t) for t in titles]


@pytest.mark.parametrize("path", [PP_EPUB, SHERLOCK, CAROL, ALICE_EPUB, EARNEST], ids=lambda p: p.stem[:24])
def test_epub_chapters_are_the_navs_story_entries(path):
    expected = nav_chapter_titles(path)
    assert len(expected) == {PP_EPUB: 61, SHERLOCK: 12, CAROL: 5, ALICE_EPUB: 12, EARNEST: 3}[path]
    assert titles(path) == expected


def test_text_chapters_are_the_files_heading_lines():
    pp = re.findall(r"^CHAPTER ([IVXLC]+)\.$", PP_TXT.read_text(encoding="utf-8"), flags=re.M)
    assert titles(PP_TXT) == [f"Chapter {n}" for n in pp] and len(pp) == 61
    alice = re.findall(r"^# (.+)$", ALICE_MD.read_text(encoding="utf-8"), flags=re.M)
    assert titles(ALICE_MD) == alice and len(alice) == 12
    lu = re.findall(r"^(第.章\u3000.+)$", LU_XUN.read_text(encoding="utf-8"), flags=re.M)
    assert titles(LU_XUN) == lu and len(lu) == 3


# --- summary ----------------------------------------------------------------------------------------------------


def test_summary_counts_match_the_corpus_manifest():
    rows = summarize(book(PP_EPUB)[0])
    assert len(rows) == 61
    with zipfile.ZipFile(PP_EPUB) as zf:  # chapter I has 34 <p> elements
        assert zf.read("epub/text/chapter-1.xhtml").count(b"<p>") == 34
    assert rows[0] == {"number": 1, "title": "Chapter I", "source": "text/chapter-1.xhtml#chapter-1",
                       "paragraphs": 34, "segments": 66, "dialogue": 50, "characters": 4381}
    assert rows[0]["characters"] == sum(len(s.text) for s in book(PP_EPUB)[0].chapters[0].segments)
    # MANIFEST.md counts 2,043 paragraphs in Pride and Prejudice, 708 in A Christmas Carol, 2,531 in Sherlock,
    # 791 in Alice and 215 in the Lu Xun.
    assert sum(r["paragraphs"] for r in rows) == 2043
    for path, paragraphs in [(CAROL, 708), (SHERLOCK, 2531), (ALICE_MD, 791), (LU_XUN, 215)]:
        assert sum(r["paragraphs"] for r in summarize(book(path)[0])) == paragraphs, path.name
    txt = summarize(book(PP_TXT)[0])
    assert [(r["number"], r["title"], r["segments"], r["dialogue"]) for r in txt] == [
        (r["number"], r["title"], r["segments"], r["dialogue"]) for r in rows]
    assert json.loads(json.dumps(rows)) == rows


# --- notes read as asides ---------------------------------------------------------------------------------------

NOTES_OPF = """<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
 <metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Noted</dc:title><dc:identifier id="id">n</dc:identifier>
  <dc:language>en</dc:language></metadata>
 <manifest>
  <item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>
  <item id="c1" href="chapter-1.xhtml" media-type="application/xhtml+xml"/>
  <item id="en" href="endnotes.xhtml" media-type="application/xhtml+xml"/>
 </manifest>
 <spine><itemref idref="c1"/><itemref idref="en"/></spine>
</package>"""
NOTES_CHAPTER = PAGE3.format("bodymatter", (
    '<section id="chapter-1" epub:type="chapter"><h2>I</h2>'
    '<p>He spoke of the entail.<a href="endnotes.xhtml#note-1" id="noteref-1" epub:type="noteref">1</a> '
    'Then he left.</p><p>She wrote to “Mr. Collins”.<a href="endnotes.xhtml#note-2" id="noteref-2" '
    'epub:type="noteref">2</a></p><p>Nothing more was said.</p></section>'))
NOTES_END = PAGE3.format("backmatter", (
    '<section id="endnotes" epub:type="endnotes"><h2>Endnotes</h2><ol>'
    '<li id="note-1" epub:type="endnote"><p>An entail fixes who inherits an estate. '
    '<a href="chapter-1.xhtml#noteref-1" epub:type="backlink">↩</a></p></li>'
    '<li id="note-2" epub:type="endnote"><p>A clergyman; see “Letters”. '
    '<a href="chapter-1.xhtml#noteref-2" epub:type="backlink">↩</a></p></li></ol></section>'))
NOTES_NAV = ('<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml" '
             'xmlns:epub="http://www.idpf.org/2007/ops"><body><nav epub:type="toc"><ol>'
             '<li><a href="chapter-1.xhtml">I</a></li><li><a href="endnotes.xhtml">Endnotes</a></li></ol></nav>'
             '</body></html>')


def test_endnotes_are_skipped_by_default_and_read_after_their_paragraph_as_asides(tmp_path):
    path = make_epub(tmp_path / "noted.epub", {
        "OEBPS/content.opf": NOTES_OPF, "OEBPS/nav.xhtml": NOTES_NAV, "OEBPS/chapter-1.xhtml": NOTES_CHAPTER,
        "OEBPS/endnotes.xhtml": NOTES_END}, skip=("OEBPS/toc.ncx",))
    plain = read_book(path)[0]
    assert [s.text for s in plain.segments] == [
        "Chapter I", "He spoke of the entail.", "Then he left.", "She wrote to “Mr. Collins”.", "Nothing more was said."]
    assert ("endnotes", "endnotes.xhtml") in [(s.kind, s.source) for s in plain.skipped]
    aside = read_book(path, notes="aside")[0]
    assert [(p.kind, [(s.kind, s.speaker, s.text) for s in p.segments]) for p in aside.chapters[0].paragraphs] == [
        ("heading", [("heading", "narrator", "Chapter I")]),
        ("text", [("narration", "narrator", "He spoke of the entail."), ("narration", "narrator", "Then he left.")]),
        ("text", [("narration", "narrator", "Note: An entail fixes who inherits an estate.")]),
        ("text", [("narration", "narrator", "She wrote to “Mr. Collins”.")]),
        ("text", [("narration", "narrator", "Note: A clergyman; see “Letters”.")]),
        ("text", [("narration", "narrator", "Nothing more was said.")]),
    ]
    assert [c.title for c in aside.chapters] == ["Chapter I"]  # the endnotes are still not a chapter


def test_markdown_footnotes_read_as_asides(tmp_path):
    source = tmp_path / "fn.md"
    source.write_text("# Chapter 1\n\nThe ship sailed.[^a] It was late.\n\n# Chapter 2\n\nThe end.[^a][^b]\n\n"
                      "[^a]: A *brig*, two-masted.\n[^b]: Or so it seemed.\n", encoding="utf-8")
    assert [s.text for s in read_book(source)[0].segments] == [
        "Chapter 1", "The ship sailed.", "It was late.", "Chapter 2", "The end."]
    m = read_book(source, notes="aside")[0]
    assert [s.text for s in m.segments] == [
        "Chapter 1", "The ship sailed.", "It was late.", "Note: A brig, two-masted.",
        "Chapter 2", "The end.", "Note: A brig, two-masted.", "Note: Or so it seemed."]


# --- streaming text -----------------------------------------------------------------------------------------------


def test_text_file_streams_lines_across_block_boundaries(tmp_path):
    text = PP_TXT.read_text(encoding="utf-8")[:60_000]
    data = text.replace("\n", "\r\n").encode("utf-8") + "Le caf\u00e9 “noir”\rend".encode("cp1252")
    path = tmp_path / "crlf.txt"
    path.write_bytes(data)
    expected = (text.replace("\r\n", "\n") + "Le caf\u00e9 “noir”\nend").split("\n")
    for block in (7, 4093, 1 << 20):  # cuts inside CRLF pairs and multibyte characters
        source = TextFile(path, block_bytes=block)
        assert list(source.lines(report=False)) == expected, block
        assert source.sha256 == hashlib.sha256(data).hexdigest()
        assert (source.encoding, source.replaced) == ("utf-8", 3)  # é “ ” as single Windows-1252 bytes
        assert source.first_replaced_line == text.count("\n") + 1


def test_a_book_longer_than_one_read_block_is_read_like_its_halves(tmp_path):
    text = PP_TXT.read_text(encoding="utf-8")
    head, body = text.split("\n\nCHAPTER I.\n", 1)
    second = re.sub(r"^CHAPTER ([IVXLC]+)\.$", r"CHAPTER \1 AGAIN.", "CHAPTER I.\n" + body, flags=re.M)
    path = tmp_path / "twice.txt"
    path.write_text(text + "\n" + second, encoding="utf-8")
    assert path.stat().st_size > 1 << 20  # more than one block
    m = read_book(path)[0]
    one = book(PP_TXT)[0]
    assert len(m.chapters) == 122 and m.chapters[61].title == "Chapter I: Again"
    assert [s.text for s in m.segments if s.kind != "heading"] == 2 * [s.text for s in one.segments if s.kind != "heading"]
    assert m.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_saved_manuscript_is_byte_identical_to_manuscript_save(tmp_path):
    m = book(ALICE_MD)[0]
    save_manuscript(m, tmp_path / "streamed.json")
    m.save(tmp_path / "whole.json")
    assert (tmp_path / "streamed.json").read_bytes() == (tmp_path / "whole.json").read_bytes()


def test_project_gutenberg_header_and_licence_are_left_out(tmp_path):
    source = tmp_path / "pg.txt"
    source.write_text(
        "The Project Gutenberg eBook of A Tale\n\nThis eBook is for the use of anyone.\n\n"
        "*** START OF THE PROJECT GUTENBERG EBOOK A TALE ***\n\nA TALE\n\nby Ann Example\n\n"
        "CHAPTER I.\n\nIt began.\n\nCHAPTER II.\n\nIt ended.\n\n"
        "*** END OF THE PROJECT GUTENBERG EBOOK A TALE ***\n\nUpdated editions will replace the previous one.\n",
        encoding="utf-8")
    m, _ = read_book(source)
    assert (m.title, m.author) == ("A Tale", "Ann Example")
    assert [s.text for s in m.segments] == ["Chapter I", "It began.", "Chapter II", "It ended."]
    assert [(s.kind, s.source) for s in m.skipped] == [
        ("license", "line 1"), ("frontmatter", "lines 7-9"), ("license", "line 19")]


def test_encoding_is_told_apart_from_the_bytes(tmp_path):
    """GB18030 Chinese reads as UTF-8 by chance for a fifth of its characters; it must still be GB18030."""
    lu = LU_XUN.read_text(encoding="utf-8")
    (tmp_path / "gb.txt").write_bytes(lu.encode("gb18030"))
    gb = read_book(tmp_path / "gb.txt")[0]
    assert [(s.id, s.text) for s in gb.segments] == [(s.id, s.text) for s in book(LU_XUN)[0].segments]
    french = "Le café était fermé ; à côté, la garçonnière “ouverte”.\n\n"
    cases = {"cp1252": french.encode("cp1252") * 40, "utf-8": french.encode() * 40,
             "mostly-cp1252": french.encode() * 4 + french.encode("cp1252") * 36}
    for name, data in cases.items():
        (tmp_path / f"{name}.txt").write_bytes(b"CHAPTER I.\n\n" + data)
        m = read_book(tmp_path / f"{name}.txt")[0]
        assert {s.text for s in m.segments[1:]} == {"Le café était fermé ; à côté, la garçonnière “ouverte”."}, name
