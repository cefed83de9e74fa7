"""Assemble a chapter's takes into one track with natural pauses, then master it to ACX's spec.

Assembly decides every cue's position in samples, so cue timings are exact by construction;
mastering never changes the length, so the cues stay valid through it.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from stages import files
from stages.errors import StageError
from stages.model import Chapter, Cue, Segment, Take
from stages.wav import read_wav

log = logging.getLogger(__name__)

MASTER_SAMPLE_RATE_HZ = 44100
CHUNK_SAMPLES = 1 << 21  # filters and sums run on this many samples at a time, to bound memory

# Silence laid between takes (room tone fills it when mastering), after each take's edges are trimmed.
CLAUSE_PAUSE_MS = 150  # between parts of one sentence, e.g. a quotation and its "said she"
SENTENCE_PAUSE_MS = 500
VERSE_LINE_PAUSE_MS = 350
PARAGRAPH_PAUSE_MS = 1000
HEADING_PAUSE_MS = 1500  # after the chapter title (or any heading)
SCENE_BREAK_PAUSE_MS = 2000  # replaces the paragraph pause where a scene break sits
TAKE_EDGE_DBFS = -50.0  # a take's leading and trailing samples quieter than this are edge silence
TAKE_LEAD_KEEP_MS = 30  # edge silence kept before the first sound (the engine leaves 30-70 ms)
TAKE_TAIL_KEEP_MS = 120  # and after the last (it leaves 100-350 ms), so pauses come out even
HEAD_ROOM_TONE_MS = 750  # ACX: 0.5-1 s before the first word
TAIL_ROOM_TONE_MS = 2500  # ACX: 1-5 s after the last word

# Mastering targets (ACX: RMS -23..-18 dBFS, peak <= -3 dBFS, noise floor <= -60 dBFS).
HIGH_PASS_HZ = 80.0
HIGH_PASS_ORDER = 2
COMPRESSOR_THRESHOLD_DBFS = -20.0  # applied after the track is brought to the target RMS
COMPRESSOR_RATIO = 2.5
COMPRESSOR_ATTACK_MS = 10.0
COMPRESSOR_RELEASE_MS = 150.0
TARGET_RMS_DBFS = -20.0
RMS_TOLERANCE_DB = 0.2  # stop adjusting the gain once the limited track is this close to the target
MAX_GAIN_PASSES = 4
PEAK_CEILING_DBFS = -3.2  # sample peak after limiting; room tone adds well under 0.05 dB
LIMITER_BLOCK_SAMPLES = 32  # the gain curve is computed per block and ramped linearly across it
LIMITER_HOLD_MS = 20.0  # gain reduction is held this long either side of a peak
LIMITER_SMOOTH_MS = 8.0  # half-width of each of the two box filters that smooth the gain
ROOM_TONE_DBFS = -70.0  # RMS of the noise laid under the whole track
ROOM_TONE_CORNER_HZ = 500.0  # the noise falls off above this (a soft, room-like hiss)
ROOM_TONE_SEED = 20240601

# Level matching: every voice of a chapter is brought to the narrator's speech loudness before mastering.
LEVEL_MATCH_MAX_DB = 10.0  # the correction a voice gets is capped at this, up or down
LEVEL_MIN_SPEECH_S = 1.0  # a voice with less speech than this in a chapter is not measured and keeps its level
LEVEL_SPREAD_MIN_SPEECH_S = 3.0  # only voices with at least this much speech count towards the reported spread

SENTENCE_END = re.compile(r"[.!?…。！？]['\"”’»)\]』」]*\s*$")


def db_to_gain(db: float) -> float:
    return 10.0 ** (db / 20.0)


def rms(audio: np.ndarray) -> float:
    """Return the RMS of `audio` (float64 accumulation, chunk by chunk)."""
    if audio.size == 0:
        return 0.0
    total = 0.0
    for start in range(0, audio.size, CHUNK_SAMPLES):
        x = audio[start : start + CHUNK_SAMPLES].astype(np.float64)
        total += float(np.dot(x, x))
    return math.sqrt(total / audio.size)


def filter_sos(sos: np.ndarray, audio: np.ndarray) -> np.ndarray:
    """Return `audio` through the IIR filter `sos`, as float32, chunk by chunk (no whole float64 copy)."""
    from scipy.signal import sosfilt

    out = np.empty(audio.size, np.float32)
    state = np.zeros((sos.shape[0], 2))
    for start in range(0, audio.size, CHUNK_SAMPLES):
        chunk, state = sosfilt(sos, audio[start : start + CHUNK_SAMPLES], zi=state)
        out[start : start + chunk.size] = chunk
    return out


def ms_to_samples(ms: int, sample_rate: int = MASTER_SAMPLE_RATE_HZ) -> int:
    return (ms * sample_rate + 500) // 1000


def samples_to_ms(n: int, sample_rate: int = MASTER_SAMPLE_RATE_HZ) -> int:
    return (n * 1000 + sample_rate // 2) // sample_rate


def pause_ms(prev: Segment, kind: str, *, prev_kind: str, new_paragraph: bool, scene_break: bool) -> int:
    """Return the silence before a segment of paragraph `kind`, given the segment spoken before it."""
    if scene_break:
        return SCENE_BREAK_PAUSE_MS
    if new_paragraph:
        return HEADING_PAUSE_MS if prev_kind == "heading" else PARAGRAPH_PAUSE_MS
    if kind == "verse":
        return VERSE_LINE_PAUSE_MS
    return SENTENCE_PAUSE_MS if SENTENCE_END.search(prev.text) else CLAUSE_PAUSE_MS


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Return `audio` resampled with a polyphase filter (22050 -> 44100 is exactly 2x)."""
    if from_rate == to_rate:
        return audio.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = math.gcd(from_rate, to_rate)
    return resample_poly(audio, to_rate // g, from_rate // g).astype(np.float32, copy=False)


def trim_edges(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Return `audio` with edge silence cut to TAKE_LEAD_KEEP_MS before and TAKE_TAIL_KEEP_MS after the sound."""
    loud = np.flatnonzero(np.abs(audio) > db_to_gain(TAKE_EDGE_DBFS))
    if loud.size == 0:
        return audio
    start = max(0, int(loud[0]) - ms_to_samples(TAKE_LEAD_KEEP_MS, sample_rate))
    end = min(audio.size, int(loud[-1]) + 1 + ms_to_samples(TAKE_TAIL_KEEP_MS, sample_rate))
    return audio[start:end]


def load_take(take: Take, sample_rate: int = MASTER_SAMPLE_RATE_HZ) -> np.ndarray:
    """Return a take's audio at `sample_rate`, its edge silence trimmed."""
    audio, rate = read_wav(Path(take.path))
    if rate != take.sample_rate:
        log.warning("take %s: file is %d Hz, record says %d Hz", take.segment_id, rate, take.sample_rate)
    return trim_edges(resample(audio, rate, sample_rate), sample_rate)


def voice_loudness(takes_by_voice: Mapping[str, Sequence[np.ndarray]], sample_rate: int) -> dict[str, float | None]:
    """Return each voice's integrated loudness (BS.1770, LUFS) over its takes joined; None under LEVEL_MIN_SPEECH_S."""
    return {v: _loudness(z) for v, z in voice_blocks(takes_by_voice, sample_rate).items()}


def voice_blocks(takes_by_voice: Mapping[str, Sequence[np.ndarray]], sample_rate: int) -> dict[str, np.ndarray]:
    """Return each voice's BS.1770 gating blocks (acx.lufs_blocks) over its takes joined; none under
    LEVEL_MIN_SPEECH_S of speech."""
    from stages import acx  # its BS.1770 meter gives pyloudnorm's figures (within 0.01 LU) several times faster

    out: dict[str, np.ndarray] = {}
    for voice, pieces in takes_by_voice.items():
        joined = np.concatenate(list(pieces)) if len(pieces) else np.zeros(0, np.float32)
        enough = joined.size >= LEVEL_MIN_SPEECH_S * sample_rate
        out[voice] = acx.lufs_blocks(joined, sample_rate) if enough else np.zeros(0)
    return out


def _loudness(blocks: np.ndarray, gain_db: float = 0.0) -> float | None:
    """Return the loudness (LUFS) of gating `blocks` at `gain_db` more, or None when silent or too short."""
    from stages import acx

    lufs = acx.gated_lufs(blocks * db_to_gain(2 * gain_db)) if blocks.size else acx.SILENCE_DBFS
    return lufs if math.isfinite(lufs) and lufs > acx.SILENCE_DBFS else None


def voice_gains(loudness: Mapping[str, float | None], reference: str) -> dict[str, float]:
    """Return the gain (dB, capped at +-LEVEL_MATCH_MAX_DB) that brings each voice to `reference`'s loudness.

    Unmeasured voices get 0; so does every voice when the reference itself could not be measured.
    """
    ref = loudness.get(reference)
    cap = LEVEL_MATCH_MAX_DB
    return {
        v: 0.0 if lufs is None or ref is None else round(max(-cap, min(cap, ref - lufs)), 2)
        for v, lufs in loudness.items()
    }


def loudness_spread(loudness: Mapping[str, float | None], speech_s: Mapping[str, float]) -> float | None:
    """Return max - min loudness (LU) over voices with LEVEL_SPREAD_MIN_SPEECH_S of speech; None under two such."""
    counted = [lufs for v, lufs in loudness.items() if lufs is not None and speech_s[v] >= LEVEL_SPREAD_MIN_SPEECH_S]
    return round(max(counted) - min(counted), 2) if len(counted) >= 2 else None


def match_levels(
    chapter: Chapter, takes: Mapping[str, Take], voice_of: Mapping[str, tuple[str, float]], *, reference: str
) -> tuple[dict[str, float], dict]:
    """Return each segment's level-matching gain (dB) and the chapter's level report.

    `voice_of` maps a segment id to (voice id, delivery gain dB). A voice is measured over its takes
    with each take's delivery gain taken back out, so a whispered line still counts at its voice's
    own level; the voice's gain is then applied to all its takes, keeping the delivery's colour
    relative to the voice. The report gives loudness before and after (LUFS), the gains and the spreads.
    """
    by_voice: dict[str, list[np.ndarray]] = {}
    rate = 0
    for seg in chapter.segments:
        if seg.id not in takes:
            continue  # assemble_chapter says which take is missing
        audio, rate = read_wav(Path(takes[seg.id].path))
        voice, delivery_db = voice_of[seg.id]
        audio = trim_edges(audio, rate)
        by_voice.setdefault(voice, []).append(audio * np.float32(db_to_gain(-delivery_db)) if delivery_db else audio)
    if not by_voice:
        return {}, {"reference": reference, "voices": {}, "spread_before_lu": None, "spread_after_lu": None}
    blocks = voice_blocks(by_voice, rate)
    before = {v: _loudness(z) for v, z in blocks.items()}
    gains = voice_gains(before, reference)
    after = {v: _loudness(z, gains[v]) for v, z in blocks.items()}  # a gain scales every block's power by its square
    speech_s = {v: sum(a.size for a in p) / rate for v, p in by_voice.items()}

    def lu(x: float | None) -> float | None:
        return None if x is None else round(x, 2)

    voices = {v: {"speech_s": round(speech_s[v], 2), "lufs_before": lu(before[v]), "gain_db": gains[v],
                  "lufs_after": lu(after[v])} for v in sorted(by_voice)}
    report = {"reference": reference, "voices": voices, "spread_before_lu": loudness_spread(before, speech_s),
              "spread_after_lu": loudness_spread(after, speech_s)}
    return {s.id: gains[voice_of[s.id][0]] for s in chapter.segments if s.id in takes}, report


def mastered_levels(
    audio: np.ndarray, sample_rate: int, cues: Sequence[Cue], voice_of: Mapping[str, tuple[str, float]], levels: dict
) -> dict:
    """Return `levels` (match_levels' report) with each voice's loudness in the mastered track and that spread added.

    Each voice is measured over its cues' spans, delivery gains taken back out as in match_levels.
    """
    by_voice: dict[str, list[np.ndarray]] = {}
    for cue in cues:
        voice, delivery_db = voice_of[cue.id]
        span = audio[ms_to_samples(cue.start_ms, sample_rate) : ms_to_samples(cue.end_ms, sample_rate)]
        by_voice.setdefault(voice, []).append(span * np.float32(db_to_gain(-delivery_db)) if delivery_db else span)
    loud = voice_loudness(by_voice, sample_rate)
    speech_s = {v: sum(a.size for a in p) / sample_rate for v, p in by_voice.items()}
    voices = {v: f | {"lufs_mastered": None if loud.get(v) is None else round(loud[v], 2)}
              for v, f in levels.get("voices", {}).items()}
    return levels | {"voices": voices, "spread_mastered_lu": loudness_spread(loud, speech_s)}


def assemble_chapter(
    chapter: Chapter, takes: Mapping[str, Take], *, gains_db: Mapping[str, float] | None = None
) -> tuple[np.ndarray, list[Cue]]:
    """Return the chapter's unmastered track (float32 mono at 44.1 kHz) and one cue per segment.

    `gains_db` (segment id -> dB, from match_levels) scales those takes; a missing or zero gain leaves a take as is.
    """
    rate = MASTER_SAMPLE_RATE_HZ
    pieces: list[np.ndarray] = [np.zeros(ms_to_samples(HEAD_ROOM_TONE_MS), np.float32)]
    pos = pieces[0].size
    cues: list[Cue] = []
    prev: Segment | None = None
    prev_kind = ""
    scene_break = False
    for para in chapter.paragraphs:
        if para.kind == "scene_break":
            scene_break = prev is not None  # a break before the first words adds nothing
            continue
        for i, seg in enumerate(para.segments):
            if seg.id not in takes:
                raise StageError(
                    f"chapter {chapter.number}: no take for segment {seg.id}; render the chapter before mastering it"
                )
            if prev is not None:
                gap = ms_to_samples(
                    pause_ms(prev, para.kind, prev_kind=prev_kind, new_paragraph=i == 0, scene_break=scene_break)
                )
                pieces.append(np.zeros(gap, np.float32))
                pos += gap
            audio = load_take(takes[seg.id], rate)
            if gains_db and gains_db.get(seg.id, 0.0):
                audio = audio * np.float32(db_to_gain(gains_db[seg.id]))
            pieces.append(audio)
            cues.append(Cue(seg.id, seg.text, seg.speaker, samples_to_ms(pos), samples_to_ms(pos + audio.size)))
            pos += audio.size
            prev, prev_kind, scene_break = seg, para.kind, False
    pieces.append(np.zeros(ms_to_samples(TAIL_ROOM_TONE_MS), np.float32))
    return np.concatenate(pieces), cues


def high_pass(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Return `audio` with rumble below HIGH_PASS_HZ removed (Butterworth)."""
    from scipy.signal import butter

    sos = butter(HIGH_PASS_ORDER, HIGH_PASS_HZ, btype="highpass", fs=sample_rate, output="sos")
    return filter_sos(sos, audio)


def compress(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Return `audio` gently compressed (its RMS should already be near the target)."""
    from pedalboard import Compressor

    comp = Compressor(
        threshold_db=COMPRESSOR_THRESHOLD_DBFS,
        ratio=COMPRESSOR_RATIO,
        attack_ms=COMPRESSOR_ATTACK_MS,
        release_ms=COMPRESSOR_RELEASE_MS,
    )
    return np.asarray(comp(audio, sample_rate), dtype=np.float32).reshape(-1)


def limit(audio: np.ndarray, sample_rate: int, ceiling_dbfs: float = PEAK_CEILING_DBFS) -> np.ndarray:
    """Return `audio` with every sample peak at or below `ceiling_dbfs`, by a look-ahead gain curve.

    Per block of LIMITER_BLOCK_SAMPLES, the gain the loudest sample needs is min-held over +-hold
    blocks, smoothed by two box filters reaching less than the hold, then ramped linearly from block
    to block. Every gain a sample gets is therefore at most what it needs: no clipping, no overshoot.
    """
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    ceiling = db_to_gain(ceiling_dbfs)
    if audio.size == 0 or max(float(audio.max()), -float(audio.min())) <= ceiling:
        return audio.copy()
    size, block = audio.size, LIMITER_BLOCK_SAMPLES
    blocks = -(-size // block)
    padded = np.zeros(blocks * block, np.float32)
    padded[:size] = audio
    loudest = np.abs(padded.reshape(blocks, block)).max(axis=1)
    need = np.minimum(1.0, ceiling / np.maximum(loudest, 1e-12)).astype(np.float32)
    smooth = max(1, round(LIMITER_SMOOTH_MS * sample_rate / 1000 / block))
    hold = max(2 * smooth + 1, round(LIMITER_HOLD_MS * sample_rate / 1000 / block))
    gain = minimum_filter1d(np.append(need, need[-1]), size=2 * hold + 1, mode="nearest")
    for _ in range(2):
        gain = uniform_filter1d(gain, size=2 * smooth + 1, mode="nearest")
    ramp = np.arange(block, dtype=np.float32) / block
    curve = gain[:-1, None] + (gain[1:] - gain[:-1])[:, None] * ramp
    out = padded.reshape(blocks, block)
    out *= curve
    out = padded[:size]
    return np.clip(out, -ceiling, ceiling, out=out)  # only float rounding can reach this


def room_tone(num_samples: int, sample_rate: int, dbfs: float = ROOM_TONE_DBFS, *,
              cache_dir: Path | None = None) -> np.ndarray:
    """Return deterministic soft noise (white through a one-pole low-pass) with RMS `dbfs`.

    The noise for n samples is the first n of the noise for any longer length (the generator and the
    filter run sample by sample), so with `cache_dir` the longest noise made so far is kept there and
    a shorter one is read from it: the same samples, without drawing and filtering them again."""
    noise = _noise(num_samples, sample_rate, cache_dir)
    level = rms(noise)
    return noise * np.float32(db_to_gain(dbfs) / level) if level > 0 else np.array(noise)


def _noise(num_samples: int, sample_rate: int, cache_dir: Path | None) -> np.ndarray:
    """Return the first `num_samples` of the low-passed noise, from `cache_dir` when a long enough one is there."""
    kept = Path(cache_dir) / "room-tone" / f"noise-{ROOM_TONE_SEED}-{sample_rate}-{ROOM_TONE_CORNER_HZ:g}.f32" \
        if cache_dir is not None else None
    if kept is not None and kept.is_file() and kept.stat().st_size >= 4 * num_samples:
        return np.memmap(kept, dtype="<f4", mode="r", shape=(num_samples,))
    rng = np.random.default_rng(ROOM_TONE_SEED)
    pole = math.exp(-2 * math.pi * ROOM_TONE_CORNER_HZ / sample_rate)
    one_pole = np.array([[1.0 - pole, 0.0, 0.0, 1.0, -pole, 0.0]])
    noise = filter_sos(one_pole, rng.standard_normal(num_samples, np.float32))
    if kept is not None:
        with files.atomic_path(kept) as tmp:
            noise.astype("<f4", copy=False).tofile(tmp)
    return noise


def master(audio: np.ndarray, sample_rate: int, *, cache_dir: Path | None = None) -> np.ndarray:
    """Return `audio` mastered for ACX: high-passed, compressed, -20 dBFS RMS, peaks <= -3.2 dBFS, room tone under
    (its noise kept in `cache_dir`, see room_tone)."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if audio.size == 0:
        return audio.copy()
    target = db_to_gain(TARGET_RMS_DBFS)
    shaped = high_pass(audio, sample_rate)
    level = rms(shaped)
    if level > 0:
        shaped *= np.float32(target / level)
        shaped = compress(shaped, sample_rate)
        gain = target / max(rms(shaped), 1e-12)
        for _ in range(MAX_GAIN_PASSES):
            out = limit(shaped * np.float32(gain), sample_rate)
            reached = rms(out)
            if abs(20 * math.log10(reached / target)) <= RMS_TOLERANCE_DB:
                break
            gain *= target / reached
        shaped = out
    shaped += room_tone(shaped.size, sample_rate, cache_dir=cache_dir)
    return shaped
