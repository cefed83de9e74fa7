"""The studio over a real HTTP server on 127.0.0.1 with a real SQLite database: sign-in, sessions, CSRF,
roles, per-book access, path traversal, body limits, sign-in rate limiting and the audit log."""

from __future__ import annotations

import csv
import io
import json
import re
import socket
import threading
import time

import httpx
import numpy as np
import pytest
import uvicorn
from sqlalchemy import select

from stages.align import SegmentWords, WordTiming
from stages.model import Chapter, Cue, Paragraph, Segment
from stages.package.album import AlbumTags, write_chapter_mp3
from stages.package.sync import write_sync_map
from studio import auth, db
from studio.app import MAX_BODY_BYTES, create_app

PASSWORD = "correct horse battery"
ROLES = ("admin", "producer", "reviewer", "listener")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LINES = (("c01-s0001", "Chapter I.", "narrator"), ("c01-s0002", "It is a truth universally acknowledged.", "narrator"),
         ("c01-s0003", "My dear Mr. Bennet, have you heard?", "Mrs. Bennet"))
SECONDS = 6


def produced_book(root, slug: str, title: str) -> None:
    """An album folder as `produce` leaves it: a one-chapter report, its MP3 and its sync map (words timed)."""
    folder = root / "output" / slug
    tone = (0.1 * np.sin(2 * np.pi * 220 * np.arange(SECONDS * 44100) / 44100)).astype(np.float32)
    write_chapter_mp3(tone, 44100, folder / "01-chapter-i.mp3", title="Chapter I", track=1, total=1,
                      tags=AlbumTags(title, "Jane Austen", "Joe"))
    segments = tuple(Segment(i, text, spoken=text, speaker=who) for i, text, who in LINES)
    chapter = Chapter(1, "Chapter I", (Paragraph("c01-p0001", "text", segments),))
    cues = [Cue(i, text, who, n * 2000, (n + 1) * 2000) for n, (i, text, who) in enumerate(LINES)]
    said = LINES[1][1].rstrip(".").split()
    words = {LINES[1][0]: SegmentWords("engine", tuple(WordTiming(w, 2000 + 300 * k, 2000 + 300 * (k + 1))
                                                       for k, w in enumerate(said)))}
    write_sync_map(folder / "01-chapter-i.sync.json", chapter=chapter, audio_file="01-chapter-i.mp3",
                   duration_ms=SECONDS * 1000, cues=cues, words=words)
    report = {"book": {"title": title, "author": "Jane Austen", "narrator": "Joe"},
              "chapters": [{"number": 1, "title": "Chapter I", "mp3": "01-chapter-i.mp3", "duration_s": SECONDS,
                            "acx": {"passes": True}, "qa": {"flagged": [{"segment": "c01-s0003"}]}}]}
    (folder / "report.json").write_text(json.dumps(report), encoding="utf-8")
    (root / "output" / "secret.txt").write_text("outside every book", encoding="utf-8")


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    root = tmp_path_factory.mktemp("workspace")
    produced_book(root, "pride-and-prejudice", "Pride and Prejudice")
    produced_book(root, "persuasion", "Persuasion")
    sessions = db.connect(db.default_url(root))
    with sessions() as session, session.begin():
        for role in ROLES:
            user = auth.create_user(session, role, PASSWORD, role)
            if role != "admin":
                auth.grant(session, user, "pride-and-prejudice")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(root, sessions), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", sessions
    server.should_exit = True
    thread.join(timeout=10)


def sign_in(base: str, username: str, password: str = PASSWORD) -> tuple[httpx.Client, httpx.Response]:
    client = httpx.Client(base_url=base)
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client, client.post("/login", data={"username": username, "password": password, "csrf": csrf})


def csrf_of(client: httpx.Client) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get("/").text).group(1)


def test_unauthenticated_requests_are_sent_to_sign_in(studio):
    base, _ = studio
    for path in ("/", "/books/pride-and-prejudice", "/books/pride-and-prejudice/files/01-chapter-i.mp3"):
        response = httpx.get(base + path)
        assert response.status_code == 303 and response.headers["location"] == "/login"
    assert httpx.post(base + "/logout").status_code == 303  # no session: nothing to change


