"""The production report: what was made, how long it runs, and whether each chapter meets the retailer's specs.

report.json is for tools (and for comparing runs); report.html is the same facts for a producer: per
chapter its ACX figures, a loudness-over-time plot, the delivery profile's checks, the spread of the
voices' loudness, any split note and the ASR check's findings; for the album the profile, the retail
sample and the album-wide checks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stages import files
from stages.acx import ACX_PEAK_MAX_DBFS, ACX_RMS_MAX_DBFS, ACX_RMS_MIN_DBFS
from stages.package import templates
from stages.errors import UserError
from stages.model import AcxFigures

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
TEMPLATE_FILE = "report.html"
REPORT_SCHEMA = 1
BASE_KEYS = ("number", "title", "mp3", "duration_s", "segments", "acx")  # the rest of an entry is kept in `extra`
LEVEL_SPREAD_TARGET_LU = 1.0  # voices' loudness in the mastered track should differ by at most this
PLOT_WIDTH, PLOT_HEIGHT = 640, 160  # the loudness plot's drawing area, SVG user units
PLOT_TOP_DBFS, PLOT_BOTTOM_DBFS = 0.0, -60.0  # its vertical range; quieter points sit on the bottom edge
PLOT_TICKS_DBFS = (-3.0, -18.0, -23.0, -60.0)
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
    """One chapter of the album: its file, its length, its ACX measurements and whatever else was reported.

    `extra` holds the entry's other keys as they are: "levels" (per-voice loudness), "loudness" (the
    series acx.loudness_series returns), "checks" (the profile's checks), "note", "qa" (the ASR check).
    """

    number: int
    title: str
    mp3: str  # file name of the chapter's MP3, beside the report
    duration_s: float
    segments: int  # how many segments were spoken in it
    acx: AcxFigures
    extra: dict = field(default_factory=dict)

    @property
    def passes(self) -> bool:
        """Return True when the ACX figures and every check of the delivery profile pass."""
        return self.acx.passes and all(c.get("passes", True) for c in self.extra.get("checks", ()))

    def to_dict(self) -> dict[str, Any]:
        return dict(self.extra) | {
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
            extra={k: v for k, v in data.items() if k not in BASE_KEYS},
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
    failing = [c.number for c in chapters if not c.passes]
    return {
        "chapters": len(chapters),
        "passing": len(chapters) - len(failing),
        "failing": failing,
        "passes": bool(chapters) and not failing,
        "duration_s": round(sum(c.duration_s for c in chapters), 3),
        "segments": sum(c.segments for c in chapters),
    }


def _check(book: Mapping[str, Any], chapters: Sequence[ChapterReport], out_dir: Path,
           delivery: Mapping[str, Any] | None = None) -> None:
    if not isinstance(book, Mapping):
        raise UserError(f"the report for {out_dir} needs the book facts as a dict, got {type(book).__name__}")
    numbers = [c.number for c in chapters]
    if len(set(numbers)) != len(numbers):
        raise UserError(
            f"the report for {out_dir} lists a chapter number twice ({numbers}); give each chapter one entry"
        )
    named = [(f"book fact {k!r}", v) for k, v in book.items()] + [("the delivery facts", delivery)]
    named += [(f"chapter {c.number}'s {k!r}", v) for c in chapters for k, v in c.extra.items()]
    for what, value in named:
        try:
            json.dumps(value)
        except (TypeError, ValueError) as e:
            raise UserError(f"{what} for the report in {out_dir} is not JSON-able ({e}); pass plain values") from e


def loudness_plot(series: Mapping[str, Any] | None, duration_s: float) -> dict[str, Any] | None:
    """Return the SVG geometry of a chapter's loudness over time: RMS and peak paths, the ACX band and ceiling."""
    rms = list((series or {}).get("rms_dbfs") or ())
    if not rms:
        return None
    start, step = float(series.get("start_s", 0.0)), float(series.get("step_s", 1.0))
    peaks = list(series.get("peak_dbfs") or ())
    span = max(duration_s or 0.0, start + step * (len(rms) - 1), 1e-6)

    def x(t: float) -> float:
        return round(t / span * PLOT_WIDTH, 1)

    def y(db: float) -> float:
        db = min(max(db, PLOT_BOTTOM_DBFS), PLOT_TOP_DBFS)
        return round((PLOT_TOP_DBFS - db) / (PLOT_TOP_DBFS - PLOT_BOTTOM_DBFS) * PLOT_HEIGHT, 1)

    def path(values: list[float]) -> str:
        return "M" + " L".join(f"{x(start + i * step)},{y(v)}" for i, v in enumerate(values)) if values else ""

    return {
        "width": PLOT_WIDTH,
        "height": PLOT_HEIGHT,
        "points": len(rms),
        "rms_path": path(rms),
        "peak_path": path(peaks),
        "band_top": y(ACX_RMS_MAX_DBFS),
        "band_height": round(y(ACX_RMS_MIN_DBFS) - y(ACX_RMS_MAX_DBFS), 1),
        "ceiling": y(ACX_PEAK_MAX_DBFS),
        "ticks": [{"label": f"{db:g}", "y": y(db)} for db in PLOT_TICKS_DBFS],
        "window_s": series.get("window_s"),
        "step_s": step,
        "end": hms(span),
    }


def level_view(levels: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Return the per-voice loudness rows and the mastered spread's verdict (pass at most 1 LU, else warn)."""
    if not levels or not levels.get("voices"):
        return None
    spread = levels.get("spread_mastered_lu")
    rows = [{"voice": v, "reference": v == levels.get("reference")} | dict(f) for v, f in levels["voices"].items()]
    return {"rows": rows, "spread_before_lu": levels.get("spread_before_lu"), "spread_mastered_lu": spread,
            "target_lu": LEVEL_SPREAD_TARGET_LU,
            "verdict": "n/a" if spread is None else ("pass" if spread <= LEVEL_SPREAD_TARGET_LU else "warn")}


def _chapter_view(c: ChapterReport) -> dict[str, Any]:
    qa = c.extra.get("qa")
    return {"c": c, "passes": c.passes, "plot": loudness_plot(c.extra.get("loudness"), c.duration_s),
            "levels": level_view(c.extra.get("levels")), "checks": list(c.extra.get("checks") or ()),
            "note": c.extra.get("note") or "", "qa": dict(qa) if isinstance(qa, Mapping) else None}


def render_report_html(
    book: Mapping[str, Any], chapters: Sequence[ChapterReport], delivery: Mapping[str, Any] | None = None
) -> str:
    """Return report.html: book facts, delivery and totals on top, the chapters' table, then each chapter's details."""
    env = templates.environment()
    env.filters.update(hms=hms, db=decibels)
    ordered = sorted(chapters, key=lambda c: c.number)
    return env.get_template(TEMPLATE_FILE).render(
        title=str(book.get("title", "Audiobook")),
        facts=_facts(book),
        summary=summary(ordered),
        chapters=ordered,
        views=[_chapter_view(c) for c in ordered],
        delivery=dict(delivery or {}),
        requirements=ACX_REQUIREMENTS,
    )


def write_report(
    out_dir: Path, *, book: dict, chapters: Sequence[ChapterReport], delivery: Mapping[str, Any] | None = None
) -> tuple[Path, Path]:
    """Write report.json and report.html into `out_dir`; return their paths.

    `delivery` is the album-wide part: {"profile": Profile.to_dict(), "checks": [...], "sample": {...}}.
    """
    out_dir = Path(out_dir)
    _check(book, chapters, out_dir, delivery)
    ordered = sorted(chapters, key=lambda c: c.number)
    data = {
        "schema": REPORT_SCHEMA,
        "book": dict(book),
        "summary": summary(ordered),
        "chapters": [c.to_dict() for c in ordered],
    } | ({"delivery": dict(delivery)} if delivery else {})
    json_path = files.write_json(out_dir / REPORT_JSON, data)
    html_path = files.write_text(out_dir / REPORT_HTML, render_report_html(book, ordered, delivery))
    return json_path, html_path


def read_report(path: Path) -> tuple[dict[str, Any], list[ChapterReport]]:
    """Return the book facts and the chapters of a report.json, each chapter's other keys kept in its `extra`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data["book"], [ChapterReport.from_dict(c) for c in data["chapters"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"cannot read report {path}: {e!r}; write it again with the package stage") from e
