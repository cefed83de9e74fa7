"""The produce flow: ingest -> attribute -> cast -> chapters (fanned out) and credits -> album.

Each task is one call into stages/; the flow only wires them together and shows progress.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import replace
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from stages import files, profiles
from stages import produce as stage
from stages.attribute.direct import Direction, direct, project_config
from stages.cast import Casting, cast, embedding_similarity, load_library
from stages.cache import TakeCache
from stages.delivery import DeliveryConfig
from stages.edits import apply_edits, load_edits
from stages.engines import get_engine
from stages.qa import QaConfig
from stages.errors import UserError
from stages.ingest import ingest, save_manuscript
from stages.lexicon import Lexicon, load_lexicon
from stages.model import NARRATOR, Manuscript, Voice, Workspace
from stages.prerender import prerender
from stages.progress import ProgressBoard
from stages.render import check_voices
from stages.voices.card import load_cards
from stages.voices.licence import allowed_voices, enforce, rights_scope

log = logging.getLogger("audiobook")


@task(name="ingest", cache_policy=NO_CACHE)
def ingest_task(source: Path, workspace: Workspace, slug: str | None, notes: str, series: list[Path]) -> Direction:
    manuscript = ingest(source, workspace.manuscript_dir, slug=slug, notes=notes, save=False)
    book_dir = workspace.manuscript_dir(manuscript.slug)
    direction = direct(manuscript, book_dir=book_dir, cache_dir=workspace.cache_dir, config=project_config(workspace.root),
                       series_dirs=series)
    direction = replace(direction, manuscript=apply_edits(direction.manuscript, load_edits(book_dir)))  # the fixes
    save_manuscript(direction.manuscript, book_dir / "manuscript.json")
    return direction


@task(name="cast", cache_policy=NO_CACHE)
def cast_task(
    manuscript: Manuscript, workspace: Workspace, narrator: str | None, genders: dict[str, str], series: list[Path]
) -> tuple[Casting, dict[str, Voice]]:
    library = load_library(workspace.voices_dir)
    sheet = workspace.manuscript_dir(manuscript.slug) / "cast.toml"
    allowed = allowed_voices(load_cards(workspace.voices_dir), title=manuscript.title, slug=manuscript.slug,
                             series=[p.name for p in series], **rights_scope(project_config(workspace.root)))
    similarity = embedding_similarity(library, workspace.cache_dir / "embeddings", allowed=allowed)
    casting = cast(manuscript, library, sheet, narrator=narrator, genders=genders, similarity=similarity,
                   allowed=allowed)
    check_voices(manuscript, casting, library)
    return casting, library


@task(name="rights", cache_policy=NO_CACHE)
def rights_task(manuscript: Manuscript, workspace: Workspace, casting: Casting, series: list[Path]) -> list[str]:
    voice_ids = casting.voice_ids(manuscript)  # the speakers' voices and any line's own
    enforce(load_cards(workspace.voices_dir), voice_ids, title=manuscript.title, slug=manuscript.slug,
            series=[p.name for p in series], audit_root=workspace.root, **rights_scope(project_config(workspace.root)))
    return voice_ids


@task(name="lexicon", cache_policy=NO_CACHE)
def lexicon_task(manuscript: Manuscript, workspace: Workspace, series: list[Path]) -> Lexicon:
    return load_lexicon(workspace.manuscript_dir(manuscript.slug), series)


@task(name="prerender", cache_policy=NO_CACHE)
def prerender_task(manuscript: Manuscript, workspace: Workspace, **kwargs) -> dict:
    report = prerender(manuscript.chapters, cache=TakeCache(workspace.cache_dir), **kwargs)
    return {"batches": report.batches, "takes": report.stored, "oom_splits": report.splits,
            "per_device": report.per_device}


@task(name="unchanged chapters", cache_policy=NO_CACHE)
def unchanged_task(manuscript: Manuscript, **kwargs) -> dict[int, stage.ChapterResult]:
    """Return the chapters whose files the last run made from exactly what this run would use, by number."""
    kept = {c.number: stage.reuse_chapter(manuscript, c.number, **kwargs) for c in manuscript.chapters}
    return {number: result for number, result in kept.items() if result is not None}


@task(name="chapter", cache_policy=NO_CACHE)
def chapter_task(manuscript: Manuscript, number: int, **kwargs) -> tuple[stage.ChapterResult, str]:
    """Return the chapter and where it was made ("host:pid"; a Dask worker's when the flow runs on a cluster)."""
    return stage.produce_chapter(manuscript, number, **kwargs), f"{socket.gethostname()}:{os.getpid()}"


def _no_progress(n: int) -> None:
    """The progress callback for chapters made in other processes (the board lives in this one)."""


def task_runner(dask: str | None = None):
    """Return the flow's task runner: two threads here, or Dask: "local:N" (a LocalCluster of N worker
    processes on this machine) or the address of a running Dask scheduler ("tcp://host:8786")."""
    if not dask:
        return ThreadPoolTaskRunner(max_workers=2)
    from prefect_dask import DaskTaskRunner

    if dask.startswith("local:"):
        try:
            workers = int(dask.removeprefix("local:"))
        except ValueError:
            raise UserError(f"--dask {dask!r}: write local:N with N worker processes, e.g. local:2") from None
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                              "dashboard_address": None})
    return DaskTaskRunner(address=dask)


