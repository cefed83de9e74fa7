"""Measure a chapter the way ACX Check does, so a book can be checked before it is submitted.

RMS is unweighted over the whole file, 20*log10(rms) with samples in [-1, 1] (a full-scale square
wave reads 0 dBFS, a full-scale sine -3 dBFS); the noise floor is the RMS of the quietest 0.4 s
window stepped by 0.1 s; loudness is BS.1770 integrated LUFS (the same figures as pyloudnorm).
Everything is block-wise numpy over 0.1 s steps, so an hour at 44.1 kHz takes a few seconds.
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
LUFS_BLOCK_S = 0.4  # BS.1770 gating block; blocks overlap by 75% (stepped NOISE_STEP_S)
LUFS_ABSOLUTE_GATE = -70.0  # LUFS
LUFS_RELATIVE_GATE_LU = -10.0
K_SHELF_HZ, K_SHELF_Q, K_SHELF_GAIN_DB = 1500.0, 1 / math.sqrt(2), 4.0  # BS.1770 K-weighting stage 1
K_HIGH_PASS_HZ, K_HIGH_PASS_Q = 38.0, 0.5  # stage 2
DECIMALS = 2  # figures are reported, and checked, to 0.01 dB
BLOCKS_PER_CHUNK = 2048  # steps converted to float64 at a time, to bound memory
SERIES_WINDOW_S = 3.0  # the report's loudness-over-time plot: RMS of 3 s windows (short-term, as EBU R 128's)
SERIES_STEP_S = 1.0  # ... stepped by 1 s


def to_dbfs(level: float) -> float:
    """Return 20*log10(level), or SILENCE_DBFS for zero."""
    return 20.0 * math.log10(level) if level > 0 else SILENCE_DBFS


def _step_energies(audio: np.ndarray, step: int, sos: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Return (sum of squares of each whole step, of the whole file), filtering by `sos` first if given."""
    from scipy.signal import sosfilt

    whole = audio.size // step
    energies = np.empty(whole, dtype=np.float64)
    zi = None if sos is None else np.zeros((sos.shape[0], 2))
    total = 0.0
    chunk_len = BLOCKS_PER_CHUNK * step
    for start in range(0, audio.size, chunk_len):
        chunk = audio[start : start + chunk_len].astype(np.float64)
        if sos is not None:
            chunk, zi = sosfilt(sos, chunk, zi=zi)
        first, n = start // step, chunk.size // step
        blocks = chunk[: n * step].reshape(n, step)
        energies[first : first + n] = np.einsum("ij,ij->i", blocks, blocks)
        total += float(energies[first : first + n].sum()) + float(np.dot(chunk[n * step :], chunk[n * step :]))
    return energies, total


def _biquad(kind: str, fc_hz: float, q: float, gain_db: float, sample_rate: int) -> np.ndarray:
    """Return one second-order section [b0 b1 b2 1 a1 a2] of a high-shelf or high-pass filter."""
    a_lin = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * fc_hz / sample_rate
    cos_w, alpha = math.cos(w0), math.sin(w0) / (2.0 * q)
    if kind == "high_shelf":
        root = 2.0 * math.sqrt(a_lin) * alpha
        b = [
            a_lin * ((a_lin + 1) + (a_lin - 1) * cos_w + root),
            -2 * a_lin * ((a_lin - 1) + (a_lin + 1) * cos_w),
            a_lin * ((a_lin + 1) + (a_lin - 1) * cos_w - root),
        ]
        a = [(a_lin + 1) - (a_lin - 1) * cos_w + root, 2 * ((a_lin - 1) - (a_lin + 1) * cos_w)]
        a.append((a_lin + 1) - (a_lin - 1) * cos_w - root)
    else:
        b = [(1 + cos_w) / 2, -(1 + cos_w), (1 + cos_w) / 2]
        a = [1 + alpha, -2 * cos_w, 1 - alpha]
    return np.array(b + a) / a[0]


def k_weighting(sample_rate: int) -> np.ndarray:
    """Return BS.1770's K-weighting (head-shelf then high-pass) as second-order sections."""
    return np.stack(
        [
            _biquad("high_shelf", K_SHELF_HZ, K_SHELF_Q, K_SHELF_GAIN_DB, sample_rate),
            _biquad("high_pass", K_HIGH_PASS_HZ, K_HIGH_PASS_Q, 0.0, sample_rate),
        ]
    )


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
    """Return the integrated loudness (ITU-R BS.1770-4, gated) in LUFS; SILENCE_DBFS if too short or silent."""
    return gated_lufs(lufs_blocks(audio, sample_rate))


