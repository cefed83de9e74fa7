"""The read-along page: one self-contained HTML file that plays the album and highlights each sentence.

Where a segment's words are timed (the sync map's "words"), each word is its own span and the
spoken word is highlighted too; segments without word timings are highlighted as whole sentences.

The page references the chapter audio files by relative path, so it works from the album folder,
opened from disk or served by any static web server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from markupsafe import Markup, escape

from stages import files
from stages.align import SegmentWords
from stages.errors import UserError
from stages.model import NARRATOR, Chapter, Cue
from stages.package import templates
from stages.package.sync import word_pieces

TEMPLATE_FILE = "listen.html"
DEFAULT_LANGUAGE = "en"
TEXT_KINDS = ("text", "heading", "verse", "scene_break")
UNSPACED_LANGUAGES = ("zh", "ja")  # scripts that set sentences side by side without a space


@dataclass(frozen=True)
class ListenChapter:
    """One chapter as the page shows it: its audio file and its text as paragraphs of timed cues."""

    number: int
    title: str
    audio_file: str  # relative to the page, e.g. "01 - Chapter I.mp3"
    paragraphs: Sequence[Sequence[Cue]]  # the book's paragraphs, each a list of its segments' cues
    kinds: Sequence[str] = ()  # paragraph kinds ("text", "heading", "verse", "scene_break"); empty: all text
    words: Mapping[str, SegmentWords] = field(default_factory=dict)  # by cue id; a cue without: sentence only

    @classmethod
    def from_chapter(
        cls, chapter: Chapter, audio_file: str, cues: Sequence[Cue], words: Mapping[str, SegmentWords] | None = None
    ) -> ListenChapter:
        """Return the chapter with `cues` grouped by the chapter's paragraphs (cue.id == segment.id)."""
        by_id = {c.id: c for c in cues}
        known = {s.id for s in chapter.segments}
        strays = [c.id for c in cues if c.id not in known]
        if strays:
            raise UserError(
                f"cues {', '.join(strays[:3])} are not segments of chapter {chapter.number}; "
                "re-render the chapter so its timings match the manuscript"
            )
        paragraphs: list[list[Cue]] = []
        kinds: list[str] = []
        for para in chapter.paragraphs:
            group = [by_id[s.id] for s in para.segments if s.id in by_id]
            if group or para.kind == "scene_break":
                paragraphs.append(group)
                kinds.append(para.kind)
        return cls(chapter.number, chapter.title, audio_file, paragraphs, tuple(kinds), dict(words or {}))


def _audio_url(audio_file: str) -> str:
    """Return a relative URL for a file name that may hold spaces or other reserved characters."""
    return "/".join(quote(part) for part in Path(audio_file).as_posix().split("/"))


def _segment_html(cue: Cue, words: SegmentWords | None = None) -> Markup:
    """Return a segment's `<span>`, with a `<span class="w">` per timed word (built here, not in the template:
    a novel has over a hundred thousand words, and a template macro per word cost seconds)."""
    speaker = "" if cue.speaker in ("", NARRATOR) else cue.speaker
    dialogue = f' dlg" id="{escape(cue.id)}"' if speaker else f'" id="{escape(cue.id)}"'
    title = f' title="{escape(speaker)}"' if speaker else ""
    head = f'<span class="seg{dialogue} data-start="{cue.start_ms}" data-end="{cue.end_ms}"{title}>'
    if words is None or not words.timed:
        return Markup(f"{head}{escape(cue.text)}</span>")
    body = "".join(f'<span class="w" data-start="{p["start"]}" data-end="{p["end"]}">{escape(p["text"])}</span>'
                   if "start" in p else str(escape(p["text"])) for p in word_pieces(cue.text, words.words or ()))
    return Markup(f"{head}{body}</span>")


def _chapter_view(chapter: ListenChapter) -> dict[str, object]:
    kinds = list(chapter.kinds) or ["text"] * len(chapter.paragraphs)
    if len(kinds) != len(chapter.paragraphs):
        raise UserError(
            f"chapter {chapter.number} has {len(chapter.paragraphs)} paragraphs but {len(kinds)} paragraph kinds; "
            "build it with ListenChapter.from_chapter"
        )
    unknown = sorted(set(kinds) - set(TEXT_KINDS))
    if unknown:
        raise UserError(f"chapter {chapter.number} has unknown paragraph kinds {unknown}; use one of {TEXT_KINDS}")
    paragraphs = [{"kind": k, "cues": [_segment_html(c, chapter.words.get(c.id)) for c in p]}
                  for k, p in zip(kinds, chapter.paragraphs)]
    return {
        "number": chapter.number,
        "title": chapter.title,
        "audio": _audio_url(chapter.audio_file),
        "paragraphs": paragraphs,
        "has_heading": bool(kinds) and kinds[0] == "heading",
    }


def render_listen_page(
    *,
    title: str,
    author: str,
    narrator: str,
    cover_file: str | None,
    chapters: Sequence[ListenChapter],
    language: str = DEFAULT_LANGUAGE,
) -> str:
    """Return the read-along page's HTML."""
    if not chapters:
        raise UserError(f"the read-along page for {title!r} needs at least one chapter; render the book first")
    env = templates.environment()
    return env.get_template(TEMPLATE_FILE).render(
        title=title,
        author=author,
        narrator=narrator,
        cover=_audio_url(cover_file) if cover_file else None,
        language=language or DEFAULT_LANGUAGE,
        joiner="" if (language or "").split("-")[0].lower() in UNSPACED_LANGUAGES else " ",
        chapters=[_chapter_view(c) for c in chapters],
    )


def write_listen_page(
    path: Path,
    *,
    title: str,
    author: str,
    narrator: str,
    cover_file: str | None,
    chapters: Sequence[ListenChapter],
    language: str = DEFAULT_LANGUAGE,
) -> Path:
    """Write the read-along page to `path`; return the path."""
    page = render_listen_page(
        title=title, author=author, narrator=narrator, cover_file=cover_file, chapters=chapters, language=language
    )
    return files.write_text(path, page)
