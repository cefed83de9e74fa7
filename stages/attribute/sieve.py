"""The resolving sieve: after explicit tags, each rule fills in quotations the earlier rules left open.

Rules run in order of precision, each a small function over one paragraph and the conversation so far. First
what the quotation's own tag says: named tags mapped to the roster's canonical names; "he/she said" resolved to
the most recent character of that gender, passing over the person addressed and the previous turn's speaker
(pronoun-gender); a described speaker the roster knows ("returned the nephew", descriptor-name); a relative of
the person "his"/"her" points at ("said his lady" -> the Mrs. of Mr. Bennet's surname, descriptor-relation);
"cried her husband" placed when one character of that gender is in view (descriptor-gender); a known name
opening a Chinese tag ("母亲高兴的说", name-in-tag). Then the paragraph: another placed quotation in it
(paragraph-share). Then the context: a quotation left open at the end of the previous paragraph
(continued-quote), the paragraph's own actor ("Darcy smiled and said", paragraph-actor), a narration paragraph
that ends with a colon (intro-colon), the person the previous speaker addressed by name (vocative), alternation
of the last two speakers (turn-taking), and the subject of the narration paragraph just before
(narration-actor). Last, each run of quoting paragraphs is filled by alternation between its two people
(alternation). A quotation naming someone is not theirs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from stages.attribute.descriptors import FEMALE_NOUNS, MALE_NOUNS, possessive, quote_tag, relative
from stages.attribute.explicit import OPENING_QUOTES
from stages.attribute.roster import Roster
from stages.model import NARRATOR, UNKNOWN_SPEAKER, Chapter, Paragraph, Segment

NAMED_RULES = frozenset({"verb-before-name", "name-before-verb", "same-paragraph"})
CONFIDENCE = {
    "continued-quote": 0.8,
    "pronoun-gender": 0.6,
    "paragraph-actor": 0.55,
    "intro-colon": 0.55,
    "descriptor-gender": 0.45,
    "descriptor-name": 0.7,
    "descriptor-relation": 0.6,
    "the-other": 0.5,
    "name-in-tag": 0.75,
    "vocative": 0.5,
    "turn-taking": 0.45,
    "alternation": 0.4,
    "paragraph-share": 0.5,
    "narration-actor": 0.35,
}
RECENT_LIMIT = 12  # characters remembered for "he/she said"
DESCRIPTOR_WINDOW = 6  # "his wife" is placed only when one character of her gender is among this many recent ones
CLOSING_QUOTES = "”»\"」』"
INTRO_ENDS = (":", "：", "—", "–")  # a narration paragraph ending so introduces the next quotation
_EN_PRONOUN = re.compile(r"\b(he|she)\b", re.I)
_ZH_PRONOUN = re.compile(r"[他她]")
_BEFORE_VOCATIVE = re.compile(r"(?:^[“‘「]|[,，]\s*|\bdear\s+|\bO\s+)$")
_AFTER_VOCATIVE = re.compile(r"^(?:[,，!?.;！？。]|\s*[”’」])")


@dataclass
class Talk:
    """The state carried from paragraph to paragraph within one chapter."""

    recent: list[str] = field(default_factory=list)  # characters most recently named or speaking, latest last
    turns: list[str | None] = field(default_factory=list)  # speaker of each quoting paragraph in this exchange
    addressed: str | None = None  # whom the previous quoting paragraph called by name
    open_quote: str | None = None  # speaker of a quotation still open at the end of the previous paragraph
    colon_actor: str | None = None  # actor of a narration paragraph that ended with a colon
    last_actor: str | None = None  # the subject of the narration paragraph just before, if it had no quotation

    def saw(self, name: str | None) -> None:
        if name and name != UNKNOWN_SPEAKER:
            if name in self.recent:
                self.recent.remove(name)
            self.recent.append(name)
            del self.recent[:-RECENT_LIMIT]


def resolve_chapter(chapter: Chapter, roster: Roster, zh: bool, first_person: bool = False) -> Chapter:
    """Return the chapter with every quotation the sieve can place given a speaker, confidence and rule."""
    talk = Talk()
    pattern = roster.pattern()
    paragraphs = []
    context: list[list[str]] = []  # the characters in view before each paragraph, latest last
    for para in chapter.paragraphs:
        context.append(list(talk.recent))
        paragraphs.append(_resolve_paragraph(para, talk, roster, pattern, zh))
    for run in _conversations(paragraphs):
        _alternate(paragraphs, run, roster, context[run[0]] + ([NARRATOR] if first_person else []))
    return replace(chapter, paragraphs=tuple(paragraphs))


def _tag_gender(para: Paragraph) -> str | None:
    """Return the gender a pronoun or gendered noun in the paragraph's first speech tag gives ("returned she")."""
    segs = para.segments
    first = next((i for i, s in enumerate(segs) if s.kind == "dialogue"), None)
    tag = next((s.text for s in segs[first:] if s.kind == "narration"), "") if first is not None else ""
    if segs and segs[0].rule not in ("pronoun", "descriptor"):
        return None
    m = re.match(r"\W*(?:\w+\s+){0,2}?(?:(he|she)\b|(?:his|her|the)\s+(\w+))", tag, re.I)
    if not m:
        return None
    word = (m.group(1) or m.group(2)).lower()
    return "male" if word in MALE_NOUNS | {"he"} else "female" if word in FEMALE_NOUNS | {"she"} else None


