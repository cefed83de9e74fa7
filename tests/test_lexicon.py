"""The pronunciation lexicon: files read, text rewritten, the real voice, suggestions, re-rendering."""

import json
import time
from pathlib import Path

import numpy as np
import pytest

from stages.cache import TakeCache
from stages.cast import Casting, load_library
from stages.engines import get_engine
from stages.engines.piper import BUNDLED_MODEL, _load_voice
from stages.errors import UserError
from stages.lexicon import Lexicon, Pronunciation, apply, load_lexicon, read_folder, suggest, write_lexicon_template
from stages.lexicon.ipa import espeak_stress, phoneme_symbols, tidy_ipa, xsampa_to_ipa
from stages.model import Chapter, Paragraph, Segment
from stages.render import render_chapter

PLS = """<?xml version="1.0" encoding="UTF-8"?>
<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon"
         alphabet="ipa" xml:lang="en-US">
  <meta name="author" content="a producer"/>
  <lexeme>
    <grapheme>Bingley</grapheme>
    <grapheme>BINGLEY</grapheme>
    <phoneme>ˈbɪŋli</phoneme>
  </lexeme>
  <lexeme>
    <grapheme>Darcy</grapheme>
    <alias>DAR-see</alias>
  </lexeme>
  <lexeme>
    <grapheme>Meryton</grapheme>
    <phoneme alphabet="x-sampa">"mEr\\It@n</phoneme>
    <phoneme prefer="true">ˈmɛɹɪtən</phoneme>
  </lexeme>
</lexicon>
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder / name


def error_of(folder: Path, name: str, text: str) -> str:
    write(folder, name, text)
    with pytest.raises(UserError) as e:
        read_folder(folder)
    return str(e.value)


def test_pls_graphemes_alias_preferred_phoneme_and_x_sampa(tmp_path):
    write(tmp_path, "lexicon.pls", PLS)
    lex = read_folder(tmp_path)
    assert lex.entries == {
        "Bingley": Pronunciation(None, "ˈbɪŋli"),
        "BINGLEY": Pronunciation(None, "ˈbɪŋli"),
        "Darcy": Pronunciation("DAR-see", None),
        "Meryton": Pronunciation(None, "ˈmɛɹɪtən"),  # prefer="true" wins over the first phoneme
    }
    assert lex.sources == (str(tmp_path / "lexicon.pls"),)
    assert xsampa_to_ipa('"mEr\\It@n', "here") == "ˈmɛɹɪtən"
    assert xsampa_to_ipa('"b{T%rum', "here") == "ˈbæθˌrum"


@pytest.mark.parametrize(
    "text, expected",
    [
        (PLS.replace("</lexeme>\n  <lexeme>", "</lexeme>\n  <lexem>", 1), "line 13: not well-formed XML (Opening and ending tag mismatch: lexem line 10"),
        (PLS.replace("<lexicon version", "<lexikon version").replace("</lexicon>", "</lexikon>"), "root element must be <lexicon"),
        (PLS.replace('alphabet="ipa"', 'alphabet="x-arpabet"'), "line 3: alphabet 'x-arpabet' is not supported; use one of: ipa, x-sampa"),
        (PLS.replace("<grapheme>Darcy</grapheme>", ""), "line 10: <lexeme> has no <grapheme>"),
        (PLS.replace("<alias>DAR-see</alias>", ""), "line 10: <lexeme> has neither <phoneme> nor <alias>"),
        (PLS.replace("ˈbɪŋli", "ˈbɝŋli"), "line 5 ('Bingley'): symbol 'ɝ' (U+025D LATIN SMALL LETTER REVERSED OPEN E WITH HOOK)"),
        (PLS.replace('"mEr\\It@n', '"mEr\\It@n!').replace(' prefer="true"', ""), "line 14: '!' in X-SAMPA"),
    ],
)
def test_pls_errors_name_the_file_line_and_the_fix(tmp_path, text, expected):
    message = error_of(tmp_path, "lexicon.pls", text)
    assert message.startswith(str(tmp_path / "lexicon.pls"))
    assert expected in message


def test_toml_and_csv_entries(tmp_path):
    write(tmp_path, "lexicon.toml", '[words]\n"Darcy" = "DAR-see"\nBingley = { ipa = "/ˈbɪŋ.gli/" }\n'
                                    '"Rosings" = { respelling = "ROH-zings", x-sampa = "\\"r@Uz@Nz" }\n')
    write(tmp_path, "lexicon.csv", "word,respelling,ipa\n# a comment line\nLongbourn,LONG-born,\nchuse,chooze,tʃuːz\n\n")
    lex = read_folder(tmp_path)
    assert lex.entries == {
        "Darcy": Pronunciation("DAR-see", None),
        "Bingley": Pronunciation(None, "ˈbɪŋɡli"),  # slashes and syllable dots dropped, ASCII g made IPA ɡ
        "Rosings": Pronunciation("ROH-zings", "ˈrəʊzəŋz"),
        "Longbourn": Pronunciation("LONG-born", None),
        "chuse": Pronunciation("chooze", "tʃuːz"),
    }
    assert lex.sources == (str(tmp_path / "lexicon.csv"), str(tmp_path / "lexicon.toml"))
    (tmp_path / "lexicon.toml").unlink()
    write(tmp_path, "lexicon.csv", "Darcy,DAR-see\nBingley,,ˈbɪŋli\n")  # no header: word,respelling,ipa
    assert read_folder(tmp_path).entries == {"Darcy": Pronunciation("DAR-see"), "Bingley": Pronunciation(None, "ˈbɪŋli")}


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("lexicon.toml", '[words]\nDarcy = DAR-see\n', "not valid TOML (Invalid value (at line 2, column 9))"),
        ("lexicon.toml", '[names]\nDarcy = "DAR-see"\n', "unknown key or table 'names'; write entries under [words]"),
        ("lexicon.toml", '[words]\n\n"Darcy" = { say = "DAR-see" }\n', "line 3 entry 'Darcy': use only the string keys"),
        ("lexicon.toml", '[words]\n"Darcy" = ""\n', "line 2 entry 'Darcy': the respelling is empty"),
        ("lexicon.toml", '[words]\n"Darcy" = { ipa = "ˈdɑːɹsi\u0334" }\n', "symbol '\u0334' (U+0334 COMBINING TILDE OVERLAY)"),
        ("lexicon.toml", '[words]\nDarcy = { ipa = "ˈdɑːɹsi", x-sampa = "dA:rsi" }\n', "both IPA and X-SAMPA are given"),
        ("lexicon.csv", "word,respelling,ipa\nDarcy,DAR, see,\n", "line 2: 4 fields where 3 are expected"),
        ("lexicon.csv", "word,respelling,ipa\nDarcy,,\n", "line 2: no pronunciation; give a respelling"),
        ("lexicon.csv", "word,sound\n", "line 1: unknown column 'sound'"),
        ("lexicon.csv", "1813,eighteen thirteen,\n", "line 1: the word '1813' has no letters"),
    ],
)
def test_toml_and_csv_errors(tmp_path, name, text, expected):
    message = error_of(tmp_path, name, text)
    assert message.startswith(str(tmp_path / name)) and expected in message


def test_a_lexicon_that_is_not_utf8_is_refused(tmp_path):
    (tmp_path / "lexicon.csv").write_bytes("Darcy,DAR-see\nBenoît,ben-WAH,\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"lexicon.csv is not UTF-8 text \(byte 18\); save it as UTF-8"):
        read_folder(tmp_path)


def test_series_then_book_and_the_book_wins(tmp_path):
    series, book = tmp_path / "series", tmp_path / "book"
    write(series, "lexicon.toml", '[words]\nDarcy = "DAR-see"\nPemberley = "PEM-ber-lee"\n')
    write(book, "lexicon.csv", "word,respelling,ipa\nDarcy,DAR-cy,\n")
    lex = load_lexicon(book, [series])
    assert lex.lookup("Darcy") == Pronunciation("DAR-cy") and lex.lookup("Pemberley") == Pronunciation("PEM-ber-lee")
    assert lex.sources == (str(series / "lexicon.toml"), str(book / "lexicon.csv"))
    assert len(load_lexicon(tmp_path / "no-such-book")) == 0  # a book without a lexicon
    with pytest.raises(UserError, match="series lexicon folder .*missing-series does not exist"):
        load_lexicon(book, [tmp_path / "missing-series"])
    write(book, "lexicon.toml", '[words]\nDarcy = "DAR-see"\n')  # the same word twice in one folder
    with pytest.raises(UserError, match=r"lexicon.toml line 2 entry 'Darcy': 'Darcy' is already defined at .*lexicon.csv line 2"):
        load_lexicon(book)


LEX = Lexicon({
    "Darcy": Pronunciation("DAR-see"),
    "Bingley": Pronunciation(None, "ˈbɪŋli"),
    "Lucas": Pronunciation(None, "ˈluːkəs"),
    "chuse": Pronunciation("chooze"),
    "Lady Catherine": Pronunciation("LAY-dee KATH-rin"),
})


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Mr. Darcy, and Darcy.", "Mr. dar-see, and dar-see."),
        ("“Darcy!” she said; ‘Darcy’", "“dar-see!” she said; ‘dar-see’"),
        ("Darcy’s pride and Darcy's house", "dar-see’s pride and dar-see's house"),
        ("DARCY darcy Darcyish Darcy-like", "DARCY darcy Darcyish dar-see-like"),  # capital entry: that case only
        ("I chuse, Chuse; CHUSE chuses", "I chooze, chooze; chooze chuses"),  # lowercase: any case, no plural
        ("said Bingley, and Bingley.", "said [[bˈɪŋli,]] and [[bˈɪŋli.]]"),  # punctuation moves inside the block
        ("Bingley’s sisters", "[[bˈɪŋliz]] sisters"),
        ("the Lucases’ house, the Lucases", "the [[lˈuːkəsɪz]] house, the [[lˈuːkəsɪz]]"),
        ("Bingley Bingley came", "[[bˈɪŋli bˈɪŋli]] came"),  # adjacent blocks become one
        ("Lady  Catherine and Lady Lucas", "lay-dee kath-rin and Lady [[lˈuːkəs]]"),
        ("nothing to change here", "nothing to change here"),
    ],
)
def test_apply(text, expected):
    assert apply(LEX, text) == expected


def test_apply_without_phoneme_blocks_or_lexicon():
    both = Lexicon({"Bingley": Pronunciation("BING-lee", "ˈbɪŋli"), "Lucas": Pronunciation(None, "ˈluːkəs")})
    assert apply(both, "Bingley and Lucas.") == "[[bˈɪŋli]] and [[lˈuːkəs.]]"
    assert apply(both, "Bingley and Lucas.", phonemes=False) == "bing-lee and Lucas."
    assert apply(None, "Bingley.") == "Bingley." and apply(Lexicon(), "Bingley.") == "Bingley."
    titles = Lexicon({"Mr.": Pronunciation("Mister")}, ("series/lexicon.toml",))
    assert apply(titles, "Mr. Darcy and Mr.Darcy") == "Mister Darcy and Mr.Darcy"
    assert Lexicon.from_dict(json.loads(json.dumps(both.to_dict()))) == both


def test_ipa_tidying_and_espeak_stress():
    assert tidy_ipa(" /ˈtʃ\u0361ɑː.lz/ ") == "ˈtʃɑːlz"
    assert tidy_ipa("'lO:ŋbɔːn") == "ˈlOːŋbɔːn"
    assert espeak_stress("ˈnɛðəˌfiːld") == "nˈɛðəfˌiːld"
    assert espeak_stress("ˈstɹ̩ ˌlɛdi") == "ˈstɹ̩ lˌɛdi"  # no vowel after the mark: left as written


@pytest.fixture(scope="module")
def piper_voice():
    return _load_voice(BUNDLED_MODEL)


def test_an_ipa_entry_is_what_the_voice_says(piper_voice):
    text = "I danced with Mr. Bingley twice."
    plain = sum(piper_voice.phonemize(text), [])
    spoken = sum(piper_voice.phonemize(apply(LEX, text)), [])
    assert "".join(plain).endswith("mˈɪstɚ.bˈɪŋɡli twˈaɪs.")  # espeak's guess has a hard g
    assert "".join(spoken).endswith("mˈɪstɚ. bˈɪŋli twˈaɪs.")
    assert all(p in piper_voice.config.phoneme_id_map for p in spoken)  # nothing dropped on the way to ids
    assert all(s in piper_voice.config.phoneme_id_map for s in phoneme_symbols())
    engine, joe = get_engine("piper"), load_library()["joe"]
    with_g = engine.synthesize("Bingley", joe)
    without_g = engine.synthesize(apply(LEX, "Bingley"), joe)
    assert 0.3 < len(without_g) / engine.sample_rate < 1.5 and np.abs(without_g).max() > 0.05
    assert len(without_g) < len(with_g)  # one phoneme fewer: the g is gone


def test_suggestions_for_pride_and_prejudice(corpus):
    from stages.ingest import read_book

    manuscript, _ = read_book(corpus / "jane-austen_pride-and-prejudice.epub")
    started = time.perf_counter()
    found = suggest(manuscript)
    seconds = time.perf_counter() - started
    names = [s.word for s in found if s.kind == "name"]
    rare = [s.word for s in found if s.kind == "rare"]
    print(f"\nsuggest: {len(names)} names, {len(rare)} rare words in {seconds:.2f} s; top 20:")
    for s in found[:20]:
        print(f"  {s.word} {s.count} {s.first_segment_id} {s.first_context}")
    assert {"Darcy", "Bingley", "Netherfield", "Longbourn", "Wickham", "Meryton", "Pemberley"} <= set(names[:20])
    assert not {"the", "and", "The", "And", "Elizabeth", "London", "Lady", "Mr", "Mister", "Chapter"} & {s.word for s in found}
    darcy = next(s for s in found if s.word == "Darcy")
    assert darcy.count >= 410 and darcy.first_segment_id == "c03-p0006-s03"
    assert "his friend M" in darcy.first_context and "Darcy soon drew the attention" in darcy.first_context
    assert next(s for s in found if s.word == "Bennet").count >= 330  # "the Bennets" counted under Bennet
    assert "Bennets" not in names and {"curricle", "se’night"} <= set(rare)
    assert [s.kind for s in found] == sorted(s.kind for s in found)
    assert [s.count for s in found if s.kind == "name"] == sorted((s.count for s in found if s.kind == "name"), reverse=True)
    known = Lexicon({"Darcy": Pronunciation("DAR-see"), "curricle": Pronunciation("KUR-ik-ul")})
    assert not {"Darcy", "curricle"} & {s.word for s in suggest(manuscript, known)}


def test_template_lists_suggestions_commented_out(tmp_path):
    seg = Segment("c01-p0001-s01", "", "Mr. Darcy met Mr. Bingley at Netherfield, and Darcy bowed.")
    ms_found = suggest(_manuscript([seg]))
    assert [(s.word, s.count) for s in ms_found] == [("Darcy", 2), ("Bingley", 1), ("Netherfield", 1)]
    path = write_lexicon_template(tmp_path / "lexicon.toml", ms_found)
    text = path.read_text(encoding="utf-8")
    assert '\n# "Darcy" = ""    # 2× — c01-p0001-s01: Mr. Darcy met Mr. Bingley at Netherfield, and Dar…\n' in text
    assert len(read_folder(tmp_path)) == 0  # all commented out: nothing changes yet
    path.write_text(text.replace('# "Darcy" = ""', '"Darcy" = "DAR-see"'), encoding="utf-8")
    assert read_folder(tmp_path).entries == {"Darcy": Pronunciation("DAR-see")}
    with pytest.raises(UserError, match="already exists"):
        write_lexicon_template(path, ms_found)


def _manuscript(segments):
    from stages.model import Manuscript

    chapter = Chapter(1, "One", (Paragraph("c01-p0001", "text", tuple(segments)),))
    return Manuscript("t", "T", "A", "en", "t.txt", "0" * 64, (chapter,))


def test_changing_one_entry_rerenders_only_its_segments(tmp_path):
    segments = [
        Segment("c01-p0001-s01", "", "Mr. Bingley was good-looking."),
        Segment("c01-p0001-s02", "", "Mr. Darcy soon drew the attention of the room."),
        Segment("c01-p0001-s03", "", "Bingley’s sisters were fine women."),
        Segment("c01-p0001-s04", "", "It was a truth universally acknowledged."),
    ]
    chapter = _manuscript(segments).chapters[0]
    library, cache = load_library(), TakeCache(tmp_path / "cache")
    casting = Casting({"narrator": "joe"})
    book = tmp_path / "book"

    def render(lexicon_toml: str | None):
        if lexicon_toml is not None:
            write(book, "lexicon.toml", lexicon_toml)
        lexicon = load_lexicon(book) if lexicon_toml is not None else None
        return render_chapter(chapter, casting=casting, library=library, cache=cache, lexicon=lexicon, workers=2)

    takes, stats = render('[words]\nBingley = { ipa = "ˈbɪŋli" }\nDarcy = "DAR-see"\n')
    assert (stats.synthesized, stats.cached) == (4, 0)
    _, stats = render('[words]\nBingley = { ipa = "ˈbɪŋli" }\nDarcy = "DAR-see"\n')
    assert (stats.synthesized, stats.cached) == (0, 4)
    changed, stats = render('[words]\nBingley = { ipa = "ˈbɪŋɡli" }\nDarcy = "DAR-see"\n')
    assert (stats.synthesized, stats.cached) == (2, 2)  # the two segments that say Bingley
    assert [s.id for s in segments if changed[s.id].key != takes[s.id].key] == ["c01-p0001-s01", "c01-p0001-s03"]
    _, stats = render(None)  # no lexicon: the book's own text, the no-name sentence still cached
    assert (stats.synthesized, stats.cached) == (3, 1)
