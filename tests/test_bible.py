"""The character bible: built from Pride and Prejudice, saved as TOML, merged on a re-run without losing human edits."""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path

import pytest

from stages.attribute import Bible, Character, attribute, build_bible
from stages.attribute.bible import machine_path
from stages.errors import UserError
from stages.ingest import read_book

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@functools.lru_cache(maxsize=None)
def pride() -> Bible:
    return build_bible(attribute(read_book(CORPUS / "jane-austen_pride-and-prejudice.epub")[0]))


def test_the_bible_lists_speakers_with_aliases_gender_lines_and_first_appearance():
    bible = pride()
    darcy, lizzy = bible.find("Fitzwilliam Darcy") or bible.find("Darcy"), bible.find("Lizzy")
    assert darcy.name == "Mr. Darcy" and "Darcy" in darcy.aliases and darcy.gender == "male"
    assert darcy.age_group == "adult"
    assert lizzy.name == "Elizabeth" and {"Eliza", "Lizzy"} <= set(lizzy.aliases) and lizzy.gender == "female"
    assert lizzy.lines == max(c.lines for c in bible.characters) > 400
    assert lizzy.first_segment.startswith("c02-")  # her first line is in chapter II
    assert bible.find("Mrs. Bennet").name == "Mrs. Bennet" and bible.find("Mr. Bennet").name == "Mr. Bennet"


def test_save_and_load_round_trip_with_the_hidden_machine_copy(tmp_path):
    path = pride().save(tmp_path / "characters.toml")
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data["character"][0]["name"] == pride().characters[0].name
    assert machine_path(path).name == ".characters.machine.toml" and machine_path(path).exists()
    assert Bible.load(path) == pride()
    assert Bible.load(tmp_path / "absent.toml") == Bible()


def test_a_rerun_keeps_every_human_edit_and_updates_the_rest(tmp_path):
    path = tmp_path / "characters.toml"
    Bible((Character("Mr. Darcy", ("Darcy",), "male", "adult", "", 10, "c03-p0010-s01"),),
          (Character("Mr. Darcy", ("Darcy",), "male", "adult", "", 10, "c03-p0010-s01"),)).save(path)
    text = path.read_text(encoding="utf-8")
    text = text.replace('description = ""', 'description = "Proud, reserved; a low, even voice"')
    text = text.replace('name = "Mr. Darcy"', 'name = "Fitzwilliam Darcy"')  # the producer renames him
    text += '\n[[character]]\nname = "Narrator of the letters"\n'  # and adds someone by hand
    path.write_text(text, encoding="utf-8")
    merged = Bible.load(path).merge(pride())
    darcy = merged.find("Darcy")
    assert darcy.name == "Fitzwilliam Darcy" and darcy.description == "Proud, reserved; a low, even voice"
    assert darcy.lines == pride().find("Mr. Darcy").lines > 10  # a field nobody touched takes the new count
    assert merged.find("Narrator of the letters") is not None
    assert merged.find("Elizabeth") == pride().find("Elizabeth")
    merged.save(path)
    again = Bible.load(path).merge(pride())  # a second re-run changes nothing
    assert again.characters == merged.characters


def test_the_bible_renames_speakers_when_attributing():
    source = read_book(CORPUS / "jane-austen_pride-and-prejudice.epub")[0]
    bible = Bible((Character("Fitzwilliam Darcy", ("Mr. Darcy", "Darcy"), "male"),))
    speakers = {s.speaker for s in attribute(source, bible=bible).segments}
    assert "Fitzwilliam Darcy" in speakers and "Mr. Darcy" not in speakers and "Elizabeth" in speakers


def test_a_broken_bible_says_where_and_how_to_fix(tmp_path):
    path = tmp_path / "characters.toml"
    path.write_text('[[character]]\nname = "Jane"\ngender = "tall"\n', encoding="utf-8")
    with pytest.raises(UserError, match="gender 'tall'; use one of male, female, unknown"):
        Bible.load(path)
    path.write_text("[[character]\n", encoding="utf-8")
    with pytest.raises(UserError, match="not valid TOML"):
        Bible.load(path)
