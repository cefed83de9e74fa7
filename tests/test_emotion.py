"""Emotion and delivery tags from punctuation, the speech verb beside a quotation and a small lexicon."""

from __future__ import annotations

from stages.attribute import EMOTIONS, tag_emotion


def test_the_set_is_fixed_and_starts_with_neutral():
    assert EMOTIONS[0] == "neutral" and {"whisper", "shout", "tender", "angry"} <= set(EMOTIONS)


def test_the_speech_verb_beside_a_quotation_sets_the_delivery():
    # Pride and Prejudice, chapters II and III
    assert tag_emotion("“Kitty has no discretion in her coughs,”", "dialogue", "said her father;") == ("neutral", 0.0)
    assert tag_emotion("“We are not in a way to know what Mr. Bingley likes,”", "dialogue",
                       "said her mother resentfully,") == ("angry", 0.4)
    assert tag_emotion("“Hush!”", "dialogue", "whispered Jane.")[0] == "whisper"
    assert tag_emotion("“Go away!”", "dialogue", "she shouted.")[0] == "shout"
    assert tag_emotion("“我知道……”", "dialogue", "她低声道。")[0] == "whisper"


def test_lexicon_and_exclamations_set_emotion_and_intensity():
    # Pride and Prejudice, chapter III
    emotion, intensity = tag_emotion("“Oh! my dear,” I am quite delighted with him. He is so excessively handsome!",
                                     "dialogue")
    assert emotion == "happy" and intensity > 0.4
    assert tag_emotion("“Oh! she is the most beautiful creature I ever beheld!”", "dialogue") == ("shout", 0.55)
    assert tag_emotion("“Tomorrow fortnight.”", "dialogue") == ("neutral", 0.0)
    assert tag_emotion("“Nonsense!”", "dialogue") == ("excited", 0.4)
    assert tag_emotion("Chapter I", "heading") == ("neutral", 0.0)
    assert tag_emotion("Mr. Bennet made no answer.", "narration") == ("neutral", 0.0)
