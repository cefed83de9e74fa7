"""Chapter review: the listen-and-read page of one chapter, flags and comments on segments, chapter
approval, and the approvals report (CSV). Read from the sync maps and report `produce` wrote."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from stages.package import sync
from studio import auth
from studio.db import Approval, Job, Note, User

NOTE_KINDS = ("flag", "comment")
MAX_NOTE_CHARS = 2000


def chapter_entry(report: dict, number: int) -> dict | None:
    return next((c for c in report.get("chapters", []) if c.get("number") == number), None)


def chapter_view(output: Path, slug: str, entry: dict) -> dict:
    """Return what the review page shows: the chapter's segments with their times and timed words."""
    sync_path = output / slug / (Path(entry["mp3"]).stem + ".sync.json")
    facts, cues, words = sync.read_sync(sync_path)
    segments = []
    for cue in cues:
        timed = words.get(cue.id)
        timed_words = timed.words if timed and timed.timed else ()
        segments.append({"id": cue.id, "text": cue.text, "speaker": cue.speaker, "start": cue.start_ms,
                         "end": cue.end_ms, "pieces": sync.word_pieces(cue.text, timed_words)})
    return {"number": entry["number"], "title": entry.get("title", ""), "mp3": entry["mp3"],
            "duration_ms": facts.get("duration_ms", 0), "segments": segments}


def take_history(db: Session, slug: str, segment: str, current: str) -> list[dict]:
    """Return every take a line has had through the studio, oldest first: the one it had before its first
    re-render, then each re-render's; `current` (the take the album holds now) is marked. A line never
    re-rendered has none (its one take plays in the chapter)."""
    takes: list[dict] = []
    jobs = db.scalars(select(Job).where(Job.slug == slug, Job.segment == segment, Job.state == "done").order_by(Job.id))
    for job in jobs:
        if not takes and job.take_before:
            takes.append({"key": job.take_before, "made": "before the first re-render", "by": ""})
        if job.take_after and all(t["key"] != job.take_after for t in takes):  # a take heard again is listed once
            takes.append({"key": job.take_after, "made": job.created.strftime("%Y-%m-%d %H:%M"), "by": job.username})
    return [t | {"current": t["key"] == current} for t in takes]


def approval(db: Session, slug: str, number: int) -> Approval | None:
    return db.scalar(select(Approval).where(Approval.slug == slug, Approval.chapter == number))


def approve(db: Session, user: User, slug: str, number: int) -> Approval:
    db.execute(delete(Approval).where(Approval.slug == slug, Approval.chapter == number))
    row = Approval(slug=slug, chapter=number, username=user.username)
    db.add(row)
    auth.audit(db, user.username, "approve", f"{slug}/chapter {number}")
    return row


def add_note(db: Session, user: User, slug: str, number: int, segment: str, kind: str, text: str) -> Note:
    row = Note(slug=slug, chapter=number, segment=segment, kind=kind, text=text[:MAX_NOTE_CHARS],
               username=user.username)
    db.add(row)
    auth.audit(db, user.username, kind, f"{slug}/{segment}", text[:200])
    return row


def notes(db: Session, slug: str, number: int | None = None) -> list[Note]:
    query = select(Note).where(Note.slug == slug)
    if number is not None:
        query = query.where(Note.chapter == number)
    return list(db.scalars(query.order_by(Note.at, Note.id)))


def approvals_csv(db: Session, slug: str, report: dict) -> str:
    """Return one CSV row per chapter: its state, who approved it and when, its flags and comments."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["chapter", "title", "duration_s", "acx", "qa_flags", "approved", "approved_by", "approved_at",
                     "review_flags", "comments"])
    all_notes = notes(db, slug)
    for entry in report.get("chapters", []):
        number = entry.get("number")
        row = approval(db, slug, number)
        mine = [n for n in all_notes if n.chapter == number]
        writer.writerow([number, entry.get("title", ""), entry.get("duration_s", ""),
                         "pass" if entry.get("acx", {}).get("passes") else "fail",
                         len((entry.get("qa") or {}).get("flagged") or []), "yes" if row else "no",
                         row.username if row else "", row.at.isoformat(timespec="seconds") + "Z" if row else "",
                         sum(n.kind == "flag" for n in mine), sum(n.kind == "comment" for n in mine)])
    return out.getvalue()
