"""The read-along page: its HTML, and its behaviour in a real headless Chromium playing real audio."""

import functools
import http.server
import io
import re
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from stages.align import SegmentWords, WordTiming
from stages.errors import UserError
from stages.model import Chapter, Cue, Paragraph, Segment
from stages.package.listen import ListenChapter, render_listen_page, write_listen_page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SAMPLE_RATE_HZ = 22050
CH1_SECONDS = 5.0
CH2_SECONDS = 3.0
SEEK_TOLERANCE_MS = 50

# (id, kind of its paragraph, text, speaker, start ms, end ms); paragraphs are the id's "pNNNN" part
CH1 = [
    ("c01-p0001-s01", "heading", "Chapter I", "narrator", 200, 900),
    ("c01-p0002-s01", "text", "“Is 3 < 4 & is <b>this</b> bold?” she asked.", "Elizabeth", 1000, 2000),
    ("c01-p0002-s02", "text", "Nobody answered.", "narrator", 2100, 2900),
    ("c01-p0003-s01", "text", "The clock struck; the fire crackled.", "narrator", 3000, 3800),
    ("c01-p0003-s02", "text", "Then all was quiet.", "narrator", 3900, 4800),
]
CH2 = [
    ("c02-p0001-s01", "heading", "Chapter II", "narrator", 100, 700),
    ("c02-p0002-s01", "text", "“你好，世界！”他说。", "Mr. Wang", 800, 2600),
]


def _chapter(number, title, rows):
    paras = {}
    for seg_id, kind, text, speaker, _, _ in rows:
        pid = seg_id.rsplit("-", 1)[0]
        seg_kind = "heading" if kind == "heading" else "narration"
        seg = Segment(id=seg_id, text=text, spoken=text, kind=seg_kind, speaker=speaker)
        paras.setdefault(pid, (kind, []))[1].append(seg)
    paragraphs = tuple(Paragraph(pid, kind, tuple(segs)) for pid, (kind, segs) in paras.items())
    cues = [Cue(r[0], r[2], r[3], r[4], r[5]) for r in rows]
    return Chapter(number=number, title=title, paragraphs=paragraphs), cues


def _write_wav(path, seconds):
    t = np.arange(int(seconds * SAMPLE_RATE_HZ)) / SAMPLE_RATE_HZ
    pcm = (0.1 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE_HZ)
        w.writeframes(pcm.tobytes())


# word timings for two of chapter 1's sentences; the others are timed as whole sentences only
WORDS = {
    "c01-p0002-s02": SegmentWords("engine", (WordTiming("Nobody", 2150, 2500), WordTiming("answered", 2550, 2850))),
    "c01-p0003-s01": SegmentWords("asr", tuple(WordTiming(*w) for w in (
        ("The", 3000, 3100), ("clock", 3120, 3350), ("struck", 3370, 3500), ("the", 3550, 3600),
        ("fire", 3610, 3700), ("crackled", 3700, 3790),
    ))),
}


def _build_album(folder: Path, words=None) -> Path:
    ch1, cues1 = _chapter(1, "Chapter I", CH1)
    ch2, cues2 = _chapter(2, "Chapter II", CH2)
    _write_wav(folder / "01 - Chapter I.wav", CH1_SECONDS)
    _write_wav(folder / "02 - Chapter II.wav", CH2_SECONDS)
    chapters = [
        ListenChapter.from_chapter(ch1, "01 - Chapter I.wav", cues1, words=words),
        ListenChapter.from_chapter(ch2, "02 - Chapter II.wav", cues2),
    ]
    return write_listen_page(
        folder / "listen.html",
        title="Tea & <Sympathy>",
        author="A. Writer",
        narrator="Joe",
        cover_file=None,
        chapters=chapters,
        language="en-GB",
    )


