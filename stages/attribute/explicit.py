"""Explicit speech tags: who says each quotation, where the narration beside it says so.

Deterministic and offline. This first sieve pass reads only the speech tag in the narration next to a quotation
("said Elizabeth", "Darcy replied", "母亲说"); pronouns and descriptions ("said she", "cried his
wife") are marked for a later resolver. A play's persona lines are already attributed by ingest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from stages.model import NARRATOR, UNKNOWN_SPEAKER, Paragraph, Segment

NAMED_CONFIDENCE = 0.9  # the tag names the speaker right beside the quotation
SHARED_CONFIDENCE = 0.7  # another quotation in the same paragraph was named
PRONOUN_CONFIDENCE = 0.2  # "said she": someone, but who is for a later resolver
DESCRIPTOR_CONFIDENCE = 0.2  # "cried his wife": a description, not a name
FIRST_PERSON_CONFIDENCE = 0.85  # "said I", "我说": the narrator of a first-person book
KEEP_RULES = frozenset({"play-persona"})  # attributions made by ingest from the book's markup

EN_VERBS = (
    "said says replied replies cried asked answered returned continued exclaimed observed added whispered "
    "shouted remarked repeated began resumed interrupted murmured muttered called sighed laughed thought "
    "rejoined retorted inquired enquired demanded urged pleaded protested declared explained responded "
    "sobbed screamed roared growled suggested insisted faltered stammered echoed persisted went pursued "
    "ventured assented agreed admitted conceded concluded interposed reasoned remonstrated reminded resumed "
    "shrieked snapped sneered snarled stated wailed warned wondered bawled bellowed yelled hissed grumbled groaned "
    "moaned panted gasped breathed chuckled giggled offered proposed queried questioned quoth corrected confessed "
    "commented complained cries asks answers returns continues exclaims observes adds whispers shouts remarks"
).split()
HONORIFICS = r"(?:Mr\.|Mrs\.|Ms\.|Messrs\.|Dr\.|St\.|Rev\.|Mme\.|Miss|Lady|Lord|Sir|Madam|Madame|Colonel|Captain|" \
             r"Aunt|Uncle|Professor|Mister|Master|Mistress|Sister|Brother|Father|Mother|Dame|King|Queen|Prince|Princess)"
HONORIFIC_WORDS = frozenset(re.sub(r"[()?:\\]", "", HONORIFICS).replace(".", "").split("|")) | {"Mr.", "Mrs.", "Dr."}
NOT_NAMES = frozenset(
    "The Then And But So Yet Now When While As At In On Here There This That What Oh Well Yes No If It His Her "
    "Their My Our Your He She They We You One All Some Each Every Both After Before Upon With Without To For Of "
    "A An Why How Who Where Again Still Only Just Thus Presently Perhaps Indeed".split()
)
# Words that end a tag's subject phrase without belonging to it ("the boy with …", "the nephew then")
TRAILING_WORDS = ("then", "again", "now", "still", "with", "of", "in", "at", "to", "who", "that", "and", "as", "for",
                  "from", "on", "by", "after", "before", "into", "upon", "but", "or", "when", "while", "so")
EN_PRONOUNS = frozenset({"he", "she", "they", "i", "we", "it", "you"})

_VERB = r"(?:went\s+on|" + "|".join(sorted(set(EN_VERBS) - {"went"}, key=len, reverse=True)) + r")"
_NAME = rf"(?:the\s+)?(?:{HONORIFICS}\s+)?[A-Z][\w’'\-]*(?:\s+(?:de\s+|of\s+)?[A-Z][\w’'\-]*){{0,2}}"
_PRONOUN = r"(?:he|she|they|I|we|He|She|They|We)"
_DESCRIPTOR = r"(?:his|her|their|my|our|your|the|a|an)\s+[a-z][\w’'\-]*(?:\s+[a-z][\w’'\-]*)?"
_SUBJECT = rf"(?P<who>{_NAME}|{_PRONOUN}|{_DESCRIPTOR})"
_ADVERB = r"(?:(?:\w+ly|then|soon|again|also|only|now|presently|still|at\s+once|at\s+last)\s+)?"
_NOT_SPEECH = r"(?!\s+(?:nothing|no\b|not\b|that\b|so\b|it\b))"
_AFTER_QUOTE = [
    ("verb-before-name", re.compile(rf"^[\s—–\-,]*(?:(?:and|then|but)\s+)*{_VERB}\s+{_SUBJECT}(?=[\s,.;:!?—–\-]|$)")),
    ("name-before-verb", re.compile(rf"^[\s—–\-,]*(?:(?:and|then|but)\s+)*{_SUBJECT}\s+{_ADVERB}{_VERB}\b{_NOT_SPEECH}")),
]
_TAIL = r"(?:\s+[a-z][\w’'\-]*){0,4}\s*[,:;.—–\-]*\s*$"
_BEFORE_QUOTE = [
    ("name-before-verb",
     re.compile(rf"(?:^|[\s,;—–(])(?<![A-Z]\.\s){_SUBJECT}\s+{_ADVERB}{_VERB}\b{_NOT_SPEECH}{_TAIL}")),
    ("verb-before-name", re.compile(rf"(?:^|[\s,;—–(]){_VERB}\s+{_SUBJECT}{_TAIL}")),
]

ZH_VERBS = "说道|笑道|问道|答道|叫道|喊道|嚷道|回答|说|道|问|答|叫|喊|嚷"
ZH_PRONOUNS = frozenset("他 她 我 你 他们 她们 我们 咱们 你们 它".split())
ZH_NOT_SPEECH = ("知道", "难道", "味道", "街道", "听说", "小说", "据说", "虽说", "再说", "却说", "不说", "没说", "要说")
ZH_ADVERBS = re.compile(r"(?:也|便|又|就|却|还|才|都|只|忽然|终于|接着|笑着|一面|慢慢的|大声|低声|连忙|赶忙|慌忙|急忙|于是|冷笑着?|微笑着?|叹息着?|高声|絮絮的|愤愤的|惶恐着)+$")
ZH_NAME_MAX_CHARS = 4
# Pieces that show the clause before the verb is an action, not a name ("笑着对他说", "点头说").
ZH_NOT_IN_NAME = ("自己", "着", "了", "的", "对", "向", "很", "便", "地", "得", "在", "把", "被", "给", "跟", "这",
                  "那", "么", "一个", "点头", "摇头", "争辩", "看", "想", "是", "有", "不", "没", "们", "谁", "大家")
_ZH_CLAUSE_END = re.compile(rf"(?P<clause>[^，。！？；：、“”‘’「」\s]*?)(?:{ZH_VERBS})[，。：:,！!]?\s*$")
_ZH_CLAUSE_START = re.compile(rf"^(?P<clause>[^，。！？；：、“”‘’「」\s]*?)(?:{ZH_VERBS})(?:[，。：:,！!]|$)")
_HAN_ONLY = re.compile(r"[\u3400-\u9fff]+")
ZH_TAG_MAX_CHARS = 40  # a longer sentence ending in "说" is narration about speech, not a tag
ZH_CONNECTIVES = re.compile(r"^(?:然而|但是|但|可是|于是|这时|那时|后来|便|也|又|就|却)+")
_ZH_SENTENCE_TAG = re.compile(rf"(?:{ZH_VERBS})(?:着|了)?[，。：:,！!；;]?\s*$")
# A name opening a clause: up to four Han characters before the first adverb or verb-like character.
_ZH_LEAD_NAME = re.compile(r"^([\u3400-\u9fff]{1,4}?)(?=一面|一边|很|便|也|又|就|却|都|冷笑|笑|站|回|说|道|问|答|向|对|将|把|在|正|忽|已|才|只|慢|连|赶|急)")


OPENING_QUOTES = "“„«\"「『‘"  # a dialogue segment starting with one of these begins a new quotation


@dataclass(frozen=True)
class Attribution:
    """Who says a quotation, how sure the rule is, and which rule said so."""

    speaker: str
    confidence: float
    rule: str


NONE = Attribution(UNKNOWN_SPEAKER, 0.0, "none")


def attribute_paragraph(paragraph: Paragraph, zh: bool = False) -> Paragraph:
    """Return the paragraph with its quotations attributed from the narration beside them."""
    segs = list(paragraph.segments)
    runs = _quote_runs(segs)
    if not runs:
        return paragraph
    found: list[Attribution | None] = []
    from_after: list[bool] = []  # the tag follows the quotation, so the narration before it is free to share
    used_after: set[int] = set()  # narration segments already read as the tag of the quotation before them
    for start, end in runs:
        after = segs[end + 1] if end + 1 < len(segs) and segs[end + 1].kind == "narration" else None
        before = segs[start - 1] if start > 0 and segs[start - 1].kind == "narration" else None
        quote_follows = end + 2 < len(segs) and segs[end + 2].kind == "dialogue"
        tag = None
        if after and _tag_looks_back(segs[end].text, after.text, quote_follows):
            tag = tag_after_quote(after.text, zh)
        from_after.append(tag is not None)
        if tag is not None:
            used_after.add(end + 1)
        elif before and (start - 1 not in used_after or re.search(r"[,:，：—–\-]\s*$", before.text)):
            tag = tag_before_quote(before.text, zh)  # a tag closing the last quote ("said Kitty.") is not reused
        found.append(tag)
    for (start, end), result in zip(runs, _share(found, from_after, runs)):
        for i in range(start, end + 1):
            segs[i] = replace(segs[i], speaker=result.speaker, confidence=result.confidence, rule=result.rule)
    return replace(paragraph, segments=tuple(segs))


def _tag_looks_back(quote: str, narration: str, quote_follows: bool) -> bool:
    """Return True when a tag after `quote` belongs to it: the quote ends on a comma, or the tag ends a sentence."""
    if re.search(r"[,，—–\-][”’」』\"']*$", quote.rstrip()):
        return True
    return not (quote_follows and re.search(r"[,:，：—–\-]\s*$", narration))


def _quote_runs(segs: list[Segment]) -> list[tuple[int, int]]:
    """Return (first, last) indexes of each quotation: consecutive dialogue segments not attributed by markup."""
    runs: list[tuple[int, int]] = []
    for i, seg in enumerate(segs):
        if seg.kind != "dialogue" or seg.rule in KEEP_RULES:
            continue
        opens_quote = seg.text[:1] in OPENING_QUOTES
        if runs and runs[-1][1] == i - 1 and not opens_quote:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def _share(found: list[Attribution | None], from_after: list[bool], runs: list[tuple[int, int]]) -> list[Attribution]:
    """Give each unattributed quotation the nearest attribution in its paragraph, earlier first, then later.

    Two quotations with no narration between them are taken as a change of speaker, so nothing is shared across;
    nor is a later quotation's attribution shared back across the narration that introduces it ("X said, “…”").
    """
    joined = [k > 0 and runs[k][0] > runs[k - 1][1] + 1 for k in range(len(runs))]  # narration before run k
    out: list[Attribution] = []
    for k, tag in enumerate(found):
        if tag is not None:
            out.append(tag)
            continue
        near = None
        j = k
        while near is None and j > 0 and joined[j]:
            j -= 1
            near = found[j]
        j = k
        while near is None and j + 1 < len(found) and joined[j + 1]:
            j += 1
            near = found[j] if found[j] is None or from_after[j] else NONE
        if near is None or near is NONE:
            out.append(NONE)
        elif near.speaker == UNKNOWN_SPEAKER:
            out.append(near)
        else:
            out.append(Attribution(near.speaker, SHARED_CONFIDENCE, "same-paragraph"))
    return out


def tag_after_quote(narration: str, zh: bool = False) -> Attribution | None:
    """Return the attribution a speech tag opening `narration` gives the quotation before it ("said Elizabeth")."""
    if zh:
        m = _ZH_CLAUSE_START.match(narration)
        found = _zh_subject(m.group("clause"), narration[: m.end()]) if m else None
        return found or _zh_sentence_tag(narration, True)
    for rule, pattern in _AFTER_QUOTE:
        m = pattern.match(narration)
        if m and (result := _subject(m.group("who"), rule)):
            return result
    return None


def tag_subject(narration: str, after: bool) -> str | None:
    """Return the subject phrase of the English speech tag opening (after=True) or closing `narration`
    ("said his lady" -> "his lady", "Scrooge’s nephew replied," -> "Scrooge’s nephew")."""
    for _, pattern in _AFTER_QUOTE if after else _BEFORE_QUOTE:
        m = pattern.match(narration) if after else pattern.search(narration)
        if m:
            who = re.sub(r"\s+", " ", m.group("who")).strip()
            if re.search(r"[’']s$", who) and (rest := re.match(r"\s+([a-z][\w\-]*)", narration[m.end("who"):])):
                who += " " + rest.group(1)  # "Scrooge’s nephew"
            return re.sub(rf"(?: (?:\w+ly|{'|'.join(TRAILING_WORDS)}))+$", "", who)  # "the nephew gaily"
    return None


def tag_before_quote(narration: str, zh: bool = False) -> Attribution | None:
    """Return the attribution a speech tag closing `narration` gives the quotation after it ("Elizabeth said,")."""
    if zh:
        m = _ZH_CLAUSE_END.search(narration)
        found = _zh_subject(m.group("clause"), m.group(0)) if m else None
        return found or _zh_sentence_tag(narration, False)
    for rule, pattern in _BEFORE_QUOTE:
        m = pattern.search(narration)
        if m and (result := _subject(m.group("who"), rule)):
            return result
    return None


def _subject(who: str, rule: str) -> Attribution | None:
    """Return the attribution for a tag's subject: a name, a pronoun or a description."""
    who = re.sub(r"\s+", " ", who).strip()
    if who == "I":
        return Attribution(NARRATOR, FIRST_PERSON_CONFIDENCE, "first-person")
    if who.lower() in EN_PRONOUNS:
        return Attribution(UNKNOWN_SPEAKER, PRONOUN_CONFIDENCE, "pronoun")
    if who[0].islower() and not who.startswith("the "):
        return Attribution(UNKNOWN_SPEAKER, DESCRIPTOR_CONFIDENCE, "descriptor")
    if who.startswith("the "):
        rest = who[4:]
        if not rest[:1].isupper():
            return Attribution(UNKNOWN_SPEAKER, DESCRIPTOR_CONFIDENCE, "descriptor")
        who = rest
    if re.search(r"[’']s$", who):
        return Attribution(UNKNOWN_SPEAKER, DESCRIPTOR_CONFIDENCE, "descriptor")  # "said Scrooge’s nephew"
    words = who.split(" ")
    while words and words[0] in NOT_NAMES:
        words.pop(0)
    if not words or words[-1] in HONORIFIC_WORDS:
        return None
    return Attribution(" ".join(words), NAMED_CONFIDENCE, rule)