def test_sign_in_sets_a_secure_session_and_the_library_shows_granted_books_only(studio):
    base, _ = studio
    client, response = sign_in(base, "reviewer")
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "studio_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    library = client.get("/").text
    assert "Pride and Prejudice" in library and "Persuasion" not in library
    assert "1/1 pass" in library and ">1</td></tr>" in library  # ACX badge and one QA flag
    assert client.get("/books/persuasion").status_code == 403
    admin, _ = sign_in(base, "admin")
    assert "Persuasion" in admin.get("/").text and admin.get("/books/persuasion").status_code == 200


def test_wrong_password_is_refused_and_audited(studio):
    base, sessions = studio
    _, response = sign_in(base, "listener", "not the password")
    assert response.status_code == 401 and "Wrong user name or password." in response.text
    with sessions() as session:
        actions = [(a.username, a.action) for a in session.scalars(select(db.AuditEntry))]
    assert ("listener", "login-failed") in actions and ("reviewer", "login") in actions


def test_state_changes_need_the_sessions_csrf_token(studio):
    base, _ = studio
    client, _ = sign_in(base, "producer")
    assert client.post("/logout").status_code == 403  # none
    assert client.post("/logout", data={"csrf": "forged"}).status_code == 403  # wrong
    assert client.get("/").status_code == 200  # still signed in
    assert client.post("/logout", data={"csrf": csrf_of(client)}).status_code == 303
    assert client.get("/").status_code == 303  # the session is gone on the server too
    page = httpx.get(base + "/login")  # the sign-in form itself is double-submit protected
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    forged = httpx.post(base + "/login", data={"username": "admin", "password": PASSWORD, "csrf": csrf})
    assert forged.status_code == 403  # the token without its cookie, as a cross-site form would send it


def test_files_are_served_by_plain_name_from_the_books_folder_only(studio):
    base, _ = studio
    client, _ = sign_in(base, "listener")
    audio = client.get("/books/pride-and-prejudice/files/01-chapter-i.mp3")
    assert audio.status_code == 200 and audio.content[:3] == b"ID3"
    for name in ("..%2Fsecret.txt", "%2E%2E%2Freport.json", "..%2F..%2Fstudio.db", "report.json%00.mp3"):
        assert client.get(f"/books/pride-and-prejudice/files/{name}").status_code == 404, name
    assert client.get("/books/..%2Foutput/files/secret.txt").status_code == 404
    assert client.get("/books/persuasion/files/01-chapter-i.mp3").status_code == 403  # not granted


def test_oversized_bodies_are_refused(studio):
    base, _ = studio
    client, _ = sign_in(base, "admin")
    big = client.post("/logout", content=b"x" * (MAX_BODY_BYTES + 1),
                      headers={"content-type": "application/octet-stream", "x-csrf-token": csrf_of(client)})
    assert big.status_code == 413
    assert client.get("/").status_code == 200  # not signed out


def test_sign_in_is_rate_limited(studio):
    base, sessions = studio
    with sessions() as session, session.begin():
        auth.create_user(session, "target", PASSWORD, "listener")
    for _ in range(auth.LOGIN_MAX_FAILURES):
        assert sign_in(base, "target", "guess")[1].status_code == 401
    _, blocked = sign_in(base, "target")  # even the right password, until the window passes
    assert blocked.status_code == 429 and "too many failed sign-ins" in blocked.text


def test_roles_allow_what_the_studio_promises():
    assert auth.PERMISSIONS["listener"] == {"listen"}
    assert {"edit", "approve"} <= auth.PERMISSIONS["reviewer"] and not {"cast", "delete"} & auth.PERMISSIONS["reviewer"]
    assert {"cast", "delete"} <= auth.PERMISSIONS["producer"] and "admin" not in auth.PERMISSIONS["producer"]


def test_weak_passwords_and_unknown_roles_are_refused(tmp_path):
    sessions = db.connect(db.default_url(tmp_path))
    with sessions() as session:
        with pytest.raises(Exception, match="shorter than 10 characters"):
            auth.create_user(session, "a", "short", "admin")
        with pytest.raises(Exception, match="role 'owner' is not one of admin, producer, reviewer, listener"):
            auth.create_user(session, "a", PASSWORD, "owner")
        user = auth.create_user(session, "a", PASSWORD, "admin")
        assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash


