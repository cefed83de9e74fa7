"""Measure a chapter the way ACX Check does, so a book can be checked before it is submitted.

RMS is unweighted over the whole file, 20*log10(rms) with samples in [-1, 1] (a full-scale square
wave reads 0 dBFS, a full-scale sine -3 dBFS); the noise floor is the RMS of the quietest 0.4 s
window stepped by 0.1 s. Everything is block-wise numpy, so an hour at 44.1 kHz takes seconds.
"""

from __future__ import annotations

import math

import numpy as np

from stages.model import AcxFigures

ACX_RMS_MIN_DBFS = -23.0
ACX_RMS_MAX_DBFS = -18.0
ACX_PEAK_MAX_DBFS = -3.0
ACX_NOISE_FLOOR_MAX_DBFS = -60.0
DIGITAL_SILENCE_DBFS = -90.0  # a floor below this reads as dead air, which ACX rejects
NOISE_WINDOW_S = 0.4
NOISE_STEP_S = 0.1
SILENCE_DBFS = -120.0  # what a level of exactly zero is reported as (keeps figures finite for JSON)
DECIMALS = 2  # figures are reported, and checked, to 0.01 dB
BLOCKS_PER_CHUNK = 2048  # steps converted to float64 at a time, to bound memory


def to_dbfs(level: float) -> float:
    """Return 20*log10(level), or SILENCE_DBFS for zero."""
    return 20.0 * math.log10(level) if level > 0 else SILENCE_DBFS


def _step_energies(audio: np.ndarray, step: int) -> tuple[np.ndarray, float]:
    """Return (sum of squares of each whole step, sum of squares of the whole file)."""
    whole = audio.size // step
    energies = np.empty(whole, dtype=np.float64)
    blocks = audio[: whole * step].reshape(whole, step) if whole else np.empty((0, step), np.float32)
    for start in range(0, whole, BLOCKS_PER_CHUNK):
        chunk = blocks[start : start + BLOCKS_PER_CHUNK].astype(np.float64)
        energies[start : start + chunk.shape[0]] = np.einsum("ij,ij->i", chunk, chunk)
    rest = audio[whole * step :].astype(np.float64)
    return energies, float(energies.sum()) + float(np.dot(rest, rest))


def noise_floor_dbfs(audio: np.ndarray, sample_rate: int, energies: np.ndarray | None = None) -> float:
    """Return the RMS (dBFS) of the quietest NOISE_WINDOW_S window, stepped by NOISE_STEP_S."""
    step = max(1, round(NOISE_STEP_S * sample_rate))
    per_window = max(1, round(NOISE_WINDOW_S / NOISE_STEP_S))
    if energies is None:
        energies, _ = _step_energies(audio, step)
    if energies.size < per_window:  # shorter than one window: the whole file is the window
        return to_dbfs(math.sqrt(float(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0)
    csum = np.concatenate(([0.0], np.cumsum(energies)))
    windows = csum[per_window:] - csum[:-per_window]
    quietest = max(float(windows.min()), 0.0)
    return to_dbfs(math.sqrt(quietest / (per_window * step)))


def integrated_lufs(audio: np.ndarray, sample_rate: int) -> float:
    """Return the integrated loudness (ITU-R BS.1770, gated) in LUFS; SILENCE_DBFS if too short or silent."""
    import pyloudnorm

    meter = pyloudnorm.Meter(sample_rate)
    if audio.size < meter.block_size * sample_rate:
        return SILENCE_DBFS
    value = float(meter.integrated_loudness(audio.astype(np.float64, copy=False)))
    return value if math.isfinite(value) else SILENCE_DBFS


def problems_of(rms_dbfs: float, peak_dbfs: float, floor_dbfs: float) -> tuple[str, ...]:
    """Return one sentence per failed ACX check."""
    found = []
    if not ACX_RMS_MIN_DBFS <= rms_dbfs <= ACX_RMS_MAX_DBFS:
        found.append(f"RMS {rms_dbfs:.1f} dBFS is outside ACX's {ACX_RMS_MIN_DBFS:g} to {ACX_RMS_MAX_DBFS:g} dBFS")
    if peak_dbfs > ACX_PEAK_MAX_DBFS:
        found.append(f"peak {peak_dbfs:.2f} dBFS is above ACX's {ACX_PEAK_MAX_DBFS:g} dBFS ceiling")
    if floor_dbfs > ACX_NOISE_FLOOR_MAX_DBFS:
        found.append(f"noise floor {floor_dbfs:.1f} dBFS is above ACX's {ACX_NOISE_FLOOR_MAX_DBFS:g} dBFS limit")
    elif floor_dbfs < DIGITAL_SILENCE_DBFS:
        found.append(
            f"noise floor {floor_dbfs:.1f} dBFS is below {DIGITAL_SILENCE_DBFS:g} dBFS: digital silence; add room tone"
        )
    return tuple(found)


def measure(audio: np.ndarray, sample_rate: int) -> AcxFigures:
    """Return ACX Check's figures for mono `audio` (floats in [-1, 1]) and the checks it fails."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    duration = audio.size / sample_rate
    if audio.size == 0:
        return AcxFigures(SILENCE_DBFS, SILENCE_DBFS, SILENCE_DBFS, SILENCE_DBFS, 0.0, ("the audio is empty",))
    step = max(1, round(NOISE_STEP_S * sample_rate))
    energies, total = _step_energies(audio, step)
    rms_dbfs = to_dbfs(math.sqrt(total / audio.size))
    peak_dbfs = to_dbfs(max(float(audio.max()), -float(audio.min())))
    floor_dbfs = noise_floor_dbfs(audio, sample_rate, energies)
    rms_dbfs, peak_dbfs, floor_dbfs = (round(v, DECIMALS) for v in (rms_dbfs, peak_dbfs, floor_dbfs))
    return AcxFigures(
        rms_dbfs=rms_dbfs,
        peak_dbfs=peak_dbfs,
        noise_floor_dbfs=floor_dbfs,
        lufs=round(integrated_lufs(audio, sample_rate), DECIMALS),
        duration_s=round(duration, 3),
        problems=problems_of(rms_dbfs, peak_dbfs, floor_dbfs),
    )