def _zh_sentence_tag(narration: str, after: bool) -> Attribution | None:
    """Return the speaker of a Chinese tag spread over clauses: the subject opening the sentence in which a clause
    ends in a speech verb ("我惶恐着，站起来说。", "圆规一面愤愤的回转身，一面絮絮的说，慢慢向外走。")."""
    sentences = [x for x in re.split(r"(?<=[。！？])", narration.strip()) if x]
    if not sentences:
        return None
    sentence = sentences[0] if after else sentences[-1]
    clauses = [c for c in re.split(r"(?<=[，,；;：:])", sentence) if c]
    spoken = [k for k, c in enumerate(clauses) if _ZH_SENTENCE_TAG.search(c)]
    if not spoken or (not after and spoken[-1] != len(clauses) - 1):
        return None
    verb = clauses[spoken[0] if after else spoken[-1]]
    limit = ZH_TAG_MAX_CHARS * (2 if verb.rstrip().endswith(("：", ":")) else 1)  # a colon marks a tag surely
    if any(w in verb for w in ZH_NOT_SPEECH) or len("".join(clauses[: spoken[0] + 1])) > limit:
        return None
    lead = ZH_CONNECTIVES.sub("", clauses[0].rstrip("，,；;：:"))
    if lead.startswith("我") and not lead.startswith("我们"):
        return Attribution(NARRATOR, FIRST_PERSON_CONFIDENCE, "first-person")
    if lead[:1] in "他她":
        return Attribution(UNKNOWN_SPEAKER, PRONOUN_CONFIDENCE, "pronoun")
    name = _ZH_LEAD_NAME.match(lead)
    if name and not any(piece in name.group(1) for piece in ZH_NOT_IN_NAME):
        return Attribution(name.group(1), NAMED_CONFIDENCE, "name-before-verb")
    return None


