"""Speaker-embedding figures behind the voice library's thresholds and voice matching.

    python bench/voice_similarity.py

Voices: the five bundled voices (one Piper model, reshaped) and ten more Praat reshapings of joe at other
pitch and formant settings. Each voice says an enrolment passage (its fingerprint, as `voices add` stores
one) and four other probe passages. Prints:

1. the protected-voice threshold: same-voice scores (a voice's fingerprint vs its own probes) against
   different-voice scores (vs every other voice's probes), for whole probes (about 5 s) and for their
   first 3 s (the shortest clip `voices add` takes), with false accepts / false rejects;
2. how close small reshapings of a protected voice stay to its fingerprint (what the guard still catches);
3. the one-speaker check: two halves of one voice against halves from two voices, by half length;
4. voice matching: cosine of reference clips to the base voice joe and to the voice matched to each.

Prints figures; asserts nothing.
"""

from __future__ import annotations

import itertools
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from stages.engines import get_engine  # noqa: E402
from stages.model import Voice  # noqa: E402
from stages.voices.add import PROTECTED_MATCH_COSINE, one_speaker_bound  # noqa: E402
from stages.voices.card import load_cards  # noqa: E402
from stages.voices.clip import speech_span  # noqa: E402
from stages.voices.embed import cosine, embed, halves_agree  # noqa: E402
from stages.voices.match import estimate, match_report, match_voice  # noqa: E402
from stages.wav import read_wav  # noqa: E402

CACHE = REPO / "output" / ".cache" / "embeddings"
ENROLMENT = ("It was late in the afternoon when the carriage finally reached the gates, and the whole household "
             "came out into the yard to meet it.")
PROBES = (
    "The rain had not stopped since morning, and the lamps along the harbour were lit long before four o'clock.",
    "She counted the boats twice, then walked back up the hill with her collar turned against the wind.",
    "Nobody in the village could remember a winter so long, or a spring that arrived so suddenly after it.",
    "He folded the letter into quarters, slipped it inside his coat, and said nothing at all to his brother.",
)
SHORT_PROBE_S = 3.0
THRESHOLDS = (0.78, 0.80, PROTECTED_MATCH_COSINE, 0.84, 0.86, 0.88)
HALF_LENGTHS_S = (1.5, 2.5, 4.0)
# (name, pitch median Hz (0 keeps joe's), formant shift ratio, pitch range factor): reshapings of joe
VARIANTS = (
    ("joe-f70-r0.95", 70.0, 0.95, 0.9), ("joe-f105", 105.0, 1.0, 1.0), ("joe-f140", 140.0, 1.0, 1.1),
    ("joe-f140-r1.12", 140.0, 1.12, 1.0), ("joe-f165-r1.08", 165.0, 1.08, 1.2), ("joe-f200", 200.0, 1.0, 1.0),
    ("joe-f200-r1.3", 200.0, 1.3, 1.2), ("joe-f260-r1.3", 260.0, 1.3, 1.3), ("joe-r0.85", 0.0, 0.85, 1.0),
    ("joe-r1.1", 0.0, 1.1, 1.0),
)
# small reshapings of a protected voice (joe): does its fingerprint still catch them?
NUDGES = (("pitch x1.05", 1.05, 1.0), ("pitch x1.10", 1.10, 1.0), ("pitch x1.20", 1.20, 1.0),
          ("formants x1.03", 1.0, 1.03), ("formants x1.06", 1.0, 1.06), ("both x1.10 / x1.05", 1.10, 1.05))
JOE_MEDIAN_HZ = 88.0  # joe's own median pitch, measured on these passages


def shaped(base: Voice, vid: str, pitch_hz: float, formant: float, range_factor: float = 1.0) -> Voice:
    """Return joe reshaped with Praat under the id `vid`."""
    params = dict(base.params, formant_shift_ratio=formant, pitch_range_factor=range_factor)
    if pitch_hz:
        params["pitch_median_hz"] = pitch_hz
    return replace(base, id=vid, name=vid, params=params)


