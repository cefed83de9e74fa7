"""A book from manuscript to album, stage by stage, as plain functions the flow calls.

`produce_chapter` renders, assembles, masters, measures and writes one chapter; a chapter whose
stamp (a hash of its takes, text and settings) matches the last run is reused as it is.
`produce_credits` does the same for the spoken opening and closing credits (ACX wants them as their
own files); they are tracks 1 and N+2 of the album, so chapter n is track n+1 of N+2.
`finish_album` writes what needs every chapter: the M4B, the read-along page and the report.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import re
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from stages import acx, align, files, master, wav
from stages.cache import TakeCache
from stages.cast import Casting
from stages.delivery import DeliveryConfig, segment_voice
from stages.errors import ComplianceError
from stages.ingest import slugify
from stages.lexicon import Lexicon
from stages.model import NARRATOR, AcxFigures, Chapter, Manuscript, Paragraph, Segment, Voice, Workspace
from stages.package import album, listen, m4b, overlay, overlay_epub, report, retail, sync
from stages.profiles import Profile, get_profile
from stages.qa import QaConfig
from stages.render import RenderStats, chapter_qa, plan_takes, render_chapter
from stages.voices import card as voice_cards
from stages.voices import provenance

log = logging.getLogger(__name__)

STAMP_VERSION = 4  # bump when chapter assembly, mastering or packaging changes its output
CREDITS_TITLES = {"opening": "Opening Credits", "closing": "Closing Credits"}  # their M4B chapter and MP3 titles
OPENING_CREDITS_STEM = "00-opening-credits"
CLOSING_STEM_MIN = 99  # the closing credits' file number: 99, or one past the last chapter of a longer book


@dataclass(frozen=True)
class ChapterResult:
    number: int
    title: str
    mp3: str  # file names inside the album folder
    vtt: str
    sync: str
    master_wav: str  # absolute path of the mastered 16-bit WAV kept for the M4B
    duration_s: float
    segments: int
    acx: AcxFigures
    stats: RenderStats
    key: str = ""  # the chapter's stamp: a hash of everything its files depend on
    reused: bool = False  # True when the files of an earlier run were kept as they were
    levels: dict = field(default_factory=dict)  # master.match_levels' report: per-voice loudness before/after, spread
    loudness: dict = field(default_factory=dict)  # acx.loudness_series, plus head_s/tail_s: room tone at each end
    qa: dict = field(default_factory=dict)  # render.chapter_qa: takes heard back, retaken, flagged; the chapter's WER

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k not in ("acx", "stats")}
        return d | {"acx": self.acx.to_dict(), "stats": self.stats.__dict__}

    @classmethod
    def from_dict(cls, d: dict) -> ChapterResult:
        return cls(**(d | {"acx": AcxFigures.from_dict(d["acx"]), "stats": RenderStats(**d["stats"])}))


def chapter_stem(number: int, title: str) -> str:
    """Return the file stem for a chapter: "01-down-the-rabbit-hole", or "01" for titles with no ASCII."""
    slug = slugify(title, fallback="")
    return f"{number:02d}-{slug}"[:60].rstrip("-") if slug else f"{number:02d}"


def last_chapter(manuscript: Manuscript) -> int:
    """Return the highest chapter number in `manuscript`: chapter n is track n + 1 of that plus 2, also when only
    some chapters are produced (`--chapters 15` makes its MP3 track 16 of 17, not of 3)."""
    return max((c.number for c in manuscript.chapters), default=0)


def album_tags(
    manuscript: Manuscript, workspace: Workspace, narrator: Voice, voice_ids: Sequence[str] = ()
) -> album.AlbumTags:
    """Return the tags every file of the album carries: the narrator licence's disclosure, the voices' provenance."""
    cards = voice_cards.load_cards(workspace.voices_dir)
    used = [cards[v] for v in sorted(set(voice_ids) | {narrator.id}) if v in cards]
    cover_bytes, mime = None, "image/jpeg"
    if manuscript.cover:
        cover_path = workspace.manuscript_dir(manuscript.slug) / manuscript.cover
        cover_bytes = cover_path.read_bytes()
        mime = "image/png" if cover_path.suffix == ".png" else "image/jpeg"
    return album.AlbumTags(
        album=manuscript.title,
        author=manuscript.author,
        narrator=f"{narrator.name} (synthetic voice)",
        cover=cover_bytes,
        cover_mime=mime,
        language=manuscript.language,
        disclosure=provenance.disclosure(cards, narrator.id),
        voices=provenance.voices_summary(provenance.voice_provenance(c.voice, c) for c in used),
    )


def _stamp_key(manuscript: Manuscript, number: int, take_keys: list[str], qa_report: dict, tags: album.AlbumTags,
               profile: Profile) -> str:
    chapter = manuscript.chapter(number)
    recipe = {
        "version": STAMP_VERSION,
        "mp3": [profile.mp3_bitrate_kbps, profile.sample_rate_hz],
        "takes": take_keys + [json.dumps(qa_report)],  # a retake keeps its take's key: its QA verdict marks it
        "chapter": chapter.to_dict(),
        "total": last_chapter(manuscript),
        "tags": _tag_facts(tags),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def _tag_facts(tags: album.AlbumTags) -> list[str]:
    return [tags.album, tags.author, tags.narrator, tags.language, hashlib.sha256(tags.cover or b"").hexdigest(),
            tags.disclosure, tags.voices]


def produce_chapter(
    manuscript: Manuscript,
    number: int,
    *,
    workspace: Workspace,
    casting: Casting,
    library: dict[str, Voice],
    tags: album.AlbumTags,
    lexicon: Lexicon | None = None,
    advance: Callable[[int], None] = lambda n: None,
    delivery: DeliveryConfig | None = None,
    profile: Profile | None = None,
    qa: QaConfig | None = QaConfig(),
    m4b_kbps: int | None = None,
) -> ChapterResult:
    """Render, assemble, master, measure and write chapter `number` in `profile`'s MP3 format; return what was made.

    With `qa` enabled (the default) every take is heard back and retaken if it fails (stages/qa.py)."""
    chapter = manuscript.chapter(number)
    profile = profile or get_profile(None)
    settings = dict(casting=casting, library=library, lexicon=lexicon, delivery=delivery, qa=qa)
    if (kept := reuse_chapter(manuscript, number, workspace=workspace, tags=tags, profile=profile, **settings)):
        advance(len(chapter.segments))
        return kept
    cache = TakeCache(workspace.cache_dir)
    takes, stats = render_chapter(chapter, cache=cache, advance=advance, language=manuscript.language, **settings)
    qa_report = chapter_qa(chapter, takes, qa=qa, language=manuscript.language, lexicon=lexicon)
    out_dir = workspace.output_dir(manuscript.slug)
    work_dir = workspace.cache_dir / "work" / manuscript.slug
    stem = chapter_stem(number, chapter.title)
    key = _stamp_key(manuscript, number, [takes[s.id].key for s in chapter.segments], qa_report, tags, profile)
    stamp_path = work_dir / f"{stem}.json"
    entries = provenance.take_provenance(chapter, takes, voice_for=casting.voice_for_segment, library=library,
                                         cards=voice_cards.load_cards(workspace.voices_dir))
    provenance.write_provenance(provenance.provenance_path(out_dir, stem), chapter=chapter, audio_file=f"{stem}.mp3",
                                entries=entries)

    voice_of = {s.id: _voice_and_delivery_gain(s, casting, library, delivery) for s in chapter.segments}
    gains, levels = master.match_levels(chapter, takes, voice_of, reference=casting.voice_for(NARRATOR))
    audio, cues = master.assemble_chapter(chapter, takes, gains_db=gains)
    audio = master.master(audio, master.MASTER_SAMPLE_RATE_HZ, cache_dir=workspace.cache_dir)
    rate = master.MASTER_SAMPLE_RATE_HZ
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"encode-c{number:02d}") as pool:
        # two ffmpegs make the MP3 and the M4B's AAC part while this thread measures and writes the rest
        encoding = [pool.submit(
            album.write_chapter_mp3, audio, rate, out_dir / f"{stem}.mp3", title=chapter.title, track=number + 1,
            total=last_chapter(manuscript) + 2, tags=tags, bitrate_kbps=profile.mp3_bitrate_kbps,
            rate_hz=profile.sample_rate_hz,
        )]  # track 1 is the opening credits
        if m4b_kbps and not (part_path := m4b_part_path(work_dir, key, m4b_kbps)).is_file():
            encoding.append(pool.submit(m4b.encode_part, audio, rate, part_path, m4b_kbps))
        levels = master.mastered_levels(audio, rate, cues, voice_of, levels)
        figures = acx.measure(audio, rate)
        head_s, tail_s = acx.room_tone_edges(audio, rate)
        loudness = acx.loudness_series(audio, rate) | {"head_s": head_s, "tail_s": tail_s}
        duration_ms = round(len(audio) * 1000 / rate)
        words = align.chapter_words(chapter, takes, cues, cache=cache, language=manuscript.language)
        vtt = sync.write_vtt(cues, out_dir / f"{stem}.vtt", words=words)
        sync_map = sync.write_sync_map(
            out_dir / f"{stem}.sync.json", chapter=chapter, audio_file=f"{stem}.mp3", duration_ms=duration_ms,
            cues=cues, words=words,
        )
        sync.write_lrc(out_dir / f"{stem}.lrc", cues, title=chapter.title, album=manuscript.title,
                       artist=manuscript.author, duration_ms=duration_ms, words=words)
        wav_path = wav.write_wav(work_dir / f"{stem}.wav", audio, rate)
        mp3 = encoding[0].result()
        for job in encoding[1:]:
            job.result()
    result = ChapterResult(
        number, chapter.title, mp3.name, vtt.name, sync_map.name, str(wav_path),
        len(audio) / rate, len(chapter.segments), figures, stats, key, levels=levels, loudness=loudness, qa=qa_report,
    )
    files.write_json(stamp_path, {"key": key, "result": result.to_dict()})
    return result


def reuse_chapter(
    manuscript: Manuscript, number: int, *, workspace: Workspace, casting: Casting, library: dict[str, Voice],
    tags: album.AlbumTags, lexicon: Lexicon | None = None, delivery: DeliveryConfig | None = None,
    profile: Profile | None = None, qa: QaConfig | None = QaConfig(),
) -> ChapterResult | None:
    """Return chapter `number` as the last run made it if nothing its files depend on changed since, else None.

    Only the takes' cache keys are computed (and, with take QA, their stored verdicts read): no take is
    opened, so checking a whole unchanged novel costs a fraction of a second per chapter."""
    chapter = manuscript.chapter(number)
    profile = profile or get_profile(None)
    cache = TakeCache(workspace.cache_dir)
    planned = plan_takes(chapter, casting=casting, library=library, cache=cache, lexicon=lexicon, delivery=delivery)
    paths = {seg.id: cache.path(key) for seg, (key, _, _) in zip(chapter.segments, planned)}
    qa_report = chapter_qa(chapter, paths, qa=qa, language=manuscript.language, lexicon=lexicon)
    key = _stamp_key(manuscript, number, [key for key, _, _ in planned], qa_report, tags, profile)
    out_dir = workspace.output_dir(manuscript.slug)
    stem = chapter_stem(number, chapter.title)
    previous = _read_stamp(workspace.cache_dir / "work" / manuscript.slug / f"{stem}.json", key, out_dir)
    if previous is None or not provenance.provenance_path(out_dir, stem).is_file():  # its voices are in `key`
        return None
    log.info("chapter %d unchanged since the last run; kept as it is", number)
    stats = RenderStats(0, len(chapter.segments), 0.0, previous["stats"]["audio_s"])  # every take was there before
    return ChapterResult.from_dict(previous | {"stats": stats.__dict__, "reused": True, "qa": qa_report})


def _voice_and_delivery_gain(
    seg: Segment, casting: Casting, library: dict[str, Voice], delivery: DeliveryConfig | None
) -> tuple[str, float]:
    """Return the id of the voice `seg` is cast to and the level change (dB) its delivery adds to that voice."""
    voice = library[casting.voice_for_segment(seg)]
    spoken = segment_voice(voice, seg, delivery)
    return voice.id, float(spoken.params.get("gain_db", 0.0)) - float(voice.params.get("gain_db", 0.0))


def _read_stamp(path: Path, key: str, out_dir: Path) -> dict | None:
    stamp = _json_or_empty(path)
    result = stamp.get("result", {})
    needed = [out_dir / result.get(k, "") for k in ("mp3", "vtt", "sync")] + [Path(result.get("master_wav", ""))]
    if stamp.get("key") != key or not all(p.is_file() for p in needed):
        return None
    return result


@dataclass(frozen=True)
class Credits:
    """The spoken opening and closing credits, made like chapters (ChapterResult) with their words."""

    opening: ChapterResult
    closing: ChapterResult
    opening_text: str
    closing_text: str

    def report(self) -> dict:
        """Return the report.json "credits" entry: file, duration, text and ACX figures of each."""
        return {kind: {"file": r.mp3, "title": r.title, "duration_s": round(r.duration_s, 3), "text": text,
                       "acx": r.acx.to_dict(), "qa": r.qa}
                for kind, r, text in (("opening", self.opening, self.opening_text),
                                      ("closing", self.closing, self.closing_text))}


def _names(names: Sequence[str]) -> str:
    """Return "A, B and C", or "A; B, b and C" when a name has a comma of its own ("Joe, bright")."""
    joint = "; " if any("," in n for n in names) else ", "
    return names[0] if len(names) == 1 else f"{joint.join(names[:-1])} and {names[-1]}"


def _said(text: str) -> str:
    """Return a credits sentence as the narrator says it: a model id in brackets, "(Piper en_US-joe-medium)", is
    shown in the text and the tags but not read out (an engine mangles it: "en US show medium")."""
    return re.sub(r"\s*\([^()]*_[^()]*\)", "", text)


def credits_sentences(
    manuscript: Manuscript, narrator: Voice, characters: Sequence[Voice], disclosure: str, year: int
) -> dict[str, list[str]]:
    """Return the sentences of the opening and closing credits, keyed "opening" and "closing"."""
    cast = [f"Character voices: {_names([v.name for v in characters])}."] if characters else []
    return {
        "opening": [f"{manuscript.title}.", f"Written by {manuscript.author}.", f"Narrated by {narrator.name}.", *cast,
                    disclosure],
        "closing": ["The end.", f"{manuscript.title}, written by {manuscript.author}.", disclosure,
                    f"Production copyright {year}."],
    }


def credits_chapter(kind: str, number: int, sentences: Sequence[str], language: str) -> Chapter:
    """Return the credits as a Chapter of narrator segments "credits-open-s01", ..., normalized like the book's."""
    from stages.ingest.sentences import spoken_form

    tag = "open" if kind == "opening" else "close"
    segments = tuple(
        Segment(id=f"credits-{tag}-s{n:02d}", text=text, spoken=spoken_form(_said(text), language))
        for n, text in enumerate((t for t in sentences if t.strip()), start=1)
    )
    return Chapter(number, CREDITS_TITLES[kind], (Paragraph(f"credits-{tag}-p01", "text", segments),), source="credits")


