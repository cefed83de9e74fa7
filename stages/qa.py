"""Take QA: every take is heard back by speech recognition and measured before it goes into a chapter.

A take fails when what Whisper hears differs from the segment's spoken text by more than a few
words (normalized WER: case, punctuation, digits, contractions and British/American spelling set
aside), when a name from the book's lexicon is not heard, or when the audio itself is wrong: NaN,
clipped, silent, or too short or too long for its text at the voice's measured speaking rate.
stages/render.py retakes a failing take with other synthesis settings and keeps the best one.
A language the recognizer does not know is reported as not checked, never as passed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from stages import files
from stages.errors import UserError

CONFIG_TABLE = "qa"
MAX_WER = 0.05  # a take fails above this share of its words wrong ...
MIN_ERRORS = 2  # ... and only with at least this many wrong words: one misheard "oh" is not a failure
RETAKES = 4  # new attempts at a failing take before it is flagged (bench/qa_wer.py: 2 leave P&P ch. I at 3.4% WER)
# Take length of the bundled voice (en_US-joe-medium, noise off), fitted on Pride and Prejudice chapter 1
# (66 takes, 3.8 min): seconds = 0.29 + letters / 16.3, each take within -27%..+36% of that. A take
# outside DURATION_RANGE times the fit (the fit stretched by a delivery's length_ratio) is truncated
# or has extra audio. Han characters count as LETTERS_PER_HAN letters (about 4.5 a second; not measured
# here, since no Chinese voice ships).
TAKE_LEAD_S = 0.29
LETTERS_PER_S = 16.3
LETTERS_PER_HAN = 3.6
DURATION_RANGE = (0.6, 1.6)
DURATION_SLACK_S = 0.4  # added to the upper bound: a short take's pauses vary most
CLIP_LEVEL = 0.999  # a sample at or above this magnitude is at full scale
MAX_CLIPPED_SAMPLES = 3  # more full-scale samples than this is clipping
SILENCE_DBFS = -45.0  # a take whose loudest 50 ms is quieter than this has no speech in it
SPEECH_WINDOW_S = 0.05
# Takes are heard in windows of up to ASR_WINDOW_S, in chapter order, ASR_GAP_S of silence apart:
# Whisper encodes 30 s however short the clip, and hears a word better with its neighbours. On
# Pride and Prejudice chapter 1 this is about twice as fast as one take at a time, and the WER of the
# first takes 4.9% rather than 6.9%. Names are not given to Whisper as a prompt: with tiny.en a prompt
# of the chapter's names raised that WER to 7.6%; a name is matched by spelling distance instead.
ASR_WINDOW_S = 20.0
ASR_GAP_S = 0.8
# a name counts as heard when a recognised word is this close to it (edit distance over its length)
NAME_DISTANCE = 0.34

_CONTRACTIONS = {"won't": "will not", "can't": "can not", "shan't": "shall not", "cannot": "can not",
                 "let's": "let us", "'tis": "it is", "'twas": "it was", "ain't": "am not"}
# "it is" said may be heard as "it's", or as "its": compared as one word where the other side has it so
_PRONOUN_S = ("it", "that", "he", "she", "there", "what", "where", "who", "here", "how")
_SUFFIXES = {"n't": " not", "'re": " are", "'ve": " have", "'ll": " will", "'m": " am", "'d": " would"}
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "ʼ": "'"})
_DASHES = re.compile(r"[-‐‑‒–—―_/]+")
_THOUSANDS = re.compile(r"(\d)\s*,\s*(\d{3})\b")  # Whisper writes "4 ,000"
_NOT_WORD = re.compile(r"[^\w' ]+")
_OUR = re.compile(r"^(\w{3,}?)our(s|ed|ing|hood|ite|ites|able|ably|ful|less|er|ers)?$")
_ISE = re.compile(r"^(\w{2,})is(e|es|ed|ing|ation|ations)$")


@dataclass(frozen=True)
class QaConfig:
    """The [qa] table of audiobook.toml."""

    enabled: bool = True
    retakes: int = RETAKES
    max_wer: float = MAX_WER
    min_errors: int = MIN_ERRORS

    @classmethod
    def from_project(cls, config: dict) -> QaConfig:
        """Return the settings in a project config's [qa] table (defaults when it has none)."""
        table = config.get(CONFIG_TABLE) or {}
        where = f"audiobook.toml [{CONFIG_TABLE}]"
        known = {"enabled": bool, "retakes": int, "max_wer": float, "min_errors": int}
        if not isinstance(table, dict) or set(table) - set(known):
            raise UserError(f"{where} may only set {', '.join(known)}")
        for key, kind in known.items():
            value = table.get(key, getattr(cls, key))
            if isinstance(value, bool) != (kind is bool) or not isinstance(value, (int, float)):
                raise UserError(f"{where} {key} = {value!r} must be {'true or false' if kind is bool else 'a number'}")
        out = cls(**{k: kind(table.get(k, getattr(cls, k))) for k, kind in known.items()})
        if not 0 <= out.retakes <= 10 or not 0 < out.max_wer <= 1 or out.min_errors < 1:
            raise UserError(f"{where}: retakes must be 0-10, max_wer above 0 and at most 1, min_errors at least 1 "
                            f"(got {out.retakes}, {out.max_wer}, {out.min_errors})")
        return out

    def stamp(self) -> dict:
        """Return what a stored verdict depends on besides the audio and the recognizer."""
        return {"max_wer": self.max_wer, "min_errors": self.min_errors, "version": VERDICT_VERSION}