def run_produce(source: Path, root: Path, *, dask: str | None = None, **kwargs) -> dict:
    """Run produce_flow with `task_runner(dask)`: chapters on this machine's threads or on a Dask cluster."""
    return produce_flow.with_options(task_runner=task_runner(dask))(source, root, **kwargs)


@task(name="credits", cache_policy=NO_CACHE)
def credits_task(manuscript: Manuscript, **kwargs) -> stage.Credits:
    return stage.produce_credits(manuscript, **kwargs)


@task(name="album", cache_policy=NO_CACHE)
def album_task(manuscript: Manuscript, results: list[stage.ChapterResult], **kwargs) -> dict[str, Path]:
    return stage.finish_album(manuscript, results, **kwargs)


def select_chapters(manuscript: Manuscript, spec: str | None) -> Manuscript:
    """Return the manuscript with only the chapters `spec` names ("1-3,5"); all when spec is None."""
    if not spec:
        return manuscript
    wanted: set[int] = set()
    try:
        for part in spec.split(","):
            lo, _, hi = part.partition("-")
            wanted.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise UserError(f"--chapters {spec!r} is not a list of chapter numbers; write it like 1-3,5") from None
    chosen = [c for c in manuscript.chapters if c.number in wanted]
    if not chosen:
        raise UserError(f"--chapters {spec!r} names no chapter of {manuscript.source} (it has 1-{len(manuscript.chapters)})")
    return manuscript.with_chapters(chosen)


