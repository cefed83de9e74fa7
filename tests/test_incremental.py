"""One edited sentence re-renders one take, re-masters one chapter and re-encodes one M4B part; the rest is kept."""

from __future__ import annotations

import re
import zipfile
from dataclasses import replace

import pytest

from stages import produce
from stages.attribute import attribute
from stages.cast import cast, load_library
from stages.ingest import ingest
from stages.model import Workspace
from stages.package.album import read_m4b_chapters
from stages.package.sync import read_sync_map
from stages.qa import QaConfig

OLD = "It was then disclosed in the following manner."  # chapter 2: the retail sample comes from chapter 1
NEW = "It was then disclosed in this manner."
NO_QA = QaConfig(enabled=False)  # takes are not heard back here: tests/test_qa.py and test_produce.py do that


def build(ws: Workspace, book):
    """Produce the whole album as the flow does; return (manuscript, results, m4b job, paths)."""
    ms = attribute(ingest(book, ws.manuscript_dir))
    library = load_library()
    casting = cast(ms, library, ws.manuscript_dir(ms.slug) / "cast.toml")
    tags = produce.album_tags(ms, ws, library["joe"])
    job = produce.M4bJob(ms, ws, tags)
    credits = produce.produce_credits(ms, workspace=ws, casting=casting, library=library, tags=tags, qa=NO_QA)
    job.add(credits.opening)
    results = []
    for c in ms.chapters:
        results.append(produce.produce_chapter(ms, c.number, workspace=ws, casting=casting, library=library, tags=tags,
                                               qa=NO_QA))
        job.add(results[-1])
    job.add(credits.closing)
    paths = produce.finish_album(ms, results, workspace=ws, tags=tags, facts={}, m4b_job=job, credits=credits)
    return ms, results, job, paths


@pytest.fixture(scope="module")
def runs(tmp_path_factory, small_book):
    ws = Workspace(tmp_path_factory.mktemp("workspace"))
    book = tmp_path_factory.mktemp("edit") / small_book.name
    text = small_book.read_text(encoding="utf-8")
    assert text.count(OLD) == 1
    book.write_text(text, encoding="utf-8")
    first = build(ws, book)
    out = ws.output_dir(first[0].slug)
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.mp3")}
    book.write_text(text.replace(OLD, NEW), encoding="utf-8")  # the producer fixes one sentence
    second = build(ws, book)
    return ws, first, second, mtimes


def test_only_the_edited_take_is_synthesized_and_its_chapter_remade(runs):
    ws, first, (ms, results, job, paths), mtimes = runs
    edited = next(c.number for c in ms.chapters if any(NEW in s.text for s in c.segments))
    assert [r.stats.synthesized for r in results] == [1 if r.number == edited else 0 for r in results]
    assert [r.reused for r in results] == [r.number != edited for r in results]
    out = ws.output_dir(ms.slug)
    changed = {p.name for p in out.glob("*.mp3") if p.stat().st_mtime_ns != mtimes[p.name]}
    assert edited == 2 and changed == {results[1].mp3}  # credits, chapter 1 and the sample cut from it kept


def test_the_m4b_re_encodes_one_part_and_keeps_its_marks(runs):
    ws, (_, _, first_job, _), (ms, results, job, paths), _ = runs
    assert first_job.encoded == len(results) + 2 and job.encoded == 1
    parts = sorted((job.work_dir / "m4b").glob("*.m4a"))
    assert len(parts) == len(results) + 2  # the edited chapter's old part was pruned
    marks = read_m4b_chapters(paths["m4b"])
    assert [t for t, _ in marks] == ["Opening Credits", *(r.title for r in results), "Closing Credits"]
    tracks = [job.results[0], *results]
    for k, (_, start) in enumerate(marks[1:], start=1):  # each join adds at most two AAC frames
        assert 0 <= start - sum(t.duration_s for t in tracks[:k]) < k * 2 * 1024 / 44100


def test_sync_map_and_epub_carry_the_new_text(runs):
    ws, _, (ms, results, _, paths), _ = runs
    edited = next(r for r in results if not r.reused)
    _, cues = read_sync_map(ws.output_dir(ms.slug) / edited.sync)
    assert any(NEW in c.text for c in cues) and not any(OLD in c.text for c in cues)
    with zipfile.ZipFile(paths["epub"]) as epub:
        xhtml = "".join(epub.read(n).decode("utf-8") for n in epub.namelist() if n.endswith(".xhtml"))
    xhtml = re.sub(r"</?span[^>]*>", "", xhtml)  # timed words are spans of their own
    assert NEW in xhtml and OLD not in xhtml


def test_an_edited_chapter_is_made_first(runs, tmp_path):
    _, (before, *_), _, _ = runs
    ws = Workspace(tmp_path)
    by_length = sorted(before.chapters, key=lambda c: -sum(len(s.spoken) for s in c.segments))
    assert [c.number for c in produce.edited_first(before, ws)] == [c.number for c in by_length]  # nothing known
    produce.remember_chapters(before, ws)
    short = by_length[-1]  # the producer edits a line of the shortest chapter
    para = short.paragraphs[-1]
    line = replace(para.segments[0], text=para.segments[0].text + " Indeed.")
    short = replace(short, paragraphs=(*short.paragraphs[:-1], replace(para, segments=(line, *para.segments[1:]))))
    after = before.with_chapters([short if c.number == short.number else c for c in before.chapters])
    assert [c.number for c in produce.edited_first(after, ws)] == [short.number, by_length[0].number]
    produce.remember_chapters(after, ws)
    assert produce.edited_first(after, ws)[0].number == by_length[0].number  # nothing edited since


def test_an_unchanged_chapter_is_kept_without_opening_a_take(runs, monkeypatch):
    ws, _, (ms, results, _, _), _ = runs
    library = load_library()
    casting = cast(ms, library, ws.manuscript_dir(ms.slug) / "cast.toml")
    tags = produce.album_tags(ms, ws, library["joe"])
    for name in ("read_wav", "wav_info"):
        monkeypatch.setattr(f"stages.wav.{name}", lambda *a, **k: pytest.fail("a take was opened"))
    for before in results:
        kept = produce.reuse_chapter(ms, before.number, workspace=ws, casting=casting, library=library, tags=tags,
                                     qa=NO_QA)
        assert kept is not None and kept.reused and kept.key == before.key and kept.mp3 == before.mp3
        assert kept.stats.synthesized == 0 and kept.stats.audio_s == pytest.approx(before.stats.audio_s)
    louder = {v: replace(voice, params=voice.params | {"gain_db": 1.0}) for v, voice in library.items()}
    assert produce.reuse_chapter(ms, 1, workspace=ws, casting=casting, library=louder, tags=tags, qa=NO_QA) is None