VERDICT_VERSION = 1  # bump when the checks change what they decide


# -- words -----------------------------------------------------------------------------------------


def comparable_words(text: str) -> list[str]:
    """Return the words of `text` as compared: spoken forms, lowercase, no punctuation, one spelling."""
    from stages.normalize import normalize

    text = normalize(_THOUSANDS.sub(r"\1\2", text.translate(_APOSTROPHES)), "en").text.lower()
    text = _DASHES.sub(" ", text)
    for word, said in _CONTRACTIONS.items():
        text = re.sub(rf"(?<![\w']){re.escape(word)}(?![\w'])", said, text)
    for suffix, said in _SUFFIXES.items():
        text = re.sub(rf"(\w){re.escape(suffix)}\b", rf"\1{said}", text)
    return [spelling(w) for w in _NOT_WORD.sub(" ", text).replace("'", "").split()]


def spelling(word: str) -> str:
    """Return one spelling for variants that sound alike: neighbour/neighbor, realise/realize, Bennet/Bennett."""
    word = _OUR.sub(r"\1or\2", word)
    word = _ISE.sub(r"\1iz\2", word)
    word = re.sub(r"(ie|ey|y)$", "i", word) if len(word) > 4 else word
    word = word.replace("ph", "f").replace("ck", "k")
    return re.sub(r"([b-df-hj-np-tv-z])\1+", r"\1", word)


def sounds_like(a: str, b: str) -> bool:
    """Return True when two comparable words are near enough to be one name spelt two ways."""
    if a == b:
        return True
    if min(len(a), len(b)) < 3:
        return False
    return _distance(a, b) <= NAME_DISTANCE * max(len(a), len(b))


def _distance(a: Sequence, b: Sequence) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def _joined(words: list[str], other: set[str]) -> list[str]:
    """Return `words` with neighbours joined where the other text writes them as one word (some one/someone)."""
    out: list[str] = []
    for w in words:
        if out and out[-1] in _PRONOUN_S and w == "is" and out[-1] + "s" in other:
            out[-1] += "s"
        elif out and out[-1] + w in other and not (out[-1] in other and w in other):
            out[-1] += w
        else:
            out.append(w)
    return out


