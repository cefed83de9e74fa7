"""The production report: report.json keeps every figure, report.html shows them with pass/fail badges."""

import json

import pytest

from stages.errors import UserError
from stages.model import AcxFigures
from stages.package.report import ChapterReport, hms, read_report, write_report

BOOK = {
    "title": "Pride & Prejudice",
    "author": "Jane Austen",
    "narrator": "Joe (en_US-joe-medium)",
    "language": "en",
    "source": "corpus/pride-and-prejudice.epub",
    "m4b": "Pride & Prejudice.m4b",
    "totals": {"duration_s": 4_231.5, "segments": 1_203, "synthesized": 1_100, "cached": 103, "wall_time_s": 612.25},
}
CHAPTERS = [
    ChapterReport(
        number=1,
        title="Chapter I",
        mp3="01 - Chapter I.mp3",
        duration_s=371.46,
        segments=96,
        acx=AcxFigures(rms_dbfs=-20.04, peak_dbfs=-3.51, noise_floor_dbfs=-72.3, lufs=-19.12, duration_s=371.46),
    ),
    ChapterReport(
        number=2,
        title="Chapter II <draft> “quoted”",
        mp3="02 - Chapter II.mp3",
        duration_s=3_859.9,
        segments=1_107,
        acx=AcxFigures(
            rms_dbfs=-24.7,
            peak_dbfs=-1.2,
            noise_floor_dbfs=-58.0,
            lufs=float("-inf"),
            duration_s=3_859.9,
            problems=("RMS -24.7 dBFS is below -23 dBFS", "peak -1.2 dBFS is above -3 dBFS"),
        ),
    ),
]


def test_report_json_round_trips_the_figures(tmp_path):
    json_path, html_path = write_report(tmp_path / "out", book=BOOK, chapters=list(reversed(CHAPTERS)))
    assert json_path == tmp_path / "out" / "report.json" and html_path == tmp_path / "out" / "report.html"
    book, chapters = read_report(json_path)
    assert book == BOOK
    assert chapters == CHAPTERS  # written in chapter order, every float exact, -inf included
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["summary"] == {
        "chapters": 2,
        "passing": 1,
        "failing": [2],
        "passes": False,
        "duration_s": 4_231.36,
        "segments": 1_203,
    }
    assert data["chapters"][0]["acx"]["passes"] is True and data["chapters"][1]["acx"]["passes"] is False
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.html", "report.json"]  # no temp files left


def test_report_html_shows_each_chapter_with_its_badge_and_problems(tmp_path):
    from lxml import html as lxml_html

    _, html_path = write_report(tmp_path, book=BOOK, chapters=CHAPTERS)
    page = html_path.read_text(encoding="utf-8")
    assert "<draft>" not in page and "Chapter II &lt;draft&gt; “quoted”" in page
    doc = lxml_html.fromstring(page)
    rows = doc.xpath("//tbody/tr")
    cells = [[td.text_content().strip() for td in row.xpath("td")] for row in rows]
    assert [c[1] for c in cells] == ["Chapter I", "Chapter II <draft> “quoted”"]
    assert cells[0][3:9] == ["0:06:11", "96", "-20.0", "-3.5", "-72.3", "-19.1"]
    assert cells[1][3:9] == ["1:04:20", "1107", "-24.7", "-1.2", "-58.0", "-inf"]
    assert rows[0].xpath(".//span[contains(@class, 'badge')]/@class") == ["badge pass"]
    assert rows[1].xpath(".//span[contains(@class, 'badge')]/@class") == ["badge fail"]
    assert rows[1].xpath(".//ul[@class='problems']/li/text()") == list(CHAPTERS[1].acx.problems)
    assert "1 of 2 chapters fail ACX checks" in doc.xpath("//p[contains(@class, 'verdict')]")[0].text_content()
    facts = {dt.text_content(): dd.text_content() for dt, dd in zip(doc.xpath("//dt"), doc.xpath("//dd"))}
    assert facts["Author"] == "Jane Austen" and facts["Audiobook (M4B)"] == "Pride & Prejudice.m4b"
    assert facts["Wall time"] == "0:10:12" and facts["From cache"] == "103" and facts["Synthesized"] == "1,100"
    assert "<script" not in page and "http://" not in page and "https://" not in page


def test_all_passing_album_says_so(tmp_path):
    _, html_path = write_report(tmp_path, book={"title": "Short"}, chapters=CHAPTERS[:1])
    assert "Every chapter passes ACX checks (1 of 1)" in html_path.read_text(encoding="utf-8")


def test_durations_format_as_hours_minutes_seconds():
    assert [hms(0), hms(59.5), hms(3_599.4), hms(36_000)] == ["0:00:00", "0:01:00", "0:59:59", "10:00:00"]


def test_bad_input_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(UserError, match="chapter number twice"):
        write_report(tmp_path, book=BOOK, chapters=[CHAPTERS[0], CHAPTERS[0]])
    with pytest.raises(UserError, match="book fact 'started' .* not JSON-able"):
        write_report(tmp_path, book={"title": "x", "started": object()}, chapters=CHAPTERS)
    assert list(tmp_path.iterdir()) == []
