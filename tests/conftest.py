"""Shared fixtures: the real corpus beside the repo, small real books, one Prefect test harness."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
SAMPLE_EPUB = REPO / "manuscripts" / "alice-sample.epub"


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(f"the test corpus is missing: expected {CORPUS} (the shared/ folder beside the repo)")
    return CORPUS


@pytest.fixture(scope="session")
def small_book(tmp_path_factory, corpus) -> Path:
    """A two-chapter .txt book made of the opening paragraphs of Pride and Prejudice's first two chapters."""
    text = (corpus / "jane-austen_pride-and-prejudice.txt").read_text(encoding="utf-8")
    _, ch1, ch2 = text.split("CHAPTER ", 3)[:3]
    def opening(chapter: str, paragraphs: int) -> str:
        heading, *body = [b for b in chapter.split("\n\n") if b.strip()]
        return "CHAPTER " + heading.strip() + "\n\n" + "\n\n".join(body[:paragraphs])
    book = "PRIDE AND PREJUDICE\n\nby Jane Austen\n\n" + opening(ch1, 4) + "\n\n" + opening(ch2, 3) + "\n"
    path = tmp_path_factory.mktemp("books") / "pride-and-prejudice-opening.txt"
    path.write_text(book, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(autouse=True)
def no_llm_unless_asked(request, monkeypatch):
    """Keep a developer's OPENAI_* settings away from tests that do not ask for a real endpoint."""
    if request.node.get_closest_marker("llm") is None:
        for name in ("OPENAI_BASE_URL", "OPENAI_MODEL", "OPENAI_API_KEY"):
            monkeypatch.delenv(name, raising=False)
