"""What a retailer gets beyond the chapters: the retail sample, and the report's delivery checks.

`write_retail_sample` cuts the sample from the first chapter's master (after its heading, at segment
boundaries, with a short fade) into `<slug>-retail-sample.mp3`; `chapter_entry` turns a produced
chapter into its report entry with the profile's checks; `delivery_facts` gathers the album-wide part.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stages import acx, files, profiles
from stages.model import Manuscript
from stages.package import album, report, sync
from stages.profiles import Profile

SAMPLE_SUFFIX = "-retail-sample"
SAMPLE_TITLE = "{title} (retail sample)"


def sample_path(out_dir: Path, slug: str) -> Path:
    return Path(out_dir) / f"{slug}{SAMPLE_SUFFIX}.mp3"


def write_retail_sample(
    manuscript: Manuscript, results: Sequence, out_dir: Path, *, tags: album.AlbumTags, profile: Profile,
    stamp: Path | None = None,
) -> dict[str, Any] | None:
    """Write the retail sample MP3 from the first chapter long enough (else the first); return its report entry.

    `results` are the produced chapters (ChapterResult: number, title, sync, master_wav, key). None when the
    profile wants no sample or no chapter was produced. With `stamp` (a JSON file), a sample whose chapter,
    profile and tags are unchanged since the last run is kept as it is.
    """
    if not profile.sample_minutes or not results:
        return None
    low_s = profile.sample_minutes[0] * profiles.SECONDS_PER_MINUTE
    chosen = next((r for r in results if r.duration_s >= low_s), results[0])
    recipe = json.dumps([chosen.key, profile.to_dict(), repr(tags)], sort_keys=True, default=str)
    key = hashlib.sha256(recipe.encode()).hexdigest()
    kept = _read_json(stamp) if stamp else {}
    if kept.get("key") == key and sample_path(out_dir, manuscript.slug).is_file():
        return kept["entry"]
    entry = _cut_sample(manuscript, chosen, out_dir, tags=tags, profile=profile)
    if stamp:
        files.write_json(stamp, {"key": key, "entry": entry})
    return entry


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _cut_sample(manuscript: Manuscript, chosen, out_dir: Path, *, tags: album.AlbumTags, profile: Profile) -> dict:
    from stages import wav

    low_s, high_s = (m * profiles.SECONDS_PER_MINUTE for m in profile.sample_minutes)
    chapter = manuscript.chapter(chosen.number)
    kinds = {s.id: s.kind for s in chapter.segments}
    audio, rate = wav.read_wav(Path(chosen.master_wav))
    cues = sync.read_sync_map(Path(out_dir) / chosen.sync)[1]
    start, end, segments = profiles.sample_span(cues, kinds, len(audio) / rate, high_s)
    clip = profiles.cut_sample(audio, rate, start, end)
    path = sample_path(out_dir, manuscript.slug)
    album.write_chapter_mp3(clip, rate, path, title=SAMPLE_TITLE.format(title=manuscript.title), track=1, total=1,
                            tags=tags, bitrate_kbps=profile.mp3_bitrate_kbps, rate_hz=profile.sample_rate_hz)
    duration = round(clip.size / rate, 3)
    note = "" if duration >= low_s else (
        f"the book's chapters are all shorter than the sample's {profile.sample_minutes[0]:g}-minute minimum")
    return {"file": path.name, "chapter": chosen.number, "chapter_title": chosen.title, "start_s": start,
            "end_s": end, "duration_s": duration, "segments": segments, "acx": acx.measure(clip, rate).to_dict(),
            "note": note}


def chapter_entry(result, profile: Profile, out_dir: Path, note: str = "") -> report.ChapterReport:
    """Return a produced chapter's report entry: ACX figures, the profile's checks, levels, loudness, note, QA."""
    loudness = dict(getattr(result, "loudness", None) or {})
    checks = profiles.chapter_checks(profile, result.acx, result.duration_s, head_s=loudness.get("head_s"),
                                     tail_s=loudness.get("tail_s"), mp3=Path(out_dir) / result.mp3)
    extra: dict[str, Any] = {"levels": result.levels, "loudness": loudness, "checks": checks}
    if note:
        extra["note"] = note
    qa = getattr(result, "qa", None)
    if qa:
        extra["qa"] = qa if isinstance(qa, dict) else qa.to_dict()
    return report.ChapterReport(result.number, result.title, result.mp3, result.duration_s, result.segments,
                                result.acx, extra)


def delivery_facts(
    profile: Profile, *, m4b: Path | None, sample: dict[str, Any] | None, credits: bool, mp3s: Sequence[str]
) -> dict[str, Any]:
    """Return report.json's "delivery": the profile, the files to upload, the album-wide checks, the sample."""
    files = list(mp3s) if profile.chapter_mp3s else []
    files += [m4b.name] if profile.m4b and m4b is not None else []
    files += [sample["file"]] if sample else []
    checks = profiles.album_checks(profile, m4b=m4b, sample_s=sample["duration_s"] if sample else None,
                                   credits=credits)
    return {"profile": profile.to_dict(), "files": files, "checks": checks, "sample": sample}


def failures(chapters: Sequence[report.ChapterReport], delivery: dict[str, Any]) -> list[str]:
    """Return one line per chapter or album-wide check that fails, for the error after the report is written."""
    lines = []
    for c in chapters:
        if not c.passes:
            found = list(c.acx.problems)
            found += [f"{k['check']} {k['value']} (needs {k['limit']})" for k in c.extra.get("checks", ())
                      if not k["passes"] and not any(k["check"].lower() in p.lower() for p in c.acx.problems)]
            lines.append(f"chapter {c.number}: {', '.join(found)}")
    lines += [f"{k['check']} {k['value']} (needs {k['limit']})" for k in delivery.get("checks", ()) if not k["passes"]]
    return lines
