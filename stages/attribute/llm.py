"""Speaker and emotion attribution by a language model behind any OpenAI-compatible endpoint.

The model only labels segments by id; it never returns text that is then spoken. A chunk whose
answer skips, invents, repeats or reorders ids, or carries any text, is rejected and keeps the
built-in attributor's labels. Every accepted answer is cached on disk under a hash of the request,
so a re-run costs nothing and a crash loses nothing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from stages import files
from stages.attribute.emotion import EMOTIONS
from stages.errors import UserError
from stages.model import NARRATOR, UNKNOWN_SPEAKER, Chapter, Manuscript, Segment

log = logging.getLogger(__name__)

CHUNK_MAX_SEGMENTS = 120  # a chapter longer than this is sent in parts
CONTEXT_SEGMENTS = 6  # segments before a later part, shown for context only
BACKOFF_BASE_S = 1.0  # first retry waits about this long, doubling each time
BACKOFF_MAX_S = 60.0
LLM_CONFIDENCE = 0.8  # confidence given to a speaker the model named
NARRATOR_NAMES = frozenset({"narrator", "the narrator", "i", "me", "我"})
LLM_RULE = "llm"
JSON_MODES = ("auto", "schema", "object")
PROMPTS_DIR = Path(__file__).parent / "prompts"
_RETRY_STATUS = frozenset({408, 409, 429})

RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["segments", "characters"],
    "properties": {
        "segments": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["id", "speaker", "emotion", "intensity"],
            "properties": {"id": {"type": "string"}, "speaker": {"type": "string"},
                           "emotion": {"type": "string", "enum": list(EMOTIONS)}, "intensity": {"type": "number"}}}},
        "characters": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["name", "aliases", "gender", "description"],
            "properties": {"name": {"type": "string"}, "aliases": {"type": "array", "items": {"type": "string"}},
                           "gender": {"type": "string"}, "description": {"type": "string"}}}},
    },
}


@dataclass(frozen=True)
class LlmConfig:
    """Where the model is and how to talk to it."""

    base_url: str
    model: str
    api_key: str = "none"
    json_mode: str = "auto"  # "schema" | "object" | "auto" (try schema, fall back to object on a 400)
    max_concurrency: int = 4
    timeout_s: float = 60
    max_retries: int = 4

    @classmethod
    def from_env(cls, project_config: Mapping[str, Any] | None = None) -> LlmConfig | None:
        """Return the config from OPENAI_* variables over the project config's [llm] table; None without a URL."""
        table = dict((project_config or {}).get("llm") or {})
        base_url = os.environ.get("OPENAI_BASE_URL") or table.get("base_url")
        if not base_url:
            return None
        model = os.environ.get("OPENAI_MODEL") or table.get("model")
        if not model:
            raise UserError(f"an LLM endpoint is configured ({base_url}) but no model: "
                            "set OPENAI_MODEL or `model` in the project config's [llm] table")
        mode = table.get("json_mode", "auto")
        if mode not in JSON_MODES:
            raise UserError(f"unknown llm json_mode {mode!r} in the project config's [llm] table; "
                            f"choose one of: {', '.join(JSON_MODES)}")
        return cls(base_url=str(base_url), model=str(model),
                   api_key=os.environ.get("OPENAI_API_KEY") or table.get("api_key") or "none", json_mode=mode,
                   max_concurrency=int(table.get("max_concurrency", 4)), timeout_s=float(table.get("timeout_s", 60)),
                   max_retries=int(table.get("max_retries", 4)))


@dataclass(frozen=True)
class LlmReport:
    """What happened to each chunk. `cached` counts the `ok` chunks answered from disk."""

    chunks: int = 0  # chunks with dialogue to label
    ok: int = 0
    rejected: int = 0
    failed: int = 0
    cached: int = 0
    requests: int = 0  # HTTP requests made, retries included
    reasons: tuple[str, ...] = ()  # "c01#1: rejected: missing ids ...", one per rejected or failed chunk
    characters: tuple[dict[str, Any], ...] = ()  # the roster at the end

    def to_dict(self) -> dict[str, Any]:
        return {**{k: getattr(self, k) for k in ("chunks", "ok", "rejected", "failed", "cached", "requests")},
                "reasons": list(self.reasons), "characters": [dict(c) for c in self.characters]}


@dataclass(frozen=True)
class Chunk:
    """Part of a chapter sent as one request."""

    chapter: Chapter
    part: int  # 1-based
    part_count: int
    segments: tuple[Segment, ...]
    context: tuple[Segment, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.chapter.id}#{self.part}"

    @property
    def dialogue_ids(self) -> list[str]:
        return [s.id for s in self.segments if s.kind == "dialogue"]


