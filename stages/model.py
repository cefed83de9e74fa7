"""The nouns of the pipeline. Each is a frozen dataclass that round-trips through JSON.

The manuscript (book -> chapters -> paragraphs -> segments) is the book's single source of
truth: every later stage reads it, and only ingest and attribution write it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from stages import files

MANUSCRIPT_SCHEMA = 1

NARRATOR = "narrator"
UNKNOWN_SPEAKER = "unknown"

SegmentKind = Literal["narration", "dialogue", "heading"]
ParagraphKind = Literal["text", "heading", "verse", "scene_break"]


def _from_dict(cls, data: dict[str, Any]):
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Segment:
    """One spoken unit (a sentence, or the quoted/unquoted part of one) with a stable id."""

    id: str  # "c03-p0012-s02": chapter, paragraph, position; stable across re-ingest of the same file
    text: str  # the book's own text, shown in read-along (invisible formatting characters removed)
    spoken: str  # what the engine is asked to say
    kind: SegmentKind = "narration"
    speaker: str = NARRATOR  # NARRATOR, a character name, or UNKNOWN_SPEAKER
    emotion: str = "neutral"  # one of stages.attribute.emotion.EMOTIONS
    intensity: float = 0.0  # how strongly `emotion` is expressed, 0..1
    confidence: float = 1.0  # how sure the attributor is of `speaker`, 0..1
    rule: str = ""  # which attribution rule set `speaker` ("" for narration)

    def to_dict(self) -> dict[str, Any]:
        # every field is a plain value: no asdict(), which deep-copies field by field (a novel has ~7,000 segments)
        return {"id": self.id, "text": self.text, "spoken": self.spoken, "kind": self.kind, "speaker": self.speaker,
                "emotion": self.emotion, "intensity": self.intensity, "confidence": self.confidence,
                "rule": self.rule}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Segment:
        return _from_dict(cls, data)


@dataclass(frozen=True)
class Paragraph:
    id: str  # "c03-p0012"
    kind: ParagraphKind
    segments: tuple[Segment, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "segments": [s.to_dict() for s in self.segments]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Paragraph:
        segs = tuple(Segment.from_dict(s) for s in data.get("segments", ()))
        return cls(id=data["id"], kind=data["kind"], segments=segs)


@dataclass(frozen=True)
class Chapter:
    number: int  # 1-based position in the album
    title: str  # as the book's TOC / heading has it
    paragraphs: tuple[Paragraph, ...]
    source: str = ""  # where in the source file it came from (spine href, or "line 120")

    @property
    def id(self) -> str:
        return f"c{self.number:02d}"

    @property
    def segments(self) -> list[Segment]:
        return [s for p in self.paragraphs for s in p.segments]

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "title": self.title,
            "source": self.source,
            "paragraphs": [p.to_dict() for p in self.paragraphs],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chapter:
        paras = tuple(Paragraph.from_dict(p) for p in data["paragraphs"])
        return cls(number=data["number"], title=data["title"], paragraphs=paras, source=data.get("source", ""))


@dataclass(frozen=True)
class SkippedPart:
    """Front or back matter left out of the album, listed so a producer can see what was dropped."""

    source: str
    kind: str  # "titlepage", "imprint", "toc", "colophon", ...
    title: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SkippedPart:
        return _from_dict(cls, data)


@dataclass(frozen=True)
class Manuscript:
    slug: str  # folder name under manuscripts/ and output/
    title: str
    author: str
    language: str  # BCP 47, e.g. "en", "en-GB", "zh"
    source: str  # path of the book file it was read from
    source_sha256: str
    chapters: tuple[Chapter, ...]
    cover: str | None = None  # file name of the cover image, beside manuscript.json
    skipped: tuple[SkippedPart, ...] = ()
    schema: int = MANUSCRIPT_SCHEMA

    @property
    def segments(self) -> list[Segment]:
        return [s for c in self.chapters for s in c.segments]

    def chapter(self, number: int) -> Chapter:
        """Return the chapter numbered `number` (numbers survive selecting a few chapters)."""
        for chapter in self.chapters:
            if chapter.number == number:
                return chapter
        raise KeyError(f"{self.slug} has no chapter {number}")

    def speakers(self) -> list[str]:
        """Return every speaker in order of first appearance."""
        seen: dict[str, None] = {}
        for seg in self.segments:
            seen.setdefault(seg.speaker, None)
        return list(seen)

    def with_chapters(self, chapters: list[Chapter] | tuple[Chapter, ...]) -> Manuscript:
        return replace(self, chapters=tuple(chapters))

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "slug": self.slug,
            "title": self.title,
            "author": self.author,
            "language": self.language,
            "source": self.source,
            "source_sha256": self.source_sha256,
            "cover": self.cover,
            "skipped": [s.to_dict() for s in self.skipped],
            "chapters": [c.to_dict() for c in self.chapters],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manuscript:
        return cls(
            slug=data["slug"],
            title=data["title"],
            author=data["author"],
            language=data["language"],
            source=data["source"],
            source_sha256=data["source_sha256"],
            chapters=tuple(Chapter.from_dict(c) for c in data["chapters"]),
            cover=data.get("cover"),
            skipped=tuple(SkippedPart.from_dict(s) for s in data.get("skipped", ())),
            schema=data.get("schema", MANUSCRIPT_SCHEMA),
        )

    def save(self, path: Path) -> Path:
        return files.write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: Path) -> Manuscript:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Voice:
    """A voice from the library: which engine speaks it and with what parameters."""

    id: str
    name: str
    engine: str = "piper"
    language: str = "en"
    gender: str = ""  # "male", "female", "" when not stated
    role: str = "character"  # "narrator" voices read narration; "character" voices are cast to speakers
    description: str = ""
    params: dict[str, Any] = field(default_factory=dict)  # engine parameters, part of every cache key

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Voice:
        return _from_dict(cls, data)


@dataclass(frozen=True)
class Take:
    """One rendered segment: audio in the content-addressed cache."""

    segment_id: str
    key: str  # cache key (sha256 hex)
    path: str  # the WAV file in the cache
    sample_rate: int
    num_samples: int

    @property
    def duration_s(self) -> float:
        return self.num_samples / self.sample_rate

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Take:
        return _from_dict(cls, data)


@dataclass(frozen=True)
class Cue:
    """Where one segment sits in a chapter's final audio, in milliseconds."""

    id: str
    text: str
    speaker: str
    start_ms: int
    end_ms: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cue:
        return _from_dict(cls, data)


@dataclass(frozen=True)
class AcxFigures:
    """A chapter measured the way ACX Check measures it."""

    rms_dbfs: float  # unweighted RMS over the whole file
    peak_dbfs: float  # sample peak
    noise_floor_dbfs: float  # RMS of the quietest 0.4 s window, stepped 0.1 s
    lufs: float  # integrated loudness, ITU-R BS.1770
    duration_s: float
    problems: tuple[str, ...] = ()  # empty when the chapter passes

    @property
    def passes(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["problems"] = list(self.problems)
        d["passes"] = self.passes
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AcxFigures:
        d = {k: v for k, v in data.items() if k != "passes"}
        d["problems"] = tuple(d.get("problems", ()))
        return _from_dict(cls, d)


@dataclass(frozen=True)
class Workspace:
    """Where a book's files live: manuscripts/<slug>/ for its state, output/<slug>/ for what ships."""

    root: Path

    def manuscript_dir(self, slug: str) -> Path:
        return self.root / "manuscripts" / slug

    def output_dir(self, slug: str) -> Path:
        return self.root / "output" / slug

    @property
    def cache_dir(self) -> Path:
        return self.root / "output" / ".cache"

    @property
    def voices_dir(self) -> Path:
        return self.root / "voices"