def _conversations(paragraphs: list[Paragraph]) -> list[list[int]]:
    """Return runs of consecutive paragraphs that each open with a quotation: one exchange each."""
    runs: list[list[int]] = []
    for k, para in enumerate(paragraphs):
        quoting = bool(para.segments) and para.segments[0].kind == "dialogue"
        if quoting and runs and runs[-1][-1] == k - 1:
            runs[-1].append(k)
        elif quoting:
            runs.append([k])
    return [r for r in runs if len(r) >= 2]


def _alternate(paragraphs: list[Paragraph], run: list[int], roster: Roster, context: list[str]) -> None:
    """In a two-person exchange, give each unplaced turn the speaker its distance from a placed turn implies.

    The two are the exchange's placed speakers and the people it calls by name; when that makes only one, the
    other is the character most recently in view before the exchange began (in a first-person book, the
    narrator, who takes part in most exchanges). With three or more, an unplaced
    turn between two placed ones follows the A-B-A pattern only.
    """
    turns = [paragraphs[k].segments[0].speaker for k in run]
    called = [_called(" ".join(s.text for s in paragraphs[k].segments if s.kind == "dialogue"), roster) for k in run]
    people = {t for t in turns if t != UNKNOWN_SPEAKER} | set().union(*called)
    if len(people) == 1:
        people |= set([n for n in context if n not in people][-1:])
    if len(people) > 2:
        _alternate_locally(paragraphs, run, turns, called)
    if len(people) != 2:
        return
    by_gender = {roster.gender(p): p for p in people}
    if len(by_gender) == 2 and "unknown" not in by_gender:  # "returned she" names the woman of the two
        for n, k in enumerate(run):
            gender = _tag_gender(paragraphs[k]) if turns[n] == UNKNOWN_SPEAKER else None
            if gender:
                turns[n] = by_gender[gender]
    for n, k in enumerate(run):
        if paragraphs[k].segments[0].speaker != UNKNOWN_SPEAKER:
            continue
        known = [m for m in range(len(run)) if turns[m] != UNKNOWN_SPEAKER]
        if turns[n] != UNKNOWN_SPEAKER:
            who = turns[n]
        elif known:
            m = min(known, key=lambda m: (abs(m - n), m > n))
            same = (n - m) % 2 == 0
            who = turns[m] if same else next(p for p in people if p != turns[m])
        else:
            addressee = next(iter(called[n - 1])) if n > 0 and called[n - 1] else None
            who = addressee
        if who is None or who in called[n]:
            continue
        segs = [replace(s, speaker=who, confidence=CONFIDENCE["alternation"], rule="alternation")
                if s.kind == "dialogue" and s.speaker == UNKNOWN_SPEAKER else s for s in paragraphs[k].segments]
        paragraphs[k] = replace(paragraphs[k], segments=tuple(segs))


