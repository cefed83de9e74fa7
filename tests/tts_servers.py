"""Local stand-ins for the TTS servers the HTTP engines talk to: real HTTP on 127.0.0.1, real speech back.

Each server checks a request the way its upstream does (required fields, the uploaded clip, the reference
length, languages) and refuses a malformed one with the upstream's status and error body. Audio is the
text spoken by the bundled Piper voice, resampled to the protocol's rate, so durations are real. A test
can make a server slow (`delay_s`) or fail the next requests (`fail(status, times)`), and read what it
was sent in `requests`.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import struct
import threading
import urllib.parse
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from stages.engines import get_engine
from stages.engines.http_common import decode_wav, to_rate
from stages.model import Voice

SPEAKER = Voice("fake-server", "Piper as a stand-in", params={"model": "bundled:en_US-joe-medium"})
GPT_SOVITS_LANGUAGES = ("auto", "auto_yue", "en", "zh", "ja", "yue", "ko", "all_zh", "all_ja", "all_yue", "all_ko")
GPT_SOVITS_SPLITS = ("cut0", "cut1", "cut2", "cut3", "cut4", "cut5")
COSYVOICE_SPEAKERS = ("中文女", "中文男", "英文女", "英文男")
OPENAI_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
FISH_FORMATS = ("wav", "pcm", "mp3", "opus")
POLL_INTERVAL_S = 0.05  # how soon a stopped server notices
PROTOCOL_RATES_HZ = {"gpt-sovits": 32000, "cosyvoice": 24000, "fish-speech": 44100, "openai-speech": 24000}


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    stream: bool = False  # headers first, then the body after the delay, with no length (CosyVoice's StreamingResponse)


@dataclass
class Seen:
    method: str
    path: str
    fields: dict  # the parsed body or query: JSON, msgpack or form fields (files as bytes)
    headers: dict[str, str]


@lru_cache(maxsize=64)
def speech(text: str, rate: int) -> np.ndarray:
    """Return `text` spoken by the bundled Piper voice at `rate` Hz (read-only; Piper is deterministic, so cached)."""
    engine = get_engine("piper")
    audio = to_rate(engine.synthesize(text, SPEAKER), engine.sample_rate, rate)
    audio.flags.writeable = False
    return audio


def wav_bytes(audio: np.ndarray, rate: int, *, open_ended: bool = False) -> bytes:
    """Return 16-bit mono WAV bytes; `open_ended` writes 0xFFFFFFFF sizes, as a streaming encoder does."""
    pcm = pcm16(audio)
    size = 0xFFFFFFFF if open_ended else len(pcm)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    riff = 0xFFFFFFFF if open_ended else 36 + len(pcm)
    head = b"RIFF" + struct.pack("<I", riff) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
    return head + b"data" + struct.pack("<I", size) + pcm


def pcm16(audio: np.ndarray) -> bytes:
    return np.clip(np.round(audio * 32768.0), -32768, 32767).astype("<i2").tobytes()


def _json(status: int, data) -> Answer:
    return Answer(status, json.dumps(data, ensure_ascii=False).encode("utf-8"))


def _missing(*names: str) -> Answer:
    """FastAPI's 422 for absent form or body fields."""
    return _json(422, {"detail": [{"type": "missing", "loc": ["body", n], "msg": "Field required"} for n in names]})