@dataclass(frozen=True)
class Outcome:
    chunk: Chunk
    status: str  # "ok" | "rejected" | "failed"
    reason: str = ""
    cached: bool = False
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    characters: tuple[dict[str, Any], ...] = ()


class Rejected(Exception):
    """An answer that broke the text-integrity guard or the schema."""


class _SchemaUnsupported(Exception):
    """The server answered 400 to a json_schema response format."""


def split_chapters(manuscript: Manuscript, max_segments: int = CHUNK_MAX_SEGMENTS) -> list[Chunk]:
    """Return the manuscript as chunks of at most `max_segments`, cut at paragraph ends where possible."""
    chunks: list[Chunk] = []
    for chapter in manuscript.chapters:
        parts: list[list[Segment]] = [[]]
        for paragraph in chapter.paragraphs:
            segs = list(paragraph.segments)
            if parts[-1] and len(parts[-1]) + len(segs) > max_segments:
                parts.append([])
            while len(parts[-1]) + len(segs) > max_segments:
                room = max_segments - len(parts[-1])
                parts[-1].extend(segs[:room])
                segs = segs[room:]
                parts.append([])
            parts[-1].extend(segs)
        parts = [p for p in parts if p]
        seen: list[Segment] = []
        for i, part in enumerate(parts, 1):
            context = tuple(seen[-CONTEXT_SEGMENTS:]) if seen else ()
            chunks.append(Chunk(chapter, i, len(parts), tuple(part), context))
            seen.extend(part)
    return chunks


