"""Stand-in for f5_tts.api: F5TTS(model, ckpt_file, vocab_file, vocoder_local_path, device).infer(...)."""

from pathlib import Path

import numpy as np

from tests.tts_servers import speech

LOADED: list[dict] = []  # what each construction was given, for the tests to read


class F5TTS:
    def __init__(self, model="F5TTS_v1_Base", ckpt_file="", vocab_file="", ode_method="euler", use_ema=True,
                 vocoder_local_path=None, device=None, hf_cache_dir=None):
        for path in (ckpt_file, vocab_file, vocoder_local_path):
            if not Path(path).exists():
                raise FileNotFoundError(path)
        LOADED.append({"model": model, "ckpt_file": ckpt_file, "vocab_file": vocab_file,
                       "vocoder_local_path": vocoder_local_path})
        self.target_sample_rate = 24000

    def infer(self, ref_file, ref_text, gen_text, show_info=print, progress=None, target_rms=0.1,
              cross_fade_duration=0.15, sway_sampling_coef=-1, cfg_strength=2, nfe_step=32, speed=1.0,
              fix_duration=None, remove_silence=False, file_wave=None, file_spec=None, seed=None):
        if not Path(ref_file).is_file() or not ref_text:
            raise ValueError("reference audio and text are needed")
        wav = np.array(speech(gen_text, self.target_sample_rate), dtype=np.float32)
        return wav, self.target_sample_rate, np.zeros((100, 10), np.float32)
