"""The studio's web app: server-rendered pages over the workspace the CLI writes, for a team with roles.

Every page needs a signed-in session (an HTTP-only, SameSite=Strict cookie holding a random token);
every state-changing request needs the session's CSRF token (form field `csrf` or header
X-CSRF-Token), else 403; a user sees only the books granted to them (admins: all); failed sign-ins
are limited per user name and per client; bodies over MAX_BODY_BYTES are refused with 413; files are
served only by plain name from the book's own album folder; every action is written to the audit log.
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import or_, select
from sqlalchemy.orm import sessionmaker

from stages.attribute.emotion import EMOTIONS
from stages.cache import TakeCache
from stages.cast import load_library
from stages.edits import save_edit
from stages.lexicon.formats import set_toml_entry
from stages.errors import UserError
from stages.model import Workspace
from studio import auth, casting, jobs, review
from studio.db import Audition, Job, User

SESSION_COOKIE = "studio_session"
LOGIN_CSRF_COOKIE = "studio_login_csrf"  # double-submit token for the sign-in form (no session yet)
MAX_BODY_BYTES = 1 << 20  # forms are small; uploads (reference clips) get their own limit when they come
SERVED_SUFFIXES = (".mp3", ".m4b", ".vtt", ".lrc", ".json", ".html", ".epub", ".svg", ".jpg", ".png")
STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")
_TAKE_KEY = re.compile(r"^[0-9a-f]{64}$")
_SAFE_NAME = re.compile(r"^\w[\w.\- ]*$")  # a plain file or folder name: no separators, no NUL, no leading dot


class SignIn(Exception):
    """Raised by `signed_in` on a page request without a session: answered by a redirect to /login."""


def create_app(root: Path, sessions: sessionmaker, *, secure_cookies: bool = False,
               renderer: jobs.Renderer | None = None) -> FastAPI:
    """Return the studio over the workspace at `root` with its state in `sessions`' database; edits are
    re-rendered by `renderer` (default: a worker thread running `produce` on this machine)."""
    app = FastAPI(title="audiobook studio", docs_url=None, redoc_url=None, openapi_url=None)
    renderer = renderer or jobs.Renderer(root, sessions)
    templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
    output = Path(root).resolve() / "output"

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return Response("request body too large", status_code=413)
        if request.method in STATE_CHANGING and length is None and request.headers.get("transfer-encoding"):
            return Response("send a Content-Length", status_code=411)  # so the limit above cannot be dodged
        return await call_next(request)

    @app.exception_handler(SignIn)
    async def to_login(request: Request, exc: SignIn):
        return RedirectResponse("/login", status_code=303)

    def db():
        with sessions() as session, session.begin():
            yield session

    def signed_in(request: Request, session=Depends(db, scope="function")) -> tuple[User, str]:
        found = auth.session_user(session, request.cookies.get(SESSION_COOKIE))
        if found is None:
            raise SignIn()
        user, row = found
        return user, row.csrf

    async def checked(request: Request, who=Depends(signed_in)) -> tuple[User, str]:
        """The signed-in user, after the request's CSRF token matched the session's."""
        user, csrf = who
        sent = request.headers.get("x-csrf-token") or (await request.form()).get("csrf")
        if not sent or not secrets.compare_digest(str(sent), csrf):
            raise HTTPException(403, "missing or wrong CSRF token; reload the page and try again")
        return user, csrf

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request):
        token = secrets.token_urlsafe(32)
        page = templates.TemplateResponse(request, "login.html", {"user": None, "csrf": token, "error": ""})
        page.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies)
        return page

    @app.post("/login")
    async def login(request: Request, session=Depends(db, scope="function")):
        form = await request.form()
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        sent, expected = str(form.get("csrf", "")), request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not expected or not secrets.compare_digest(sent, expected):
            raise HTTPException(403, "missing or wrong CSRF token; reload the sign-in page")
        client = request.client.host if request.client else "unknown"
        if auth.too_many_failures(session, username, client):
            auth.audit(session, username, "login-refused", detail=f"rate limited, from {client}")
            raise HTTPException(429, f"too many failed sign-ins; wait {auth.LOGIN_WINDOW_MIN} minutes")
        user = auth.authenticate(session, username, password)
        if user is None:
            auth.record_failure(session, username, client)
            auth.audit(session, username, "login-failed", detail=f"from {client}")
            page = templates.TemplateResponse(request, "login.html", {"user": None, "csrf": expected,
                                                                      "error": "Wrong user name or password."},
                                              status_code=401)
            return page
        token, _ = auth.open_session(session, user)
        auth.audit(session, user.username, "login")
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies,
                            max_age=auth.SESSION_HOURS * 3600)
        response.delete_cookie(LOGIN_CSRF_COOKIE)
        return response

    @app.post("/logout")
    def logout(request: Request, who=Depends(checked), session=Depends(db, scope="function")):
        auth.close_session(session, request.cookies.get(SESSION_COOKIE, ""))
        auth.audit(session, who[0].username, "logout")
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.get("/", response_class=HTMLResponse)
    def library(request: Request, who=Depends(signed_in), session=Depends(db, scope="function")):
        user, csrf = who
        books = [b for b in _books(output) if auth.can_see(session, user, b["slug"])]
        return templates.TemplateResponse(request, "library.html", {"user": user, "csrf": csrf, "books": books})

    @app.get("/books/{slug}", response_class=HTMLResponse)
    def book(slug: str, request: Request, who=Depends(signed_in), session=Depends(db, scope="function")):
        user, csrf = who
        report = _report(output, slug, session, user)
        chapters = [_chapter_row(c) | {"approved": bool(review.approval(session, slug, c.get("number")))}
                    for c in report.get("chapters", [])]
        facts = report.get("book", {}) | {"slug": slug}
        return templates.TemplateResponse(request, "book.html", {"user": user, "csrf": csrf, "book": facts,
                                                                 "chapters": chapters})

    @app.get("/books/{slug}/chapters/{number}", response_class=HTMLResponse)
    def chapter_page(slug: str, number: int, request: Request, who=Depends(signed_in),
                     session=Depends(db, scope="function")):
        user, csrf = who
        report = _report(output, slug, session, user)
        entry = review.chapter_entry(report, number)
        if entry is None:
            raise HTTPException(404, f"{slug!r} has no chapter {number}")
        chapter = review.chapter_view(output, slug, entry)
        flagged = {n.segment for n in review.notes(session, slug, number) if n.kind == "flag"}
        done = review.approval(session, slug, number)
        return templates.TemplateResponse(request, "chapter.html", {
            "user": user, "csrf": csrf, "slug": slug, "book": report.get("book", {}), "chapter": chapter,
            "flagged": sorted(flagged), "approved": done.username if done else "",
            "may_approve": auth.may(user, "approve"), "may_comment": auth.may(user, "comment"),
            "may_edit": auth.may(user, "edit"), "emotions": EMOTIONS, "may_cast": auth.may(user, "cast"),
            "voices": sorted(load_library(Workspace(root).voices_dir)) if auth.may(user, "cast") else [],
            "notes": review.notes(session, slug, number)})

    @app.post("/books/{slug}/chapters/{number}/approve")
    def approve(slug: str, number: int, who=Depends(checked), session=Depends(db, scope="function")):
        user = who[0]
        report = _allowed(output, slug, session, user, "approve", "approve chapters")
        if review.chapter_entry(report, number) is None:
            raise HTTPException(404, f"{slug!r} has no chapter {number}")
        row = review.approve(session, user, slug, number)
        return {"approved": True, "by": row.username}

    @app.post("/books/{slug}/chapters/{number}/notes")
    async def add_note(slug: str, number: int, request: Request, who=Depends(checked),
                       session=Depends(db, scope="function")):
        user = who[0]
        _allowed(output, slug, session, user, "comment", "flag or comment")
        data = await request.json() if request.headers.get("content-type", "").startswith("application/json") \
            else dict(await request.form())
        kind, segment, text = str(data.get("kind", "")), str(data.get("segment", "")), str(data.get("text", ""))
        if kind not in review.NOTE_KINDS or not _SAFE_NAME.match(segment):
            raise HTTPException(422, f"a note needs kind flag or comment and a segment id; got {kind!r}, {segment!r}")
        row = review.add_note(session, user, slug, number, segment, kind, text)
        return {"kind": row.kind, "segment": row.segment, "by": row.username}

    @app.post("/books/{slug}/chapters/{number}/segments/{segment}/edit")
    async def edit_segment(slug: str, number: int, segment: str, request: Request, who=Depends(checked),
                           session=Depends(db, scope="function")):
        user = who[0]
        report = _allowed(output, slug, session, user, "edit", "edit lines")
        _check_segment(output, slug, report, number, segment)
        changes = {k: v for k, v in (await request.json()).items() if v not in (None, "")}
        try:
            stored = save_edit(Path(root) / "manuscripts" / slug, segment, changes)
        except UserError as e:
            raise HTTPException(422, str(e)) from None
        auth.audit(session, user.username, "edit", f"{slug}/{segment}", json.dumps(stored, ensure_ascii=False))
        return {"job": renderer.submit(slug, number, segment, user.username), "edit": stored}

    @app.post("/books/{slug}/chapters/{number}/segments/{segment}/voice")
    async def line_voice(slug: str, number: int, segment: str, request: Request, who=Depends(checked),
                         session=Depends(db, scope="function")):
        user = who[0]
        report = _allowed(output, slug, session, user, "cast", "give a line another voice")
        _check_segment(output, slug, report, number, segment)
        voice = str((await request.json()).get("voice") or "")
        try:
            casting.set_line_voice(Path(root), slug, segment, voice)
        except UserError as e:
            raise HTTPException(422, str(e)) from None
        auth.audit(session, user.username, "line-voice", f"{slug}/{segment}", voice or "(the speaker's)")
        return {"job": renderer.submit(slug, number, segment, user.username), "voice": voice}

    @app.post("/books/{slug}/lexicon")
    async def lexicon_fix(slug: str, request: Request, who=Depends(checked), session=Depends(db, scope="function")):
        user = who[0]
        _allowed(output, slug, session, user, "edit", "change pronunciations")
        data = await request.json()
        word = str(data.get("word", "")).strip()
        respelling, ipa = (str(data[k]).strip() if data.get(k) else None for k in ("respelling", "ipa"))
        if not word or len(word) > 64:
            raise HTTPException(422, "give the word to pronounce (at most 64 characters)")
        try:
            set_toml_entry(Workspace(root).manuscript_dir(slug) / "lexicon.toml", word, respelling=respelling, ipa=ipa)
        except UserError as e:
            raise HTTPException(422, str(e)) from None
        auth.audit(session, user.username, "lexicon", f"{slug}/{word}", respelling or ipa or "")
        return {"job": renderer.submit(slug, 0, "", user.username)}

    @app.get("/jobs/{job_id}")
    def job_state(job_id: int, who=Depends(signed_in), session=Depends(db, scope="function")):
        job = session.get(Job, job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        _report(output, job.slug, session, who[0])
        return {"state": job.state, "message": job.message, "segment": job.segment,
                "take_before": job.take_before, "take_after": job.take_after}

    @app.get("/books/{slug}/chapters/{number}/segments/{segment}/takes")
    def segment_takes(slug: str, number: int, segment: str, who=Depends(signed_in),
                      session=Depends(db, scope="function")):
        report = _report(output, slug, session, who[0])
        _check_segment(output, slug, report, number, segment)
        takes = review.take_history(session, slug, segment, jobs.segment_take(output, slug, segment))
        return {"segment": segment, "takes": [t | {"url": f"/books/{slug}/takes/{t['key']}"} for t in takes]}

    @app.get("/books/{slug}/takes/{key}")
    def take_audio(slug: str, key: str, who=Depends(signed_in), session=Depends(db, scope="function")):
        _report(output, slug, session, who[0])
        known = session.scalar(select(Job).where(Job.slug == slug, or_(Job.take_before == key, Job.take_after == key)))
        path = TakeCache(Workspace(root).cache_dir).path(key) if _TAKE_KEY.match(key) else None
        if known is None or path is None or not path.is_file():
            raise HTTPException(404, "no such take of this book")
        return FileResponse(path, media_type="audio/wav")

    @app.get("/books/{slug}/cast", response_class=HTMLResponse)
    def cast_page(slug: str, request: Request, who=Depends(signed_in), session=Depends(db, scope="function")):
        user, csrf = who
        report = _report(output, slug, session, user)
        rows, voices = casting.cast_rows(Path(root), slug)
        return templates.TemplateResponse(request, "cast.html", {
            "user": user, "csrf": csrf, "slug": slug, "book": report.get("book", {}), "rows": rows, "voices": voices,
            "may_cast": auth.may(user, "cast")})

    @app.post("/books/{slug}/cast")
    async def recast(slug: str, request: Request, who=Depends(checked), session=Depends(db, scope="function")):
        user = who[0]
        _allowed(output, slug, session, user, "cast", "change the cast")
        data = await request.json()
        speaker, voice = str(data.get("speaker", "")), str(data.get("voice", ""))
        try:
            casting.recast(Path(root), slug, speaker, voice)
        except UserError as e:
            raise HTTPException(422, str(e)) from None
        auth.audit(session, user.username, "recast", f"{slug}/{speaker}", voice)
        return {"job": renderer.submit(slug, 0, "", user.username)}

    @app.post("/books/{slug}/cast/audition")
    async def audition(slug: str, request: Request, who=Depends(checked), session=Depends(db, scope="function")):
        user = who[0]
        _allowed(output, slug, session, user, "cast", "audition voices")
        speaker = str((await request.json()).get("speaker", ""))
        try:
            made = casting.audition(Path(root), slug, speaker)
        except UserError as e:
            raise HTTPException(422, str(e)) from None
        for voice, key in made:
            session.add(Audition(slug=slug, speaker=speaker, voice=voice, key=key))
        return {"auditions": [{"voice": v, "url": f"/books/{slug}/auditions/{k}"} for v, k in made]}

    @app.get("/books/{slug}/auditions/{key}")
    def audition_audio(slug: str, key: str, who=Depends(signed_in), session=Depends(db, scope="function")):
        _report(output, slug, session, who[0])
        known = session.scalar(select(Audition).where(Audition.slug == slug, Audition.key == key))
        path = TakeCache(Workspace(root).cache_dir).path(key) if _TAKE_KEY.match(key) else None
        if known is None or path is None or not path.is_file():
            raise HTTPException(404, "no such audition of this book")
        return FileResponse(path, media_type="audio/wav")

    @app.get("/books/{slug}/approvals.csv")
    def approvals(slug: str, who=Depends(signed_in), session=Depends(db, scope="function")):
        report = _report(output, slug, session, who[0])
        return Response(review.approvals_csv(session, slug, report), media_type="text/csv",
                        headers={"content-disposition": f'attachment; filename="{slug}-approvals.csv"'})

    @app.get("/books/{slug}/files/{name}")
    def book_file(slug: str, name: str, who=Depends(signed_in), session=Depends(db, scope="function")):
        _report(output, slug, session, who[0])  # the book exists and this user may open it
        folder = (output / slug).resolve()
        if not _SAFE_NAME.match(name) or ".." in name:
            raise HTTPException(404, "no such file in this book")
        path = (folder / name).resolve()
        if path.parent != folder or path.suffix not in SERVED_SUFFIXES or not path.is_file():
            raise HTTPException(404, "no such file in this book")
        return FileResponse(path)

    return app


def _report(output: Path, slug: str, session, user: User) -> dict:
    """Return book `slug`'s report.json, or raise 404 (no such book) / 403 (not granted)."""
    if not _SAFE_NAME.match(slug) or ".." in slug:
        raise HTTPException(404, f"no produced book {slug!r}")
    path = output / slug / "report.json"
    if not path.is_file():
        raise HTTPException(404, f"no produced book {slug!r}")
    if not auth.can_see(session, user, slug):
        raise HTTPException(403, f"you have no access to {slug!r}; ask an admin for it")
    return json.loads(path.read_text(encoding="utf-8"))