def say(voice: Voice, text: str) -> tuple[np.ndarray, int]:
    """Return `text` spoken by `voice`, edge silence trimmed, and its sample rate."""
    engine = get_engine(voice.engine)
    audio = engine.synthesize(text, voice)
    return speech_span(audio, engine.sample_rate)[0], engine.sample_rate


def say_all(voices: dict[str, Voice], texts: tuple[str, ...]) -> dict[tuple[str, int], tuple[np.ndarray, int]]:
    """Return every voice saying every text, keyed (voice id, text index); two Piper sessions at a time."""
    jobs = [(v, k) for v in voices for k in range(len(texts))]
    with ThreadPoolExecutor(2) as pool:
        return dict(zip(jobs, pool.map(lambda job: say(voices[job[0]], texts[job[1]]), jobs)))


def errors(genuine: list[float], impostor: list[float], threshold: float) -> str:
    fr = sum(s < threshold for s in genuine)
    fa = sum(s >= threshold for s in impostor)
    return f"FR {fr:>2}/{len(genuine)}  FA {fa:>3}/{len(impostor)}"


def calibration(voices: dict[str, Voice], clips: dict, enrol: dict) -> None:
    print(f"\n1. protected-voice threshold: {len(voices)} voices; fingerprint = enrolment passage, probes = "
          f"{len(PROBES)} other passages (FR: same voice under the threshold, slips past the guard; FA: a different "
          f"voice at or over it, refused)")
    rows = {}
    for label, cut in (("whole probes (~5 s)", None), (f"first {SHORT_PROBE_S:.0f} s of each", SHORT_PROBE_S)):
        probe = {}
        for (v, k), (audio, rate) in clips.items():
            probe[(v, k)] = embed(audio if cut is None else audio[: int(cut * rate)], rate)
        genuine = [cosine(enrol[v], probe[(v, k)]) for v in voices for k in range(len(PROBES))]
        impostor = [(cosine(enrol[v], probe[(w, k)]), v, w) for v in voices for w in voices if w != v
                    for k in range(len(PROBES))]
        scores = [s for s, _, _ in impostor]
        rows[label] = (genuine, scores)
        print(f"   {label}: same voice min {min(genuine):.3f} median {np.median(genuine):.3f}; different voice "
              f"median {np.median(scores):.3f} 95th pct {np.percentile(scores, 95):.3f} max {max(scores):.3f}")
        if cut is None:
            top: dict[tuple[str, str], float] = {}
            for s, v, w in impostor:
                top[tuple(sorted((v, w)))] = max(top.get(tuple(sorted((v, w))), 0.0), s)
            print("   closest different voices:", ", ".join(f"{a}/{b} {s:.3f}" for (a, b), s in
                                                          sorted(top.items(), key=lambda x: -x[1])[:4]))
    for threshold in THRESHOLDS:
        cells = "   ".join(f"{label.split(' (')[0]}: {errors(g, i, threshold)}" for label, (g, i) in rows.items())
        marker = "   <- PROTECTED_MATCH_COSINE" if threshold == PROTECTED_MATCH_COSINE else ""
        print(f"   at {threshold:.2f}   {cells}{marker}")


def nudges(joe: Voice, enrol: np.ndarray) -> None:
    print(f"\n2. the protected voice joe reshaped a little, {len(PROBES)} probes each vs its fingerprint "
          f"(caught = cosine >= {PROTECTED_MATCH_COSINE}):")
    voices = {label: shaped(joe, label, JOE_MEDIAN_HZ * pitch, formant) for label, pitch, formant in NUDGES}
    clips = say_all(voices, PROBES)
    for label in voices:
        scores = [cosine(enrol, embed(*clips[(label, k)])) for k in range(len(PROBES))]
        caught = sum(s >= PROTECTED_MATCH_COSINE for s in scores)
        print(f"   {label:<20} cosine {min(scores):.3f}..{max(scores):.3f}  caught {caught}/{len(scores)}")


