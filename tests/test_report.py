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


SERIES = {"window_s": 3.0, "step_s": 1.0, "start_s": 1.5, "rms_dbfs": [-30.0, -20.5, -19.0, -21.0, -45.0],
          "peak_dbfs": [-12.0, -3.4, -3.2, -4.0, -20.0], "head_s": 0.75, "tail_s": 2.5}
LEVELS = {"reference": "joe", "voices": {"joe": {"speech_s": 70.45, "lufs_before": -25.47, "gain_db": 0.0,
                                                 "lufs_after": -25.47, "lufs_mastered": -19.54},
                                         "joe-bright": {"speech_s": 27.38, "lufs_before": -25.79, "gain_db": 0.32,
                                                        "lufs_after": -25.47, "lufs_mastered": -20.19}},
          "spread_before_lu": 0.32, "spread_after_lu": 0.0, "spread_mastered_lu": 0.65}
QA = {"asr": "whisper tiny.en", "checked": 4, "passed": 3, "retaken": 1, "not_checked": 2,
      "not_checked_reason": "headings are not checked", "wer": 0.08,
      "flagged": [{"segment": "c01-p0003-s02", "reason": "words missing", "wer": 0.5, "heard": "it is a truth"}]}


def extra_chapters() -> list[ChapterReport]:
    first = ChapterReport(1, "Chapter I", "01.mp3", 6.4, 3, CHAPTERS[0].acx,
                          {"levels": LEVELS, "loudness": SERIES, "qa": QA, "note": "split into 2 parts; part 1",
                           "checks": [{"check": "length", "value": "0.1 min", "limit": "at most 120 min",
                                       "passes": True}],
                           "future_key": [1, 2]})
    loud_levels = LEVELS | {"spread_mastered_lu": 1.4}
    series = SERIES | {"rms_dbfs": [-20.0] * 12, "peak_dbfs": [-3.5] * 12}
    second = ChapterReport(2, "Chapter II", "02.mp3", 14.0, 5, CHAPTERS[0].acx,
                           {"levels": loud_levels, "loudness": series,
                            "checks": [{"check": "length", "value": "130.0 min", "limit": "at most 120 min",
                                        "passes": False}]})
    return [first, second]


def test_read_report_keeps_every_extra_key(tmp_path):
    json_path, _ = write_report(tmp_path, book=BOOK, chapters=extra_chapters(),
                                delivery={"profile": {"name": "acx", "retailer": "ACX / Audible"}, "files": ["01.mp3"]})
    _, chapters = read_report(json_path)
    assert chapters == extra_chapters()
    assert chapters[0].extra["qa"] == QA and chapters[0].extra["future_key"] == [1, 2]
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["chapters"][0]["levels"] == LEVELS and data["chapters"][0]["loudness"] == SERIES
    assert data["delivery"]["profile"]["name"] == "acx"
    assert data["summary"]["failing"] == [2]  # passes ACX's figures but fails the profile's length check


def test_report_html_plots_each_chapter_and_shows_levels_qa_and_checks(tmp_path):
    from lxml import html as lxml_html

    _, html_path = write_report(tmp_path, book=BOOK, chapters=extra_chapters(),
                                delivery={"profile": {"name": "acx", "retailer": "ACX / Audible"},
                                          "files": ["01.mp3", "sample.mp3"],
                                          "checks": [{"check": "retail sample length", "value": "0.5 min",
                                                      "limit": "1 to 5 min", "passes": False}],
                                          "sample": {"file": "sample.mp3", "chapter_title": "Chapter I",
                                                     "start_s": 2.0, "end_s": 32.0, "duration_s": 30.0, "note": ""}})
    doc = lxml_html.fromstring(html_path.read_text(encoding="utf-8"))
    for number, chapter in ((1, extra_chapters()[0]), (2, extra_chapters()[1])):
        section = doc.get_element_by_id(f"chapter-{number}-details")
        rms = section.xpath(".//svg//path[@class='rms']/@d")
        peak = section.xpath(".//svg//path[@class='peak']/@d")
        series = chapter.extra["loudness"]
        assert len(rms) == 1 and rms[0].count(",") == len(series["rms_dbfs"])  # one x,y pair per point
        assert rms[0].startswith("M") and rms[0].count("L") == len(series["rms_dbfs"]) - 1
        assert peak[0].count(",") == len(series["peak_dbfs"])
        assert section.xpath(".//svg/rect[@class='band']") and section.xpath(".//svg/line[@class='ceiling']")
    first = doc.get_element_by_id("chapter-1-details")
    points = [tuple(map(float, p.split(","))) for p in first.xpath(".//path[@class='rms']/@d")[0][1:].split(" L")]
    assert points[0] == (1.5 / 6.4 * 640, 80.0)  # -30 dBFS is half way down the 0 to -60 dBFS plot
    assert points[-1][1] == 120.0  # -45 dBFS, three quarters of the way down
    band = first.xpath(".//rect[@class='band']")[0]
    assert (float(band.get("y")), float(band.get("height"))) == (48.0, 13.3)  # -18 to -23 dBFS
    assert "split into 2 parts" in first.xpath(".//p[@class='split-note']")[0].text_content()
    assert "pass" in first.xpath(".//p[@class='levels-verdict']//span/@class")[0]
    assert "warn" in doc.get_element_by_id("chapter-2-details").xpath(".//p[@class='levels-verdict']//span/@class")[0]
    assert [r.xpath("td")[0].text_content().strip() for r in first.xpath(".//table[@class='levels']/tbody/tr")] == [
        "joe (reference)", "joe-bright"]
    flagged_rows = first.xpath(".//table[@class='flagged']/tbody/tr")
    flagged = [[td.text_content().strip() for td in r.xpath("td")] for r in flagged_rows]
    assert flagged == [["c01-p0003-s02", "words missing", "0.50", "it is a truth"]]
    qa_text = " ".join(first.xpath(".//div[@class='qa']//p")[0].text_content().split())
    assert "3 of 4 lines pass, 1 retaken, word error rate 8.0%; 2 not checked (headings are not checked)" in qa_text
    rows = doc.xpath("//table[@aria-labelledby='chapters-h']/tbody/tr")
    assert " ".join(rows[0].xpath("td[@class='qa']")[0].text_content().split()) == "3 of 4 pass, 1 flagged"
    assert rows[1].xpath(".//span[contains(@class,'badge')]/@class") == ["badge fail"]
    assert "length: 130.0 min (at most 120 min)" in rows[1].xpath(".//ul[@class='problems']")[0].text_content()
    delivery = doc.get_element_by_id("delivery").text_content()
    assert "acx (ACX / Audible)" in delivery
    assert doc.xpath("//section[@id='delivery']//ul[@class='files']/li/text()") == ["01.mp3", "sample.mp3"]
    assert "retail sample length: 0.5 min (1 to 5 min)" in " ".join(delivery.split())