def test_accounts_are_made_from_the_command_line(tmp_path, monkeypatch, capsys):
    from flows.cli import main

    monkeypatch.setenv("AUDIOBOOK_STUDIO_PASSWORD", PASSWORD)
    assert main(["studio", "--root", str(tmp_path), "--create-admin", "ada"]) == 0
    assert main(["studio", "--root", str(tmp_path), "--add-user", "rev", "reviewer"]) == 0
    assert main(["studio", "--root", str(tmp_path), "--grant", "rev", "pride-and-prejudice"]) == 0
    assert main(["studio", "--root", str(tmp_path), "--grant", "nobody", "x"]) == 2
    assert "no account 'nobody'; create it first" in capsys.readouterr().err
    sessions = db.connect(db.default_url(tmp_path))
    with sessions() as session:
        users = {u.username: u.role for u in session.scalars(select(db.User))}
        rev = session.scalar(select(db.User).where(db.User.username == "rev"))
        assert users == {"ada": "admin", "rev": "reviewer"} and auth.can_see(session, rev, "pride-and-prejudice")
        assert [a.action for a in session.scalars(select(db.AuditEntry))] == ["create-user", "create-user", "grant"]


def test_review_page_shows_the_chapters_lines_and_timed_words(studio):
    base, _ = studio
    client, _ = sign_in(base, "listener")
    page = client.get("/books/pride-and-prejudice/chapters/1").text
    assert all(f'id="{i}" data-start="{n * 2000}" data-end="{(n + 1) * 2000}"' in page for n, (i, _, _) in enumerate(LINES))
    assert '<span class="w" data-start="2300" data-end="2600">is</span>' in page
    assert 'id="approve"' not in page and 'id="flag"' not in page  # a listener only listens
    assert client.get("/books/pride-and-prejudice/chapters/9").status_code == 404


def test_reviewers_flag_and_approve_listeners_cannot_and_the_csv_says_so(studio):
    base, sessions = studio
    listener, _ = sign_in(base, "listener")
    headers = {"x-csrf-token": csrf_of(listener)}
    assert listener.post("/books/pride-and-prejudice/chapters/1/approve", headers=headers).status_code == 403
    assert listener.post("/books/pride-and-prejudice/chapters/1/notes", headers=headers,
                         json={"kind": "flag", "segment": "c01-s0002"}).status_code == 403
    reviewer, _ = sign_in(base, "reviewer")
    headers = {"x-csrf-token": csrf_of(reviewer)}
    assert reviewer.post("/books/pride-and-prejudice/chapters/1/approve").status_code == 403  # no CSRF token
    flag = reviewer.post("/books/pride-and-prejudice/chapters/1/notes", headers=headers,
                         json={"kind": "flag", "segment": "c01-s0002", "text": "says 'acknowledge'"})
    assert flag.json() == {"kind": "flag", "segment": "c01-s0002", "by": "reviewer"}
    assert reviewer.post("/books/pride-and-prejudice/chapters/1/notes", headers=headers,
                         json={"kind": "delete", "segment": "c01-s0002"}).status_code == 422
    assert reviewer.post("/books/pride-and-prejudice/chapters/1/approve", headers=headers).json()["by"] == "reviewer"
    page = reviewer.get("/books/pride-and-prejudice/chapters/1").text
    assert 'class="seg flagged" id="c01-s0002"' in page and "approved by reviewer" in page
    rows = list(csv.DictReader(io.StringIO(reviewer.get("/books/pride-and-prejudice/approvals.csv").text)))
    assert [(r["chapter"], r["approved"], r["approved_by"], r["review_flags"], r["qa_flags"]) for r in rows] == \
        [("1", "yes", "reviewer", "1", "1")]
    with sessions() as session:
        actions = [(a.username, a.action, a.target) for a in session.scalars(select(db.AuditEntry))]
    assert ("reviewer", "flag", "pride-and-prejudice/c01-s0002") in actions
    assert ("reviewer", "approve", "pride-and-prejudice/chapter 1") in actions
