"""A manuscript's chapters at a glance: what `audiobook ingest BOOK` prints as a table or JSON."""

from __future__ import annotations

from stages.model import Manuscript

BODY_PARAGRAPH_KINDS = ("text", "verse")  # headings and scene breaks are not counted as paragraphs


def summarize(manuscript: Manuscript) -> list[dict]:
    """Return one row per chapter: number, title, source, paragraphs, segments, dialogue, characters.

    paragraphs counts text and verse paragraphs (not headings or scene breaks); segments and dialogue
    count all segments and the dialogue ones; characters is the length of the displayed text
    (Segment.text) of all segments, headings included.
    """
    rows = []
    for chapter in manuscript.chapters:
        segments = chapter.segments
        rows.append({
            "number": chapter.number,
            "title": chapter.title,
            "source": chapter.source,
            "paragraphs": sum(p.kind in BODY_PARAGRAPH_KINDS for p in chapter.paragraphs),
            "segments": len(segments),
            "dialogue": sum(s.kind == "dialogue" for s in segments),
            "characters": sum(len(s.text) for s in segments),
        })
    return rows