def produce_credits(
    manuscript: Manuscript,
    *,
    workspace: Workspace,
    casting: Casting,
    library: dict[str, Voice],
    tags: album.AlbumTags,
    voice_ids: Sequence[str] = (),
    lexicon: Lexicon | None = None,
    year: int | None = None,
    qa: QaConfig | None = QaConfig(),
) -> Credits:
    """Render, master and write the opening and closing credits in the narrator's voice; reuse unchanged files."""
    narrator = library[casting.voice_for(NARRATOR)]
    characters = [library[v] for v in sorted(set(voice_ids) - {narrator.id}) if v in library]
    year = year or datetime.date.today().year
    sentences = credits_sentences(manuscript, narrator, characters, tags.disclosure or provenance.DEFAULT_DISCLOSURE,
                                  year)
    total = last_chapter(manuscript) + 2
    closing_number = max(CLOSING_STEM_MIN, last_chapter(manuscript) + 1)
    made = {}
    for kind, number, stem, track in (("opening", 0, OPENING_CREDITS_STEM, 1),
                                      ("closing", closing_number, f"{closing_number:02d}-closing-credits", total)):
        chapter = credits_chapter(kind, number, sentences[kind], manuscript.language)
        made[kind] = _produce_credits_track(chapter, stem, track, total, manuscript=manuscript, workspace=workspace,
                                            casting=casting, library=library, tags=tags, lexicon=lexicon, qa=qa)
    return Credits(made["opening"], made["closing"], " ".join(sentences["opening"]), " ".join(sentences["closing"]))


