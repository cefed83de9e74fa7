"""What every TTS engine reached over HTTP shares: requests with a time limit and bounded retries, errors
that name the engine, the URL and the status, reference clips found and hashed, replies decoded to float32.

The Engine protocol gives an engine one `sample_rate`, and the renderer reads it right after `synthesize`
on any of its threads, so a server whose rate differs from voice to voice (CosyVoice-300M at 22050 Hz
beside CosyVoice2 at 24000 Hz) cannot report its own per voice. Each adapter therefore declares one rate and
resamples what its server sends to it with scipy.signal.resample_poly (mastering resamples every take
to 44.1 kHz afterwards anyway). Requests use the standard library's urllib, so nothing is added to install.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from http.client import HTTPException
from pathlib import Path
from typing import Any

import numpy as np

from stages import files
from stages.errors import StageError, UserError
from stages.model import Voice

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 120.0  # one request, connect to last byte; a long sentence on a busy GPU takes tens of seconds
RETRIES = 3  # further tries after a connection error, a 429 or a 5xx; a timeout is not retried
BACKOFF_S = 0.5  # wait before the first retry; doubles each time
BACKOFF_MAX_S = 8.0
RETRY_AFTER_MAX_S = 30.0  # a server's Retry-After is honoured up to this
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
ERROR_TEXT_CHARS = 300  # how much of an error body goes into a message
READ_CHUNK_BYTES = 1 << 16
USER_AGENT = "audiobook-tts-adapter"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
WAV_PCM, WAV_FLOAT, WAV_EXTENSIBLE = 1, 3, 0xFFFE


@dataclass(frozen=True)
class Reply:
    """A server's answer: status, body and headers (names lower-cased)."""

    status: int
    body: bytes
    headers: dict[str, str]


class Unreachable(Exception):
    """The connection failed or was dropped before a full answer came back (retried)."""


def http_request(
    url: str,
    *,
    timeout_s: float,
    method: str = "POST",
    body: bytes | None = None,
    content_type: str = "",
    headers: dict[str, str] | None = None,
) -> Reply:
    """Return the server's reply to one request; TimeoutError past `timeout_s`, Unreachable if the connection fails."""
    head = {"User-Agent": USER_AGENT, **({"Content-Type": content_type} if content_type else {}), **(headers or {})}
    request = urllib.request.Request(url, data=body, method=method, headers=head)
    deadline = time.monotonic() + timeout_s
    try:
        with _opener(url).open(request, timeout=timeout_s) as resp:
            return Reply(resp.status, _read_until(resp, deadline), _lower(resp.headers))
    except urllib.error.HTTPError as e:
        with e:
            return Reply(e.code, _read_until(e, deadline), _lower(e.headers))
    except urllib.error.URLError as e:
        if isinstance(e.reason, TimeoutError):
            raise TimeoutError(str(e.reason)) from e
        raise Unreachable(str(e.reason)) from e
    except TimeoutError:
        raise
    except (OSError, HTTPException) as e:  # reset, refused, a reply cut short
        raise Unreachable(f"{type(e).__name__}: {e}") from e


def _opener(url: str) -> urllib.request.OpenerDirector:
    """Return an opener that never sends a loopback request through a proxy from the environment."""
    if urllib.parse.urlsplit(url).hostname in LOOPBACK_HOSTS:
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()


def _read_until(resp, deadline: float) -> bytes:
    """Return the whole body of `resp`, raising TimeoutError once `deadline` passes (a server that trickles)."""
    chunks = []
    while chunk := resp.read(READ_CHUNK_BYTES):
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise TimeoutError("the answer was still arriving at the time limit")
    return b"".join(chunks)


def _lower(headers) -> dict[str, str]:
    return {k.lower(): v for k, v in (headers.items() if headers else ())}