def lufs_blocks(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Return the K-weighted mean square of each BS.1770 gating block (0.4 s, 75% overlap) of `audio`.

    The audio scaled by a gain g has exactly these blocks times g**2, so gated_lufs can tell the loudness
    of the audio at any gain without filtering it again."""
    step = max(1, round(NOISE_STEP_S * sample_rate))
    per_block = max(1, round(LUFS_BLOCK_S / NOISE_STEP_S))
    energies, _ = _step_energies(audio, step, k_weighting(sample_rate))
    if energies.size < per_block:
        return np.zeros(0)
    csum = np.concatenate(([0.0], np.cumsum(energies)))
    return (csum[per_block:] - csum[:-per_block]) / (per_block * step)


def gated_lufs(z: np.ndarray) -> float:
    """Return the integrated loudness (LUFS) of gating blocks `z` (lufs_blocks); SILENCE_DBFS if there are none."""
    if z.size == 0:
        return SILENCE_DBFS
    with np.errstate(divide="ignore"):
        loud = -0.691 + 10.0 * np.log10(z)
    gated = z[loud >= LUFS_ABSOLUTE_GATE]
    if gated.size == 0:
        return SILENCE_DBFS
    relative = -0.691 + 10.0 * math.log10(float(gated.mean())) + LUFS_RELATIVE_GATE_LU
    final = z[(loud > relative) & (loud >= LUFS_ABSOLUTE_GATE)]
    return -0.691 + 10.0 * math.log10(float(final.mean())) if final.size else SILENCE_DBFS


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


def loudness_series(audio: np.ndarray, sample_rate: int) -> dict:
    """Return unweighted RMS and sample peak (dBFS) of each SERIES_WINDOW_S window, stepped SERIES_STEP_S.

    The figures are ACX's own (unweighted RMS, sample peak) over short windows, so a plot of them shows
    where a chapter drifts from its whole-file figures. `start_s` is the first window's centre.
    """
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    step = max(1, round(SERIES_STEP_S * sample_rate))
    per_window = max(1, round(SERIES_WINDOW_S / SERIES_STEP_S))
    energies, _ = _step_energies(audio, step)
    series = {"window_s": SERIES_WINDOW_S, "step_s": SERIES_STEP_S}
    if energies.size < per_window:  # shorter than one window: one point for the whole file
        rms = math.sqrt(float(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
        peak = float(np.abs(audio).max()) if audio.size else 0.0
        return series | {"start_s": round(audio.size / sample_rate / 2, 3),
                         "rms_dbfs": [round(to_dbfs(rms), DECIMALS)], "peak_dbfs": [round(to_dbfs(peak), DECIMALS)]}
    peaks = np.array([float(np.abs(audio[i * step : (i + 1) * step]).max()) for i in range(energies.size)])
    csum = np.concatenate(([0.0], np.cumsum(energies)))
    windows = (csum[per_window:] - csum[:-per_window]) / (per_window * step)
    window_peaks = [float(peaks[i : i + per_window].max()) for i in range(windows.size)]
    return series | {
        "start_s": round(per_window * step / sample_rate / 2, 3),
        "rms_dbfs": [round(to_dbfs(math.sqrt(max(float(e), 0.0))), DECIMALS) for e in windows],
        "peak_dbfs": [round(to_dbfs(p), DECIMALS) for p in window_peaks],
    }


SPEECH_THRESHOLD_DBFS = -45.0  # a 10 ms block louder than this is speech, not room tone (room tone sits near -70)
EDGE_BLOCK_S = 0.01


def room_tone_edges(audio: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """Return the seconds of room tone before the first and after the last block louder than SPEECH_THRESHOLD_DBFS."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    step = max(1, round(EDGE_BLOCK_S * sample_rate))
    energies, _ = _step_energies(audio, step)
    loud = np.flatnonzero(energies / step > 10.0 ** (SPEECH_THRESHOLD_DBFS / 10.0))
    duration = audio.size / sample_rate
    if loud.size == 0:
        return round(duration, 3), round(duration, 3)
    head, tail = int(loud[0]) * step / sample_rate, duration - (int(loud[-1]) + 1) * step / sample_rate
    return round(head, 3), round(tail, 3)
