"""Fish-Speech (OpenAudio) through its API server: a voice cloned zero-shot from a reference clip.

Follows tools/server/views.py and fish_speech/utils/schema.py (ServeTTSRequest) of fishaudio/fish-speech
(read at commit 3dd1f85, 2026-04), and tools/api_client.py, which sends the body as msgpack: POST {base_url}/v1/tts,
Content-Type application/msgpack, body {text, references: [{audio: <bytes>, text}], reference_id,
format: "wav", normalize, use_memory_cache, chunk_length, seed, streaming: false, ...}; 200 answers WAV
bytes, an error answers JSON {"statusCode", "message", "error"}. A server started with --api-key wants
"Authorization: Bearer <key>"; the key is read from the environment variable named by api_key_env.

Voice params: base_url, reference_audio (+ reference_dir) and reference_text, or reference_id (a voice
saved on the server); seed, temperature, top_p, repetition_penalty, chunk_length, max_new_tokens,
api_key_env, timeout_s. gain_db is applied to the take; the server has no speed, pitch or instruction
field, so those delivery controls are ignored.
"""

from __future__ import annotations

import numpy as np

from stages.engines import http_common as hc
from stages.errors import UserError
from stages.model import Voice

LABEL = "Fish-Speech"
EXAMPLE_URL = "http://127.0.0.1:8080"
SAMPLE_RATE_HZ = 44100  # the codec's rate
LANGUAGES = ("en", "zh", "ja", "ko", "fr", "de", "ar", "es", "ru", "nl", "it", "pl", "pt")
TUNING_KEYS = ("seed", "temperature", "top_p", "repetition_penalty", "chunk_length", "max_new_tokens")


class FishSpeechEngine(hc.HttpEngine):
    """Fish-Speech's API server (`python tools/api_server.py --listen 127.0.0.1:8080`)."""

    name = "fish-speech"
    label = LABEL
    sample_rate = SAMPLE_RATE_HZ
    languages = LANGUAGES

    def identity(self, voice: Voice) -> list[str]:
        parts = [f"server={hc.base_url(voice, LABEL, EXAMPLE_URL)}"]
        if voice.params.get("reference_audio"):
            return [*parts, f"reference={hc.file_sha256(hc.reference_path(voice, LABEL))}"]
        return [*parts, f"reference_id={_reference_id(voice)}"]

    def fetch(self, text: str, voice: Voice) -> tuple[np.ndarray, int]:
        import msgpack

        url = hc.base_url(voice, LABEL, EXAMPLE_URL) + "/v1/tts"
        body = msgpack.packb(request_body(text, voice), use_bin_type=True)
        key = hc.api_key(voice)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        hint = "check reference_audio, reference_text or reference_id in the voice card"
        reply = self.send(
            voice,
            url,
            lambda limit: hc.http_request(
                url, timeout_s=limit, body=body, content_type="application/msgpack", headers=headers
            ),
            hint=hint,
        )
        return hc.decode_wav(reply.body, f"{LABEL} at {url}")


def request_body(text: str, voice: Voice) -> dict:
    """Return the ServeTTSRequest for speaking `text` with `voice` (msgpack-ready: audio as bytes)."""
    params = voice.params
    body: dict = {
        "text": text,
        "references": [],
        "reference_id": None,
        "format": "wav",
        "normalize": True,
        "use_memory_cache": "on",  # the server keeps the encoded reference, so a clip is encoded once
        "streaming": False,
    }
    if params.get("reference_audio"):
        clip = hc.reference_path(voice, LABEL)
        transcript = hc.param(voice, "reference_text", LABEL, "set it to the exact words spoken in reference_audio")
        body["references"] = [{"audio": clip.read_bytes(), "text": str(transcript)}]
    else:
        body["reference_id"] = _reference_id(voice)
    body.update({k: params[k] for k in TUNING_KEYS if k in params})
    return body


def _reference_id(voice: Voice) -> str:
    """Return the server-side voice id; without it or a clip every line would be a different random voice."""
    rid = voice.params.get("reference_id")
    if not rid:
        raise UserError(
            f"voice {voice.id!r} ({LABEL}) has neither reference_audio nor reference_id; set reference_audio "
            f"and reference_text, or reference_id for a voice saved on the server"
        )
    return str(rid)
