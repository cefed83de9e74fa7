"""Background re-renders: after an edit, the book is produced again on one worker thread (the take cache
and chapter stamps make that remake only the edited take and its chapter), and the job records the
segment's take before and after, for A/B listening."""

from __future__ import annotations

import contextvars
import json
import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import sessionmaker

from stages.errors import UserError
from studio.db import Job

log = logging.getLogger(__name__)


def produce_book(source: Path, root: Path, slug: str) -> None:
    from flows.produce import run_produce

    run_produce(source, root, slug=slug, interactive=False)


def segment_take(output: Path, slug: str, segment: str) -> str:
    """Return the cache key of the take a segment has in the album now ("" if it has none yet)."""
    for path in (output / slug).glob("*.provenance.json"):
        for take in json.loads(path.read_text(encoding="utf-8")).get("takes", []):
            if take.get("segment") == segment:
                return take.get("take", "")
    return ""


class Renderer:
    """One worker thread that runs queued jobs in order, in the context the studio was started in."""

    def __init__(self, root: Path, sessions: sessionmaker, produce: Callable[[Path, Path, str], None] = produce_book):
        self.root, self.output, self.sessions, self.produce = Path(root), Path(root) / "output", sessions, produce
        self._queue: queue.Queue[int] = queue.Queue()
        self._context = contextvars.copy_context()  # settings such as Prefect's API follow the jobs
        self._thread = threading.Thread(target=self._context.run, args=(self._work,), name="studio-render",
                                        daemon=True)
        self._thread.start()

    def submit(self, slug: str, chapter: int, segment: str, username: str) -> int:
        with self.sessions() as session, session.begin():
            job = Job(slug=slug, chapter=chapter, segment=segment, username=username,
                      take_before=segment_take(self.output, slug, segment))
            session.add(job)
            session.flush()
            job_id = job.id
        self._queue.put(job_id)
        return job_id

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            with self.sessions() as session, session.begin():
                job = session.get(Job, job_id)
                job.state = "running"
                slug, segment = job.slug, job.segment
            try:
                manuscript = json.loads((self.root / "manuscripts" / slug / "manuscript.json").read_text("utf-8"))
                self.produce(Path(manuscript["source"]), self.root, slug)
                state, message = "done", ""
            except UserError as e:
                state, message = "failed", str(e)
            except Exception as e:  # noqa: BLE001 - a job's failure is reported on the page, the worker goes on
                log.exception("re-render job %d failed", job_id)
                state, message = "failed", f"{type(e).__name__}: {e}"
            with self.sessions() as session, session.begin():
                job = session.get(Job, job_id)
                job.state, job.message = state, message
                job.take_after = segment_take(self.output, slug, segment) if state == "done" else ""