def test_from_chapter_groups_cues_by_paragraph_and_keeps_kinds():
    chapter, cues = _chapter(1, "Chapter I", CH1)
    listen = ListenChapter.from_chapter(chapter, "01.mp3", list(reversed(cues)))
    assert [[c.id for c in p] for p in listen.paragraphs] == [
        ["c01-p0001-s01"],
        ["c01-p0002-s01", "c01-p0002-s02"],
        ["c01-p0003-s01", "c01-p0003-s02"],
    ]
    assert list(listen.kinds) == ["heading", "text", "text"]
    with pytest.raises(UserError, match="c09-p0001-s01 are not segments of chapter 1"):
        ListenChapter.from_chapter(chapter, "01.mp3", [Cue("c09-p0001-s01", "x", "narrator", 0, 1)])


def test_page_html_escapes_text_and_carries_timings(tmp_path):
    from lxml import html as lxml_html

    page = _build_album(tmp_path).read_text(encoding="utf-8")
    assert "<b>this</b>" not in page and "Tea &amp; &lt;Sympathy&gt;" in page
    doc = lxml_html.fromstring(page)
    assert doc.get("lang") == "en-GB"
    spans = doc.xpath("//span[contains(concat(' ', @class, ' '), ' seg ')]")
    assert [(s.get("id"), int(s.get("data-start")), int(s.get("data-end"))) for s in spans] == [
        (r[0], r[4], r[5]) for r in CH1 + CH2
    ]
    assert spans[1].text_content() == CH1[1][2]
    assert spans[1].get("title") == "Elizabeth" and spans[2].get("title") is None
    assert [h.text_content() for h in doc.xpath("//article//h2")] == ["Chapter I", "Chapter II"]
    assert doc.xpath("//article")[0].get("aria-live") == "off"
    assert doc.xpath("//audio")[0].get("src") == "01%20-%20Chapter%20I.wav"
    assert [s.get("data-audio") for s in doc.xpath("//section[@data-audio]")] == [
        "01%20-%20Chapter%20I.wav",
        "02%20-%20Chapter%20II.wav",
    ]
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere
    first_paragraph = doc.xpath("//p[span]")[0].text_content()
    assert first_paragraph == "“Is 3 < 4 & is <b>this</b> bold?” she asked. Nobody answered."


def test_timed_words_are_spans_inside_their_sentence(tmp_path):
    from lxml import html as lxml_html

    doc = lxml_html.fromstring(_build_album(tmp_path, WORDS).read_text(encoding="utf-8"))
    words = doc.xpath("//span[@class='w']")
    assert [(w.text, int(w.get("data-start")), int(w.get("data-end"))) for w in words] == [
        (w.text, w.start_ms, w.end_ms) for seg in WORDS.values() for w in seg.words
    ]
    assert {w.getparent().get("id") for w in words} == set(WORDS)
    sentence = doc.get_element_by_id("c01-p0003-s01")
    assert sentence.text_content() == "The clock struck; the fire crackled."  # the text is unchanged around the spans
    assert doc.get_element_by_id("c01-p0003-s02").xpath(".//span") == []  # sentence level only: no word spans


def test_chinese_sentences_join_without_spaces():
    rows = CH2 + [("c02-p0002-s02", "text", "她笑了。", "narrator", 2700, 2900)]
    chapter, cues = _chapter(2, "第二章", rows)
    page = render_listen_page(
        title="书",
        author="作者",
        narrator="Joe",
        cover_file="cover image.jpg",
        chapters=[ListenChapter.from_chapter(chapter, "02.mp3", cues)],
        language="zh",
    )
    assert "他说。</span><span" in page
    assert 'src="cover%20image.jpg"' in page


def _serve(folder: Path):
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """A static file server that answers byte-range requests, as any real one does (media seeking needs them)."""

    def log_message(self, format, *args):  # noqa: A002 - the base class names it so
        pass

    def send_head(self):
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if not match or not path.is_file():
            return super().send_head()
        data = path.read_bytes()
        start = int(match.group(1))
        end = min(int(match.group(2) or len(data) - 1), len(data) - 1)
        if start >= len(data):
            self.send_error(416)
            return None
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return io.BytesIO(data[start : end + 1])


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install it with `apt-get install -y chromium chromium-driver` (./run test does)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: pip install 'playwright>=1.45' (the dev extra)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