def build_messages(manuscript: Manuscript, chunk: Chunk, roster: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Return the chat messages asking for the labels of `chunk`'s dialogue."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(PROMPTS_DIR), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, autoescape=False)
    def rows(segments: Sequence[Segment]) -> list[dict[str, str]]:
        return [{"id": s.id, "kind": s.kind, "text": " ".join(s.text.split())} for s in segments]
    user = env.get_template("chunk.j2").render(
        title=manuscript.title, author=manuscript.author, chapter_number=chunk.chapter.number,
        chapter_title=chunk.chapter.title, part=chunk.part, part_count=chunk.part_count,
        roster=[_card(c) for c in roster], context=rows(chunk.context), segments=rows(chunk.segments),
        required_ids=chunk.dialogue_ids)
    system = env.get_template("system.j2").render(emotions=EMOTIONS)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def cache_key(model: str, messages: Sequence[Mapping[str, str]], mode: str) -> str:
    """Return the sha256 hex of everything that decides an answer."""
    blob = json.dumps({"model": model, "messages": list(messages), "mode": mode}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def parse_answer(content: str, chunk: Chunk) -> tuple[dict[str, dict[str, Any]], tuple[dict[str, Any], ...]]:
    """Return (labels by id, characters) from an answer, or raise Rejected saying why."""
    from pydantic import ValidationError

    ChunkAnswer = _answer_model()
    text = content.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise Rejected(f"malformed JSON ({e.msg} at char {e.pos})") from e
    segments = data.get("segments") if isinstance(data, dict) else None
    for item in segments if isinstance(segments, list) else []:
        if isinstance(item, dict) and set(item) - {"id", "speaker", "emotion", "intensity"}:
            extra = sorted(set(item) - {"id", "speaker", "emotion", "intensity"})
            raise Rejected(f"segment {item.get('id')!r} carries {', '.join(extra)}; only labels are accepted")
    try:
        answer = ChunkAnswer.model_validate(data)
    except ValidationError as e:
        raise Rejected(f"does not match the schema: {str(e).splitlines()[0]}") from e
    got, want = [s.id for s in answer.segments], chunk.dialogue_ids
    if got != want:
        missing, invented = [i for i in want if i not in got], [i for i in got if i not in want]
        why = (f"missing ids {missing}" if missing else f"invented ids {invented}" if invented
               else "repeated ids" if len(got) != len(set(got)) else "ids out of order")
        raise Rejected(why)
    labels = {s.id: {"speaker": s.speaker, "emotion": s.emotion, "intensity": s.intensity} for s in answer.segments}
    return labels, tuple(c.model_dump() for c in answer.characters)


@functools.cache
def _answer_model():
    """Return the pydantic model of an answer (built on first use: pydantic is imported only here)."""
    from pydantic import BaseModel, ConfigDict, Field, field_validator

    class Label(BaseModel):
        model_config = ConfigDict(extra="forbid")
        id: str
        speaker: str = Field(min_length=1)
        emotion: str = "neutral"
        intensity: float = 0.5

        @field_validator("emotion", mode="before")
        @classmethod
        def known_emotion(cls, v: Any) -> str:
            v = str(v or "").strip().lower()
            return v if v in EMOTIONS else "neutral"

        @field_validator("intensity", mode="before")
        @classmethod
        def clamp(cls, v: Any) -> float:
            return min(1.0, max(0.0, float(v if v is not None else 0.5)))

        @field_validator("speaker")
        @classmethod
        def strip(cls, v: str) -> str:
            return " ".join(v.split()) or UNKNOWN_SPEAKER

    class Character(BaseModel):
        model_config = ConfigDict(extra="ignore")
        name: str = ""  # a nameless card is dropped when the roster is merged
        aliases: list[str] = []
        gender: str = ""
        description: str = ""

    class ChunkAnswer(BaseModel):
        model_config = ConfigDict(extra="ignore")
        segments: list[Label]
        characters: list[Character] = []

    return ChunkAnswer


class _Asker:
    """Sends one chunk's messages with retries; remembers when the server refused json_schema."""

    def __init__(self, config: LlmConfig, cache_dir: Path, backoff_base_s: float):
        from openai import OpenAI

        self.config, self.cache_dir, self.backoff_base_s = config, Path(cache_dir), backoff_base_s
        self.client = OpenAI(base_url=config.base_url, api_key=config.api_key, timeout=config.timeout_s, max_retries=0)
        self.mode = "object" if config.json_mode == "object" else "schema"
        self.requests = 0  # HTTP requests made, retries included
        self._lock = threading.Lock()

    def cache_path(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.json"

    def ask(self, manuscript: Manuscript, chunk: Chunk, roster: list[dict[str, Any]]) -> Outcome:
        """Return the outcome of one chunk: from the cache, or asked and validated."""
        import openai

        messages = build_messages(manuscript, chunk, roster)
        modes = ("schema", "object") if self.config.json_mode == "auto" else (self.mode,)
        for mode in modes:
            path = self.cache_path(cache_key(self.config.model, messages, mode))
            if path.exists():
                try:
                    labels, chars = parse_answer(json.loads(path.read_text("utf-8"))["content"], chunk)
                    return Outcome(chunk, "ok", cached=True, labels=labels, characters=chars)
                except (Rejected, KeyError, ValueError):
                    log.warning("asking again: the cached answer %s is unusable", path)
        mode = self.mode
        try:
            try:
                content = self._post(messages, mode)
            except _SchemaUnsupported:
                log.info("%s refused json_schema; using json_object from now on", self.config.base_url)
                self.mode = mode = "object"
                content = self._post(messages, mode)
        except openai.OpenAIError as e:
            return Outcome(chunk, "failed", reason=_describe(e))
        try:
            labels, chars = parse_answer(content, chunk)
        except Rejected as e:
            return Outcome(chunk, "rejected", reason=str(e))
        files.write_json(self.cache_path(cache_key(self.config.model, messages, mode)),
                         {"model": self.config.model, "mode": mode, "chunk": chunk.name, "content": content})
        return Outcome(chunk, "ok", labels=labels, characters=chars)

    def _post(self, messages: list[dict[str, str]], mode: str) -> str:
        """Return the answer's content, retrying timeouts, 429 and 5xx with exponential backoff and jitter."""
        import openai

        fmt = ({"type": "json_schema", "json_schema": {"name": "segment_labels", "strict": True,
                                                       "schema": RESPONSE_SCHEMA}}
               if mode == "schema" else {"type": "json_object"})
        for attempt in range(self.config.max_retries + 1):
            with self._lock:
                self.requests += 1
            try:
                reply = self.client.chat.completions.create(model=self.config.model, messages=messages,
                                                            response_format=fmt, temperature=0)
                return reply.choices[0].message.content or ""
            except openai.APIConnectionError as e:  # timeouts included
                error, wait = e, None
            except openai.APIStatusError as e:
                if e.status_code == 400 and mode == "schema" and self.config.json_mode == "auto":
                    raise _SchemaUnsupported() from e
                if e.status_code not in _RETRY_STATUS and e.status_code < 500:
                    raise
                error, wait = e, _retry_after(e)
            if attempt == self.config.max_retries:
                raise error
            if wait is None:
                wait = self.backoff_base_s * 2 ** attempt * (0.5 + random.random() / 2)
            log.info("LLM request failed (%s); retry %d in %.2f s", _describe(error), attempt + 1, wait)
            time.sleep(min(wait, BACKOFF_MAX_S))
        raise AssertionError("unreachable")


def attribute_with_llm(manuscript: Manuscript, config: LlmConfig, *, cache_dir: Path,
                       fallback: Callable[[Manuscript], Manuscript], characters: Sequence[Mapping[str, Any]] = (),
                       backoff_base_s: float = BACKOFF_BASE_S,
                       chunk_segments: int = CHUNK_MAX_SEGMENTS) -> tuple[Manuscript, LlmReport]:
    """Return the manuscript with dialogue labelled by the model (fallback labels where it failed) and a report."""
    base = fallback(manuscript)
    chunks = [c for c in split_chapters(manuscript, chunk_segments) if c.dialogue_ids]
    asker = _Asker(config, cache_dir, backoff_base_s)
    roster = merge_roster(characters, ())
    window = max(1, config.max_concurrency)
    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=window) as pool:
        futures: list[Future[Outcome]] = []
        for i, chunk in enumerate(chunks):
            if i >= window:  # the roster a chunk sees depends only on chunks 0..i-window: same prompt every run
                outcomes.append(futures[i - window].result())
                roster = merge_roster(roster, outcomes[-1].characters)
            futures.append(pool.submit(asker.ask, manuscript, chunk, [dict(c) for c in roster]))
        for future in futures[len(outcomes):]:
            outcomes.append(future.result())
            roster = merge_roster(roster, outcomes[-1].characters)
    return _apply(base, outcomes, roster), _report(outcomes, roster, asker.requests)


def merge_roster(roster: Sequence[Mapping[str, Any]], found: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Return `roster` with `found` characters added, or their new aliases and missing details filled in."""
    merged: list[dict[str, Any]] = []
    for card in map(_card, [*roster, *found]):
        if not card["name"]:
            continue
        known = _find(merged, card["name"]) or next(filter(None, (_find(merged, a) for a in card["aliases"])), None)
        if known is None:
            merged.append(card)
            continue
        for alias in (card["name"], *card["aliases"]):
            if _find([known], alias) is None:
                known["aliases"].append(alias)
        known["gender"] = known["gender"] or card["gender"]
        known["description"] = known["description"] or card["description"]
    return merged


def _find(roster: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    folded = name.casefold()
    return next((c for c in roster if c["name"].casefold() == folded
                 or folded in (a.casefold() for a in c["aliases"])), None)


def _card(c: Mapping[str, Any]) -> dict[str, Any]:
    aliases = [str(a).strip() for a in c.get("aliases", ()) or () if str(a).strip()]
    return {"name": str(c.get("name", "")).strip(), "aliases": aliases,
            "gender": str(c.get("gender", "") or ""), "description": str(c.get("description", "") or "")}


def _apply(base: Manuscript, outcomes: list[Outcome], roster: list[dict[str, Any]]) -> Manuscript:
    labels = {k: v for o in outcomes if o.status == "ok" for k, v in o.labels.items()}
    def label(seg: Segment) -> Segment:
        got = labels.get(seg.id)
        if got is None or seg.kind != "dialogue":
            return seg
        speaker = got["speaker"]
        if speaker.casefold() != UNKNOWN_SPEAKER and (card := _find(roster, speaker)):
            speaker = card["name"]
        unknown = speaker.casefold() == UNKNOWN_SPEAKER
        if speaker.casefold() in NARRATOR_NAMES:
            speaker = NARRATOR  # the narrator's own lines are read by the narrator's voice
        return replace(seg, speaker=UNKNOWN_SPEAKER if unknown else speaker, emotion=got["emotion"],
                       intensity=got["intensity"], confidence=0.0 if unknown else LLM_CONFIDENCE, rule=LLM_RULE)
    chapters = [replace(ch, paragraphs=tuple(replace(p, segments=tuple(map(label, p.segments)))
                                             for p in ch.paragraphs)) for ch in base.chapters]
    return base.with_chapters(chapters)


def _report(outcomes: list[Outcome], roster: list[dict[str, Any]], requests: int) -> LlmReport:
    count = lambda status: sum(o.status == status for o in outcomes)  # noqa: E731
    return LlmReport(chunks=len(outcomes), ok=count("ok"), rejected=count("rejected"), failed=count("failed"),
                     cached=sum(o.cached for o in outcomes), requests=requests,
                     reasons=tuple(f"{o.chunk.name}: {o.status}: {o.reason}" for o in outcomes if o.status != "ok"),
                     characters=tuple(roster))


def _retry_after(error: Exception) -> float | None:
    try:
        return max(0.0, float(error.response.headers.get("retry-after")))
    except (AttributeError, TypeError, ValueError):
        return None


def _describe(error: Exception) -> str:
    status = getattr(error, "status_code", None)
    return f"HTTP {status}" if status else type(error).__name__
