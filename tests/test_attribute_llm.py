"""LLM attribution against a scripted OpenAI-compatible server: labels, the guard, retries, cache, modes."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from llm_replay import ReplayServer

from stages.attribute.llm import LlmConfig, attribute_with_llm, split_chapters
from stages.errors import UserError
from stages.ingest import read_book
from stages.model import Manuscript

FAST_BACKOFF_S = 0.01
CH1_DIALOGUE = ["c01-p0004-s01", "c01-p0004-s03"]
CH2_DIALOGUE = ["c02-p0003-s01", "c02-p0004-s01", "c02-p0004-s03"]


def unknown_fallback(manuscript: Manuscript) -> Manuscript:
    """Label every dialogue segment "unknown", so labels from the model stand out."""
    def label(s):
        return replace(s, speaker="unknown", rule="fallback") if s.kind == "dialogue" else s
    return manuscript.with_chapters([replace(c, paragraphs=tuple(replace(p, segments=tuple(map(label, p.segments)))
                                                                 for p in c.paragraphs)) for c in manuscript.chapters])


@pytest.fixture(scope="module")
def book(small_book) -> Manuscript:
    return read_book(small_book)[0]


@pytest.fixture(scope="module")
def long_book(tmp_path_factory, corpus) -> Manuscript:
    """Pride and Prejudice's first two chapters in full: 90-odd dialogue segments."""
    text = (corpus / "jane-austen_pride-and-prejudice.txt").read_text(encoding="utf-8")
    _, ch1, ch2 = text.split("CHAPTER ", 3)[:3]
    path = tmp_path_factory.mktemp("long") / "pride-and-prejudice-1-2.txt"
    path.write_text("PRIDE AND PREJUDICE\n\nby Jane Austen\n\nCHAPTER " + ch1 + "CHAPTER " + ch2, encoding="utf-8")
    return read_book(path)[0]


def run(book: Manuscript, server: ReplayServer, cache: Path, **config):
    cfg = LlmConfig(base_url=server.base_url, model="replay-7b", **{"max_concurrency": 1, **config})
    return attribute_with_llm(book, cfg, cache_dir=cache, fallback=unknown_fallback, backoff_base_s=FAST_BACKOFF_S)


def speakers(m: Manuscript, ids: list[str]) -> list[tuple[str, str]]:
    by_id = {s.id: s for s in m.segments}
    return [(by_id[i].speaker, by_id[i].rule) for i in ids]


def test_valid_answers_label_dialogue_and_leave_the_text_and_narration_alone(book, tmp_path):
    with ReplayServer() as server:
        out, report = run(book, server, tmp_path)
    assert (report.chunks, report.ok, report.rejected, report.failed, report.requests) == (2, 2, 0, 0, 2)
    assert speakers(out, CH1_DIALOGUE + CH2_DIALOGUE) == [("Mrs. Bennet", "llm")] * 5
    first = next(s for s in out.segments if s.id == "c01-p0004-s01")
    assert (first.emotion, first.intensity, first.text) == ("excited", 0.7, "“My dear Mr. Bennet,”")
    assert [s.text for s in out.segments] == [s.text for s in book.segments]
    assert all(s.speaker == "narrator" for s in out.segments if s.kind != "dialogue")
    assert report.characters[0]["aliases"] == ["his lady"] and report.characters[0]["gender"] == "female"
    first_prompt, second_prompt = (e["body"]["messages"][-1]["content"] for e in server.log)
    assert "(none yet)" in first_prompt and "c01-p0004-s02 | narration | said his lady to him one day," in first_prompt
    assert "- Mrs. Bennet (also: his lady); female; an anxious mother" in second_prompt
    assert f"Required ids: {json.dumps(CH2_DIALOGUE)}" in second_prompt
    assert server.log[0]["body"]["response_format"]["type"] == "json_schema"


