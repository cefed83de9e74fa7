"""A producer's fixes to single segments (text, speaker, emotion), kept beside the book and laid over every
re-ingest: `produce` reads the book and attributes it afresh each run, so fixes live in
`manuscripts/<slug>/edits.json` (segment id -> the fields changed), never only in manuscript.json.
Segment ids are stable across re-ingests of the same file, so a fix stays on its line."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

from stages import files
from stages.attribute.emotion import EMOTIONS
from stages.errors import UserError
from stages.model import Chapter, Manuscript, Paragraph, Segment

log = logging.getLogger(__name__)

EDITS_FILE = "edits.json"
FIELDS = ("text", "speaker", "emotion")
MAX_TEXT_CHARS = 2000


def load_edits(book_dir: Path) -> dict[str, dict[str, str]]:
    path = Path(book_dir) / EDITS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise UserError(f"{path} is not valid JSON ({e}); fix it or delete it to drop every edit") from e
    return data if isinstance(data, dict) else {}


def save_edit(book_dir: Path, segment_id: str, changes: dict[str, str]) -> dict[str, str]:
    """Record `changes` to one segment (merged over earlier ones); return the segment's edit as stored."""
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown or not changes:
        raise UserError(f"an edit changes {', '.join(FIELDS)}; got {', '.join(unknown) or 'nothing'}")
    text = changes.get("text")
    if text is not None and (not str(text).strip() or len(str(text)) > MAX_TEXT_CHARS):
        raise UserError(f"segment {segment_id}: the new text must have words and at most {MAX_TEXT_CHARS} characters")
    if "emotion" in changes and changes["emotion"] not in EMOTIONS:
        raise UserError(f"segment {segment_id}: emotion {changes['emotion']!r} is not one of {', '.join(EMOTIONS)}")
    if "speaker" in changes and not str(changes["speaker"]).strip():
        raise UserError(f"segment {segment_id}: give the speaker's name (or 'narrator')")
    edits = load_edits(book_dir)
    edits[segment_id] = edits.get(segment_id, {}) | {k: str(v).strip() for k, v in changes.items()}
    files.write_json(Path(book_dir) / EDITS_FILE, edits)
    return edits[segment_id]


def apply_edits(manuscript: Manuscript, edits: dict[str, dict[str, str]]) -> Manuscript:
    """Return `manuscript` with each edited segment changed; an edit for a segment the book lacks is logged."""
    if not edits:
        return manuscript
    from stages.ingest.sentences import spoken_form

    known = {s.id for s in manuscript.segments}
    for missing in sorted(set(edits) - known):
        log.warning("%s: the edit of segment %s matches no segment of the book any more; it is ignored",
                    manuscript.slug, missing)

    def edited(seg: Segment) -> Segment:
        change = edits.get(seg.id)
        if not change:
            return seg
        if "text" in change:
            seg = replace(seg, text=change["text"], spoken=spoken_form(change["text"], manuscript.language))
        if "speaker" in change:
            seg = replace(seg, speaker=change["speaker"], confidence=1.0, rule="edited")
        if "emotion" in change:
            seg = replace(seg, emotion=change["emotion"], intensity=max(seg.intensity, 0.5)
                          if change["emotion"] != "neutral" else 0.0)
        return seg

    def chapter(c: Chapter) -> Chapter:
        return replace(c, paragraphs=tuple(Paragraph(p.id, p.kind, tuple(edited(s) for s in p.segments))
                                           for p in c.paragraphs))

    return manuscript.with_chapters([chapter(c) for c in manuscript.chapters])