@flow(name="produce-audiobook", task_runner=ThreadPoolTaskRunner(max_workers=2), log_prints=False)
def produce_flow(
    source: Path,
    root: Path,
    slug: str | None = None,
    narrator: str | None = None,
    chapters: str | None = None,
    series: list[Path] | None = None,
    notes: str = "skip",
    interactive: bool | None = None,
    profile: str | None = None,
    cover: Path | None = None,
) -> dict:
    """Turn the book at `source` into an album under `root`/output/<slug>/ for the delivery `profile` (default:
    audiobook.toml's [retail] profile, else generic); return its paths and figures."""
    started = time.perf_counter()
    phases: dict[str, float] = {}  # wall seconds from the start to the end of each phase

    def phase_done(name: str) -> None:
        phases[name] = round(time.perf_counter() - started, 2)

    workspace = Workspace(Path(root))
    retail = profiles.get_profile(profile or profiles.profile_from_config(project_config(workspace.root)))
    direction = ingest_task(Path(source), workspace, slug, notes, [Path(p) for p in series or ()])
    manuscript = select_chapters(direction.manuscript, chapters)
    manuscript = profiles.use_cover(manuscript, workspace.manuscript_dir(manuscript.slug), cover, retail)  # refused now
    manuscript, split_notes = profiles.split_long_chapters(manuscript, retail)  # files no longer than the retailer takes
    for folder in (workspace.output_dir(manuscript.slug), workspace.cache_dir):
        if swept := files.sweep_partials(folder):  # one run per workspace at a time owns these folders
            log.info("removed %d unfinished file(s) an interrupted run left in %s", swept, folder)
    genders = {c.name: c.gender for c in direction.bible.characters}
    series = [Path(p) for p in series or ()]
    # quote(): Prefect would otherwise walk every segment of the book looking for futures, for every task (~1 s each)
    casting, library = cast_task(quote(manuscript), workspace, narrator, genders, series)  # only from licensed voices
    voice_ids = rights_task(quote(manuscript), workspace, quote(casting), series)  # before any synthesis
    lexicon = lexicon_task(quote(manuscript), workspace, series)
    phase_done("read_and_cast")
    delivery = DeliveryConfig.from_project(project_config(workspace.root))  # dialogue coloured by emotion
    if any(hasattr(get_engine(library[v].engine), "synthesize_segments") for v in voice_ids):  # batching engines
        batched = prerender_task(quote(manuscript), workspace, casting=quote(casting), library=quote(library),
                                 lexicon=quote(lexicon), delivery=delivery)  # the whole book's takes, in batches
        log.info("prerendered %d takes in %d batches on %s", batched["takes"], batched["batches"],
                 ", ".join(batched["per_device"]) or "no device")
    qa = QaConfig.from_project(project_config(workspace.root))  # every take heard back, retaken if it fails
    tags = stage.album_tags(manuscript, workspace, library[casting.voice_for(NARRATOR)], voice_ids)
    # made before any chapter starts, so it can tell the parts this run encodes from older ones
    m4b_job = stage.M4bJob(manuscript, workspace, tags, bitrate_kbps=retail.m4b_bitrate_kbps)
    feed_m4b = m4b_job.add if retail.m4b else (lambda result: None)  # an MP3-only profile makes no M4B
    with ProgressBoard(interactive) as board:
        chapter_bar = board.bar("chapters", len(manuscript.chapters), "chapters")
        here = isinstance(FlowRunContext.get().task_runner, ThreadPoolTaskRunner)  # else chapters run elsewhere
        segment_bar = board.bar("segments", len(manuscript.segments), "segments") if here else _no_progress
        held = quote if here else (lambda value: value)  # a quoted argument does not survive Dask's pickling
        settings = dict(workspace=workspace, casting=quote(casting), library=quote(library), tags=quote(tags),
                        lexicon=quote(lexicon), delivery=delivery, profile=retail, qa=qa)
        kept = unchanged_task(quote(manuscript), **settings)  # one cheap check instead of a task per chapter
        segment_bar(sum(len(manuscript.chapter(n).segments) for n in kept))
        by_length = stage.edited_first(manuscript, workspace)  # then longest first
        submitted = {
            c.number: chapter_task.submit(
                held(manuscript), c.number, workspace=workspace, casting=held(casting), library=held(library),
                tags=held(tags), lexicon=held(lexicon), advance=segment_bar, delivery=delivery, profile=retail, qa=qa,
                m4b_kbps=retail.m4b_bitrate_kbps,  # its AAC part (for the M4B and the EPUB) made beside its MP3
            )
            for c in by_length if c.number not in kept
        }
        results, made_in = [], set()
        try:
            # made while the chapters render, so the M4B can start with them; two short tracks
            credits = credits_task(quote(manuscript), workspace=workspace, casting=quote(casting),
                                   library=quote(library), tags=quote(tags), voice_ids=voice_ids,
                                   lexicon=quote(lexicon), qa=qa)
            feed_m4b(credits.opening)
            for c in manuscript.chapters:
                if c.number in kept:
                    result = kept[c.number]
                else:
                    result, where = submitted[c.number].result()
                    made_in.add(where)
                results.append(result)
                feed_m4b(result)
                chapter_bar(1)
            feed_m4b(credits.closing)
        except BaseException:
            m4b_job.abort()
            raise
    stage.remember_chapters(manuscript, workspace)
    phase_done("chapters")
    facts = {"wall_s": round(time.perf_counter() - started, 2), "engine_s": round(sum(r.stats.engine_s for r in results), 2)}
    paths = album_task(quote(manuscript), quote(results), workspace=workspace, tags=quote(tags), facts=facts,
                       m4b_job=quote(m4b_job), credits=quote(credits), profile=retail, notes=split_notes)
    phase_done("album")
    return {
        "slug": manuscript.slug,
        "output": str(workspace.output_dir(manuscript.slug)),
        # each chapter as report.json has it, less its loudness series (thousands of numbers Prefect would walk)
        "chapters": [{k: v for k, v in r.to_dict().items() if k != "loudness"} for r in results],
        "credits": [credits.opening.to_dict(), credits.closing.to_dict()],
        "synthesized": sum(r.stats.synthesized for r in results),
        "cached": sum(r.stats.cached for r in results),
        "engine_s": facts["engine_s"],
        "m4b_parts_encoded": m4b_job.encoded,
        "chapters_made_in": sorted(made_in),  # host:pid of each process that made chapters
        "phases_s": phases,  # seconds from the start of the flow to the end of: reading and casting, chapters, album
        "paths": {k: str(v) for k, v in paths.items()},
    }
