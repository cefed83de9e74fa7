"""The studio in a real headless Chromium (Debian's, driven by Playwright): sign in, play a chapter and see the
highlight move, flag a line and approve by keyboard, at laptop and tablet widths; edit a line and hear the
new take beside the old one (screenshots kept)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from studio import db
from tests.test_listen_page import browser  # noqa: F401 - the module's Chromium fixture
from tests.test_studio_edit import first_narration, served  # noqa: F401 - a studio over a book produced for real
from tests.test_studio_security import PASSWORD, studio  # noqa: F401 - a served studio with a produced book

ARTIFACTS = Path(__file__).resolve().parents[1] / "output" / "test-artifacts"
VIEWPORTS = {"laptop": {"width": 1366, "height": 768}, "tablet": {"width": 820, "height": 1180}}
JS_NOW = "() => Array.from(document.querySelectorAll('.seg.now, .w.now'), e => e.id || e.textContent)"


@pytest.mark.browser
@pytest.mark.parametrize("size", VIEWPORTS)
def test_review_a_chapter_in_chromium(browser, studio, size):  # noqa: F811 - the imported fixtures
    base, sessions = studio
    page = browser.new_page(viewport=VIEWPORTS[size])
    page.set_default_timeout(10_000)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(base + "/")
        assert page.url.endswith("/login")
        page.fill("input[name=username]", "reviewer")
        page.fill("input[name=password]", PASSWORD)
        page.click("button:has-text('Sign in')")
        page.wait_for_url(base + "/")
        page.click("text=Pride and Prejudice")
        page.click("text=Chapter I")
        page.wait_for_selector("#c01-s0001")

        page.evaluate("() => { const a = document.getElementById('audio'); a.muted = true; a.currentTime = 2.35; }")
        page.wait_for_function("() => document.querySelector('.seg.now') !== null")
        assert page.evaluate(JS_NOW) == ["c01-s0002", "is"]  # the line and the word being spoken
        page.keyboard.press("Space")  # play
        page.wait_for_function("() => !document.getElementById('audio').paused")
        page.wait_for_function("() => document.querySelector('.w.now') && document.querySelector('.w.now').textContent !== 'is'")
        page.keyboard.press("Space")  # pause
        page.keyboard.press("j")  # next line
        page.wait_for_function("() => document.querySelector('#c01-s0003.now') !== null")
        page.keyboard.press("f")
        page.wait_for_selector("#c01-s0003.flagged")
        page.keyboard.press("a")
        page.wait_for_function("() => document.getElementById('approval').textContent === 'approved by reviewer'")
        page.fill("#comment-text", f"check the pause ({size})")  # a comment on the current line
        page.click("#comment-save")
        page.wait_for_function("() => document.getElementById('status').textContent === 'Comment saved.'")
        page.click("#c01-s0001")  # click a line to seek to it
        page.wait_for_function("() => document.querySelector('#c01-s0001.now') !== null")

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / f"studio-chapter-{size}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= VIEWPORTS[size]["width"]  # nothing runs off the side: usable at this width
        assert errors == []
    finally:
        page.close()
    with sessions() as session:
        flags = [(n.segment, n.username) for n in session.scalars(select(db.Note).where(db.Note.kind == "flag"))]
        approved = session.scalar(select(db.Approval).where(db.Approval.slug == "pride-and-prejudice"))
        comments = [(n.segment, n.text) for n in session.scalars(select(db.Note).where(db.Note.kind == "comment"))]
    assert ("c01-s0003", "reviewer") in flags and approved.username == "reviewer"
    assert ("c01-s0003", f"check the pause ({size})") in comments


EDITED = "Mr. Bennet said nothing at all to that."


@pytest.mark.browser
def test_edit_a_line_in_chromium_and_hear_the_new_take(browser, served):  # noqa: F811 - the imported fixtures
    base, root, album = served
    number, segment, old_text = first_narration(root, album)
    page = browser.new_page(viewport=VIEWPORTS["laptop"])
    page.set_default_timeout(10_000)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(base + "/login")
        page.fill("input[name=username]", "reviewer")
        page.fill("input[name=password]", PASSWORD)
        page.click("button:has-text('Sign in')")
        page.wait_for_url(base + "/")
        chapter = f"{base}/books/{album['slug']}/chapters/{number}"
        page.goto(chapter)
        page.evaluate("() => { document.getElementById('audio').muted = true; }")
        page.click(f"[id='{segment}']")  # the line becomes the current one
        page.wait_for_function(f"() => document.querySelector(\"[id='{segment}'].now\") !== null")
        page.keyboard.press("e")
        page.wait_for_selector("#editor:not([hidden])")
        assert page.input_value("#edit-text") == old_text
        page.fill("#edit-text", EDITED)
        page.click("#edit-save")
        page.wait_for_function("() => document.getElementById('status').textContent.startsWith('New take ready')",
                               timeout=240_000)  # the book is produced again in the background
        before, after = (page.get_attribute(f"#take-{k}", "src") for k in ("before", "after"))
        assert before and after and before != after
        for src in (before, after):  # both takes play: fetched as the page's <audio> does, with its session
            heard = page.evaluate("async src => { const r = await fetch(src); const b = new Uint8Array(await "
                                  "r.arrayBuffer()); return [r.status, r.headers.get('content-type'), b.length, "
                                  "String.fromCharCode(...b.slice(0, 4))]; }", src)
            assert heard[0] == 200 and heard[1] == "audio/wav" and heard[2] > 20_000 and heard[3] == "RIFF"
        page.click("#history")  # every take the line has had, each playable
        page.wait_for_function("() => document.querySelectorAll('#history-list audio').length === 2")
        assert "(in the album now)" in page.text_content("#history-list li:last-child")
        page.evaluate("() => document.getElementById('take-after').play()")
        page.wait_for_function("() => document.getElementById('take-after').currentTime > 0.2")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "studio-edit-laptop.png"), full_page=True)
        page.goto(chapter)  # the chapter now reads and plays the new line in place
        assert EDITED in page.text_content(f"[id='{segment}']") and old_text not in page.text_content("body")
        assert errors == []
    finally:
        page.close()