def send(
    label: str,
    url: str,
    attempt: Callable[[], Reply],
    *,
    timeout_s: float,
    hint: str,
    retries: int = RETRIES,
    backoff_s: float = BACKOFF_S,
) -> Reply:
    """Return the 2xx reply `attempt()` gets, retrying connection errors, 429 and 5xx with backoff.

    `label` names the engine in errors ("GPT-SoVITS"), `hint` says how to fix a request the server refused.
    """
    for tries in range(1, retries + 2):
        wait = min(BACKOFF_MAX_S, backoff_s * 2 ** (tries - 1))
        try:
            reply = attempt()
        except TimeoutError as e:
            raise StageError(
                f"{label} at {url} did not answer within {timeout_s:g} s (the voice's timeout_s); "
                f"check that the server is not stuck or overloaded, or raise timeout_s in the voice card"
            ) from e
        except Unreachable as e:
            if tries > retries:
                raise StageError(
                    f"cannot reach {label} at {url} ({e}) after {tries} tries; start the server, "
                    f"or fix base_url in the voice card"
                ) from e
            log.warning("%s at %s unreachable (%s); retry %d of %d in %.2f s", label, url, e, tries, retries, wait)
        else:
            if 200 <= reply.status < 300:
                return reply
            if reply.status not in RETRY_STATUSES or tries > retries:
                raise StageError(_refusal(label, url, reply, tries, hint))
            wait = _retry_after_s(reply.headers, wait)
            log.warning("%s at %s answered %d; retry %d of %d in %.2f s", label, url, reply.status, tries, retries,
                        wait)
        time.sleep(wait)
    raise AssertionError("unreachable")  # the loop always returns or raises


def _refusal(label: str, url: str, reply: Reply, tries: int, hint: str) -> str:
    """Return the message for a reply that is final and not a success."""
    after = f" (after {tries} tries)" if tries > 1 else ""
    if reply.status in (401, 403):
        fix = "set the API key in the environment variable the voice's api_key_env names"
    elif reply.status == 429 or reply.status >= 500:
        fix = "the server failed or is overloaded: see its log, or try again later"
    else:
        fix = hint
    return f"{label} at {url} answered {reply.status}{after}: {error_text(reply.body)}; {fix}"


def _retry_after_s(headers: dict[str, str], default: float) -> float:
    """Return the wait a Retry-After header asks for (seconds, capped), or `default`."""
    try:
        return min(RETRY_AFTER_MAX_S, max(0.0, float(headers.get("retry-after", ""))))
    except ValueError:
        return default


def error_text(body: bytes) -> str:
    """Return the message in an error body: JSON as GPT-SoVITS, FastAPI, Fish-Speech or OpenAI write it, else text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:ERROR_TEXT_CHARS] or "(empty body)"
    if isinstance(data, dict):
        if isinstance(data.get("error"), dict):  # OpenAI: {"error": {"message": ...}}
            data = data["error"]
        detail = data.get("detail")
        if isinstance(detail, list):  # FastAPI validation: [{"loc": [...], "msg": ...}]
            return "; ".join(f"{'.'.join(map(str, d.get('loc', ())))}: {d.get('msg', '')}" for d in detail)[
                :ERROR_TEXT_CHARS
            ]
        parts = [str(data[k]) for k in ("message", "detail", "Exception") if data.get(k)]
        if parts:
            return ": ".join(parts)[:ERROR_TEXT_CHARS]
    return text[:ERROR_TEXT_CHARS]


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    """Return a multipart/form-data body of `fields` and `files` (name -> (filename, bytes)), and its content type."""
    boundary = "----audiobook" + os.urandom(12).hex()
    out = []
    for name, value in fields.items():
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.append(value.encode("utf-8") + b"\r\n")
    for name, (filename, data) in files.items():
        out.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode()
        )
        out.append(data + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def decode_wav(data: bytes, where: str) -> tuple[np.ndarray, int]:
    """Return (mono float32 samples, sample rate) of WAV bytes; a data size past the end (streamed) is clamped."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise StageError(f"{where} did not answer with a WAV file (it starts {data[:16]!r}); ask the server for wav")
    pos, fmt = 12, b""
    while pos + 8 <= len(data):
        cid, length = struct.unpack_from("<4sI", data, pos)
        start = pos + 8
        if cid == b"fmt ":
            fmt = data[start : start + length]
        elif cid == b"data" and len(fmt) >= 16:
            encoding, channels, rate = struct.unpack_from("<HHI", fmt)
            bits = struct.unpack_from("<H", fmt, 14)[0]
            if encoding == WAV_EXTENSIBLE and len(fmt) >= 26:
                encoding = struct.unpack_from("<H", fmt, 24)[0]
            raw = data[start : start + min(length, len(data) - start)]
            return _mono(_samples(raw, encoding, bits, where), channels), rate
        pos = start + length + (length & 1)
    raise StageError(f"{where} answered with a WAV file that has no fmt or data chunk; see the server's log")


