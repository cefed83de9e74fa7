"""The production report: what was made, how long it runs, and whether each chapter meets ACX specs.

report.json is for tools (and for comparing runs); report.html is the same facts for a producer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages import files
from stages.package import templates
from stages.errors import UserError
from stages.model import AcxFigures

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
TEMPLATE_FILE = "report.html"
REPORT_SCHEMA = 1
SECONDS_PER_MINUTE = 60
SECONDS_PER_HOUR = 3600
# ACX's published requirements, shown under the table so a reader can judge the figures.
ACX_REQUIREMENTS = (
    "RMS between -23 and -18 dBFS",
    "peak at or below -3 dBFS",
    "noise floor at or below -60 dBFS",
    "each file at most 120 minutes long",
)
BOOK_LABELS = {
    "title": "Title",
    "author": "Author",
    "narrator": "Narrator",
    "language": "Language",
    "source": "Source",
    "m4b": "Audiobook (M4B)",
    "totals": "Totals",
    "duration_s": "Duration",
    "segments": "Segments",
    "synthesized": "Synthesized",
    "cached": "From cache",
    "wall_s": "Wall time",
    "wall_time_s": "Wall time",
}


@dataclass(frozen=True)
class ChapterReport:
    """One chapter of the album: its file, its length and its ACX measurements."""

    number: int
    title: str
    mp3: str  # file name of the chapter's MP3, beside the report
    duration_s: float
    segments: int  # how many segments were spoken in it
    acx: AcxFigures

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "title": self.title,
            "mp3": self.mp3,
            "duration_s": self.duration_s,
            "segments": self.segments,
            "acx": self.acx.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChapterReport:
        return cls(
            number=data["number"],
            title=data["title"],
            mp3=data["mp3"],
            duration_s=data["duration_s"],
            segments=data["segments"],
            acx=AcxFigures.from_dict(data["acx"]),
        )


def hms(seconds: float) -> str:
    """Return a duration as h:mm:ss, rounded to the second."""
    if seconds is None or not math.isfinite(seconds):
        return "n/a"
    total = int(round(seconds))
    hours, rest = divmod(total, SECONDS_PER_HOUR)
    minutes, secs = divmod(rest, SECONDS_PER_MINUTE)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def decibels(value: float) -> str:
    """Return a level in dB with one decimal; silence (-inf) as '-inf'."""
    if value is None or math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "-inf" if value < 0 else "+inf"
    return f"{value:.1f}"


def _fact(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)) and key.endswith("_s"):
        return hms(value) if abs(value) >= SECONDS_PER_MINUTE else f"{value:.1f} s"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def _facts(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return label/value rows for a free-form dict; a nested dict becomes its own group of rows."""
    rows = []
    for key, value in data.items():
        label = BOOK_LABELS.get(key, key.replace("_", " ").capitalize())
        if isinstance(value, Mapping):
            rows.append({"label": label, "group": _facts(value)})
        else:
            rows.append({"label": label, "value": _fact(key, value)})
    return rows


def summary(chapters: Sequence[ChapterReport]) -> dict[str, Any]:
    """Return the album's totals as measured from its chapters."""
    failing = [c.number for c in chapters if not c.acx.passes]
    return {
        "chapters": len(chapters),
        "passing": len(chapters) - len(failing),
        "failing": failing,
        "passes": bool(chapters) and not failing,
        "duration_s": round(sum(c.duration_s for c in chapters), 3),
        "segments": sum(c.segments for c in chapters),
    }


def _check(book: Mapping[str, Any], chapters: Sequence[ChapterReport], out_dir: Path) -> None:
    if not isinstance(book, Mapping):
        raise UserError(f"the report for {out_dir} needs the book facts as a dict, got {type(book).__name__}")
    numbers = [c.number for c in chapters]
    if len(set(numbers)) != len(numbers):
        raise UserError(
            f"the report for {out_dir} lists a chapter number twice ({numbers}); give each chapter one entry"
        )
    for key, value in book.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError) as e:
            raise UserError(
                f"book fact {key!r} for the report in {out_dir} is not JSON-able ({e}); pass plain values"
            ) from e


def render_report_html(book: Mapping[str, Any], chapters: Sequence[ChapterReport]) -> str:
    """Return report.html: book facts and totals on top, a table of chapters with their ACX figures."""
    env = templates.environment()
    env.filters.update(hms=hms, db=decibels)
    ordered = sorted(chapters, key=lambda c: c.number)
    return env.get_template(TEMPLATE_FILE).render(
        title=str(book.get("title", "Audiobook")),
        facts=_facts(book),
        summary=summary(ordered),
        chapters=ordered,
        requirements=ACX_REQUIREMENTS,
    )


def write_report(out_dir: Path, *, book: dict, chapters: Sequence[ChapterReport]) -> tuple[Path, Path]:
    """Write report.json and report.html into `out_dir`; return their paths."""
    out_dir = Path(out_dir)
    _check(book, chapters, out_dir)
    ordered = sorted(chapters, key=lambda c: c.number)
    data = {
        "schema": REPORT_SCHEMA,
        "book": dict(book),
        "summary": summary(ordered),
        "chapters": [c.to_dict() for c in ordered],
    }
    json_path = files.write_json(out_dir / REPORT_JSON, data)
    html_path = files.write_text(out_dir / REPORT_HTML, render_report_html(book, ordered))
    return json_path, html_path


def read_report(path: Path) -> tuple[dict[str, Any], list[ChapterReport]]:
    """Return the book facts and the chapters of a report.json."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data["book"], [ChapterReport.from_dict(c) for c in data["chapters"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"cannot read report {path}: {e!r}; write it again with the package stage") from e