def _produce_credits_track(
    chapter: Chapter, stem: str, track: int, total: int, *, manuscript: Manuscript, workspace: Workspace,
    casting: Casting, library: dict[str, Voice], tags: album.AlbumTags, lexicon: Lexicon | None, qa: QaConfig | None,
) -> ChapterResult:
    takes, stats = render_chapter(chapter, casting=casting, library=library, cache=TakeCache(workspace.cache_dir),
                                  lexicon=lexicon, qa=qa, language=manuscript.language)
    qa_report = chapter_qa(chapter, takes, qa=qa, language=manuscript.language, lexicon=lexicon)
    out_dir = workspace.output_dir(manuscript.slug)
    work_dir = workspace.cache_dir / "work" / manuscript.slug
    recipe = {"version": STAMP_VERSION, "takes": [takes[s.id].key for s in chapter.segments], "stem": stem,
              "chapter": chapter.to_dict(), "track": [track, total], "tags": _tag_facts(tags), "qa": qa_report}
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
    stamp_path = work_dir / f"{stem}.json"
    stamp = _json_or_empty(stamp_path)
    result = stamp.get("result", {})
    kept = (out_dir / result.get("mp3", "")).is_file() and Path(result.get("master_wav", "")).is_file()
    if stamp.get("key") == key and kept:
        log.info("%s unchanged since the last run; kept as they are", chapter.title.lower())
        return ChapterResult.from_dict(result | {"stats": stats.__dict__, "reused": True, "qa": qa_report})
    rate = master.MASTER_SAMPLE_RATE_HZ
    audio = master.master(master.assemble_chapter(chapter, takes)[0], rate, cache_dir=workspace.cache_dir)
    mp3 = album.write_chapter_mp3(audio, rate, out_dir / f"{stem}.mp3", title=chapter.title, track=track, total=total,
                                  tags=tags)
    wav_path = wav.write_wav(work_dir / f"{stem}.wav", audio, rate)
    result = ChapterResult(chapter.number, chapter.title, mp3.name, "", "", str(wav_path), len(audio) / rate,
                           len(chapter.segments), acx.measure(audio, rate), stats, key, qa=qa_report)
    files.write_json(stamp_path, {"key": key, "result": result.to_dict()})
    return result


