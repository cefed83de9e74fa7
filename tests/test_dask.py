"""The produce flow with its chapters on a Dask LocalCluster of two worker processes (prefect-dask)."""

from __future__ import annotations

import os

import pytest

from flows.produce import run_produce, task_runner
from stages.errors import UserError
from stages.package.album import read_m4b_chapters
from stages.package.sync import read_sync_map


@pytest.fixture(scope="module")
def album(tmp_path_factory, small_book, prefect_harness):
    root = tmp_path_factory.mktemp("workspace")
    (root / "audiobook.toml").write_text("[qa]\nenabled = false\n", encoding="utf-8")  # QA is tested elsewhere
    return run_produce(small_book, root, dask="local:2", interactive=False)


def test_chapters_are_made_in_worker_processes_into_the_shared_cache(album):
    made_in = album["chapters_made_in"]
    assert made_in and all(not p.endswith(f":{os.getpid()}") for p in made_in)  # not in this process
    assert [c["number"] for c in album["chapters"]] == [1, 2]
    assert album["synthesized"] > 0 and all(not c["reused"] for c in album["chapters"])


def test_the_album_is_whole(album):
    out = album["output"]
    marks = read_m4b_chapters(album["paths"]["m4b"])
    assert [t for t, _ in marks] == ["Opening Credits", *(c["title"] for c in album["chapters"]), "Closing Credits"]
    for chapter in album["chapters"]:
        facts, cues = read_sync_map(f"{out}/{chapter['sync']}")
        assert len(cues) == chapter["segments"] and facts["duration_ms"] == round(chapter["duration_s"] * 1000)


def test_a_bad_local_cluster_spec_is_refused():
    with pytest.raises(UserError, match=r"--dask 'local:two': write local:N"):
        task_runner("local:two")
