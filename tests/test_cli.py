"""The `audiobook produce` command and its Prefect flow, run for real."""

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import mutagen.mp3
import mutagen.mp4
import pytest

from conftest import REPO, SAMPLE_EPUB, without_take_qa
from flows.cli import main
from stages import qa, wav
from stages.cast import load_library
from stages.model import Workspace


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["produce", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_sample_book_end_to_end_then_nothing_to_do(sample_album, capsys):
    tmp_path, first = sample_album  # `audiobook produce --json` on a fresh workspace, exit code 0
    assert first["slug"] == "alices-adventures-in-wonderland-sample"
    assert [c["title"] for c in first["chapters"]] == ["Chapter I: Down the Rabbit-Hole", "Chapter II: The Pool of Tears"]
    assert first["synthesized"] > 30 and first["cached"] + first["synthesized"] == sum(c["segments"] for c in first["chapters"])
    album = Path(first["output"])
    assert {p.suffix for p in album.iterdir()} == {".mp3", ".vtt", ".lrc", ".json", ".m4b", ".epub", ".html", ".jpg"}
    assert not [p for p in album.iterdir() if ".part" in p.name]
    cover = (tmp_path / "manuscripts" / first["slug"] / "cover.jpg").read_bytes()
    assert cover[:2] == b"\xff\xd8" and (album / "cover.jpg").read_bytes() == cover
    for chapter in first["chapters"]:
        tags = mutagen.mp3.MP3(album / chapter["mp3"]).tags
        assert tags.getall("APIC")[0].data == cover and str(tags["TPE1"]) == "Lewis Carroll"
    assert bytes(mutagen.mp4.MP4(album / f"{first['slug']}.m4b").tags["covr"][0]) == cover
    sheet = (tmp_path / "manuscripts" / first["slug"] / "cast.toml").read_text()
    alice = next(line for line in sheet.splitlines() if line.startswith('"Alice" = '))
    assert load_library()[alice.split('"')[3]].gender == "female"  # pronouns after her name make Alice female

    code, out, _ = run_cli(capsys, str(SAMPLE_EPUB), "--root", str(tmp_path), "--json")
    second = json.loads(out)
    assert code == 0 and second["synthesized"] == 0
    assert [c["acx"] for c in second["chapters"]] == [c["acx"] for c in first["chapters"]]


def test_recasting_a_speaker_re_renders_only_their_lines(tmp_path, capsys, prefect_harness, small_book):
    without_take_qa(tmp_path)  # a retake would count as synthesized too
    code, out, _ = run_cli(capsys, str(small_book), "--root", str(tmp_path), "--json")
    first = json.loads(out)
    ms = json.loads((tmp_path / "manuscripts" / first["slug"] / "manuscript.json").read_text())
    segs = [s for c in ms["chapters"] for p in c["paragraphs"] for s in p["segments"]]
    speaker = "unknown"  # unattributed dialogue: read by the narrator's voice until recast
    assert any(s["speaker"] == speaker for s in segs)
    sheet = tmp_path / "manuscripts" / first["slug"] / "cast.toml"
    lines = sheet.read_text().splitlines()
    lines = [f'"{speaker}" = "joe-deep"' if line.startswith(f'"{speaker}" =') else line for line in lines]
    sheet.write_text("\n".join(lines) + "\n")
    code, out, _ = run_cli(capsys, str(small_book), "--root", str(tmp_path), "--json")
    assert code == 0
    assert json.loads(out)["synthesized"] == len({s["spoken"] for s in segs if s["speaker"] == speaker})


def epub_with(tmp_path: Path, name: str, extra: dict[str, bytes]) -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(SAMPLE_EPUB) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        for entry, data in extra.items():
            dst.writestr(entry, data)
    return path


ENCRYPTION = b"""<?xml version="1.0"?><encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container"
 xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData><enc:EncryptionMethod
 Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/><enc:CipherData>
 <enc:CipherReference URI="epub/text/chapter-1.xhtml"/></enc:CipherData></enc:EncryptedData></encryption>"""


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.epub", "no such file"),
        (lambda d: (d / "book.docx").write_bytes(b"PK\x03\x04") and d / "book.docx", ".epub, .txt"),
        (lambda d: (d / "bad.epub").write_bytes(b"not a zip at all") and d / "bad.epub", "bad.epub"),
        (lambda d: epub_with(d, "drm.epub", {"META-INF/encryption.xml": ENCRYPTION}), "DRM"),
        (lambda d: (d / "empty.txt").write_text("\n\n  \n") and d / "empty.txt", "empty.txt"),
        (lambda d: (d / "noise.txt").write_bytes(bytes(range(256)) * 40) and d / "noise.txt", "noise.txt"),
    ],
    ids=["missing", "docx", "corrupt", "drm", "empty", "binary"],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, prefect_harness, make, message):
    book = make(tmp_path)
    root = tmp_path / "ws"
    code, out, err = run_cli(capsys, str(book), "--root", str(root))
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert message.lower() in err.lower()
    assert not (root / "output").exists() and not (root / "manuscripts").exists()


