"""Edit one sentence of a fully rendered novel and time the rebuild that follows.

    python bench/incremental.py [--book PATH] [--root DIR] [--cli] [--server] [--no-qa]

The first run renders the whole book into DIR (default output/bench-incremental; minutes to hours,
kept for later runs). Each run then toggles one sentence of chapter 15 of Pride and Prejudice in the
workspace's copy of the book ("was not a sensible man" <-> "was not at all a sensible man") and
produces again, in this process after a warm-up flow (so Prefect's local server start is not
counted), then prints: wall seconds, takes synthesized, chapters re-mastered, M4B parts encoded.
With --cli it also times the same rebuild as a user runs it, `audiobook produce` in a new process,
Prefect's temporary server start included; with --server, the same with a `prefect server start` running
(PREFECT_API_URL set), as a producer working through many edits would. Target: <= 15 s on 2 cores for a
61-chapter novel.
--no-qa turns take QA off in the bench workspace for both runs (the first run would otherwise hear
the whole novel back, about 0.13 x its length on 2 cores).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import flows  # noqa: E402,F401  (Prefect defaults)
from prefect import flow  # noqa: E402

from flows.produce import produce_flow  # noqa: E402
from stages import files  # noqa: E402

DEFAULT_BOOK = REPO.parent / "shared" / "corpus" / "jane-austen_pride-and-prejudice.epub"
EDIT = ("was not a sensible man", "was not at all a sensible man")
SERVER_START_TIMEOUT_S = 120


@flow(name="warm-up")
def warm_up() -> None:
    """Start Prefect's local server so its start-up is not counted."""


def toggle_sentence(book: Path) -> str:
    """Rewrite the one sentence EDIT names in `book` (EPUB or text), one way or back; return the new wording."""
    if book.suffix != ".epub":
        text = book.read_text(encoding="utf-8")
        old, new = EDIT if EDIT[1] not in text else EDIT[::-1]
        files.write_text(book, text.replace(old, new, 1))
        return new
    with zipfile.ZipFile(book) as src:
        members = [(info, src.read(info)) for info in src.infolist()]
    both = b"".join(data for _, data in members)
    old, new = (EDIT if EDIT[1].encode() not in both else EDIT[::-1])
    with files.atomic_path(book) as tmp, zipfile.ZipFile(tmp, "w") as out:
        for info, data in members:  # the mimetype entry stays first and stored
            out.writestr(info, data.replace(old.encode(), new.encode(), 1))
    return new


def summary_figures(summary: dict) -> str:
    remastered = sum(not c["reused"] for c in summary["chapters"])
    phases = ", ".join(f"{name} {s:.2f} s" for name, s in summary.get("phases_s", {}).items())
    return (f"{summary['synthesized']} take(s) synthesized, {remastered} of {len(summary['chapters'])} chapters "
            f"re-mastered, {summary.get('m4b_parts_encoded', '?')} M4B part(s) encoded; phases ended at: {phases}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--book", type=Path, default=DEFAULT_BOOK)
    ap.add_argument("--root", type=Path, default=REPO / "output" / "bench-incremental")
    ap.add_argument("--cli", action="store_true", help="also time `audiobook produce` in a new process")
    ap.add_argument("--server", action="store_true",
                    help="also time `audiobook produce` in a new process while `prefect server start` runs")
    ap.add_argument("--no-qa", action="store_true",
                    help="turn take QA off in the workspace (audiobook.toml [qa] enabled = false): hearing a whole "
                         "novel back costs about 0.13 x its length; both runs must use the same setting")
    args = ap.parse_args()
    root = args.root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    files.write_text(root / "audiobook.toml", f"[qa]\nenabled = {'false' if args.no_qa else 'true'}\n")
    voices = root / "voices"
    if voices.is_symlink() and not voices.exists():
        voices.unlink()  # a link to a checkout that has moved
    if not voices.exists():
        voices.symlink_to(REPO / "voices")
    book = root / args.book.name
    if not book.exists():
        shutil.copyfile(args.book, book)
    warm_up()
    started = time.perf_counter()
    summary = produce_flow(book, root)
    print(f"first run (whole book unless already rendered): {time.perf_counter() - started:.1f} s; "
          f"{summary_figures(summary)}")
    new = toggle_sentence(book)
    started = time.perf_counter()
    summary = produce_flow(book, root)
    wall = time.perf_counter() - started
    print(f"edited one sentence (now {new!r}); rebuild in process: {wall:.2f} s wall; {summary_figures(summary)}")
    if args.cli:
        new = toggle_sentence(book)
        wall, summary = produce_in_new_process(book, root, os.environ)
        print(f"edited it back ({new!r}); `audiobook produce` in a new process: {wall:.2f} s wall, Prefect's "
              f"temporary server start included; {summary_figures(summary)}")
    if args.server:
        with prefect_server() as api_url:
            new = toggle_sentence(book)
            wall, summary = produce_in_new_process(book, root, os.environ | {"PREFECT_API_URL": api_url})
        print(f"edited it again ({new!r}); `audiobook produce` in a new process with a Prefect server running "
              f"(PREFECT_API_URL): {wall:.2f} s wall; {summary_figures(summary)}")


def produce_in_new_process(book: Path, root: Path, env: dict) -> tuple[float, dict]:
    """Run `audiobook produce` on `book` as a user does; return its wall seconds and its summary."""
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "flows.cli", "produce", str(book), "--root", str(root), "--json"],
                         cwd=REPO, env=env | {"PREFECT_LOGGING_LEVEL": "WARNING"}, check=True, capture_output=True,
                         text=True).stdout
    return time.perf_counter() - started, json.loads(out)


@contextlib.contextmanager
def prefect_server():
    """Run `prefect server start` on a free loopback port while the block runs; yield its API URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=os.environ | {"PREFECT_UI_ENABLED": "false", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    api_url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{api_url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"prefect server start did not answer on {api_url} (exit {server.poll()})")
                time.sleep(0.5)
        yield api_url
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