def _check_segment(output: Path, slug: str, report: dict, number: int, segment: str) -> None:
    """Refuse (404) a segment that chapter `number` of the book in `report` does not have."""
    entry = review.chapter_entry(report, number)
    if entry is None or segment not in {s["id"] for s in review.chapter_view(output, slug, entry)["segments"]}:
        raise HTTPException(404, f"chapter {number} of {slug!r} has no segment {segment!r}")


def _allowed(output: Path, slug: str, session, user: User, action: str, doing: str) -> dict:
    """Return the book's report if `user` may open it and do `action` (else 404/403 saying what is refused)."""
    report = _report(output, slug, session, user)
    if not auth.may(user, action):
        raise HTTPException(403, f"a {user.role} cannot {doing}")
    return report


def _books(output: Path) -> list[dict]:
    books = []
    for report_path in sorted(output.glob("*/report.json")):
        report = json.loads(report_path.read_text(encoding="utf-8"))
        rows = [_chapter_row(c) for c in report.get("chapters", [])]
        facts = report.get("book", {})
        books.append({"slug": report_path.parent.name, "title": facts.get("title", report_path.parent.name),
                      "author": facts.get("author", ""), "chapters": len(rows),
                      "duration": _clock(sum(r["seconds"] for r in rows)),
                      "acx_passing": sum(r["acx_pass"] for r in rows), "acx_pass": all(r["acx_pass"] for r in rows),
                      "flags": sum(r["flags"] for r in rows)})
    return books


def _chapter_row(chapter: dict) -> dict:
    seconds = float(chapter.get("duration_s", 0.0))
    return {"number": chapter.get("number"), "title": chapter.get("title", ""), "mp3": chapter.get("mp3", ""),
            "seconds": seconds, "duration": _clock(seconds), "acx_pass": bool(chapter.get("acx", {}).get("passes")),
            "flags": len((chapter.get("qa") or {}).get("flagged") or [])}


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"