def m4b_part_path(work_dir: Path, key: str, bitrate_kbps: int) -> Path:
    """Return where the M4B's AAC part of the chapter with stamp `key` is kept."""
    return work_dir / "m4b" / f"{key}.{bitrate_kbps}k.m4a"


class M4bJob:
    """The album's M4B, its chapters encoded one by one (in the background) while later chapters still render.

    Each chapter's AAC part is kept under the chapter's stamp, so a re-run encodes only the chapters
    that changed and joins the rest by stream copy; if every stamp matches, the M4B is kept as it is.
    """

    def __init__(self, manuscript: Manuscript, workspace: Workspace, tags: album.AlbumTags,
                 bitrate_kbps: int = album.M4B_BITRATE_KBPS):
        self.bitrate_kbps = bitrate_kbps
        self.path = workspace.output_dir(manuscript.slug) / f"{manuscript.slug}.m4b"
        self.work_dir = workspace.cache_dir / "work" / manuscript.slug
        self.stamp = self.work_dir / "m4b.json"
        self.tags = tags
        self.results: list[ChapterResult] = []
        self.encoded = 0  # parts encoded in this run, by this job or by produce_chapter (the rest are older)
        self._older = {p.name for p in (self.work_dir / "m4b").glob("*.m4a")}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="m4b")
        self._jobs: list[Future] = []

    def part(self, result: ChapterResult) -> Path:
        return m4b_part_path(self.work_dir, result.key, self.bitrate_kbps)

    def add(self, result: ChapterResult) -> None:
        """Take the next chapter, in album order; encode its part unless an earlier run did."""
        self.results.append(result)
        self.encoded += self.part(result).name not in self._older
        if not self.part(result).is_file():
            self._jobs.append(self._pool.submit(m4b.encode_part, Path(result.master_wav),
                                                master.MASTER_SAMPLE_RATE_HZ, self.part(result), self.bitrate_kbps))

    def wait_parts(self) -> None:
        """Return once every part this job encodes is written (raise what an encoding raised)."""
        for job in self._jobs:
            job.result()

    def finish(self) -> Path:
        """Return the finished M4B, joining the chapters' parts unless the M4B on disk already holds them."""
        try:
            self.wait_parts()
        finally:
            self._pool.shutdown(wait=True)
        key = hashlib.sha256(json.dumps([STAMP_VERSION, [r.key for r in self.results]]).encode()).hexdigest()
        if not (self.path.is_file() and _json_or_empty(self.stamp).get("key") == key):
            m4b.assemble_m4b([self.part(r) for r in self.results], [r.title for r in self.results], self.path,
                             tags=self.tags)
            files.write_json(self.stamp, {"key": key})
        prune_parts(self.work_dir)
        return self.path


    def abort(self) -> None:
        for job in self._jobs:
            job.cancel()
        self._pool.shutdown(wait=True)


