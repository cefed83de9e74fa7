"""Checks a reference clip before it enters the voice library: readable, long enough, clean, one level.

Every refusal is one line naming the file and the fix. The level figures come from 20 ms windows of
the decoded clip: the noise floor is the level of its quietest windows (the 10th percentile, which the
pauses between words and the edges of a recording supply), the speech level that of its loudest (the
95th percentile), and the SNR is their difference. Windows above a gate placed between the two are
speech: they give the seconds of speech, and the first and last of them bound the trimmed clip.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stages.errors import StageError, UserError
from stages.ffmpeg import base_args, decode_audio

MIN_SAMPLE_RATE_HZ = 16000
MIN_SPEECH_S = 3.0  # at least this much speech (windows above the gate)
MAX_CLIP_S = 30.0  # at most this long once edge silence is trimmed
WINDOW_MS = 20
NOISE_PERCENTILE = 10  # the quietest windows: the noise floor
SPEECH_PERCENTILE = 95  # the loudest windows: the speech level
LEVEL_FLOOR_DBFS = -120.0  # digital silence reads as this, not -inf
SILENT_BELOW_DBFS = -60.0  # a clip whose loudest windows are quieter than this is silent
SPEECH_GATE_DB = 30.0  # a window is speech when within this of the speech level ...
GATE_ABOVE_NOISE_DB = 6.0  # ... and at least this far above the noise floor
TRIM_PAD_MS = 150  # kept before the first and after the last speech window
FULL_SCALE = 0.999  # a sample at or past this magnitude is taken as clipped (-0.009 dBFS)
MAX_CLIPPED_FRACTION = 0.001  # more than 0.1% of samples at full scale: clipped
MIN_SNR_DB = 25.0
_AUDIO_STREAM = re.compile(r"Stream #\d+:\d+.*?: Audio: .*?(\d+) Hz")


@dataclass(frozen=True, eq=False)
class ClipReport:
    """A reference clip that passed every check, with the figures measured on the way."""

    path: Path
    audio: np.ndarray  # mono float32 at `sample_rate`, edge silence trimmed
    sample_rate: int  # the file's own rate (not resampled)
    seconds: float  # length of the trimmed clip
    speech_seconds: float  # time in windows above the speech gate
    peak: float  # largest sample magnitude, 0..1
    clipped_fraction: float  # share of samples at full scale
    noise_floor_dbfs: float
    snr_db: float  # speech level minus noise floor

    def figures(self) -> dict[str, float]:
        """Return the measured figures (everything but the audio), rounded for a report."""
        return {"sample_rate": self.sample_rate, "seconds": round(self.seconds, 3),
                "speech_seconds": round(self.speech_seconds, 3), "peak": round(self.peak, 4),
                "clipped_fraction": round(self.clipped_fraction, 5),
                "noise_floor_dbfs": round(self.noise_floor_dbfs, 1), "snr_db": round(self.snr_db, 1)}


def native_rate(path: Path) -> int:
    """Return the sample rate of the first audio stream in `path`, as ffmpeg reports it."""
    try:
        done = subprocess.run(base_args()[:1] + ["-hide_banner", "-nostdin", "-i", str(path)],
                              capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UserError(f"{path}: ffmpeg could not open the clip ({e}); check the file") from e
    found = _AUDIO_STREAM.search(done.stderr.decode("utf-8", "replace"))
    if not found:
        raise UserError(f"{path} is not an audio file ffmpeg can read; export the clip as WAV or FLAC and try again")
    return int(found.group(1))


def window_levels(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Return the RMS level of each whole WINDOW_MS window of `audio` in dBFS."""
    size = max(1, sample_rate * WINDOW_MS // 1000)
    frames = audio[: audio.size // size * size].astype(np.float64).reshape(-1, size)
    power = np.mean(np.square(frames), axis=1)
    return np.maximum(10 * np.log10(np.maximum(power, 1e-30)), LEVEL_FLOOR_DBFS)


def speech_span(audio: np.ndarray, sample_rate: int, levels: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Return (`audio` trimmed of edge silence, seconds of speech in it), by the gate between noise and speech."""
    levels = window_levels(audio, sample_rate) if levels is None else levels
    noise = float(np.percentile(levels, NOISE_PERCENTILE))
    speech = float(np.percentile(levels, SPEECH_PERCENTILE))
    active = levels >= max(speech - SPEECH_GATE_DB, noise + GATE_ABOVE_NOISE_DB)
    if not active.any():
        return audio[:0], 0.0
    size = max(1, sample_rate * WINDOW_MS // 1000)
    first, last = np.flatnonzero(active)[[0, -1]]
    pad = sample_rate * TRIM_PAD_MS // 1000
    trimmed = audio[max(0, first * size - pad): min(audio.size, (last + 1) * size + pad)]
    return trimmed, float(np.count_nonzero(active)) * WINDOW_MS / 1000


def check_clip(path: Path) -> ClipReport:
    """Return the checked, trimmed clip at `path`, or raise UserError naming the file and the fix."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"reference clip {path} does not exist; give the path of a WAV, FLAC or MP3 recording")
    rate = native_rate(path)
    if rate < MIN_SAMPLE_RATE_HZ:
        raise UserError(f"{path} is sampled at {rate} Hz; record or export it at {MIN_SAMPLE_RATE_HZ} Hz or more "
                        f"(upsampling a low-rate file does not help)")
    try:
        audio = decode_audio(path, rate)
    except StageError as e:
        raise UserError(f"{path}: the audio could not be decoded ({e}); export the clip as WAV or FLAC") from e
    size = rate * WINDOW_MS // 1000
    if audio.size < size:
        raise UserError(f"{path} holds no audio; give a recording of {MIN_SPEECH_S:.0f}-{MAX_CLIP_S:.0f} s of speech")
    levels = window_levels(audio, rate)
    noise = float(np.percentile(levels, NOISE_PERCENTILE))
    speech = float(np.percentile(levels, SPEECH_PERCENTILE))
    if speech < SILENT_BELOW_DBFS:
        raise UserError(f"{path} is silent (its loudest parts are at {speech:.0f} dBFS); check the recording's "
                        f"input and level")
    peak = float(np.abs(audio).max())
    clipped = float(np.count_nonzero(np.abs(audio) >= FULL_SCALE)) / audio.size
    if clipped > MAX_CLIPPED_FRACTION:
        raise UserError(f"{path} is clipped ({clipped:.2%} of samples at full scale); record it again with the input "
                        f"gain lower, peaks near -6 dBFS")
    snr = speech - noise
    if snr < MIN_SNR_DB:
        raise UserError(f"{path} is too noisy (speech {snr:.0f} dB above a noise floor of {noise:.0f} dBFS, needs "
                        f"{MIN_SNR_DB:.0f} dB); record it again in a quieter room or closer to the microphone")
    trimmed, speech_seconds = speech_span(audio, rate, levels)
    seconds = trimmed.size / rate
    if speech_seconds < MIN_SPEECH_S:
        raise UserError(f"{path} has {speech_seconds:.1f} s of speech; give a clip with {MIN_SPEECH_S:.0f}-"
                        f"{MAX_CLIP_S:.0f} s of one person speaking")
    if seconds > MAX_CLIP_S:
        raise UserError(f"{path} is {seconds:.1f} s long without its edge silence; cut it to at most "
                        f"{MAX_CLIP_S:.0f} s of one person speaking")
    return ClipReport(path, np.ascontiguousarray(trimmed, dtype=np.float32), rate, seconds, speech_seconds, peak,
                      clipped, noise, snr)