JS_SEEK = """t => new Promise(done => {
  const a = document.getElementById('audio');
  a.addEventListener('seeked', () => requestAnimationFrame(() => done()), {once: true});
  a.currentTime = t;
})"""
JS_ACTIVE = "() => Array.from(document.querySelectorAll('.seg.active'), e => e.id)"
JS_WATCH_SEEK = """() => {
  const a = document.getElementById('audio');
  window.seekedAt = null;
  a.addEventListener('seeked', () => { window.seekedAt = a.currentTime; }, {once: true});
}"""


@pytest.mark.browser
def test_read_along_in_chromium(browser, tmp_path):
    _build_album(tmp_path)
    server = _serve(tmp_path)
    origin = f"http://127.0.0.1:{server.server_address[1]}/"
    page = browser.new_page()
    page.set_default_timeout(10_000)
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    try:
        page.goto(origin + "listen.html")
        page.wait_for_function("document.getElementById('audio').readyState >= 1")
        assert page.evaluate("document.getElementById('audio').duration") == pytest.approx(CH1_SECONDS, abs=0.01)

        page.evaluate(JS_SEEK, 2.4)  # inside cue 2 ("Nobody answered.")
        assert page.evaluate(JS_ACTIVE) == ["c01-p0002-s02"]

        page.evaluate(JS_WATCH_SEEK)
        page.click("#c01-p0003-s01")  # cue 3: seeks there and plays
        page.wait_for_function("window.seekedAt !== null", timeout=5000)
        assert abs(page.evaluate("window.seekedAt") * 1000 - 3000) <= SEEK_TOLERANCE_MS
        assert page.evaluate(JS_ACTIVE) == ["c01-p0003-s01"]
        assert page.evaluate("document.getElementById('audio').paused") is False
        # playback moves the highlight on to the next sentence by itself
        page.wait_for_function("document.getElementById('c01-p0003-s02').classList.contains('active')", timeout=5000)
        assert page.evaluate(JS_ACTIVE) == ["c01-p0003-s02"]

        page.locator("h1").click()
        page.keyboard.press("Space")  # space pauses ...
        assert page.evaluate("document.getElementById('audio').paused") is True
        page.keyboard.press("Space")  # ... and plays again
        assert page.evaluate("document.getElementById('audio').paused") is False

        page.select_option("#chapter-select", "1")  # the chapter switcher loads chapter 2
        page.wait_for_function("document.getElementById('audio').readyState >= 1")
        assert page.evaluate("document.getElementById('audio').src") == origin + "02%20-%20Chapter%20II.wav"
        assert page.evaluate("document.getElementById('audio').duration") == pytest.approx(CH2_SECONDS, abs=0.01)
        assert page.is_visible("#c02-p0002-s01") and not page.is_visible("#c01-p0003-s01")
        assert page.text_content("#chapter-now") == "Chapter II"

        page.select_option("#chapter-select", "0")  # when chapter 1 ends, chapter 2 follows
        page.wait_for_function("document.getElementById('audio').readyState >= 1")
        page.evaluate(JS_SEEK, CH1_SECONDS - 0.3)
        page.evaluate("document.getElementById('audio').play()")
        page.wait_for_function("document.getElementById('chapter-select').value === '1'", timeout=5000)
        page.wait_for_function("(a => !a.paused && a.currentTime > 0)(document.getElementById('audio'))")
        assert page.evaluate("document.getElementById('audio').src").endswith("02%20-%20Chapter%20II.wav")
    finally:
        page.close()
        server.shutdown()
    assert errors == []
    assert requests and all(u.startswith(origin) for u in requests), requests


JS_SCROLL_SETTLED = """() => new Promise(done => {
  let last = -1, still = 0;
  const check = () => {
    if (scrollY === last) { if (++still > 6) return done(scrollY); } else { still = 0; last = scrollY; }
    requestAnimationFrame(check);
  };
  check();
})"""
JS_IN_VIEW = """id => {
  const r = document.getElementById(id).getBoundingClientRect();
  return r.top >= document.querySelector('.player').getBoundingClientRect().bottom && r.bottom <= innerHeight;
}"""


