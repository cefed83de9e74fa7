"""Voice matching: Piper params that shape the bundled voice toward a reference clip, offline, with Praat.

The matched voice is still the bundled Piper model (nothing of the reference is synthesized), moved toward
the reference's pitch, pitch range, formant scale and speaking rate with the same "Change gender"
reshaping the character voices use (stages/engines/piper.py). Every figure is measured against the base
voice speaking the clip's own transcript, so both sides say the same words:

- pitch: Praat's autocorrelation pitch track; the median of voiced frames, and the spread, the 10th
  to 90th percentile in semitones about the median (frames more than 9 semitones off, octave errors,
  left out). Change gender's pitch_range_factor f moves that spread by about f ** 0.8 on the bundled
  voice (f = 0.7..2.0 at medians 90..200 Hz), so the factor is (clip spread / base spread) ** 1.25;
- formant scale: the long-term average spectrum of the louder frames on a log-frequency axis,
  detrended and smoothed; the shift that best correlates the clip's with the base's is the formant
  ratio (a formant scaling by r is a shift of log r there). On the bundled voice reshaped by
  r = 0.85..1.30 it reads r back within 0.03, and the bundled cards' ratios within 0.01
  (tests/test_voice_match.py, bench/voice_similarity.py);
- speaking rate: the clip's length without edge silence over the base's for the same transcript,
  turned into a length_scale through the measured LENGTH_RESPONSE curve (scaled_length).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from stages.engines import get_engine
from stages.engines.piper import PITCH_CEILING_HZ, scaled_length
from stages.errors import UserError
from stages.model import Voice
from stages.voices.clip import speech_span
from stages.voices.embed import cosine, embed, voice_embedding

ANALYSIS_PITCH_FLOOR_HZ = 60.0  # below the reshaping floor, so a deep voice's median is not lifted
LOW_PERCENTILE, HIGH_PERCENTILE = 10, 90  # the pitch spread's ends
OCTAVE_ERROR_SEMITONES = 9.0  # voiced frames this far from the median are tracking errors
RANGE_RESPONSE_EXPONENT = 0.8  # spread ratio = pitch_range_factor ** this (measured, see above)
LTAS_FFT = 1024
LTAS_HOP = 256
LTAS_LOW_HZ, LTAS_HIGH_HZ = 200.0, 5000.0  # the band whose envelope is compared
LTAS_BINS = 400  # log-spaced points across the band (0.8% apart)
LTAS_SMOOTH_BINS = 15  # about 12% of frequency: smooths harmonics away, keeps formant peaks
LTAS_EDGE_BINS = 50  # shifts tried each way (ratios 0.67..1.50), and left out at each end so spectra overlap
LOUD_FRAME_PERCENTILE = 50  # the LTAS uses frames louder than the clip's median frame
FORMANT_RATIO_RANGE = (0.7, 1.45)  # what Change gender does without audible artefacts
PITCH_RANGE_FACTOR_RANGE = (0.5, 2.0)
LENGTH_RATIO_RANGE = (0.7, 1.4)
MIN_VOICED_FRAMES = 20


@dataclass(frozen=True)
class VoiceEstimate:
    """What a clip sounds like next to the base voice saying the same words."""

    pitch_median_hz: float
    pitch_spread: float  # 10th to 90th percentile pitch, in semitones
    formant_ratio: float  # the clip's formant scale over the base voice's
    length_ratio: float  # the clip's length over the base voice's for the same transcript
    base_pitch_median_hz: float
    base_pitch_spread: float


def pitch_figures(audio: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """Return (median pitch in Hz, spread in semitones) of the voiced frames of `audio`."""
    import parselmouth
    from parselmouth.praat import call

    sound = parselmouth.Sound(np.asarray(audio, dtype=np.float64), sampling_frequency=sample_rate)
    pitch = call(sound, "To Pitch", 0.0, ANALYSIS_PITCH_FLOOR_HZ, PITCH_CEILING_HZ)
    f0 = pitch.selected_array["frequency"]
    f0 = f0[f0 > 0]
    if f0.size < MIN_VOICED_FRAMES:
        raise UserError(f"only {f0.size} voiced frames found; the clip needs voiced speech to match a voice to")
    median = float(np.median(f0))
    semitones = 12.0 * np.log2(f0 / median)
    semitones = semitones[np.abs(semitones) < OCTAVE_ERROR_SEMITONES]
    low, high = np.percentile(semitones, [LOW_PERCENTILE, HIGH_PERCENTILE])
    return median, float(high - low)


def _log_envelope(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Return the smoothed, detrended log long-term spectrum of the louder frames on the LTAS grid."""
    audio = np.asarray(audio, dtype=np.float64)
    if audio.size < LTAS_FFT:
        audio = np.pad(audio, (0, LTAS_FFT - audio.size))
    frames = np.lib.stride_tricks.sliding_window_view(audio, LTAS_FFT)[::LTAS_HOP] * np.hanning(LTAS_FFT)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    energy = power.sum(axis=1)
    mean = power[energy >= np.percentile(energy, LOUD_FRAME_PERCENTILE)].mean(axis=0)
    grid = np.geomspace(LTAS_LOW_HZ, LTAS_HIGH_HZ, LTAS_BINS)
    spectrum = np.log(np.interp(grid, np.fft.rfftfreq(LTAS_FFT, 1.0 / sample_rate), mean) + 1e-20)
    spectrum = np.convolve(spectrum, np.ones(LTAS_SMOOTH_BINS) / LTAS_SMOOTH_BINS, mode="same")
    x = np.arange(spectrum.size)
    return spectrum - np.polyval(np.polyfit(x, spectrum, 1), x)  # the tilt is the microphone's, not the voice's