def test_chapters_option_selects_by_number_and_refuses_a_chapter_the_book_lacks(tmp_path, capsys, prefect_harness):
    from flows.produce import select_chapters
    from stages.ingest import ingest

    ms = ingest(SAMPLE_EPUB, Workspace(tmp_path / "ws").manuscript_dir)
    assert [(c.number, c.title) for c in select_chapters(ms, "2").chapters] == [(2, "Chapter II: The Pool of Tears")]
    assert [c.number for c in select_chapters(ms, "1-2,5").chapters] == [1, 2] and select_chapters(ms, None) is ms
    code, _, err = run_cli(capsys, str(SAMPLE_EPUB), "--root", str(tmp_path / "cli"), "--chapters", "7")
    assert code == 2 and "--chapters '7' names no chapter" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, str(SAMPLE_EPUB), "--root", str(tmp_path / "cli"), "--chapters", "one")
    assert code == 2 and "is not a list of chapter numbers" in err
    assert not list((tmp_path / "cli").rglob("*.wav")) and not list((tmp_path / "cli").rglob("*.mp3"))


def test_chinese_book_is_refused_before_any_audio(tmp_path, capsys, prefect_harness, corpus):
    code, _, err = run_cli(capsys, str(corpus / "lu-xun_kong-yiji_gu-xiang_zhu-fu.zh.txt"), "--root", str(tmp_path))
    assert code == 2 and "cannot speak this book's language 'zh'" in err and err.count("\n") == 1
    assert not (tmp_path / "output" / ".cache" / "takes").exists()