def _zh_subject(clause: str, tag: str) -> Attribution | None:
    """Return the attribution for the clause before a Chinese speech verb ("母亲说" -> 母亲, "他说" -> pronoun)."""
    if any(word in tag for word in ZH_NOT_SPEECH) or clause.endswith(("不", "没", "不再", "没有", "别")):
        return None
    subject = ZH_ADVERBS.sub("", clause)
    if not subject:
        return None  # "冷笑说": the speaker is named earlier in the sentence
    if subject == "我" or (subject[:1] == "我" and subject[:2] != "我们"):
        return Attribution(NARRATOR, FIRST_PERSON_CONFIDENCE, "first-person")
    if subject in ZH_PRONOUNS or subject[:1] in "他她" and subject[:2] not in ("他们", "她们"):
        return Attribution(UNKNOWN_SPEAKER, PRONOUN_CONFIDENCE, "pronoun")
    named = 1 <= len(subject) <= ZH_NAME_MAX_CHARS and _HAN_ONLY.fullmatch(subject)
    if not named or any(piece in subject for piece in ZH_NOT_IN_NAME) or subject[:1] in "我你他她它":
        return Attribution(UNKNOWN_SPEAKER, DESCRIPTOR_CONFIDENCE, "descriptor")  # someone speaks, not named
    return Attribution(subject, NAMED_CONFIDENCE, "name-before-verb")