def _alternate_locally(paragraphs: list[Paragraph], run: list[int], turns: list[str], called: list[set[str]]) -> None:
    """Give an unplaced turn the speaker two turns back when the two turns before it alternate (A-B-?)."""
    for n, k in enumerate(run):
        if turns[n] != UNKNOWN_SPEAKER or n < 2:
            continue
        a, b = turns[n - 2], turns[n - 1]
        if UNKNOWN_SPEAKER not in (a, b) and a != b and a not in called[n]:
            turns[n] = a
            segs = [replace(s, speaker=a, confidence=CONFIDENCE["alternation"], rule="alternation")
                    if s.kind == "dialogue" and s.speaker == UNKNOWN_SPEAKER else s for s in paragraphs[k].segments]
            paragraphs[k] = replace(paragraphs[k], segments=tuple(segs))


def _resolve_paragraph(para: Paragraph, talk: Talk, roster: Roster, pattern, zh: bool) -> Paragraph:
    segs = [_canonical(s, roster) for s in para.segments]
    quotes = [i for i, s in enumerate(segs) if s.kind == "dialogue"]
    if not quotes:
        _narration_only(segs, talk, roster, pattern)
        return replace(para, segments=tuple(segs))
    actor = _actor(segs[: quotes[0]], roster, pattern)
    for tagged_only in (True, False):  # the quotation's own tag first, then the paragraph, then the context
        for i in quotes:
            if segs[i].speaker == UNKNOWN_SPEAKER:
                found = _first_rule(segs, i, quotes, talk, roster, actor, zh, tagged_only)
                if found:
                    segs[i] = replace(segs[i], speaker=found[0], confidence=CONFIDENCE[found[1]], rule=found[1])
        _share_in_paragraph(segs, quotes)
    for s in segs:
        if s.kind == "narration":
            _mentions(s.text, talk, roster, pattern)
    first = segs[quotes[0]].speaker
    talk.turns.append(None if first == UNKNOWN_SPEAKER else first)
    for i in quotes:
        talk.saw(segs[i].speaker)
    last = segs[quotes[-1]]
    talk.open_quote = last.speaker if _left_open(last.text, zh) and last.speaker != UNKNOWN_SPEAKER else None
    talk.addressed = _addressee(segs, quotes, roster, first)
    talk.colon_actor = None
    talk.last_actor = None
    return replace(para, segments=tuple(segs))


def _canonical(seg: Segment, roster: Roster) -> Segment:
    if seg.kind == "dialogue" and seg.rule in NAMED_RULES:
        name = roster.resolve(seg.speaker)
        if name and name != seg.speaker:
            return replace(seg, speaker=name)
    return seg


def _narration_only(segs: list[Segment], talk: Talk, roster: Roster, pattern) -> None:
    """A paragraph without quotations ends the exchange, unless it ends on a colon that introduces the next one."""
    actor = _actor(segs, roster, pattern)
    for s in segs:
        _mentions(s.text, talk, roster, pattern)
    talk.turns.clear()
    talk.addressed = None
    talk.open_quote = None
    text = segs[-1].text.rstrip() if segs else ""
    talk.colon_actor = _introducer(text, talk, roster, pattern) or actor if text.endswith(INTRO_ENDS) else None
    talk.last_actor = actor


def _introducer(sentence: str, talk: Talk, roster: Roster, pattern) -> str | None:
    """Return who speaks next after "… thus accosted her—": the first name in the sentence, else its he/she."""
    m = pattern.search(sentence) if pattern is not None else None
    if m:
        return roster.resolve(m.group(0))
    pronoun = _EN_PRONOUN.search(sentence) or _ZH_PRONOUN.search(sentence)
    if pronoun:
        gender = "male" if pronoun.group(0).lower() in ("he", "他") else "female"
        return next((n for n in reversed(talk.recent) if roster.gender(n) == gender), None)
    return None


