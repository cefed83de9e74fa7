"""Emotion and delivery per segment from a small lexicon and the punctuation, for the voice to colour its reading.

The set is fixed so casting and engines can map each tag to a style. `tag_emotion` looks at the segment's own
words and marks, and at the speech verb in the narration beside a quotation ("whispered", "sobbed", "低声道").
"""

from __future__ import annotations

import re

# The fixed set: neutral first; "whisper" and "shout" are deliveries rather than feelings.
EMOTIONS = (
    "neutral", "happy", "sad", "angry", "fearful", "surprised", "disgusted", "tender", "excited", "whisper", "shout",
)
BASE_INTENSITY = 0.4  # one lexicon hit
STEP_INTENSITY = 0.15  # each further hit or exclamation mark
MAX_INTENSITY = 1.0

# Speech verbs in the adjacent narration; they win over the quotation's own words.
VERB_EMOTION = {
    "whispered": "whisper", "murmured": "whisper", "breathed": "whisper", "muttered": "whisper",
    "shouted": "shout", "roared": "shout", "bellowed": "shout", "screamed": "shout", "yelled": "shout",
    "sobbed": "sad", "wept": "sad", "sighed": "sad", "laughed": "happy", "chuckled": "happy", "giggled": "happy",
    "snapped": "angry", "growled": "angry", "snarled": "angry", "stormed": "angry", "thundered": "angry",
    "gasped": "surprised", "exclaimed": "surprised", "faltered": "fearful", "stammered": "fearful",
    "trembled": "fearful", "sneered": "disgusted", "cooed": "tender",
    "低声": "whisper", "悄悄": "whisper", "大声": "shout", "嚷": "shout", "喊": "shout", "叫道": "shout",
    "笑道": "happy", "笑着": "happy", "哭": "sad", "叹": "sad", "怒": "angry", "骂": "angry", "惊": "surprised",
}
ADVERB_EMOTION = {
    "angrily": "angry", "impatiently": "angry", "resentfully": "angry", "sharply": "angry", "warmly": "tender",
    "gently": "tender", "tenderly": "tender", "softly": "whisper", "sadly": "sad", "mournfully": "sad",
    "gaily": "happy", "cheerfully": "happy", "joyfully": "happy", "eagerly": "excited", "fearfully": "fearful",
    "anxiously": "fearful", "nervously": "fearful", "loudly": "shout", "contemptuously": "disgusted",
}
LEXICON = {
    "happy": "delighted glad happy joy pleased charming wonderful merry delightful",
    "sad": "sad grief unhappy miserable wretched tears alas mourn",
    "angry": "angry insolent abominable outrageous provoking hate how dare vexed",
    "fearful": "afraid fear frightened terrible dread alarm danger",
    "surprised": "astonishing impossible good heavens surprised astonished",
    "disgusted": "disgusting odious horrid detest disgrace",
    "tender": "dearest darling beloved sweetest",
    "excited": "quick hurry make haste at last",
}
ZH_LEXICON = {"happy": "高兴 好极 欢喜 哈哈", "sad": "可怜 伤心 哭 唉", "angry": "混帐 该死 滚", "fearful": "怕 吓",
              "surprised": "怎么 竟 呀 咦", "tender": "乖 宝贝"}
_LEXICON_RE = {e: re.compile(r"\b(?:" + "|".join(words.split()) + r")\b") for e, words in LEXICON.items()}
_VERB_RE = re.compile("|".join(rf"(?<![a-z]){re.escape(w)}(?![a-z])" for w in (*VERB_EMOTION, *ADVERB_EMOTION)))


def tag_emotion(text: str, kind: str, beside: str = "") -> tuple[str, float]:
    """Return (emotion, intensity) for a segment's `text`; `beside` is the narration next to a quotation."""
    if kind == "heading" or not text.strip():
        return "neutral", 0.0
    bangs = text.count("!") + text.count("！")
    if kind == "dialogue" and beside:
        m = _VERB_RE.search(beside.lower())
        if m:
            return {**VERB_EMOTION, **ADVERB_EMOTION}[m.group(0)], _intensity(1 + bangs)
    hits = _lexicon_hits(text)
    if hits:
        emotion, n = max(hits.items(), key=lambda kv: (kv[1], -EMOTIONS.index(kv[0])))
        return emotion, _intensity(n + bangs)
    if kind == "dialogue":
        if bangs >= 2 or re.search(r"[A-Z]{4,}", text):
            return "shout", _intensity(bangs)
        if bangs == 1:
            return ("surprised" if "?" in text else "excited"), _intensity(1)
        if "?!" in text or "!?" in text:
            return "surprised", _intensity(2)
    return "neutral", 0.0


def _lexicon_hits(text: str) -> dict[str, int]:
    lowered = text.lower()
    hits: dict[str, int] = {}
    for emotion, pattern in _LEXICON_RE.items():
        n = len(pattern.findall(lowered))
        if n:
            hits[emotion] = n
    if not _CJK.search(text):  # the Chinese words cannot be in it
        return hits
    for emotion, words in ZH_LEXICON.items():
        n = sum(1 for w in words.split() if w in text)
        if n:
            hits[emotion] = hits.get(emotion, 0) + n
    return hits


_CJK = re.compile(r"[\u3400-\u9fff]")


def _intensity(hits: int) -> float:
    return round(min(MAX_INTENSITY, BASE_INTENSITY + STEP_INTENSITY * max(0, hits - 1)), 2)