def prune_parts(work_dir: Path) -> None:
    """Delete the AAC parts no chapter stamp in `work_dir` names any more (edited chapters' old parts)."""
    current = {_json_or_empty(p).get("key") for p in work_dir.glob("*.json")}
    for part in (work_dir / "m4b").glob("*.m4a"):
        if part.name.split(".")[0] not in current:
            part.unlink(missing_ok=True)


def chapter_digest(chapter: Chapter) -> str:
    """Return a hash of a chapter's text, speakers and emotions (what an edit in the book changes)."""
    return hashlib.sha256(json.dumps(chapter.to_dict(), sort_keys=True).encode()).hexdigest()


def edited_first(manuscript: Manuscript, workspace: Workspace) -> list[Chapter]:
    """Return the chapters in the order to make them: those edited since the last run (or never made) first,
    then the rest longest first, so an edit starts at once and a long chapter does not end the run alone."""
    index = _json_or_empty(workspace.cache_dir / "work" / manuscript.slug / "chapters.json")

    def order(c: Chapter) -> tuple[bool, int]:
        return index.get(str(c.number)) == chapter_digest(c), -sum(len(s.spoken) for s in c.segments)

    return sorted(manuscript.chapters, key=order)


def remember_chapters(manuscript: Manuscript, workspace: Workspace) -> None:
    """Record each chapter's digest, for edited_first on the next run."""
    path = workspace.cache_dir / "work" / manuscript.slug / "chapters.json"
    files.write_json(path, _json_or_empty(path) | {str(c.number): chapter_digest(c) for c in manuscript.chapters})


