"""Stand-in for cosyvoice.utils.file_utils.load_wav(path, target_sr) -> a (1, samples) float tensor."""

import torch

from stages import wav
from stages.engines.http_common import to_rate


def load_wav(path, target_sr):
    audio, rate = wav.read_wav(path)
    return torch.from_numpy(to_rate(audio, rate, target_sr).copy()).unsqueeze(0)
