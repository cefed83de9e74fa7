"""Editing a line in the studio: the fix is kept in edits.json, the book is produced again in the background
(one take synthesized), and the take before and after are both playable for A/B."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from flows.produce import run_produce
from stages.edits import apply_edits, load_edits
from stages.package.sync import read_sync_map
from studio import auth, db
from studio.app import create_app
from tests.test_studio_security import PASSWORD, free_port, sign_in

REPO = Path(__file__).resolve().parents[1]
NEW_TEXT = "Mr. Bennet made no answer at all."


@pytest.fixture(scope="module")
def served(tmp_path_factory, small_book, prefect_harness):
    import threading

    import uvicorn

    root = tmp_path_factory.mktemp("workspace")
    (root / "voices").symlink_to(REPO / "voices")
    (root / "audiobook.toml").write_text("[qa]\nenabled = false\n", encoding="utf-8")  # QA is tested elsewhere
    album = run_produce(small_book, root, interactive=False)
    sessions = db.connect(db.default_url(root))
    with sessions() as session, session.begin():
        for role in ("reviewer", "listener", "producer"):
            auth.grant(session, auth.create_user(session, role, PASSWORD, role), album["slug"])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(root, sessions), host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", root, album
    server.should_exit = True


def first_narration(root: Path, album: dict) -> tuple[int, str, str]:
    chapter = album["chapters"][0]
    _, cues = read_sync_map(Path(album["output"]) / chapter["sync"])
    cue = next(c for c in cues if c.speaker == "narrator" and len(c.text) > 20)
    return chapter["number"], cue.id, cue.text


def csrf_of(client, path: str) -> str:
    import re

    return re.search(r'const csrf = "([^"]+)"', client.get(path).text).group(1)


def test_an_edited_line_is_re_rendered_and_both_takes_can_be_heard(served):
    base, root, album = served
    number, segment, old_text = first_narration(root, album)
    page = f"/books/{album['slug']}/chapters/{number}"
    listener, _ = sign_in(base, "listener")
    denied = listener.post(f"{page}/segments/{segment}/edit", json={"text": NEW_TEXT},
                           headers={"x-csrf-token": csrf_of(listener, page)})
    assert denied.status_code == 403

    reviewer, _ = sign_in(base, "reviewer")
    headers = {"x-csrf-token": csrf_of(reviewer, page)}
    bad = reviewer.post(f"{page}/segments/{segment}/edit", json={"emotion": "smug"}, headers=headers)
    assert bad.status_code == 422 and "is not one of" in bad.text
    made = reviewer.post(f"{page}/segments/{segment}/edit", json={"text": NEW_TEXT}, headers=headers).json()
    assert made["edit"] == {"text": NEW_TEXT}
    deadline = time.monotonic() + 240
    while (job := reviewer.get(f"/jobs/{made['job']}").json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, "the re-render took too long"
        time.sleep(0.5)
    assert job["state"] == "done", job["message"]
    assert job["take_before"] and job["take_after"] and job["take_before"] != job["take_after"]
    for key in (job["take_before"], job["take_after"]):
        audio = reviewer.get(f"/books/{album['slug']}/takes/{key}")
        assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    assert reviewer.get(f"/books/{album['slug']}/takes/{'0' * 64}").status_code == 404  # not a take of a job

    _, cues = read_sync_map(Path(album["output"]) / album["chapters"][0]["sync"])
    assert next(c.text for c in cues if c.id == segment) == NEW_TEXT and old_text not in [c.text for c in cues]
    assert load_edits(root / "manuscripts" / album["slug"]) == {segment: {"text": NEW_TEXT}}
    manuscript = json.loads((root / "manuscripts" / album["slug"] / "manuscript.json").read_text(encoding="utf-8"))
    spoken = [s for c in manuscript["chapters"] for p in c["paragraphs"] for s in p["segments"] if s["id"] == segment]
    assert spoken[0]["text"] == NEW_TEXT and "mister" in spoken[0]["spoken"].lower()  # normalized like the book


def test_edits_of_segments_the_book_no_longer_has_are_ignored(small_book, tmp_path):
    from stages.ingest import ingest

    manuscript = ingest(small_book, lambda slug: tmp_path / slug, save=False)
    first = manuscript.segments[0]
    edited = apply_edits(manuscript, {first.id: {"speaker": "Mrs. Bennet", "emotion": "happy"}, "c99-p0001-s01": {}})
    changed = edited.segments[0]
    assert (changed.speaker, changed.emotion, changed.rule, changed.text) == ("Mrs. Bennet", "happy", "edited", first.text)
    assert edited.segments[1:] == manuscript.segments[1:]


def provenance(album: dict, field: str) -> dict[str, str]:
    """Segment id -> `field` ("take": its cache key, "voice": its voice id) of its take in the album now."""
    out = {}
    for path in Path(album["output"]).glob("*.provenance.json"):
        out |= {t["segment"]: t[field] for t in json.loads(path.read_text(encoding="utf-8"))["takes"]}
    return out


def test_cast_page_auditions_and_recasts_one_speaker(served):
    base, root, album = served
    slug = album["slug"]
    reviewer, _ = sign_in(base, "reviewer")
    page = reviewer.get(f"/books/{slug}/cast").text
    assert "narrator" in page and '<select class="voice"' not in page  # a reviewer sees the cast, cannot change it
    headers = {"x-csrf-token": csrf_of(reviewer, f"/books/{slug}/chapters/1")}
    assert reviewer.post(f"/books/{slug}/cast", json={"speaker": "narrator", "voice": "joe-deep"},
                         headers=headers).status_code == 403

    producer, _ = sign_in(base, "producer")
    headers = {"x-csrf-token": csrf_of(producer, f"/books/{slug}/chapters/1")}
    rows = re.findall(r'<tr data-speaker="([^"]+)">\s*<td>[^<]*</td><td>(\d+)</td>', producer.get(f"/books/{slug}/cast").text)
    character = next(name for name, lines in rows if name not in ("narrator", "unknown") and int(lines) > 0)
    auditions = producer.post(f"/books/{slug}/cast/audition", json={"speaker": character}, headers=headers).json()
    voices = [a["voice"] for a in auditions["auditions"]]
    assert len(voices) == len(set(voices)) >= 8 and "joe" in voices  # every library voice
    for a in auditions["auditions"][:2]:
        audio = producer.get(a["url"])
        assert audio.status_code == 200 and audio.content[:4] == b"RIFF"

    before = provenance(album, "voice")
    sheet = (root / "manuscripts" / slug / "cast.toml").read_text(encoding="utf-8")
    old_voice = re.search(rf'^"{re.escape(character)}" = "([^"]+)"', sheet, re.M).group(1)
    new_voice = next(v for v in voices if v not in (old_voice, "joe"))
    job = producer.post(f"/books/{slug}/cast", json={"speaker": character, "voice": new_voice}, headers=headers).json()
    deadline = time.monotonic() + 240
    while (state := producer.get(f"/jobs/{job['job']}").json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, "the re-render took too long"
        time.sleep(0.5)
    assert state["state"] == "done", state["message"]
    assert f'"{character}" = "{new_voice}"' in (root / "manuscripts" / slug / "cast.toml").read_text(encoding="utf-8")
    after = provenance(album, "voice")
    changed = {seg for seg in after if after[seg] != before.get(seg)}
    assert changed and all(after[seg] == new_voice for seg in changed)  # only the recast speaker's lines


def test_a_pronunciation_fix_re_renders_only_the_lines_with_the_word(served):
    base, root, album = served
    slug = album["slug"]
    listener, _ = sign_in(base, "listener")
    denied = listener.post(f"/books/{slug}/lexicon", json={"word": "Netherfield", "respelling": "NEH-ther-feeld"},
                           headers={"x-csrf-token": csrf_of(listener, f"/books/{slug}/chapters/1")})
    assert denied.status_code == 403
    reviewer, _ = sign_in(base, "reviewer")
    headers = {"x-csrf-token": csrf_of(reviewer, f"/books/{slug}/chapters/1")}
    bad = reviewer.post(f"/books/{slug}/lexicon", json={"word": "Netherfield", "respelling": "[[x]]"}, headers=headers)
    assert bad.status_code == 422 and not (root / "manuscripts" / slug / "lexicon.toml").exists()
    before = provenance(album, "take")
    job = reviewer.post(f"/books/{slug}/lexicon", json={"word": "Netherfield", "respelling": "NEH-ther-feeld"},
                        headers=headers).json()
    deadline = time.monotonic() + 240
    while (state := reviewer.get(f"/jobs/{job['job']}").json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, "the re-render took too long"
        time.sleep(0.5)
    assert state["state"] == "done", state["message"]
    assert '"Netherfield" = "NEH-ther-feeld"' in (root / "manuscripts" / slug / "lexicon.toml").read_text("utf-8")
    manuscript = json.loads((root / "manuscripts" / slug / "manuscript.json").read_text(encoding="utf-8"))
    with_word = {s["id"] for c in manuscript["chapters"] for p in c["paragraphs"] for s in p["segments"]
                 if "Netherfield" in s["spoken"]}
    after = provenance(album, "take")
    assert with_word and {seg for seg in after if after[seg] != before.get(seg)} == with_word


def wait_for(client, job: int) -> dict:
    deadline = time.monotonic() + 240
    while (state := client.get(f"/jobs/{job}").json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, "the re-render took too long"
        time.sleep(0.5)
    assert state["state"] == "done", state["message"]
    return state


def test_one_line_is_re_rendered_in_another_voice_and_given_back_its_own(served):
    base, root, album = served
    slug = album["slug"]
    chapter = album["chapters"][-1]
    _, cues = read_sync_map(Path(album["output"]) / chapter["sync"])
    line = next(c for c in cues if c.speaker == "narrator" and len(c.text) > 30)
    page = f"/books/{slug}/chapters/{chapter['number']}"
    reviewer, _ = sign_in(base, "reviewer")
    denied = reviewer.post(f"{page}/segments/{line.id}/voice", json={"voice": "joe-deep"},
                           headers={"x-csrf-token": csrf_of(reviewer, page)})
    assert denied.status_code == 403  # a line's voice is a casting choice: producers make it
    producer, _ = sign_in(base, "producer")
    headers = {"x-csrf-token": csrf_of(producer, page)}
    assert '<select id="line-voice-id">' in producer.get(page).text
    bad = producer.post(f"{page}/segments/{line.id}/voice", json={"voice": "nobody"}, headers=headers)
    assert bad.status_code == 422 and "no voice 'nobody'" in bad.text
    before = provenance(album, "voice")
    made = producer.post(f"{page}/segments/{line.id}/voice", json={"voice": "joe-deep"}, headers=headers).json()
    job = wait_for(producer, made["job"])
    assert job["take_before"] and job["take_after"] and job["take_before"] != job["take_after"]
    after = provenance(album, "voice")
    assert after[line.id] == "joe-deep" and {s for s in after if after[s] != before[s]} == {line.id}
    sheet = (root / "manuscripts" / slug / "cast.toml").read_text(encoding="utf-8")
    assert f'[lines]\n"{line.id}" = "joe-deep"' in sheet
    back = wait_for(producer, producer.post(f"{page}/segments/{line.id}/voice", json={"voice": ""},
                                            headers=headers).json()["job"])
    assert back["take_after"] == job["take_before"] and provenance(album, "voice") == before  # its old take again
    assert "[lines]" not in (root / "manuscripts" / slug / "cast.toml").read_text(encoding="utf-8")
    listener, _ = sign_in(base, "listener")  # anyone who may open the book may hear a line's takes
    history = listener.get(f"{page}/segments/{line.id}/takes").json()["takes"]
    assert [t["key"] for t in history] == [job["take_before"], job["take_after"]]  # the original, then joe-deep's
    assert [t["current"] for t in history] == [True, False] and history[1]["by"] == "producer"
    for take in history:
        audio = listener.get(take["url"])
        assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    assert listener.get(f"{page}/segments/c99-p0001-s01/takes").status_code == 404