def test_killed_run_resumes_without_resynthesis(tmp_path, small_book):
    blocks = small_book.read_text(encoding="utf-8").split("\n\n")  # title, author, 2 chapters of 4 and 3 paragraphs
    assert [blocks[i][:10] for i in (2, 7)] == ["CHAPTER I.", "CHAPTER II"]
    book = tmp_path / small_book.name  # both chapters, a paragraph fewer each: still well over 6 takes with the credits
    book.write_text("\n\n".join(blocks[:4] + blocks[5:8] + blocks[9:]), encoding="utf-8")
    root = without_take_qa(tmp_path / "ws")  # so no retake may replace a take: every kept take must stay as it is
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "flows.cli", "produce", str(book), "--root", str(root)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    takes_dir = Workspace(root).cache_dir / "takes"
    deadline = time.monotonic() + 240
    while len(list(takes_dir.rglob("*.wav"))) < 6:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no takes appeared within 240 s"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = {p: p.stat().st_mtime_ns for p in takes_dir.rglob("*.wav") if not p.name.startswith(".")}
    assert all(wav.wav_info(p).frames > 0 for p in kept)  # every take in place is complete

    result = subprocess.run([*cmd, "--json"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    tracks = summary["chapters"] + summary["credits"]  # 2 chapters + 2 credits: the killed run may have made either
    total = sum(c["segments"] for c in tracks)
    assert sum(c["stats"]["synthesized"] for c in tracks) <= total - len(kept)
    assert sum(c["stats"]["cached"] for c in tracks) >= len(kept)
    remade = {p for p in kept if p.stat().st_mtime_ns != kept[p]}
    assert remade == set()  # nothing that existed was synthesized again
    assert not [p for p in kept if qa.verdict_path(p).exists()]  # take QA was off: no retake could stand in for one
    assert not list(root.rglob(".*.part*"))


def test_ingest_prints_the_chapter_table_as_json(tmp_path, capsys):
    code = main(["ingest", str(SAMPLE_EPUB), "--root", str(tmp_path), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["title"] == "Alice’s Adventures in Wonderland (Sample)"
    assert [(c["number"], c["title"]) for c in data["chapters"]] == [
        (1, "Chapter I: Down the Rabbit-Hole"), (2, "Chapter II: The Pool of Tears")]
    ms = json.loads((tmp_path / "manuscripts" / data["slug"] / "manuscript.json").read_text())
    for row, chapter in zip(data["chapters"], ms["chapters"]):
        segs = [s for p in chapter["paragraphs"] for s in p["segments"]]
        assert row["segments"] == len(segs) and row["characters"] == sum(len(s["text"]) for s in segs)
        assert row["dialogue"] == sum(s["kind"] == "dialogue" for s in segs) > 0
    code = main(["ingest", str(SAMPLE_EPUB), "--root", str(tmp_path)])
    table = capsys.readouterr().out
    assert code == 0 and "Chapter II: The Pool of Tears" in table and "Titlepage (titlepage)" in table


def test_lexicon_suggest_lists_names_and_writes_a_template(tmp_path, capsys, small_book):
    code = main(["lexicon", "suggest", str(small_book), "--root", str(tmp_path), "--json", "--write"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 0
    words = {r["word"]: r for r in rows}
    assert "Netherfield" in words and words["Netherfield"]["kind"] == "name" and words["Netherfield"]["count"] >= 1
    assert words["Netherfield"]["first_segment_id"].startswith("c01-")
    assert "the" not in words and "Bennet" in words
    template = next((tmp_path / "manuscripts").glob("*/lexicon.toml")).read_text()
    assert "Netherfield" in template
    code = main(["lexicon", "suggest", str(small_book), "--root", str(tmp_path), "--write"])
    assert code == 2 and "already exists" in capsys.readouterr().err


def test_attribute_writes_the_bible_and_keeps_a_producer_edit(tmp_path, capsys):
    code = main(["attribute", str(SAMPLE_EPUB), "--root", str(tmp_path), "--json", "--review"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["llm"] is None
    alice = next(c for c in data["characters"] if c["name"] == "Alice")
    assert alice["gender"] == "female" and alice["lines"] >= 15
    assert data["review"] == len(data["review_lines"]) and all(r["speaker"] == "unknown" or r["confidence"] < 0.5
                                                               for r in data["review_lines"])
    bible = next((tmp_path / "manuscripts").glob("*/characters.toml"))
    bible.write_text(bible.read_text().replace('description = ""', 'description = "a curious girl of seven"', 1))
    assert main(["attribute", str(SAMPLE_EPUB), "--root", str(tmp_path)]) == 0
    assert 'description = "a curious girl of seven"' in bible.read_text()


def test_attribute_uses_the_llm_configured_for_the_workspace(tmp_path, capsys, small_book, monkeypatch):
    from llm_replay import ReplayServer

    for name in ("OPENAI_BASE_URL", "OPENAI_MODEL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with ReplayServer() as server:
        (tmp_path / "audiobook.toml").write_text(f'[llm]\nbase_url = "{server.base_url}"\nmodel = "replay"\n')
        assert main(["attribute", str(small_book), "--root", str(tmp_path), "--json"]) == 0
        first = json.loads(capsys.readouterr().out)
        assert main(["attribute", str(small_book), "--root", str(tmp_path), "--json"]) == 0
        second = json.loads(capsys.readouterr().out)
        requests = len(server.log)
    assert first["llm"]["ok"] == first["llm"]["chunks"] > 0 and first["llm"]["requests"] == requests
    assert second["llm"]["cached"] == second["llm"]["chunks"] and second["llm"]["requests"] == 0  # re-run: free
    ms = json.loads(next((tmp_path / "manuscripts").glob("*/manuscript.json")).read_text())
    rules = {s["rule"] for c in ms["chapters"] for p in c["paragraphs"] for s in p["segments"] if s["kind"] == "dialogue"}
    assert rules == {"llm"}