def _samples(raw: bytes, encoding: int, bits: int, where: str) -> np.ndarray:
    width = bits // 8
    raw = raw[: len(raw) // max(1, width) * width]
    if encoding == WAV_PCM and bits == 16:
        return np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    if encoding == WAV_PCM and bits == 32:
        return (np.frombuffer(raw, "<i4") / 2.0**31).astype(np.float32)
    if encoding == WAV_PCM and bits == 24:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        return (np.where(v >= 1 << 23, v - (1 << 24), v) / 2.0**23).astype(np.float32)
    if encoding == WAV_PCM and bits == 8:
        return (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    if encoding == WAV_FLOAT and bits in (32, 64):
        return np.frombuffer(raw, f"<f{width}").astype(np.float32)
    raise StageError(f"{where} sent WAV audio in an unsupported encoding (format {encoding}, {bits} bit)")


def _mono(samples: np.ndarray, channels: int) -> np.ndarray:
    if channels <= 1:
        return samples
    usable = samples[: samples.size // channels * channels]
    return usable.reshape(-1, channels).mean(axis=1).astype(np.float32)


def decode_pcm16(data: bytes) -> np.ndarray:
    """Return headerless little-endian 16-bit mono PCM as float32 (a trailing odd byte is dropped)."""
    return np.frombuffer(data[: len(data) // 2 * 2], "<i2").astype(np.float32) / 32768.0


def to_rate(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Return `audio` resampled from `rate` to `target` Hz (polyphase), clipped to [-1, 1]."""
    if rate == target or audio.size == 0:
        return audio.astype(np.float32)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(rate, target)
    return np.clip(resample_poly(audio, target // g, rate // g), -1.0, 1.0).astype(np.float32)


def param(voice: Voice, key: str, label: str, how: str) -> Any:
    """Return `voice.params[key]`, or raise a UserError saying what to put in the voice card."""
    value = voice.params.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise UserError(f"voice {voice.id!r} ({label}) has no {key} in its [params]; {how}")
    return value


def base_url(voice: Voice, label: str, example: str) -> str:
    """Return the voice's server address without a trailing slash."""
    url = str(param(voice, "base_url", label, f'set base_url = "{example}" in its voice card')).rstrip("/")
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise UserError(f"voice {voice.id!r} ({label}) has base_url {url!r}; it must start with http:// or https://")
    return url


def timeout_s(voice: Voice, label: str) -> float:
    """Return the voice's per-request time limit in seconds."""
    value = voice.params.get("timeout_s", DEFAULT_TIMEOUT_S)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise UserError(f"voice {voice.id!r} ({label}) has timeout_s = {value!r}; give a number of seconds above 0")
    return float(value)


def api_key(voice: Voice, default_env: str = "") -> str:
    """Return the API key from the environment variable the voice's api_key_env names ("" when none is set)."""
    name = voice.params.get("api_key_env", default_env)
    return os.environ.get(name, "") if name else ""


def require_text(text: str, label: str, voice: Voice) -> None:
    """Refuse blank text before any request is made."""
    if not text or not text.strip():
        raise UserError(
            f"{label} was asked to speak empty text with voice {voice.id!r}; "
            f"a segment must contain words (fix the manuscript, or the lexicon entry that emptied it)"
        )


def reference_path(voice: Voice, label: str, key: str = "reference_audio") -> Path:
    """Return the voice's reference clip: an absolute path, or one relative to params["reference_dir"]."""
    path = Path(str(param(voice, key, label, "set it to the reference clip (a WAV of 3 to 10 s of clean speech)")))
    path = path.expanduser()
    if not path.is_absolute():
        folder = voice.params.get("reference_dir")
        if not folder:
            raise UserError(
                f"voice {voice.id!r} ({label}) has a relative {key} {str(path)!r} but no reference_dir; "
                f"give an absolute path, or set reference_dir to the voice card's folder"
            )
        path = Path(str(folder)).expanduser() / path
    if not path.is_file():
        raise UserError(f"voice {voice.id!r} ({label}): reference clip {path} does not exist; fix {key} in its card")
    return path


def file_sha256(path: Path) -> str:
    """Return the sha256 of a file's bytes, recomputed whenever the file is replaced or changed."""
    st = Path(path).stat()
    return _sha256(str(path), st.st_ino, st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=256)
def _sha256(path: str, inode: int, mtime_ns: int, size: int) -> str:
    return files.sha256_file(Path(path))


def speed(voice: Voice, key: str = "speed") -> float:
    """Return the voice's speed (params[key], default 1) divided by the delivery's length_ratio."""
    return round(float(voice.params.get(key, 1.0)) / float(voice.params.get("length_ratio", 1.0)), 4)


class HttpEngine:
    """What the HTTP adapters share; a subclass says how to ask its server (`identity`, `fetch`)."""

    name = ""
    label = ""  # the engine's own name, as errors show it
    sample_rate = 24000
    languages: tuple[str, ...] = ()
    adapter_version = 1  # bump when a request changes in a way that changes the audio
    max_in_flight = 1  # requests sent at once to one server; these servers run one inference at a time

    def __init__(self, *, retries: int = RETRIES, backoff_s: float = BACKOFF_S) -> None:
        self.retries = retries
        self.backoff_s = backoff_s
        self._gates: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    def identity(self, voice: Voice) -> list[str]:
        """Return what besides the adapter says which audio `voice` gets: server, model, reference hash."""
        raise NotImplementedError

    def fetch(self, text: str, voice: Voice) -> tuple[np.ndarray, int]:
        """Return (mono float32 audio, its sample rate) as the server sent it."""
        raise NotImplementedError

    def fingerprint(self, voice: Voice) -> str:
        return ";".join([f"{self.name}-adapter={self.adapter_version}", *self.identity(voice)])

    def synthesize(self, text: str, voice: Voice) -> np.ndarray:
        require_text(text, self.label, voice)
        audio, rate = self.fetch(text, voice)
        if audio.size == 0:
            raise StageError(f"{self.label} answered with no audio for voice {voice.id!r}; see the server's log")
        audio = to_rate(audio, rate, self.sample_rate)
        gain_db = float(voice.params.get("gain_db", 0.0))  # the delivery's level change
        if gain_db:
            from stages.engines.piper import apply_gain

            audio = apply_gain(audio, gain_db)
        return audio.astype(np.float32)

    def send(self, voice: Voice, url: str, attempt: Callable[[float], Reply], *, hint: str) -> Reply:
        """Return the 2xx reply to `attempt(timeout_s)`, at most `max_in_flight` at once per server."""
        limit = timeout_s(voice, self.label)
        with self._gate(url):
            return send(
                self.label, url, lambda: attempt(limit), timeout_s=limit, hint=hint,
                retries=self.retries, backoff_s=self.backoff_s,
            )

    def _gate(self, url: str) -> threading.BoundedSemaphore:
        parts = urllib.parse.urlsplit(url)
        with self._lock:
            return self._gates.setdefault(parts.netloc, threading.BoundedSemaphore(self.max_in_flight))