def formant_ratio(audio: np.ndarray, sample_rate: int, base: np.ndarray, base_rate: int) -> float:
    """Return how much higher the formants of `audio` sit than those of `base` (1.0 = the same)."""
    clip, ref = _log_envelope(audio, sample_rate), _log_envelope(base, base_rate)
    step = np.log(LTAS_HIGH_HZ / LTAS_LOW_HZ) / (LTAS_BINS - 1)
    shifts = np.arange(-LTAS_EDGE_BINS, LTAS_EDGE_BINS + 1)
    inner = slice(LTAS_EDGE_BINS, LTAS_BINS - LTAS_EDGE_BINS)
    scores = np.array([np.corrcoef(np.roll(clip, -s)[inner], ref[inner])[0, 1] for s in shifts])
    best = int(np.argmax(scores))
    offset = 0.0
    if 0 < best < shifts.size - 1:  # parabolic peak between grid points
        a, b, c = scores[best - 1: best + 2]
        offset = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c else 0.0
    return float(np.exp((shifts[best] + offset) * step))


def estimate(audio: np.ndarray, sample_rate: int, transcript: str, base_voice: Voice) -> VoiceEstimate:
    """Return the clip's pitch, pitch spread, formant ratio and length ratio next to `base_voice`."""
    if not transcript.strip():
        raise UserError("the reference clip's transcript is empty; give the words spoken in the clip")
    engine = get_engine(base_voice.engine)
    base = engine.synthesize(transcript, base_voice)
    base_rate = engine.sample_rate
    clip_trimmed, _ = speech_span(np.asarray(audio, dtype=np.float32), sample_rate)
    base_trimmed, _ = speech_span(base, base_rate)
    if not clip_trimmed.size or not base_trimmed.size:
        raise UserError("no speech found to match against; give a clip of someone speaking its transcript")
    median, spread = pitch_figures(clip_trimmed, sample_rate)
    base_median, base_spread = pitch_figures(base_trimmed, base_rate)
    return VoiceEstimate(
        pitch_median_hz=median,
        pitch_spread=spread,
        formant_ratio=formant_ratio(clip_trimmed, sample_rate, base_trimmed, base_rate),
        length_ratio=(clip_trimmed.size / sample_rate) / (base_trimmed.size / base_rate),
        base_pitch_median_hz=base_median,
        base_pitch_spread=base_spread,
    )


def matched_params(found: VoiceEstimate, base_voice: Voice) -> dict[str, Any]:
    """Return the base voice's params with the shaping that moves it to `found`."""
    params = dict(base_voice.params)
    # the base's own shaping is already in its measured figures, so the new values compose with it
    formant = float(params.get("formant_shift_ratio", 1.0)) * found.formant_ratio
    spread_ratio = found.pitch_spread / max(found.base_pitch_spread, 1e-6)
    range_factor = float(params.get("pitch_range_factor", 1.0)) * spread_ratio ** (1 / RANGE_RESPONSE_EXPONENT)
    length_ratio = float(np.clip(found.length_ratio, *LENGTH_RATIO_RANGE))
    params.update(
        formant_shift_ratio=round(float(np.clip(formant, *FORMANT_RATIO_RANGE)), 3),
        pitch_median_hz=round(found.pitch_median_hz, 1),
        pitch_range_factor=round(float(np.clip(range_factor, *PITCH_RANGE_FACTOR_RANGE)), 3),
        length_scale=round(scaled_length(float(params.get("length_scale", 1.0)), length_ratio), 3),
    )
    return params


def match_voice(audio: np.ndarray, sample_rate: int, transcript: str, base_voice: Voice,
                *, voice_id: str = "", name: str = "") -> Voice:
    """Return `base_voice` shaped toward the reference clip (voice matching), under a new id and name."""
    found = estimate(audio, sample_rate, transcript, base_voice)
    return replace(base_voice, id=voice_id or base_voice.id, name=name or base_voice.name,
                   params=matched_params(found, base_voice))


def match_report(reference_audio: np.ndarray, sr: int, base_voice: Voice, matched_voice: Voice,
                 *, cache_dir: Path | None = None) -> dict[str, Any]:
    """Return how close the base and the matched voice come to the reference (cosine of speaker embeddings)."""
    reference = embed(reference_audio, sr)
    base = cosine(reference, voice_embedding(base_voice, cache_dir))
    matched = cosine(reference, voice_embedding(matched_voice, cache_dir))
    return {"base_voice": base_voice.id, "cosine_base": round(base, 4),
            "cosine_matched": round(matched, 4), "gain": round(matched - base, 4),
            "params": {k: matched_voice.params[k] for k in sorted(matched_voice.params)}}