@pytest.mark.parametrize("behaviour, reason", [
    ("malformed", "malformed JSON"), ("missing", "missing ids ['c01-p0004-s03']"),
    ("invented", "invented ids ['c99-p0001-s01']"), ("reorder", "ids out of order"),
    ("text", "carries text; only labels are accepted"),
])
def test_a_bad_answer_falls_back_for_its_chunk_only_and_is_not_cached(book, tmp_path, behaviour, reason):
    with ReplayServer([behaviour]) as server:
        out, report = run(book, server, tmp_path)
    assert (report.ok, report.rejected, report.failed, report.requests) == (1, 1, 0, 2)
    assert report.reasons[0].startswith("c01#1: rejected: ") and reason in report.reasons[0]
    assert speakers(out, CH1_DIALOGUE) == [("unknown", "fallback")] * 2
    assert speakers(out, CH2_DIALOGUE) == [("Mrs. Bennet", "llm")] * 3
    with ReplayServer([behaviour]) as again:  # the rejected chunk is asked again; the accepted one is on disk
        out, report = run(book, again, tmp_path)
    assert (report.ok, report.rejected, report.cached, report.requests) == (1, 1, 1, 1)
    assert speakers(out, CH2_DIALOGUE) == [("Mrs. Bennet", "llm")] * 3


def test_fenced_json_and_odd_emotions_are_accepted_within_the_fixed_set(book, tmp_path):
    label = lambda i: {"id": i, "speaker": " Mr.  Bennet ", "emotion": "Sarcastic", "intensity": 3}  # noqa: E731
    with ReplayServer(["fenced"], labeller=label) as server:
        out, report = run(book, server, tmp_path)
    assert report.ok == 2
    seg = next(s for s in out.segments if s.id == "c02-p0004-s03")
    assert (seg.speaker, seg.emotion, seg.intensity) == ("Mr. Bennet", "neutral", 1.0)


def test_an_alias_is_mapped_to_the_known_name(book, tmp_path):
    label = lambda i: {"id": i, "speaker": "his lady", "emotion": "angry", "intensity": 0.4}  # noqa: E731
    with ReplayServer(labeller=label, characters=[]) as server:
        out, _ = attribute_with_llm(book, LlmConfig(server.base_url, "replay-7b"), cache_dir=tmp_path,
                                    fallback=unknown_fallback, backoff_base_s=FAST_BACKOFF_S,
                                    characters=[{"name": "Mrs. Bennet", "aliases": ["his lady"]}])
    assert speakers(out, CH1_DIALOGUE) == [("Mrs. Bennet", "llm")] * 2


@pytest.mark.parametrize("first", ["429", "500"])
def test_rate_limit_and_server_errors_are_retried(book, tmp_path, first):
    with ReplayServer([first, first]) as server:
        out, report = run(book, server, tmp_path)
    assert server.behaviours() == [first, first, "ok", "ok"]
    assert (report.ok, report.failed, report.requests) == (2, 0, 4)
    assert speakers(out, CH1_DIALOGUE) == [("Mrs. Bennet", "llm")] * 2


def test_a_timeout_is_retried_then_the_chunk_falls_back(book, tmp_path):
    with ReplayServer(["hang", "hang"], hang_s=1.0) as server:
        out, report = run(book, server, tmp_path, timeout_s=0.3, max_retries=1)
    assert server.behaviours() == ["hang", "hang", "ok"]
    assert (report.ok, report.failed, report.requests) == (1, 1, 3)
    assert report.reasons == ("c01#1: failed: APITimeoutError",)
    assert speakers(out, CH1_DIALOGUE) == [("unknown", "fallback")] * 2
    assert speakers(out, CH2_DIALOGUE) == [("Mrs. Bennet", "llm")] * 3


def test_other_client_errors_are_not_retried(book, tmp_path):
    with ReplayServer(["400"]) as server:
        _, report = run(book, server, tmp_path, json_mode="object")
    assert server.behaviours() == ["400", "ok"]
    assert (report.failed, report.ok, report.reasons) == (1, 1, ("c01#1: failed: HTTP 400",))