def _json_or_empty(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def finish_album(
    manuscript: Manuscript,
    results: Sequence[ChapterResult],
    *,
    workspace: Workspace,
    tags: album.AlbumTags,
    facts: dict,
    m4b_job: M4bJob | None = None,
    credits: Credits | None = None,
    profile: Profile | None = None,
    notes: dict[int, str] | None = None,
) -> dict[str, Path]:
    """Write the M4B if `profile` delivers one (or finish `m4b_job`, already fed the opening credits, `results`,
    the closing credits), the retail sample, the read-along page and the report; `notes` are split notes by chapter."""
    out_dir = workspace.output_dir(manuscript.slug)
    profile = profile or get_profile(None)
    tracks = [credits.opening, *results, credits.closing] if credits else list(results)
    failing = [(r.title, r) for r in tracks if r not in results and not r.acx.passes]  # the credits; chapters below
    if m4b_job is None and profile.m4b:
        m4b_job = M4bJob(manuscript, workspace, tags, bitrate_kbps=profile.m4b_bitrate_kbps)
        for r in tracks:
            m4b_job.add(r)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="m4b-join") as pool:
        joined = pool.submit(m4b_job.finish) if profile.m4b else None  # mostly a disk copy: beside the pages
        sample = retail.write_retail_sample(manuscript, results, out_dir, tags=tags, profile=profile,
                                            stamp=workspace.cache_dir / "work" / manuscript.slug / "sample.json")
        if m4b_job is not None:
            m4b_job.wait_parts()
        aac = {r.number: part for r in results
               if (part := m4b_part_path(workspace.cache_dir / "work" / manuscript.slug, r.key,
                                         profile.m4b_bitrate_kbps)).is_file()}
        listen_page, epub, epub_problems = _read_along(manuscript, results, workspace=workspace, tags=tags, audio=aac)
        if not profile.m4b:
            prune_parts(workspace.cache_dir / "work" / manuscript.slug)  # those the EPUB no longer holds
        reports = [retail.chapter_entry(r, profile, out_dir, (notes or {}).get(r.number, "")) for r in results]
        m4b = joined.result() if joined else None
    book = facts | {
        "title": manuscript.title,
        "author": manuscript.author,
        "narrator": tags.narrator,
        "disclosure": tags.disclosure,
        "voices": tags.voices,
        "language": manuscript.language,
        "source": manuscript.source,
        "m4b": m4b.name if m4b else None,
        "epub": {"file": f"{manuscript.slug}.epub", "problems": epub_problems},
        "chapters": len(results),
        "duration_s": round(sum(r.duration_s for r in results), 3),
        "segments": sum(r.segments for r in results),
        "synthesized": sum(r.stats.synthesized for r in results),
        "cached": sum(r.stats.cached for r in results),
    } | ({"credits": credits.report()} if credits else {})
    delivery = retail.delivery_facts(profile, m4b=m4b, sample=sample, credits=credits is not None,
                                     mp3s=[r.mp3 for r in tracks])
    report_json, report_html = report.write_report(out_dir, book=book, chapters=reports, delivery=delivery)
    epub = epub.result()  # synced and in place
    problems = retail.failures(reports, delivery) + [f"{label}: {', '.join(r.acx.problems)}" for label, r in failing]
    if problems:
        count = sum(not c.passes for c in reports) + len(failing)
        head = f"{count} chapter(s) fail ACX checks" if count else f"the album fails {profile.retailer}'s checks"
        raise ComplianceError(f"{head} ({'; '.join(problems)}); see {report_html}")
    if epub_problems:
        raise ComplianceError(f"the read-along EPUB {epub} has {len(epub_problems)} problem(s): {epub_problems[0]}")
    made = {"m4b": m4b, "sample": out_dir / sample["file"] if sample else None}
    return {k: v for k, v in made.items() if v is not None} | {"epub": epub, "listen": listen_page,
                                                                "report": report_json, "report_html": report_html}