def one_speaker(clips: dict) -> None:
    """Halves from one voice's three joined probes vs a half from one voice and a half from another."""
    voices = sorted({v for v, _ in clips})
    rate = clips[(voices[0], 0)][1]
    joined = {v: np.concatenate([clips[(v, k)][0] for k in (0, 1, 2)]) for v in voices}
    print("\n3. one-speaker check: cosine of the two halves' embeddings (halves_agree), refused under the bound")
    for half_s in HALF_LENGTHS_S:
        n, bound = int(half_s * rate), one_speaker_bound(half_s)
        single = []
        for v in voices:
            audio = joined[v]
            for middle in (audio.size // 3, audio.size // 2, 2 * audio.size // 3):
                single.append(halves_agree(audio[middle - n: middle + n], rate))
        # two voices back to back: each half is one voice's piece, so the pieces are embedded once
        first = {v: embed(joined[v][:n], rate) for v in voices}
        second = {v: embed(clips[(v, 3)][0][-n:], rate) for v in voices}
        double = [(cosine(first[v], second[w]), v, w) for v, w in itertools.permutations(voices, 2)]
        passed = sorted((d for d in double if d[0] >= bound), reverse=True)
        distinct = [s for s, v, w in double if {v, w} == {"joe", "joe-soprano"}]
        print(f"   halves of {half_s:.1f} s (bound {bound:.2f}): one voice min {min(single):.3f} median "
              f"{np.median(single):.3f}, refused {sum(s < bound for s in single)}/{len(single)}; two voices median "
              f"{np.median([d[0] for d in double]):.3f}, passed {len(passed)}/{len(double)}; joe + joe-soprano "
              f"{' / '.join(f'{s:.3f}' for s in distinct)}")
        if passed:
            print("      two voices that pass: " + ", ".join(f"{v}+{w} {s:.3f}" for s, v, w in passed[:4]))


def matching(cards: dict, joe: Voice) -> None:
    print("\n4. voice matching toward a reference clip: cosine of the reference to each voice's calibration passage")
    rows = []
    for vid in ("joe-alto", "joe-soprano", "joe-deep", "joe-bright"):
        ref = cards[vid].references[0]
        rows.append((f"{vid} reference.wav", *read_wav(cards[vid].folder / ref.path), ref.transcript))
    odd = shaped(joe, "joe-f150-r1.15", 150.0, 1.15, 1.1)
    rows.append(("joe at 150 Hz, formants x1.15", *say(odd, PROBES[2]), PROBES[2]))
    for label, audio, rate, text in rows:
        found = estimate(audio, rate, text, joe)
        matched = match_voice(audio, rate, text, joe, voice_id="matched")
        report = match_report(audio, rate, joe, matched, cache_dir=CACHE)
        p = matched.params
        print(f"   {label:<31} base joe {report['cosine_base']:.3f} -> matched {report['cosine_matched']:.3f}  "
              f"(pitch {p['pitch_median_hz']:.0f} Hz, formants x{p['formant_shift_ratio']:.3f}, range "
              f"x{p['pitch_range_factor']:.2f}, length_scale {p['length_scale']:.3f} "
              f"for rate x{found.length_ratio:.3f})")


def main() -> None:
    started = time.perf_counter()
    cards = load_cards()
    joe = cards["joe"].voice
    voices = {vid: cards[vid].voice for vid in ("joe", "joe-alto", "joe-bright", "joe-deep", "joe-soprano")}
    voices |= {name: shaped(joe, name, pitch, formant, rng) for name, pitch, formant, rng in VARIANTS}
    clips = say_all(voices, PROBES)
    enrol = {v: embed(*say(voice, ENROLMENT)) for v, voice in voices.items()}
    calibration(voices, clips, enrol)
    nudges(joe, enrol["joe"])
    one_speaker(clips)
    matching(cards, joe)
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
