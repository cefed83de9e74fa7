"""Any OpenAI-compatible speech endpoint (OpenAI itself, or a local server that copies its API) via `openai`.

Follows the OpenAI API reference for "Create speech" and the openai Python client (>= 1):
client.audio.speech.create(model, voice, input, response_format, speed, instructions), which POSTs JSON to
{base_url}/audio/speech. `input` is at most 4096 characters; `speed` 0.25-4.0; `instructions` works with
gpt-4o-mini-tts but not tts-1 or tts-1-hd, so it is sent only to other models. "wav" replies carry their
rate in the header; "pcm" replies are headerless 16-bit at 24 kHz on OpenAI (set sample_rate for another
server). The client's own retries are off: retries, backoff and messages are the shared ones.

Voice params: base_url (default https://api.openai.com/v1), model, voice, response_format ("wav" or "pcm"),
sample_rate (pcm only), speed, instructions (the voice's standing style), api_key_env (default
OPENAI_API_KEY), timeout_s. The delivery's instruct is added to instructions and its length_ratio divides
speed; gain_db is applied to the take; pitch controls are ignored.
"""

from __future__ import annotations

import threading

import numpy as np

from stages.engines import http_common as hc
from stages.errors import UserError
from stages.model import Voice

LABEL = "OpenAI speech"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini-tts"
SAMPLE_RATE_HZ = 24000  # OpenAI's own rate
MAX_INPUT_CHARS = 4096
SPEED_MIN, SPEED_MAX = 0.25, 4.0
NO_INSTRUCTIONS_MODELS = ("tts-1", "tts-1-hd")
RESPONSE_FORMATS = ("wav", "pcm")
PLACEHOLDER_KEY = "not-needed"  # local servers often want no key, but the client insists on one
# the languages OpenAI's speech models are documented to speak (those of Whisper)
LANGUAGES = (
    "af", "ar", "hy", "az", "be", "bs", "bg", "ca", "zh", "hr", "cs", "da", "nl", "en", "et", "fi", "fr", "gl",
    "de", "el", "he", "hi", "hu", "is", "id", "it", "ja", "kn", "kk", "ko", "lv", "lt", "mk", "ms", "mr", "mi",
    "ne", "no", "fa", "pl", "pt", "ro", "ru", "sr", "sk", "sl", "es", "sw", "sv", "tl", "ta", "th", "tr", "uk",
    "ur", "vi", "cy",
)


class OpenAISpeechEngine(hc.HttpEngine):
    """An OpenAI-compatible /audio/speech endpoint."""

    name = "openai-speech"
    label = LABEL
    sample_rate = SAMPLE_RATE_HZ
    languages = LANGUAGES
    max_in_flight = 4  # a hosted API serves several requests at once

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._clients: dict[tuple[str, str], object] = {}
        self._clients_lock = threading.Lock()

    def identity(self, voice: Voice) -> list[str]:
        model, name = _model_and_voice(voice)
        return [f"server={_base_url(voice)}", f"model={model}", f"voice={name}"]

    def fetch(self, text: str, voice: Voice) -> tuple[np.ndarray, int]:
        if len(text) > MAX_INPUT_CHARS:
            raise UserError(
                f"{LABEL} takes at most {MAX_INPUT_CHARS} characters; split this {len(text)}-character segment"
            )
        args = request_args(text, voice)
        base = _base_url(voice)
        url = base + "/audio/speech"
        client = self._client(base, hc.api_key(voice, "OPENAI_API_KEY") or PLACEHOLDER_KEY)
        hint = "check model, voice, speed and instructions in the voice card"
        reply = self.send(voice, url, lambda limit: _attempt(client, args, limit), hint=hint)
        if args["response_format"] == "pcm":
            return hc.decode_pcm16(reply.body), int(voice.params.get("sample_rate", SAMPLE_RATE_HZ))
        return hc.decode_wav(reply.body, f"{LABEL} at {url}")

    def _client(self, base: str, key: str):
        """Return one client per (server, key), its own retries off."""
        import openai

        with self._clients_lock:
            if (base, key) not in self._clients:
                self._clients[(base, key)] = openai.OpenAI(api_key=key, base_url=base, max_retries=0)
            return self._clients[(base, key)]


def _attempt(client, args: dict, limit: float) -> hc.Reply:
    """Make one request through the client and return it as a Reply (errors as the shared code expects)."""
    import openai

    try:
        return hc.Reply(200, client.audio.speech.create(**args, timeout=limit).content, {})
    except openai.APITimeoutError as e:
        raise TimeoutError(str(e)) from e
    except openai.APIConnectionError as e:
        raise hc.Unreachable(str(e.__cause__ or e)) from e
    except openai.APIStatusError as e:
        return hc.Reply(e.status_code, e.response.content, {k.lower(): v for k, v in e.response.headers.items()})


def request_args(text: str, voice: Voice) -> dict:
    """Return the keyword arguments of client.audio.speech.create for `text` with `voice`."""
    params = voice.params
    model, name = _model_and_voice(voice)
    response_format = params.get("response_format", "wav")
    if response_format not in RESPONSE_FORMATS:
        raise UserError(f"voice {voice.id!r} ({LABEL}) has response_format {response_format!r}; use \"wav\" or \"pcm\"")
    speed = hc.speed(voice)
    if not SPEED_MIN <= speed <= SPEED_MAX:
        raise UserError(
            f"voice {voice.id!r} ({LABEL}) asks for speed {speed:g}; keep speed within {SPEED_MIN}-{SPEED_MAX}"
        )
    args = {"model": model, "voice": name, "input": text, "response_format": response_format}
    if speed != 1.0:
        args["speed"] = speed
    standing, delivered = str(params.get("instructions", "")).strip(), str(params.get("instruct", "")).strip()
    style = " ".join(s for s in (standing, delivered) if s)
    if style and model not in NO_INSTRUCTIONS_MODELS:
        args["instructions"] = style
    return args


def _model_and_voice(voice: Voice) -> tuple[str, str]:
    name = hc.param(voice, "voice", LABEL, 'set voice = "alloy" (or another voice the server offers)')
    return str(voice.params.get("model", DEFAULT_MODEL)), str(name)


def _base_url(voice: Voice) -> str:
    if "base_url" not in voice.params:
        return DEFAULT_BASE_URL
    return hc.base_url(voice, LABEL, DEFAULT_BASE_URL)
