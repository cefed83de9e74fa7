"""GPT-SoVITS through its api_v2.py server: a voice cloned zero-shot from a 3-10 s reference clip.

Follows api_v2.py of RVC-Boss/GPT-SoVITS (read at commit 0235857; its module docstring documents the API):
POST {base_url}/tts with a JSON body {text, text_lang, ref_audio_path, prompt_text, prompt_lang,
text_split_method, batch_size, speed_factor, media_type: "wav", streaming_mode: false, ...} answers 200 with
WAV bytes, or 400 with {"message": ..., "Exception": ...}. The server opens ref_audio_path on its own disk:
by default the clip's absolute local path is sent (a server on this machine), or `server_reference_audio`
when the server sees it elsewhere; the local file is still what the fingerprint hashes. Optional
`gpt_weights` and `sovits_weights` (paths on the server) are switched in through GET /set_gpt_weights and
/set_sovits_weights before the voice is spoken, so fine-tuned voices can share one server.

Voice params: base_url, reference_audio (+ reference_dir), reference_text (its transcript), text_lang
(default: the voice's language), reference_language (default: text_lang), speed_factor, timeout_s,
gpt_weights, sovits_weights, and any of TUNING_KEYS, passed through. A delivery's length_ratio divides
speed_factor; gain_db is applied to the take; instruct and pitch controls have no equivalent and are ignored.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import numpy as np

from stages import wav
from stages.engines import http_common as hc
from stages.errors import StageError, UserError
from stages.model import Voice

LABEL = "GPT-SoVITS"
EXAMPLE_URL = "http://127.0.0.1:9880"
SAMPLE_RATE_HZ = 32000  # v1, v2 and v2Pro answer at 32 kHz; v3 (24 kHz) and v4 (48 kHz) are resampled to it
LANGUAGES = ("zh", "en", "ja", "ko", "yue")
REFERENCE_MIN_S, REFERENCE_MAX_S = 3.0, 10.0  # the server refuses a clip outside this range
TEXT_SPLIT_METHOD = "cut5"  # split at punctuation, the server's default
TUNING_KEYS = (
    "top_k", "top_p", "temperature", "text_split_method", "batch_size", "seed", "repetition_penalty",
    "sample_steps", "super_sampling", "fragment_interval", "parallel_infer", "aux_ref_audio_paths",
)
CANTONESE_TAGS = ("yue", "zh-hk", "zh-mo", "zh-yue")


class GptSovitsEngine(hc.HttpEngine):
    """GPT-SoVITS api_v2 (`python api_v2.py -a 127.0.0.1 -p 9880`)."""

    name = "gpt-sovits"
    label = LABEL
    sample_rate = SAMPLE_RATE_HZ
    languages = LANGUAGES

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._weights: dict[str, tuple[str, str]] = {}  # server -> (gpt, sovits) this process last set

    def identity(self, voice: Voice) -> list[str]:
        ref = hc.reference_path(voice, LABEL)
        weights = f"{voice.params.get('gpt_weights', '')}|{voice.params.get('sovits_weights', '')}"
        server = hc.base_url(voice, LABEL, EXAMPLE_URL)
        return [f"server={server}", f"weights={weights}", f"reference={hc.file_sha256(ref)}"]

    def fetch(self, text: str, voice: Voice) -> tuple[np.ndarray, int]:
        url = hc.base_url(voice, LABEL, EXAMPLE_URL) + "/tts"
        body = json.dumps(request_body(text, voice), ensure_ascii=False).encode("utf-8")
        hint = "check text_lang, reference_audio (3-10 s) and reference_text in the voice card"

        def attempt(limit: float) -> hc.Reply:
            self._switch_weights(voice, limit)
            return hc.http_request(url, timeout_s=limit, body=body, content_type="application/json")

        reply = self.send(voice, url, attempt, hint=hint)
        return hc.decode_wav(reply.body, f"{LABEL} at {url}")

    def _switch_weights(self, voice: Voice, limit: float) -> None:
        """Load the voice's fine-tuned weights on its server unless this process already did (runs inside the gate)."""
        wanted = (str(voice.params.get("gpt_weights", "")), str(voice.params.get("sovits_weights", "")))
        root = hc.base_url(voice, LABEL, EXAMPLE_URL)
        if wanted == ("", "") or self._weights.get(root) == wanted:
            return
        for endpoint, path in zip(("set_gpt_weights", "set_sovits_weights"), wanted):
            if path:
                url = f"{root}/{endpoint}?" + urllib.parse.urlencode({"weights_path": path})
                reply = hc.http_request(url, method="GET", timeout_s=limit)
                if reply.status != 200:
                    raise StageError(
                        f"{LABEL} at {url} answered {reply.status}: {hc.error_text(reply.body)}; "
                        f"check {endpoint.removeprefix('set_')} in voice {voice.id!r} (a path on the server)"
                    )
        self._weights[root] = wanted


def request_body(text: str, voice: Voice) -> dict:
    """Return the JSON body of POST /tts for speaking `text` with `voice`."""
    params = voice.params
    reference = hc.reference_path(voice, LABEL)
    check_reference_length(reference, voice)
    text_lang = str(params.get("text_lang") or language_code(voice.language))
    body = {
        "text": text,
        "text_lang": text_lang,
        "ref_audio_path": str(params.get("server_reference_audio") or reference.resolve()),
        "prompt_text": str(params.get("reference_text", "")),
        "prompt_lang": str(params.get("reference_language") or text_lang),
        "text_split_method": TEXT_SPLIT_METHOD,
        "batch_size": 1,
        "speed_factor": hc.speed(voice, "speed_factor"),
        "media_type": "wav",
        "streaming_mode": False,
    }
    body.update({k: params[k] for k in TUNING_KEYS if k in params})
    return body


def language_code(tag: str) -> str:
    """Return GPT-SoVITS's language code for a BCP 47 tag ("en-US" -> "en", "zh-HK" -> "yue")."""
    tag = tag.lower()
    return "yue" if tag.startswith(CANTONESE_TAGS) else tag.split("-")[0]


def check_reference_length(path: Path, voice: Voice) -> None:
    """Refuse a WAV reference outside 3-10 s before the server does (other formats are left to the server)."""
    try:
        info = wav.wav_info(path)
    except StageError:
        return
    seconds = info.frames / info.sample_rate if info.sample_rate else 0.0
    if not REFERENCE_MIN_S <= seconds <= REFERENCE_MAX_S:
        raise UserError(
            f"voice {voice.id!r} ({LABEL}): reference clip {path} is {seconds:.1f} s; GPT-SoVITS needs "
            f"{REFERENCE_MIN_S:g}-{REFERENCE_MAX_S:g} s, so cut or choose another clip"
        )