def _first_rule(segs, i, quotes, talk: Talk, roster: Roster, actor, zh: bool, tagged_only: bool):
    """Return (speaker, rule) from the first sieve rule that places quotation `i`, or None."""
    seg = segs[i]
    at_start = i == quotes[0]
    if seg.rule == "pronoun":
        name = _pronoun_speaker(segs, i, talk, roster, zh, _called(seg.text, roster) | ({talk.turns[-1]} - {None}
                                if talk.turns and at_start else set()))
        return (name, "pronoun-gender") if name else None
    if seg.rule == "descriptor":
        if zh:
            return _name_in_tag(segs, i, roster)
        return _descriptor_speaker(segs, i, quotes, talk, roster)
    if tagged_only:
        return None
    if at_start and talk.open_quote and seg.text[:1] in "“「\"":
        return talk.open_quote, "continued-quote"
    if actor and at_start:
        return actor, "paragraph-actor"
    if at_start and talk.colon_actor:
        return talk.colon_actor, "intro-colon"
    named = _named_in(seg.text, roster)  # people rarely say their own name
    if at_start and talk.addressed and talk.addressed not in named:
        return talk.addressed, "vocative"
    if at_start and len(talk.turns) >= 2 and talk.turns[-2] and talk.turns[-1] and talk.turns[-2] != talk.turns[-1]:
        if talk.turns[-2] not in named:
            return talk.turns[-2], "turn-taking"
    if at_start and talk.last_actor and talk.last_actor not in named:
        return talk.last_actor, "narration-actor"
    return None


def _name_in_tag(segs, i, roster: Roster) -> tuple[str, str] | None:
    """Return a known name opening the Chinese tag beside quotation `i` ("母亲高兴的说" -> 母亲)."""
    pattern = roster.pattern()
    for j in (i + 1, i - 1):
        if pattern is not None and 0 <= j < len(segs) and segs[j].kind == "narration":
            clause = re.split(r"[，。！？；]", segs[j].text.strip("，。 "))[0 if j > i else -1]
            m = pattern.match(clause)
            if m:
                return roster.resolve(m.group(0)), "name-in-tag"
    return None


def _descriptor_speaker(segs, i, quotes, talk: Talk, roster: Roster) -> tuple[str, str] | None:
    """Return the speaker a described tag means: a described character ("returned the nephew"), a relative of
    the person "his"/"her" points at ("said his lady"), the other of two ("replied the other"), else the latest
    character of the noun's gender but the one "his" means."""
    phrase = quote_tag(segs, i) or ""
    if name := roster.resolve(phrase):
        return name, "descriptor-name"
    called = set().union(*(_called(segs[q].text, roster) for q in quotes))
    if kin := possessive(phrase):
        owner_gender = {"his": "male", "her": "female"}.get(kin[0])
        pool = [*sorted(called), *([talk.addressed] if talk.addressed else []), *reversed(talk.recent)]
        owner = next((n for n in pool if roster.gender(n) == owner_gender), None)
        if owner and (who := relative(kin[1], owner, roster, talk.recent)):
            return who, "descriptor-relation"
    if phrase == "the other" and len(talk.turns) >= 2 and talk.turns[-2] and talk.turns[-2] != talk.turns[-1]:
        return talk.turns[-2], "the-other"
    near = " ".join(segs[j].text for j in (i + 1, i - 1) if 0 <= j < len(segs) and segs[j].kind == "narration")
    m = re.search(r"\b(his|her|their|the)\s+(\w+)", near)
    if not m or m.group(2).lower() not in MALE_NOUNS | FEMALE_NOUNS:
        return None
    gender = "male" if m.group(2).lower() in MALE_NOUNS else "female"
    owner_gender = {"his": "male", "her": "female"}.get(m.group(1).lower())
    owner = next((n for n in reversed(talk.recent) if roster.gender(n) == owner_gender), None)
    near_people = talk.recent[-DESCRIPTOR_WINDOW:]
    candidates = [n for n in near_people if roster.gender(n) == gender and n != owner]
    return (candidates[0], "descriptor-gender") if len(candidates) == 1 else None


