"""Shared fixtures: the real corpus beside the repo, small real books, one Prefect test harness, the sample album."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
SAMPLE_EPUB = REPO / "manuscripts" / "alice-sample.epub"
LLM_SETTINGS = ("OPENAI_BASE_URL", "OPENAI_MODEL", "OPENAI_API_KEY")


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


def without_take_qa(root: Path) -> Path:
    """Turn take QA off in the workspace at `root` (its audiobook.toml): for flow runs that test something else."""
    config = root / "audiobook.toml"
    before = config.read_text(encoding="utf-8") if config.exists() else ""
    root.mkdir(parents=True, exist_ok=True)
    config.write_text(before + "\n[qa]\nenabled = false\n", encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def sample_album(tmp_path_factory, prefect_harness) -> tuple[Path, dict]:
    """The bundled sample book produced once by `audiobook produce --json` with take QA on: (workspace, summary).
    Tests that use it only read it or run the same command again (which must change nothing)."""
    from flows.cli import main

    root = tmp_path_factory.mktemp("sample-album")
    # every take heard back, but a failing one retaken once, not RETAKES times: test_produce.py runs the default
    (root / "audiobook.toml").write_text("[qa]\nretakes = 1\n", encoding="utf-8")
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as env, contextlib.redirect_stdout(printed):
        for name in LLM_SETTINGS:  # made before any test's own fixtures run: keep the LLM away here too
            env.delenv(name, raising=False)
        assert main(["produce", str(SAMPLE_EPUB), "--root", str(root), "--json"]) == 0
    return root, json.loads(printed.getvalue())


@pytest.fixture(autouse=True)
def no_llm_unless_asked(request, monkeypatch):
    """Keep a developer's OPENAI_* settings away from tests that do not ask for a real endpoint."""
    if request.node.get_closest_marker("llm") is None:
        for name in LLM_SETTINGS:
            monkeypatch.delenv(name, raising=False)