@pytest.mark.browser
def test_highlight_scrolls_into_view_but_leaves_a_scrolling_reader_alone(browser, tmp_path):
    rows = [
        (f"c01-p{i:04d}-s01", "text", f"Sentence {i}, long enough to take a line or two of the page.", "narrator")
        + (i * 150, i * 150 + 140)
        for i in range(1, 41)
    ]
    chapter, cues = _chapter(1, "A long chapter", rows)
    _write_wav(tmp_path / "long.wav", 7.0)
    write_listen_page(
        tmp_path / "listen.html",
        title="Long",
        author="A. Writer",
        narrator="Joe",
        cover_file=None,
        chapters=[ListenChapter.from_chapter(chapter, "long.wav", cues)],
    )
    server = _serve(tmp_path)
    page = browser.new_page(viewport={"width": 900, "height": 600})
    page.set_default_timeout(10_000)
    try:
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/listen.html")
        page.wait_for_function("document.getElementById('audio').readyState >= 1")
        assert not page.evaluate(JS_IN_VIEW, "c01-p0030-s01")
        page.evaluate(JS_SEEK, 30 * 0.150 + 0.05)
        page.wait_for_function(f"({JS_IN_VIEW})('c01-p0030-s01')")  # the spoken sentence is brought into view
        assert page.evaluate(JS_SCROLL_SETTLED) > 0 and page.evaluate(JS_IN_VIEW, "c01-p0030-s01")

        page.mouse.move(450, 400)
        page.mouse.wheel(0, -2500)  # the reader scrolls back up to read something else
        page.wait_for_function(f"!({JS_IN_VIEW})('c01-p0030-s01')")
        scrolled_to = page.evaluate(JS_SCROLL_SETTLED)
        page.evaluate(JS_SEEK, 31 * 0.150 + 0.05)
        page.wait_for_timeout(600)
        assert page.evaluate(JS_ACTIVE) == ["c01-p0031-s01"]
        assert page.evaluate("scrollY") == scrolled_to  # not dragged back while reading elsewhere
        page.evaluate("document.getElementById('audio').play()")
        page.wait_for_selector("#follow", state="visible")
        page.click("#follow")
        page.wait_for_function(f"({JS_IN_VIEW})(document.querySelector('.seg.active').id)")
        assert page.is_hidden("#follow")
    finally:
        page.close()
        server.shutdown()


JS_WORD = "() => Array.from(document.querySelectorAll('.w.on'), e => e.textContent)"


@pytest.mark.browser
def test_the_spoken_word_is_highlighted(browser, tmp_path):
    _build_album(tmp_path, WORDS)
    server = _serve(tmp_path)
    page = browser.new_page()
    page.set_default_timeout(10_000)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/listen.html")
        page.wait_for_function("document.getElementById('audio').readyState >= 1")
        page.evaluate(JS_SEEK, 2.6)  # inside "answered"
        assert page.evaluate(JS_ACTIVE) == ["c01-p0002-s02"] and page.evaluate(JS_WORD) == ["answered"]
        page.evaluate(JS_SEEK, 3.4)
        assert page.evaluate(JS_ACTIVE) == ["c01-p0003-s01"] and page.evaluate(JS_WORD) == ["struck"]
        page.evaluate(JS_SEEK, 4.2)  # a sentence without word timings: lit as a whole, no word
        assert page.evaluate(JS_ACTIVE) == ["c01-p0003-s02"] and page.evaluate(JS_WORD) == []

        page.evaluate(JS_WATCH_SEEK)
        page.click("#c01-p0003-s01 .w >> text=clock")  # a word: play from that word
        page.wait_for_function("window.seekedAt !== null", timeout=5000)
        assert abs(page.evaluate("window.seekedAt") * 1000 - 3120) <= SEEK_TOLERANCE_MS
        assert page.evaluate(JS_WORD) == ["clock"]
        # playing on, the highlight moves from word to word by itself
        page.wait_for_function(
            "['struck', 'the', 'fire', 'crackled'].includes((document.querySelector('.w.on') || {}).textContent)",
            timeout=5000,
        )
        assert page.evaluate(JS_ACTIVE) == ["c01-p0003-s01"]
    finally:
        page.close()
        server.shutdown()
    assert errors == []