def _pronoun_speaker(segs, i, talk: Talk, roster: Roster, zh: bool, unlikely: set[str]) -> str | None:
    """Return the most recent character whose gender matches the pronoun in the tag beside quotation `i`,
    passing over the `unlikely` (whom the quotation calls by name, who spoke the turn before) when another fits."""
    tags = []  # the tag opens the narration after the quotation, or closes the one before it
    if i + 1 < len(segs) and segs[i + 1].kind == "narration":
        tags.append(segs[i + 1].text[:12] if zh else segs[i + 1].text[:40])
    if i > 0 and segs[i - 1].kind == "narration":
        tags.append(segs[i - 1].text[-12:] if zh else segs[i - 1].text[-40:])
    for text in tags:
        m = (_ZH_PRONOUN if zh else _EN_PRONOUN).search(text)
        if m:
            gender = "male" if m.group(0).lower() in ("he", "他") else "female"
            fits = [n for n in reversed(talk.recent) if roster.gender(n) == gender]
            return next((n for n in fits if n not in unlikely), fits[0] if fits else None)
    return None


def _actor(segs: list[Segment], roster: Roster, pattern) -> str | None:
    """Return the character named first in the narration, when the narration opens with that name."""
    if pattern is None:
        return None
    for s in segs:
        if s.kind != "narration":
            continue
        m = pattern.match(s.text) or pattern.match(re.sub(r"^(?:Then|But|And|So|Here|At last|At length),?\s+", "", s.text))
        if m:
            return roster.resolve(m.group(0))
    return None


def _mentions(text: str, talk: Talk, roster: Roster, pattern) -> None:
    """Remember the characters a narration sentence names; its opening subject counts as the latest."""
    if pattern is not None:
        for m in pattern.finditer(text):
            talk.saw(roster.resolve(m.group(0)))
        if m := pattern.match(text):
            talk.saw(roster.resolve(m.group(0)))


def _called(text: str, roster: Roster) -> set[str]:
    """Return the characters a quotation addresses by name ("…, Lizzy?", "my dear Mr. Bennet!")."""
    pattern = roster.pattern()
    names = set()
    for m in pattern.finditer(text) if pattern is not None else ():
        before, after = text[: m.start()], text[m.end():]
        if re.fullmatch(r"\s*[“‘「]\s*", before) and not re.match(r"[,，!?！？]", after):
            continue  # "“Bingley.”" answers a question with a name; it calls no one
        if _BEFORE_VOCATIVE.search(before) and _AFTER_VOCATIVE.match(after):
            names.add(roster.resolve(m.group(0)))
    return names


def _named_in(text: str, roster: Roster) -> set[str]:
    """Return every character a quotation names."""
    pattern = roster.pattern()
    return {roster.resolve(m.group(0)) for m in pattern.finditer(text)} if pattern is not None else set()


def _addressee(segs: list[Segment], quotes: list[int], roster: Roster, speaker: str) -> str | None:
    for i in quotes:
        for name in _called(segs[i].text, roster):
            if name != speaker:
                return name
    return None


def _share_in_paragraph(segs: list[Segment], quotes: list[int]) -> None:
    """Give quotations still unplaced the speaker of the nearest placed quotation in the same paragraph."""
    placed = [i for i in quotes if segs[i].speaker != UNKNOWN_SPEAKER]
    if not placed:
        return
    for i in quotes:
        if segs[i].speaker == UNKNOWN_SPEAKER:
            j = min(placed, key=lambda k: (abs(k - i), k > i))
            between = range(min(i, j) + 1, max(i, j) + 1)
            if all(segs[k].kind == "dialogue" and segs[k].text[:1] not in OPENING_QUOTES for k in between):
                segs[i] = replace(segs[i], speaker=segs[j].speaker, confidence=segs[j].confidence, rule=segs[j].rule)
            elif all(segs[k].kind == "dialogue" for k in between):
                continue  # two quotations with nothing between them: a change of speaker
            else:
                segs[i] = replace(segs[i], speaker=segs[j].speaker, confidence=min(segs[j].confidence,
                                  CONFIDENCE["paragraph-share"]), rule="paragraph-share")


def _left_open(text: str, zh: bool) -> bool:
    """Return True when a quotation runs on past the paragraph's end (no closing mark)."""
    t = text.rstrip()
    return bool(t) and t[-1] not in CLOSING_QUOTES and "’" != t[-1]