def word_errors(reference: Sequence[str], heard: Sequence[str], names: Iterable[str] = ()) -> int:
    """Return the substitutions, deletions and insertions that turn `reference` into `heard` (word Levenshtein).

    Words written as one on one side and two on the other count as one word; a reference word in
    `names` matches any heard word that `sounds_like` it.
    """
    ref = _joined(list(reference), set(heard))
    hyp = _joined(list(heard), set(ref))
    fuzzy = set(names)

    def same(r: str, h: str) -> bool:
        return r == h or (r in fuzzy and sounds_like(r, h))

    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (not same(r, h)))
    return row[-1]


def names_in(lexicon, spoken: str) -> list[str]:
    """Return the lexicon's words (names, mostly) that occur in `spoken`, in the lexicon's order."""
    if lexicon is None:
        return []
    found = []
    for word in lexicon.entries:
        flags = 0 if word != word.lower() else re.IGNORECASE
        body = r"\s+".join(re.escape(part) for part in word.split())
        if re.search(rf"(?<!\w){body}(?!\w)", spoken, flags):
            found.append(word)
    return found


# -- audio -----------------------------------------------------------------------------------------


def expected_seconds(spoken: str, length_ratio: float = 1.0) -> tuple[float, float]:
    """Return the shortest and longest a take of `spoken` may be at the voice's measured rate."""
    han = sum(1 for ch in spoken if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf")
    letters = sum(ch.isalnum() for ch in spoken) - han + han * LETTERS_PER_HAN
    fit = (TAKE_LEAD_S + letters / LETTERS_PER_S) * length_ratio
    return DURATION_RANGE[0] * fit, DURATION_RANGE[1] * fit + DURATION_SLACK_S


def audio_problems(audio: np.ndarray, sample_rate: int, spoken: str, length_ratio: float = 1.0) -> list[str]:
    """Return what is wrong with a take's samples: NaN, clipping, silence, a length that does not fit its text."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.size == 0:
        return ["empty: the take has no samples"]
    if not np.isfinite(audio).all():
        return [f"{int((~np.isfinite(audio)).sum())} NaN or infinite samples"]
    problems = []
    clipped = int((np.abs(audio) >= CLIP_LEVEL).sum())
    if clipped > MAX_CLIPPED_SAMPLES:
        problems.append(f"clipped: {clipped} samples at full scale")
    window = max(1, int(SPEECH_WINDOW_S * sample_rate))
    frames = audio[: audio.size // window * window].reshape(-1, window) if audio.size >= window else audio[None, :]
    loudest_db = 10 * np.log10(float(np.mean(np.square(frames, dtype=np.float64), axis=1).max()) + 1e-20)
    if loudest_db < SILENCE_DBFS:
        return problems + [f"silent: its loudest {SPEECH_WINDOW_S * 1000:.0f} ms is at {loudest_db:.0f} dBFS"]
    seconds = audio.size / sample_rate
    shortest, longest = expected_seconds(spoken, length_ratio)
    if seconds < shortest:
        problems.append(f"too short, truncated? {seconds:.2f} s where its text needs at least {shortest:.2f} s")
    elif seconds > longest:
        problems.append(f"too long, extra audio? {seconds:.2f} s where its text needs at most {longest:.2f} s")
    return problems


# -- hearing ---------------------------------------------------------------------------------------


def hear(clips: Sequence[tuple[np.ndarray, int]], language: str = "en",
         context: Sequence[tuple[np.ndarray, ...] | None] | None = None) -> list[str]:
    """Return what speech recognition hears in each clip (audio, sample rate), heard in shared windows.

    Clips are laid end to end, ASR_GAP_S apart, in windows of up to ASR_WINDOW_S; each recognised
    word goes to the clip its middle falls in (or the nearest one). `context[i]` (16 kHz audio said
    before and after clip i, e.g. its neighbours in the chapter) is heard with it and its words dropped.
    A clip that is not finite is not heard.
    """
    from stages import asr

    items: list[list[tuple[np.ndarray, int | None]]] = []  # per clip: (16 kHz sound, owner or None for context)
    for i, (audio, rate) in enumerate(clips):
        if not audio.size or not np.isfinite(audio).all():
            continue
        before, after = [x if x is not None and x.size and np.isfinite(x).all() else None
                         for x in (context[i] if context and context[i] is not None else (None, None))]
        items.append([(x, None) for x in (before,) if x is not None] + [(asr.to_16k(audio, rate), i)]
                     + [(x, None) for x in (after,) if x is not None])
    heard: list[list[str]] = [[] for _ in clips]
    window: list[tuple[np.ndarray, int | None]] = []
    for item in [*items, None]:
        length = sum(x.size for x, _ in window) / asr.ASR_SAMPLE_RATE_HZ + ASR_GAP_S * (len(window) + 1)
        extra = sum(x.size for x, _ in item) / asr.ASR_SAMPLE_RATE_HZ + ASR_GAP_S * len(item) if item else 0.0
        if window and (item is None or length + extra > ASR_WINDOW_S):
            _hear_window(window, heard, language)
            window = []
        window += item or []
    return [" ".join(words) for words in heard]


def _hear_window(window: list[tuple[np.ndarray, int | None]], heard: list[list[str]], language: str) -> None:
    from stages import asr

    rate = asr.ASR_SAMPLE_RATE_HZ
    gap = np.zeros(int(ASR_GAP_S * rate), np.float32)
    parts, spans, at = [gap], [], ASR_GAP_S
    for sound, owner in window:
        parts += [sound, gap]
        spans.append((at, at + sound.size / rate, owner))
        at += sound.size / rate + ASR_GAP_S
    for word in asr.transcribe(np.concatenate(parts), rate, language).words:
        middle = (word.start_s + word.end_s) / 2
        *_, owner = min(spans, key=lambda s: max(s[0] - middle, middle - s[1], 0.0))
        if owner is not None:
            heard[owner].append(word.text)


# -- verdicts --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What QA found in one take."""

    passed: bool
    checked: bool  # heard by speech recognition (False: its language is not known to the recognizer)
    reasons: tuple[str, ...] = ()  # why it failed; empty when it passed
    errors: int = 0  # word errors against the spoken text (0 when not heard)
    words: int = 0  # words in the spoken text, as compared
    heard: str = ""
    attempt: int = 0  # 0: the first take; n: the n-th retake was kept
    attempts: int = 0  # retakes made
    first_errors: int | None = None  # word errors of the first take, when a retake was tried
    model: str | None = None  # the recognizer that heard it

    @property
    def wer(self) -> float | None:
        return self.errors / self.words if self.checked and self.words else None

    def better_than(self, other: Verdict) -> bool:
        """Return True if this take should be kept over `other`: it passes, or has no audio problem, or fewer errors."""
        return self._rank() < other._rank()

    def _rank(self) -> tuple[bool, bool, int]:
        return not self.passed, any(not r.startswith("WER") for r in self.reasons), self.errors

    def to_dict(self) -> dict:
        return asdict(self) | {"reasons": list(self.reasons)}

    @classmethod
    def from_dict(cls, d: dict) -> Verdict:
        return cls(**(d | {"reasons": tuple(d.get("reasons", ()))}))


def judge(spoken: str, problems: Sequence[str], heard: str | None, *, config: QaConfig,
          names: Sequence[str] = (), model: str | None = None) -> Verdict:
    """Return the verdict on a take of `spoken` with audio `problems`, of which `heard` (None: not heard) was heard."""
    reasons = list(problems)
    if heard is None:
        return Verdict(not reasons, False, tuple(reasons))
    reference, hypothesis = comparable_words(spoken), comparable_words(heard)
    name_words = {w for name in names for w in comparable_words(name)}
    errors = word_errors(reference, hypothesis, name_words)
    if errors >= config.min_errors and errors > config.max_wer * len(reference):
        reasons.insert(0, f"WER {errors / max(1, len(reference)):.0%} ({errors} of {len(reference)} words wrong)")
    for name in names:
        if not all(any(sounds_like(w, h) for h in hypothesis) for w in comparable_words(name)):
            reasons.append(f"name {name!r} not heard")
    return Verdict(not reasons, True, tuple(reasons), errors, len(reference), heard, model=model)


# -- stored verdicts -------------------------------------------------------------------------------


def verdict_path(wav_path: Path) -> Path:
    return Path(wav_path).with_suffix(".qa.json")


def stored_verdict(wav_path: Path, stamp: dict) -> Verdict | None:
    """Return the verdict kept beside a take's WAV, if it was made for these samples and settings.

    The samples are known unchanged without reading them while the WAV is the same file (inode, size and
    mtime) the verdict recorded; otherwise its sha256 decides, and a match records the file again."""
    try:
        stored = json.loads(verdict_path(wav_path).read_text(encoding="utf-8"))
        if stored["stamp"] != stamp:
            return None
        if stored.get("file") == _file_identity(wav_path) or stored["audio"] == files.sha256_file(Path(wav_path)):
            verdict = Verdict.from_dict(stored["verdict"])
            if stored.get("file") != _file_identity(wav_path):
                store_verdict(wav_path, stamp, verdict, audio_sha256=stored["audio"])
            return verdict
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
        pass
    return None


def _file_identity(path: Path) -> list[int]:
    st = Path(path).stat()
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def store_verdict(wav_path: Path, stamp: dict, verdict: Verdict, *, audio_sha256: str | None = None) -> None:
    """Keep `verdict` beside the take's WAV, tied to its samples, so a cached take is not heard again."""
    files.write_json(verdict_path(wav_path), {"stamp": stamp, "audio": audio_sha256 or files.sha256_file(Path(wav_path)),
                                              "file": _file_identity(wav_path), "verdict": verdict.to_dict()})


def stamp(config: QaConfig, language: str, names: Sequence[str]) -> dict:
    """Return what a verdict depends on besides the samples: the settings, the recognizer, the language, the names."""
    from stages import asr

    return config.stamp() | {"model": asr.model_name() if asr.speaks(language) else None,
                             "language": language, "names": list(names)}


# -- the chapter's summary -------------------------------------------------------------------------


def chapter_report(segment_ids: Sequence[str], verdicts: dict[str, Verdict | None], *, enabled: bool = True,
                   language: str = "en") -> dict:
    """Return the report.json "qa" entry for a chapter from its segments' verdicts (None: nothing to check)."""
    from stages import asr

    judged = [(sid, verdicts[sid]) for sid in segment_ids if verdicts.get(sid) is not None]
    checked = [(sid, v) for sid, v in judged if v.checked]
    words = sum(v.words for _, v in checked)
    flagged = [{"segment": sid, "reason": "; ".join(v.reasons) + (f" (after {v.attempts} retakes)" * bool(v.attempts)),
                "wer": round(v.wer, 4) if v.wer is not None else None, "heard": v.heard}
               for sid, v in judged if not v.passed]
    unchecked = len(segment_ids) - len(checked) if not enabled else len(judged) - len(checked)
    reason = ("take QA is off (audiobook.toml [qa] enabled = false)" if not enabled else
              f"no speech recognition model for {language!r} (set {asr.MODEL_ENV} to a multilingual Whisper)"
              if unchecked else "")
    return {
        "asr": next((v.model for _, v in checked if v.model), None),
        "checked": len(checked),
        "passed": sum(v.passed for _, v in checked),
        "retaken": sum(v.attempts > 0 for _, v in judged),
        "flagged": flagged,
        "not_checked": unchecked,
        "not_checked_reason": reason,
        "wer": round(sum(v.errors for _, v in checked) / words, 4) if words else None,
    }
