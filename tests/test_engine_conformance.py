"""One conformance suite for every TTS engine: the bundled Piper in-process, and each HTTP adapter against
a local server that speaks its upstream's protocol and answers with real speech (tests/tts_servers.py)."""

from __future__ import annotations

import importlib
import json
import socket
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from stages import files, wav
from stages.cache import TakeCache
from stages.cast import Casting
from stages.delivery import DeliveryConfig
from stages.engines import ENGINES, get_engine, speaks
from stages.errors import StageError, UserError
from stages.model import NARRATOR, Chapter, Paragraph, Segment, Voice
from stages.render import render_chapter
from tests.tts_servers import FakeServer, speech

ALL = ("piper", "piper-torch", "gpt-sovits", "cosyvoice", "fish-speech", "openai-speech")
LOCAL = ("piper", "piper-torch")
HTTP = ALL[2:]
DECLARED_RATES_HZ = {
    "piper": 22050, "piper-torch": 22050, "gpt-sovits": 32000, "cosyvoice": 24000, "fish-speech": 44100, "openai-speech": 24000,
}
LABELS = {
    "piper": "Piper", "piper-torch": "Piper in torch", "gpt-sovits": "GPT-SoVITS", "cosyvoice": "CosyVoice", "fish-speech": "Fish-Speech",
    "openai-speech": "OpenAI speech",
}
REFERENCE_ENGINES = ("gpt-sovits", "cosyvoice", "fish-speech")
SENTENCE = "Elizabeth walked on alone, crossing field after field at a quick pace."
# two reference clips of 3-10 s, spoken by the bundled voice
REFERENCE_LINES = (
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, "
    "must be in want of a wife.",
    "Mr. Bingley was good looking and gentlemanlike; he had a pleasant countenance, and easy, unaffected manners.",
)
SECONDS_PER_CHAR = (0.03, 0.2)
RETRIES = 2


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two real reference clips (WAV, 22050 Hz) of different speech."""
    folder = tmp_path_factory.mktemp("references")
    return [wav.write_wav(folder / f"ref{i}.wav", speech(line, 22050), 22050) for i, line in enumerate(REFERENCE_LINES)]


@pytest.fixture(scope="module")
def servers():
    started = {name: FakeServer(name).__enter__() for name in HTTP}
    yield started
    for server in started.values():
        server.__exit__(None, None, None)


@pytest.fixture(autouse=True)
def clean_servers(servers):
    for server in servers.values():
        server.reset()
    yield
    for server in servers.values():
        server.reset()


def make_voice(name: str, servers, clip, **extra) -> Voice:
    """Return a voice of engine `name` that speaks through its fake server with reference `clip`."""
    url = servers[name].url if name in servers else ""
    ref = {"reference_audio": str(clip), "reference_text": REFERENCE_LINES[0]}
    params = {
        "piper": {"model": "bundled:en_US-joe-medium"},
        "piper-torch": {"model": "bundled:en_US-joe-medium"},
        "gpt-sovits": {"base_url": url, "reference_audio": clip.name, "reference_dir": str(clip.parent),
                       "reference_text": REFERENCE_LINES[0]},
        "cosyvoice": {"base_url": url, "sample_rate": 24000, **ref},
        "fish-speech": {"base_url": url, **ref},
        "openai-speech": {"base_url": url + "/v1", "model": "gpt-4o-mini-tts", "voice": "alloy"},
    }[name]
    return Voice(f"test-{name}", name, engine=name, language="en-US", params={**params, **extra})


def fresh(name: str):
    """Return a new instance of engine `name` (HTTP ones with short backoff so failure tests stay quick)."""
    module, _, cls = ENGINES[name].partition(":")
    klass = getattr(importlib.import_module(module), cls)
    return klass() if name in LOCAL else klass(retries=RETRIES, backoff_s=0.01)


def engine_for(name: str):
    return get_engine(name) if name in LOCAL else fresh(name)


def piper_seconds(text: str) -> float:
    return speech(text, 22050).size / 22050


@pytest.mark.parametrize("name", ALL)
def test_speaks_mono_float32_at_the_declared_rate(name, servers, clips):
    engine = engine_for(name)
    audio = engine.synthesize(SENTENCE, make_voice(name, servers, clips[0]))
    assert engine.sample_rate == DECLARED_RATES_HZ[name]
    assert audio.dtype == np.float32 and audio.ndim == 1
    seconds = audio.size / engine.sample_rate
    assert SECONDS_PER_CHAR[0] < seconds / len(SENTENCE) < SECONDS_PER_CHAR[1]
    # the stand-ins speak with Piper, so a wrong rate anywhere on the way would show as a wrong length
    assert seconds == pytest.approx(piper_seconds(SENTENCE), rel=0.01)
    assert 0.05 < float(np.abs(audio).max()) <= 1.0
    assert speaks(engine, "en-GB")


@pytest.mark.parametrize("name", ALL)
def test_cache_keys_are_stable_and_follow_what_changes_the_audio(name, servers, clips, tmp_path):
    clip = files.write_bytes(tmp_path / "voice" / "reference.wav", clips[0].read_bytes())
    voice = make_voice(name, servers, clip)
    cache = TakeCache(tmp_path / "cache")
    engine = engine_for(name)
    key = cache.key(SENTENCE, voice, engine)
    assert key == cache.key(SENTENCE, voice, engine) == cache.key(SENTENCE, voice, fresh(name))
    if name in REFERENCE_ENGINES:  # the same card, the clip's bytes replaced: every take must be re-made
        files.write_bytes(clip, clips[1].read_bytes())
        assert cache.key(SENTENCE, voice, fresh(name)) != key
    else:
        other = {"piper": {"length_scale": 1.1}, "piper-torch": {"length_scale": 1.1}, "openai-speech": {"voice": "nova"}}[name]
        assert cache.key(SENTENCE, make_voice(name, servers, clip, **other), engine) != key
    assert not any(s.requests for s in servers.values())  # keys never ask a server


@pytest.mark.parametrize("name", ALL)
def test_empty_text_is_refused_before_any_request(name, servers, clips):
    engine = fresh(name)
    for text in ("", "  \n\t"):
        with pytest.raises(UserError, match=f"{LABELS[name]} was asked to speak empty text"):
            engine.synthesize(text, make_voice(name, servers, clips[0]))
    assert not any(s.requests for s in servers.values())


@pytest.mark.parametrize("name", HTTP)
def test_a_timeout_names_the_engine_and_the_limit(name, servers, clips):
    servers[name].delay_s = 5.0
    started = time.monotonic()
    expected = rf"{LABELS[name]} at http://127\.0\.0\.1:\d+/\S+ did not answer within 0\.4 s"
    with pytest.raises(StageError, match=expected):
        fresh(name).synthesize(SENTENCE, make_voice(name, servers, clips[0], timeout_s=0.4))
    assert time.monotonic() - started < 2.5  # not retried
    assert len(servers[name].requests) == 1


@pytest.mark.parametrize("name", HTTP)
def test_a_server_error_surfaces_after_bounded_retries(name, servers, clips):
    servers[name].fail(500, times=10)
    expected = rf"{LABELS[name]} at http://\S+ answered 500 \(after 3 tries\): .*see its log"
    with pytest.raises(StageError, match=expected):
        fresh(name).synthesize(SENTENCE, make_voice(name, servers, clips[0]))
    assert len(servers[name].requests) == RETRIES + 1


@pytest.mark.parametrize("name", HTTP)
def test_a_rate_limited_request_is_retried_and_succeeds(name, servers, clips):
    servers[name].fail(429, times=1)
    audio = fresh(name).synthesize(SENTENCE, make_voice(name, servers, clips[0]))
    assert audio.size / DECLARED_RATES_HZ[name] == pytest.approx(piper_seconds(SENTENCE), rel=0.01)
    assert len(servers[name].requests) == 2


@pytest.mark.parametrize("name", HTTP)
def test_an_unreachable_server_is_named_with_how_to_fix(name, servers, clips):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}" + ("/v1" if name == "openai-speech" else "")
    expected = rf"cannot reach {LABELS[name]} at http://127\.0\.0\.1:{port}/\S+ .*after 3 tries.*base_url"
    with pytest.raises(StageError, match=expected):
        fresh(name).synthesize(SENTENCE, make_voice(name, servers, clips[0], base_url=url))


# each upstream's own error body, and the words of it a user must see
REFUSALS = {
    "gpt-sovits": (400, {"message": "tts failed", "Exception": "bad reference"}, "tts failed: bad reference"),
    "cosyvoice": (422, {"detail": [{"loc": ["body", "prompt_text"], "msg": "Field required"}]},
                  "body.prompt_text: Field required"),
    "fish-speech": (400, {"statusCode": 400, "message": "Text is too long, max length is 10", "error": "Bad Request"},
                    "Text is too long, max length is 10"),
    "openai-speech": (400, {"error": {"message": "Invalid 'speed'.", "type": "invalid_request_error"}},
                      "Invalid 'speed'."),
}


@pytest.mark.parametrize("name", HTTP)
def test_a_refusal_carries_the_servers_own_message(name, servers, clips):
    status, body, words = REFUSALS[name]
    servers[name].fail(status, body=json.dumps(body).encode())
    with pytest.raises(StageError) as caught:
        fresh(name).synthesize(SENTENCE, make_voice(name, servers, clips[0]))
    message = str(caught.value)
    assert f"answered {status}: {words}; check " in message and "(after" not in message
    assert len(servers[name].requests) == 1  # a client error is not retried


def _post(url: str, body: bytes, content_type: str, **headers) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type, **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_the_stand_in_servers_refuse_malformed_requests(servers):
    import msgpack

    gpt = _post(servers["gpt-sovits"].url + "/tts", b'{"text": "hi", "text_lang": "en"}', "application/json")
    assert gpt == (400, '{"message": "ref_audio_path is required"}')
    form = b"tts_text=hi&prompt_text=hello"
    cosy = _post(servers["cosyvoice"].url + "/inference_zero_shot", form, "application/x-www-form-urlencoded")
    assert cosy[0] == 422 and json.loads(cosy[1])["detail"][0]["loc"] == ["body", "prompt_wav"]
    fish = _post(servers["fish-speech"].url + "/v1/tts", msgpack.packb({"format": "wav"}), "application/msgpack")
    assert fish[0] == 422 and json.loads(fish[1])["detail"][0]["loc"] == ["text"]
    no_voice = b'{"model": "tts-1", "input": "hi"}'
    oai = _post(servers["openai-speech"].url + "/v1/audio/speech", no_voice, "application/json",
                Authorization="Bearer x")
    assert oai[0] == 400 and json.loads(oai[1])["error"]["param"] == "voice"


def test_gpt_sovits_request_follows_api_v2(servers, clips):
    engine = fresh("gpt-sovits")
    voice = make_voice("gpt-sovits", servers, clips[0], length_ratio=1.25, seed=7, gpt_weights="GPT_weights/x.ckpt",
                       sovits_weights="SoVITS_weights/x.pth")
    engine.synthesize(SENTENCE, voice)
    engine.synthesize("A second line.", voice)
    seen = servers["gpt-sovits"].requests
    assert [s.path for s in seen] == ["/set_gpt_weights", "/set_sovits_weights", "/tts", "/tts"]  # weights set once
    assert servers["gpt-sovits"].weights == {
        "gpt_weights": "GPT_weights/x.ckpt", "sovits_weights": "SoVITS_weights/x.pth",
    }
    assert seen[2].method == "POST" and seen[2].fields == {
        "text": SENTENCE, "text_lang": "en", "ref_audio_path": str(clips[0].resolve()),
        "prompt_text": REFERENCE_LINES[0], "prompt_lang": "en", "text_split_method": "cut5", "batch_size": 1,
        "speed_factor": 0.8, "media_type": "wav",
        "streaming_mode": False, "seed": 7,
    }


def test_gpt_sovits_refusals_name_the_fix(servers, clips, tmp_path):
    expected = r"answered 400: text_lang: fr is not supported in version v2; check text_lang"
    with pytest.raises(StageError, match=expected):
        fresh("gpt-sovits").synthesize("Bonjour.", make_voice("gpt-sovits", servers, clips[0], text_lang="fr"))
    short = wav.write_wav(tmp_path / "short.wav", speech("Yes.", 22050), 22050)
    with pytest.raises(UserError, match=r"reference clip .*short\.wav is 0\.\d s; GPT-SoVITS needs 3-10 s"):
        fresh("gpt-sovits").synthesize(SENTENCE, make_voice("gpt-sovits", servers, short))
    with pytest.raises(UserError, match=r"relative reference_audio 'ref0\.wav' but no reference_dir"):
        fresh("gpt-sovits").synthesize(SENTENCE, make_voice("gpt-sovits", servers, clips[0], reference_dir=""))
    assert len(servers["gpt-sovits"].requests) == 1


def test_cosyvoice_uses_zero_shot_instruct2_and_sft_as_its_server_defines(servers, clips):
    engine = fresh("cosyvoice")
    engine.synthesize(SENTENCE, make_voice("cosyvoice", servers, clips[0]))
    engine.synthesize(SENTENCE, make_voice("cosyvoice", servers, clips[0], instruct="Speak sadly."))
    engine.synthesize(SENTENCE, make_voice("cosyvoice", servers, clips[0], reference_audio="", spk_id="英文女"))
    zero, instruct, sft = servers["cosyvoice"].requests
    assert zero.path == "/inference_zero_shot" and zero.fields == {
        "tts_text": SENTENCE, "prompt_text": REFERENCE_LINES[0], "prompt_wav": clips[0].read_bytes()}
    assert instruct.path == "/inference_instruct2" and instruct.fields == {
        "tts_text": SENTENCE, "instruct_text": "Speak sadly.<|endofprompt|>", "prompt_wav": clips[0].read_bytes()}
    assert sft.path == "/inference_sft" and sft.fields == {"tts_text": SENTENCE, "spk_id": "英文女"}
    with pytest.raises(UserError, match=r"has no sample_rate .*24000 \(CosyVoice2, CosyVoice3\) or 22050"):
        engine.synthesize(SENTENCE, make_voice("cosyvoice", servers, clips[0], sample_rate=None))


def test_cosyvoice_300m_pcm_at_22050_is_resampled_to_the_declared_rate(clips):
    with FakeServer("cosyvoice", sample_rate=22050) as server:
        voice = make_voice("cosyvoice", {"cosyvoice": server}, clips[0], sample_rate=22050)
        audio = fresh("cosyvoice").synthesize(SENTENCE, voice)
    assert audio.size / 24000 == pytest.approx(piper_seconds(SENTENCE), rel=0.01)


def test_fish_speech_sends_msgpack_references_and_the_api_key(clips, monkeypatch):
    monkeypatch.setenv("FISH_TEST_KEY", "s3cret")
    with FakeServer("fish-speech", api_key="s3cret") as server:
        engine = fresh("fish-speech")
        keyed = make_voice("fish-speech", {"fish-speech": server}, clips[0], api_key_env="FISH_TEST_KEY", seed=3)
        engine.synthesize(SENTENCE, keyed)
        with pytest.raises(StageError, match=r"answered 401: Invalid API key.*api_key_env"):
            engine.synthesize(SENTENCE, make_voice("fish-speech", {"fish-speech": server}, clips[0]))
        seen = server.requests[0]
    assert seen.headers["content-type"] == "application/msgpack"
    assert seen.fields["references"] == [{"audio": clips[0].read_bytes(), "text": REFERENCE_LINES[0]}]
    assert {k: seen.fields[k] for k in ("text", "format", "reference_id", "streaming", "seed")} == {
        "text": SENTENCE, "format": "wav", "reference_id": None, "streaming": False, "seed": 3}


def test_openai_speech_sends_instructions_only_where_the_model_takes_them(servers, clips):
    engine = fresh("openai-speech")
    sad = make_voice("openai-speech", servers, clips[0], instruct="Speak sadly.", length_ratio=0.8)
    engine.synthesize(SENTENCE, sad)
    engine.synthesize(SENTENCE, make_voice("openai-speech", servers, clips[0], model="tts-1", instruct="Speak sadly."))
    pcm = engine.synthesize(SENTENCE, make_voice("openai-speech", servers, clips[0], response_format="pcm"))
    mini, tts1, raw = (s.fields for s in servers["openai-speech"].requests)
    assert mini == {"model": "gpt-4o-mini-tts", "voice": "alloy", "input": SENTENCE, "response_format": "wav",
                    "speed": 1.25, "instructions": "Speak sadly."}
    assert "instructions" not in tts1 and raw["response_format"] == "pcm"
    assert pcm.size / 24000 == pytest.approx(piper_seconds(SENTENCE), rel=0.01)


def test_render_chapter_speaks_through_an_http_voice_and_resumes_from_the_cache(servers, clips, tmp_path):
    narrator = make_voice("cosyvoice", servers, clips[0])
    lizzy = Voice("cosy-lizzy", "Lizzy", engine="cosyvoice", language="en-GB",
                  params={**narrator.params, "reference_audio": str(clips[1]), "reference_text": REFERENCE_LINES[1]})
    segments = (
        Segment("c01-p0001-s01", "She looked up.", "She looked up."),
        Segment("c01-p0001-s02", "“I am so sorry,”", "I am so sorry,", kind="dialogue", speaker="Elizabeth",
                emotion="sad", intensity=1.0),
        Segment("c01-p0001-s03", "said Elizabeth.", "said Elizabeth."),
    )
    chapter = Chapter(1, "Chapter 1", (Paragraph("c01-p0001", "text", segments),))
    library = {narrator.id: narrator, lizzy.id: lizzy}
    casting = Casting({NARRATOR: narrator.id, "Elizabeth": lizzy.id})
    cache = TakeCache(tmp_path / "cache")
    run = lambda: render_chapter(chapter, casting=casting, library=library, cache=cache, delivery=DeliveryConfig())
    takes, stats = run()
    assert (stats.synthesized, stats.cached) == (3, 0)
    for seg in segments:
        audio, rate = wav.read_wav(takes[seg.id].path)
        assert rate == takes[seg.id].sample_rate == 24000
        assert audio.size / rate == pytest.approx(piper_seconds(seg.spoken), rel=0.01, abs=0.002)
        # the delivery's gain_db (sad: -2 dB) is applied to the take; neutral lines keep the server's level
        level = float(np.sqrt(np.mean(audio**2)) / np.sqrt(np.mean(speech(seg.spoken, 24000) ** 2)))
        assert level == pytest.approx(10 ** (-2 / 20) if seg.emotion == "sad" else 1.0, rel=0.02)
    seen = {s.fields["tts_text"]: s for s in servers["cosyvoice"].requests}
    assert seen["I am so sorry,"].path == "/inference_instruct2"
    assert seen["I am so sorry,"].fields["instruct_text"] == "Speak sadly, slowly and softly.<|endofprompt|>"
    assert seen["I am so sorry,"].fields["prompt_wav"] == clips[1].read_bytes()
    assert seen["She looked up."].path == seen["said Elizabeth."].path == "/inference_zero_shot"
    again, stats = run()
    assert (stats.synthesized, stats.cached) == (0, 3) and again == takes
    assert len(servers["cosyvoice"].requests) == 3