def test_a_second_run_is_answered_from_the_cache(book, tmp_path):
    with ReplayServer() as server:
        first, _ = run(book, server, tmp_path, max_concurrency=4)
    stored = sorted(tmp_path.rglob("*.json"))
    assert len(stored) == 2 and all(json.loads(p.read_text())["model"] == "replay-7b" for p in stored)
    with ReplayServer() as server:
        second, report = run(book, server, tmp_path, max_concurrency=4)
    assert server.log == [] and (report.ok, report.cached, report.requests) == (2, 2, 0)
    assert second == first
    with ReplayServer() as server:
        _, report = attribute_with_llm(book, LlmConfig(server.base_url, "another-model"), cache_dir=tmp_path,
                                       fallback=unknown_fallback)
    assert report.requests == 2 and report.cached == 0


def test_json_object_only_servers_work_and_stay_cached(book, tmp_path):
    with ReplayServer(schema_supported=False) as server:
        out, report = run(book, server, tmp_path)
    assert server.behaviours() == ["400", "ok", "ok"]
    assert [e["body"]["response_format"]["type"] for e in server.log] == ["json_schema", "json_object", "json_object"]
    assert (report.ok, report.requests) == (2, 3)
    assert speakers(out, CH2_DIALOGUE) == [("Mrs. Bennet", "llm")] * 3
    with ReplayServer(schema_supported=False) as server:
        _, report = run(book, server, tmp_path)
    assert server.log == [] and report.cached == 2
    with ReplayServer(schema_supported=False) as server:
        _, report = run(book, server, tmp_path / "object", json_mode="object")
    assert server.behaviours() == ["ok", "ok"] and report.ok == 2


def test_long_chapters_are_split_with_context_and_concurrency_is_bounded(long_book, tmp_path):
    chunks = split_chapters(long_book, 20)
    assert all(len(c.segments) <= 20 for c in chunks)
    assert [s.id for c in chunks for s in c.segments] == [s.id for s in long_book.segments]
    assert chunks[1].context == chunks[0].segments[-6:] and chunks[0].context == ()
    wanted = [c for c in chunks if c.dialogue_ids]
    cfg_args = dict(max_concurrency=3)
    with ReplayServer(delay_s=0.1) as server:
        out, report = attribute_with_llm(
            long_book, LlmConfig(server.base_url, "replay-7b", **cfg_args), cache_dir=tmp_path,
            fallback=unknown_fallback, backoff_base_s=FAST_BACKOFF_S, chunk_segments=20)
    assert report.chunks == len(wanted) > 6 and report.ok == len(wanted)
    assert server.max_in_flight == 3
    dialogue = [s for s in out.segments if s.kind == "dialogue"]
    assert len(dialogue) > 80 and all(s.speaker == "Mrs. Bennet" for s in dialogue)


def test_config_from_environment_and_project_config(monkeypatch):
    for name in ("OPENAI_BASE_URL", "OPENAI_MODEL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert LlmConfig.from_env() is None and LlmConfig.from_env({"llm": {"model": "m"}}) is None
    project = {"llm": {"base_url": "http://127.0.0.1:8080/v1", "model": "qwen", "json_mode": "object"}}
    assert LlmConfig.from_env(project) == LlmConfig("http://127.0.0.1:8080/v1", "qwen", json_mode="object")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.2:8081/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    cfg = LlmConfig.from_env(project)
    assert (cfg.base_url, cfg.model, cfg.api_key) == ("http://127.0.0.2:8081/v1", "qwen", "sk-test")
    with pytest.raises(UserError, match="OPENAI_MODEL"):
        LlmConfig.from_env()
    with pytest.raises(UserError, match="json_mode"):
        LlmConfig.from_env({"llm": {**project["llm"], "json_mode": "yaml"}})


@pytest.mark.llm
def test_a_real_endpoint_labels_the_opening_of_pride_and_prejudice(book, tmp_path):
    if not os.environ.get("OPENAI_BASE_URL"):
        pytest.skip("set OPENAI_BASE_URL (and OPENAI_MODEL) to run against a real endpoint")
    out, report = attribute_with_llm(book, LlmConfig.from_env(), cache_dir=tmp_path, fallback=unknown_fallback)
    assert report.ok + report.rejected + report.failed == report.chunks == 2 and report.ok >= 1
    assert [s.text for s in out.segments] == [s.text for s in book.segments]
    labelled = [s.speaker for s in out.segments if s.rule == "llm"]
    assert labelled and any("bennet" in s.casefold() or "mother" in s.casefold() for s in labelled)
