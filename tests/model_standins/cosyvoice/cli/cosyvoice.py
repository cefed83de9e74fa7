"""Stand-in for cosyvoice.cli.cosyvoice.CosyVoice2(model_dir, ...).inference_zero_shot(...), a generator of dicts."""

from pathlib import Path

import torch

from tests.tts_servers import speech


class CosyVoice2:
    def __init__(self, model_dir, load_jit=False, load_trt=False, load_vllm=False, fp16=False, trt_concurrent=1):
        if not (Path(model_dir) / "cosyvoice2.yaml").is_file():
            raise ValueError(f"{model_dir}/cosyvoice2.yaml not found!")
        self.sample_rate = 24000

    def inference_zero_shot(self, tts_text, prompt_text, prompt_speech_16k, zero_shot_spk_id="", stream=False,
                            speed=1.0, text_frontend=True):
        assert prompt_speech_16k.ndim == 2 and prompt_text
        yield {"tts_speech": torch.from_numpy(speech(tts_text, self.sample_rate).copy()).unsqueeze(0)}
