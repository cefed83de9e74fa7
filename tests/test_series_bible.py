"""The series character bible: two books cut from Pride and Prejudice share one canonical cast across runs."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from flows.cli import main
from stages.attribute.bible import Bible, Character, combine, inherit, load_series, machine_path
from stages.attribute.direct import Direction, direct
from stages.errors import UserError
from stages.ingest import read_book

ONE, TWO = "pride-one", "pride-two"


@pytest.fixture(scope="module")
def books(tmp_path_factory, corpus) -> dict[str, Path]:
    """Chapters I-II of Pride and Prejudice as book one, chapters III-IV as book two (.txt files)."""
    text = (corpus / "jane-austen_pride-and-prejudice.txt").read_text(encoding="utf-8")
    chapters = ["CHAPTER " + c for c in text.split("CHAPTER ")[1:5]]
    folder = tmp_path_factory.mktemp("series-books")
    paths = {}
    for slug, title, part in ((ONE, "PRIDE ONE", chapters[:2]), (TWO, "PRIDE TWO", chapters[2:])):
        paths[slug] = folder / f"{slug}.txt"
        paths[slug].write_text(f"{title}\n\nby Jane Austen\n\n" + "".join(part), encoding="utf-8")
    return paths


def run(book: Path, root: Path, *series: Path) -> Direction:
    manuscript = read_book(book)[0]
    return direct(manuscript, book_dir=root / manuscript.slug, cache_dir=root / "cache", use_llm=False,
                  series_dirs=series)


def speakers(direction: Direction) -> set[str]:
    return {s.speaker for s in direction.manuscript.segments if s.kind == "dialogue"}


def edit(path: Path, who: str, **values) -> None:
    """Change fields of the [[character]] called `who` in a bible file, as a producer would in an editor."""
    blocks = path.read_text(encoding="utf-8").split("\n[[character]]\n")
    k = next(k for k, b in enumerate(blocks) if f"name = {json.dumps(who)}\n" in b)
    for key, value in values.items():
        blocks[k] = re.sub(rf"(?m)^{key} = .*$", f"{key} = {json.dumps(value)}", blocks[k])
    path.write_text("\n[[character]]\n".join(blocks), encoding="utf-8")


def test_book_one_fills_the_series_bible_with_its_slug_and_no_line_counts(tmp_path, books):
    series = tmp_path / "series"
    series.mkdir()
    book = run(books[ONE], tmp_path, series).bible
    path = series / "characters.toml"
    text = path.read_text(encoding="utf-8")
    assert "lines =" not in text and "first_segment" not in text and machine_path(path).exists()
    shared = Bible.load(path)
    assert [c.name for c in shared.characters] == [c.name for c in book.characters]
    assert {"Mrs. Bennet", "Mr. Bennet"} <= {c.name for c in shared.characters}
    assert all(c.books == (ONE,) for c in shared.characters)
    assert shared.find("Elizabeth") is shared.find("Lizzy") and shared.find("Mr. Bennet").gender == "male"
    assert book.find("Mrs. Bennet").lines > 10 and book.find("Mrs. Bennet").books == ()  # counts stay per book
    assert "books =" not in (tmp_path / ONE / "characters.toml").read_text(encoding="utf-8")


def test_series_edits_steer_book_two_and_survive_its_run(tmp_path, books):
    series = tmp_path / "series"
    series.mkdir()
    run(books[ONE], tmp_path, series)
    path = series / "characters.toml"
    edit(path, "Mrs. Bennet", description="Nervous and excitable; a quick, high voice")
    her = Bible.load(path).find("Elizabeth").name  # "Lizzy": what her family calls her in chapter II
    edit(path, her, name="Elizabeth Bennet", aliases=["Elizabeth", "Lizzy", "Eliza"], gender="female")
    edit(path, "Kitty", gender="female")
    edited = path.read_text(encoding="utf-8")

    alone = run(books[TWO], tmp_path / "alone")  # without the series, book two calls her Elizabeth
    assert "Elizabeth" in speakers(alone) and "Elizabeth Bennet" not in speakers(alone)
    two = run(books[TWO], tmp_path, series)
    assert "Elizabeth Bennet" in speakers(two) and not {"Elizabeth", "Lizzy"} & speakers(two)
    lizzy = two.bible.find("Elizabeth")
    assert lizzy.name == "Elizabeth Bennet" and lizzy.gender == "female" and "Eliza" in lizzy.aliases
    assert lizzy.lines == sum(s.speaker == "Elizabeth Bennet" for s in two.manuscript.segments) > 10
    assert two.bible.find("Mrs. Bennet").description == "Nervous and excitable; a quick, high voice"
    assert Bible.load(tmp_path / TWO / "characters.toml") == two.bible

    shared = Bible.load(path)
    assert shared.find("Mrs. Bennet").description == "Nervous and excitable; a quick, high voice"
    assert shared.find("Eliza").name == "Elizabeth Bennet" and shared.find("Eliza").gender == "female"
    assert shared.find("Mrs. Bennet").books == shared.find("Elizabeth Bennet").books == (ONE, TWO)
    assert shared.find("Mr. Darcy").books == (TWO,) and shared.find("Kitty").books == (ONE,)
    names = [c.name for c in shared.characters]
    assert names[:len(edited.split("[[character]]")) - 1] == re.findall(r'(?m)^name = "(.*)"$', edited)  # order kept

    before = path.read_bytes(), machine_path(path).read_bytes()
    assert run(books[TWO], tmp_path, series).bible == two.bible  # a re-run changes nothing, and adds no slug twice
    assert (path.read_bytes(), machine_path(path).read_bytes()) == before
    one = run(books[ONE], tmp_path, series).bible  # book one takes the series' new name, gender and description
    assert one.find("Kitty").gender == "female" and one.find(her).name == "Elizabeth Bennet"
    assert one.find("Mrs. Bennet").description.startswith("Nervous")
    assert Bible.load(path).find("Mrs. Bennet").books == (ONE, TWO)


def test_a_book_edit_beats_the_series_and_stays_in_that_book(tmp_path, books):
    series = tmp_path / "series"
    series.mkdir()
    run(books[ONE], tmp_path, series)
    edit(series / "characters.toml", "Mrs. Bennet", description="Nervous and excitable", gender="female")
    run(books[TWO], tmp_path, series)
    edit(tmp_path / TWO / "characters.toml", "Mrs. Bennet", description="Worn out after the assembly")
    edit(tmp_path / TWO / "characters.toml", "Mr. Darcy", name="Fitzwilliam Darcy", aliases=["Mr. Darcy", "Darcy"])
    two = run(books[TWO], tmp_path, series)
    assert two.bible.find("Mrs. Bennet").description == "Worn out after the assembly"
    assert "Fitzwilliam Darcy" in speakers(two) and "Mr. Darcy" not in speakers(two)
    assert two.bible.find("Darcy").gender == "male"  # the renamed record keeps what the text says of him
    shared = Bible.load(series / "characters.toml")
    assert shared.find("Mrs. Bennet").description == "Nervous and excitable"
    darcy = shared.find("Fitzwilliam Darcy")  # a book's rename stays in the book; the series learns it as an alias
    assert darcy.name == "Mr. Darcy" and darcy.books == (TWO,)
    assert [c.name for c in shared.characters if "Darcy" in c.name] == ["Mr. Darcy"]
    assert run(books[ONE], tmp_path, series).bible.find("Mrs. Bennet").description == "Nervous and excitable"


def test_layers_book_edit_then_series_edit_then_machine():
    machine = Character("Mrs. Bennet", (), "unknown", "adult", "", 12, "c01-p0004-s01", ("one",))
    series = Bible((Character("Mrs. Bennet", ("Mama",), "female", "adult", "Shrill", books=("one",)),
                    Character("Jane", (), "female")),
                   (Character("Mrs. Bennet", (), "female", "adult", "", books=("one",)),))
    book = Bible((Character("Mrs. Bennet", (), "unknown", "elderly", "", 30, "c01-p0001-s01"),),
                 (Character("Mrs. Bennet", (), "unknown", "adult", "", 30, "c01-p0001-s01"),))
    both = combine(series, book)
    bennet = both.find("Mama")
    assert (bennet.aliases, bennet.description, bennet.age_group) == (("Mama",), "Shrill", "elderly")
    assert bennet.gender == "female" and bennet.lines == 30  # unknown is filled in; line counts stay the book's
    assert both.find("Jane").gender == "female"  # a series character the book lacks still steers attribution
    assert [c.name for c in both.characters if c not in both.machine] == ["Mrs. Bennet", "Jane"]
    fresh = inherit(series, Bible((machine,), (machine,))).characters[0]
    assert (fresh.aliases, fresh.gender, fresh.description, fresh.lines) == (("Mama",), "female", "Shrill", 12)
    assert load_series([]) == Bible()


def test_a_missing_series_folder_is_one_user_error_and_writes_nothing(tmp_path, books):
    with pytest.raises(UserError, match=r"series folder .*no-such-series does not exist; create it"):
        run(books[ONE], tmp_path, tmp_path / "no-such-series")
    assert not (tmp_path / ONE).exists()


def test_cli_attribute_with_series(tmp_path, capsys, books):
    series = tmp_path / "series"
    series.mkdir()
    args = ["attribute", str(books[ONE]), "--root", str(tmp_path), "--series", str(series), "--no-llm"]
    assert main([*args, "--json"]) == 0
    names = [c["name"] for c in json.loads(capsys.readouterr().out)["characters"]]
    shared = tomllib.loads((series / "characters.toml").read_text(encoding="utf-8"))["character"]
    assert sorted(c["name"] for c in shared) == sorted(names) and {c["books"][0] for c in shared} == {ONE}
    assert main(args) == 0 and f"series bible: {series / 'characters.toml'}" in capsys.readouterr().out
    assert main(["attribute", str(books[TWO]), "--root", str(tmp_path), "--series", str(tmp_path / "gone")]) == 2
    assert capsys.readouterr().err.startswith(f"error: series folder {tmp_path / 'gone'} does not exist")
