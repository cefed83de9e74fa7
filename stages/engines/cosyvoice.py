"""CosyVoice through its FastAPI server: a voice cloned zero-shot from a reference clip, with style instructions.

Follows runtime/python/fastapi/server.py and client.py of FunAudioLLM/CosyVoice (read at commit ace7c47, 2026-03):
every endpoint takes multipart form fields and streams back headerless 16-bit mono PCM at the model's rate,
which the server does not state, so the voice card must (`sample_rate`: 22050 for CosyVoice-300M,
24000 for CosyVoice2-0.5B and Fun-CosyVoice3). Endpoints used:

- POST /inference_zero_shot    tts_text, prompt_text, prompt_wav (file): a line spoken neutrally
- POST /inference_instruct2    tts_text, instruct_text, prompt_wav (file): a line with the delivery's `instruct`
- POST /inference_sft          tts_text, spk_id: a built-in speaker (no reference clip)
- POST /inference_instruct     tts_text, spk_id, instruct_text: a built-in speaker with an instruction (300M-Instruct)

CosyVoice2 and 3 read an instruction up to the token "<|endofprompt|>", which is appended when missing;
`instruct_prefix` is put before it (Fun-CosyVoice3 expects "You are a helpful assistant. ").
Voice params: base_url, sample_rate, reference_audio (+ reference_dir) and reference_text, or spk_id;
model (a label for the fingerprint), instruct_prefix, timeout_s. The delivery's instruct is honoured,
gain_db is applied to the take; length and pitch controls have no field on this server and are ignored.
"""

from __future__ import annotations

import numpy as np

from stages.engines import http_common as hc
from stages.errors import UserError
from stages.model import Voice

LABEL = "CosyVoice"
EXAMPLE_URL = "http://127.0.0.1:50000"
SAMPLE_RATE_HZ = 24000  # CosyVoice2 and 3; CosyVoice-300M's 22050 Hz is resampled to it
MODEL_RATES_HZ = (22050, 24000)
LANGUAGES = ("zh", "en", "ja", "ko", "yue")
END_OF_PROMPT = "<|endofprompt|>"


class CosyVoiceEngine(hc.HttpEngine):
    """CosyVoice's FastAPI server (`python runtime/python/fastapi/server.py --port 50000 --model_dir ...`)."""

    name = "cosyvoice"
    label = LABEL
    sample_rate = SAMPLE_RATE_HZ
    languages = LANGUAGES

    def identity(self, voice: Voice) -> list[str]:
        parts = [f"server={hc.base_url(voice, LABEL, EXAMPLE_URL)}", f"model={voice.params.get('model', '')}"]
        parts.append(f"rate={model_rate(voice)}")
        if voice.params.get("spk_id") and not voice.params.get("reference_audio"):
            return [*parts, f"speaker={voice.params['spk_id']}"]
        return [*parts, f"reference={hc.file_sha256(hc.reference_path(voice, LABEL))}"]

    def fetch(self, text: str, voice: Voice) -> tuple[np.ndarray, int]:
        rate = model_rate(voice)
        endpoint, fields, files = request_form(text, voice)
        url = f"{hc.base_url(voice, LABEL, EXAMPLE_URL)}/{endpoint}"
        body, content_type = hc.multipart(fields, files)
        hint = "check reference_audio, reference_text, spk_id and the endpoints this model serves"
        def attempt(limit: float) -> hc.Reply:
            return hc.http_request(url, timeout_s=limit, body=body, content_type=content_type)

        reply = self.send(voice, url, attempt, hint=hint)
        if reply.headers.get("content-type", "").startswith("application/json"):  # an error dressed as a 200
            raise UserError(f"{LABEL} at {url} answered with JSON, not audio: {hc.error_text(reply.body)}; {hint}")
        return hc.decode_pcm16(reply.body), rate


def model_rate(voice: Voice) -> int:
    """Return the rate the voice's server model speaks at, which CosyVoice's raw PCM does not carry."""
    how = "set sample_rate = 24000 (CosyVoice2, CosyVoice3) or 22050 (CosyVoice-300M)"
    rate = hc.param(voice, "sample_rate", LABEL, how)
    if rate not in MODEL_RATES_HZ:
        raise UserError(f"voice {voice.id!r} ({LABEL}) has sample_rate = {rate!r}; {how}")
    return int(rate)


def request_form(text: str, voice: Voice) -> tuple[str, dict[str, str], dict[str, tuple[str, bytes]]]:
    """Return (endpoint, form fields, files) for speaking `text` with `voice`."""
    params = voice.params
    instruct = str(params.get("instruct", "")).strip()
    if instruct:
        instruct = str(params.get("instruct_prefix", "")) + instruct
        instruct += "" if instruct.endswith(END_OF_PROMPT) else END_OF_PROMPT
    if params.get("spk_id") and not params.get("reference_audio"):
        fields = {"tts_text": text, "spk_id": str(params["spk_id"])}
        if instruct:
            return "inference_instruct", {**fields, "instruct_text": instruct}, {}
        return "inference_sft", fields, {}
    clip = hc.reference_path(voice, LABEL)
    files = {"prompt_wav": (clip.name, clip.read_bytes())}
    if instruct:
        return "inference_instruct2", {"tts_text": text, "instruct_text": instruct}, files
    prompt = hc.param(voice, "reference_text", LABEL, "set it to the exact words spoken in reference_audio")
    return "inference_zero_shot", {"tts_text": text, "prompt_text": str(prompt)}, files