class FakeServer:
    """One fake TTS server of `protocol` ("gpt-sovits", "cosyvoice", "fish-speech", "openai-speech")."""

    def __init__(self, protocol: str, *, sample_rate: int | None = None, api_key: str = "") -> None:
        self.protocol = protocol
        self.sample_rate = sample_rate or PROTOCOL_RATES_HZ[protocol]
        self.api_key = api_key
        self.requests: list[Seen] = []
        self.delay_s = 0.0
        self.weights: dict[str, str] = {}
        self._faults: list[tuple[int, bytes, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(POLL_INTERVAL_S,), name=f"fake-{protocol}", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def fail(self, status: int, times: int = 1, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        """Answer the next `times` requests with `status` (a 429 says Retry-After: 0 unless told otherwise)."""
        if status == 429 and headers is None:
            headers = {"Retry-After": "0"}
        body = body or json.dumps({"detail": f"fault injected by the test ({status})"}).encode()
        with self._lock:
            self._faults.extend([(status, body, headers or {})] * times)

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self.requests.clear()
        self.delay_s = 0.0

    def answer(self, method: str, path: str, query: dict, headers: dict[str, str], body: bytes) -> Answer:
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            self.requests.append(Seen(method, path, {}, headers))
            return Answer(fault[0], fault[1], headers=fault[2])
        return HANDLERS[self.protocol](self, method, path, query, headers, body)

    def wait(self) -> None:
        """Sleep `delay_s`, waking early when the server stops."""
        if self.delay_s:
            self._stopping.wait(self.delay_s)


def _handler_for(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parts.query))
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            answer = server.answer(self.command, parts.path, query, headers, body)
            try:
                self._reply(answer)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                pass

        def _reply(self, answer: Answer) -> None:
            if not answer.stream:
                server.wait()
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if not answer.stream:
                self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if answer.stream:
                self.wfile.flush()
                server.wait()
            self.wfile.write(answer.body)

        def log_message(self, *args) -> None:  # keep test output clean
            pass

    return Handler


def _gpt_sovits(server: FakeServer, method: str, path: str, query: dict, headers: dict, body: bytes) -> Answer:
    """api_v2.py: /tts (GET query or POST JSON), /set_gpt_weights, /set_sovits_weights."""
    if path in ("/set_gpt_weights", "/set_sovits_weights"):
        server.requests.append(Seen(method, path, query, headers))
        if not query.get("weights_path"):
            return _json(400, {"message": f"{path[5:].replace('_weights', '')} weight path is required"})
        server.weights[path.removeprefix("/set_")] = query["weights_path"]
        return _json(200, {"message": "success"})
    if path != "/tts":
        return _json(404, {"detail": "Not Found"})
    try:
        req = query if method == "GET" else json.loads(body or b"{}")
    except ValueError:
        return _json(422, {"detail": [{"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error"}]})
    server.requests.append(Seen(method, path, req, headers))
    for name in ("ref_audio_path", "text"):
        if not req.get(name):
            return _json(400, {"message": f"{name} is required"})
    for name in ("text_lang", "prompt_lang"):
        if not req.get(name):
            return _json(400, {"message": f"{name} is required"})
        if str(req[name]).lower() not in GPT_SOVITS_LANGUAGES:
            return _json(400, {"message": f"{name}: {req[name]} is not supported in version v2"})
    if req.get("media_type", "wav") not in ("wav", "raw", "ogg", "aac"):
        return _json(400, {"message": f"media_type: {req['media_type']} is not supported"})
    if req.get("text_split_method", "cut5") not in GPT_SOVITS_SPLITS:
        return _json(400, {"message": f"text_split_method:{req['text_split_method']} is not supported"})
    try:
        clip, rate = decode_wav(Path(req["ref_audio_path"]).read_bytes(), "reference")
    except Exception as e:  # the server fails the request, naming the exception
        return _json(400, {"message": "tts failed", "Exception": str(e)})
    if not 3.0 <= clip.size / rate <= 10.0:
        reason = "Reference audio is outside the 3-10 second range, please choose another one!"
        return _json(400, {"message": "tts failed", "Exception": reason})
    audio = speech(req["text"], server.sample_rate)
    return Answer(200, wav_bytes(audio, server.sample_rate), "audio/wav")


def _cosyvoice(server: FakeServer, method: str, path: str, query: dict, headers: dict, body: bytes) -> Answer:
    """runtime/python/fastapi/server.py: form fields in, headerless int16 PCM streamed out."""
    needs = {
        "/inference_zero_shot": ("tts_text", "prompt_text", "prompt_wav"),
        "/inference_instruct2": ("tts_text", "instruct_text", "prompt_wav"),
        "/inference_sft": ("tts_text", "spk_id"),
        "/inference_instruct": ("tts_text", "spk_id", "instruct_text"),
        "/inference_cross_lingual": ("tts_text", "prompt_wav"),
    }
    if path not in needs:
        return _json(404, {"detail": "Not Found"})
    form = _form(headers.get("content-type", ""), body)
    server.requests.append(Seen(method, path, form, headers))
    if missing := [n for n in needs[path] if n not in form]:
        return _missing(*missing)
    if "prompt_wav" in form:
        try:
            decode_wav(form["prompt_wav"], "prompt_wav")
        except Exception:  # load_wav raises inside the endpoint: FastAPI's bare 500
            return Answer(500, b"Internal Server Error", "text/plain; charset=utf-8")
    if "spk_id" in form and form["spk_id"] not in COSYVOICE_SPEAKERS:
        return Answer(500, b"Internal Server Error", "text/plain; charset=utf-8")
    audio = speech(form["tts_text"], server.sample_rate)
    return Answer(200, pcm16(audio), "application/octet-stream", stream=True)


def _form(content_type: str, body: bytes) -> dict:
    """Return the fields of a multipart/form-data body (files as bytes, text as str)."""
    if not content_type.startswith("multipart/form-data"):
        return dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        fields[name] = data if part.get_filename() else data.decode("utf-8")
    return fields


def _fish(server: FakeServer, method: str, path: str, query: dict, headers: dict, body: bytes) -> Answer:
    """tools/server/views.py: /v1/health, and /v1/tts taking a ServeTTSRequest as msgpack or JSON."""
    if path == "/v1/health":
        return _json(200, {"status": "ok"})
    if path != "/v1/tts":
        return _json(404, {"statusCode": 404, "message": "Not Found", "error": "Not Found"})
    if server.api_key and headers.get("authorization") != f"Bearer {server.api_key}":
        return _json(401, {"statusCode": 401, "message": "Invalid API key", "error": "Unauthorized"})
    kind = headers.get("content-type", "").split(";")[0]
    if kind == "application/msgpack":
        import msgpack

        req = msgpack.unpackb(body, raw=False)
    elif kind == "application/json":
        req = json.loads(body)
    else:
        return Answer(415, b"", headers={"Accept": "application/msgpack, application/json, multipart/form-data"})
    server.requests.append(Seen(method, path, req, headers))
    errors = _fish_errors(req)
    if errors:
        return _json(422, {"detail": errors})
    audio = speech(req["text"], server.sample_rate)
    return Answer(200, wav_bytes(audio, server.sample_rate), "audio/wav")


def _fish_errors(req: dict) -> list[dict]:
    """Return pydantic-style errors for a ServeTTSRequest that fails validation."""
    errors = []
    if not isinstance(req.get("text"), str):
        errors.append({"type": "missing", "loc": ["text"], "msg": "Field required"})
    if req.get("format", "wav") not in FISH_FORMATS:
        errors.append({"type": "literal_error", "loc": ["format"], "msg": f"Input should be {FISH_FORMATS}"})
    for i, ref in enumerate(req.get("references") or []):
        if not isinstance(ref, dict) or not isinstance(ref.get("audio"), bytes) or not isinstance(ref.get("text"), str):
            errors.append({"type": "missing", "loc": ["references", i], "msg": "audio (bytes) and text are required"})
        else:
            try:
                decode_wav(ref["audio"], "reference")
            except Exception:
                errors.append({"type": "value_error", "loc": ["references", i, "audio"], "msg": "not audio"})
    if not req.get("references") and not req.get("reference_id"):
        errors.append({"type": "value_error", "loc": ["references"], "msg": "this stand-in needs a reference"})
    return errors


def _openai(server: FakeServer, method: str, path: str, query: dict, headers: dict, body: bytes) -> Answer:
    """The OpenAI API's POST /v1/audio/speech."""
    def refuse(message: str, param: str | None = None, status: int = 400) -> Answer:
        error = {"message": message, "type": "invalid_request_error", "param": param, "code": None}
        return _json(status, {"error": error})

    if path != "/v1/audio/speech":
        return refuse(f"Invalid URL (POST {path})", status=404)
    if not headers.get("authorization", "").startswith("Bearer "):
        return refuse("You didn't provide an API key.", status=401)
    try:
        req = json.loads(body)
    except ValueError:
        return refuse("We could not parse the JSON body of your request.")
    server.requests.append(Seen(method, path, req, headers))
    for name in ("model", "input", "voice"):
        if not req.get(name):
            return refuse(f"Missing required parameter: '{name}'.", name)
    if len(req["input"]) > 4096:
        return refuse("string too long. Expected a string with maximum length 4096", "input")
    fmt = req.get("response_format", "mp3")
    if fmt not in OPENAI_FORMATS:
        return refuse(f"Invalid value: '{fmt}'. Supported values are: {', '.join(OPENAI_FORMATS)}.", "response_format")
    if fmt not in ("wav", "pcm"):
        return refuse(f"this stand-in encodes only wav and pcm, not {fmt}", "response_format")
    if not 0.25 <= float(req.get("speed", 1.0)) <= 4.0:
        return refuse("Invalid 'speed': must be between 0.25 and 4.0.", "speed")
    if req.get("instructions") and req["model"] in ("tts-1", "tts-1-hd"):
        return refuse(f"instructions are not supported with {req['model']}.", "instructions")
    audio = speech(req["input"], server.sample_rate)
    if fmt == "pcm":
        return Answer(200, pcm16(audio), "audio/pcm")
    return Answer(200, wav_bytes(audio, server.sample_rate, open_ended=True), "audio/wav")


HANDLERS = {"gpt-sovits": _gpt_sovits, "cosyvoice": _cosyvoice, "fish-speech": _fish, "openai-speech": _openai}