def _read_along(
    manuscript: Manuscript, results: Sequence[ChapterResult], *, workspace: Workspace, tags: album.AlbumTags,
    audio: dict[int, Path] | None = None,
) -> tuple[Path, Future, list[str]]:
    """Write the read-along page and the EPUB 3 with media overlays (with each chapter's `audio`, by number: its
    AAC part, the M4B's, where it has one, else its MP3); return the page's path, the EPUB's path as a future
    (it is being synced and put in place) and the EPUB's problems (checked before that)."""
    out_dir = workspace.output_dir(manuscript.slug)
    chapters = {c.number: c for c in manuscript.chapters}
    produced = manuscript.with_chapters([chapters[r.number] for r in results])  # the chapters this album holds
    # planned here, before the page: planning is Python work (reading the last EPUB's members, making the changed
    # chapters' documents) that would crawl beside the page's; the writing is disk work, done beside the page
    plan = overlay_epub.plan_overlay_epub(produced, out_dir, out_dir / f"{manuscript.slug}.epub",
                                          stamp=workspace.cache_dir / "work" / manuscript.slug / "epub.json",
                                          audio=audio)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="epub")  # shut down by finish_album
    try:
        writing = pool.submit(overlay_epub.stage_planned, plan)
        pages = []
        for r in results:
            _, cues, words = sync.read_sync(out_dir / r.sync)
            pages.append(listen.ListenChapter.from_chapter(chapters[r.number], r.mp3, cues, words=words))
        listen_page = listen.write_listen_page(
            out_dir / "listen.html",
            title=manuscript.title,
            author=manuscript.author,
            narrator=tags.narrator,
            cover_file=_copy_cover(manuscript, workspace, out_dir),
            chapters=pages,
            language=manuscript.language,
        )
        staged = writing.result()  # written; the kernel is already writing it back to disk
        known = workspace.cache_dir / "work" / manuscript.slug / "overlay-check.json"  # unchanged overlays kept
        problems = overlay.check_overlays(staged.tmp if staged else plan.out, known=known)  # what EPUBCheck does not
        committing = pool.submit(overlay_epub.commit_planned, plan, staged)  # synced and renamed beside the report
    finally:
        pool.shutdown(wait=False)
    return listen_page, committing, problems


def _copy_cover(manuscript: Manuscript, workspace: Workspace, out_dir: Path) -> str | None:
    if not manuscript.cover:
        return None
    data = (workspace.manuscript_dir(manuscript.slug) / manuscript.cover).read_bytes()
    files.write_bytes(out_dir / manuscript.cover, data)
    return manuscript.cover
