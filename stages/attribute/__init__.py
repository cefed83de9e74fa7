"""Built-in speaker attribution: a deterministic, offline sieve that says who speaks each quotation.

Pass one reads explicit speech tags beside a quotation ("said Elizabeth", "母亲说"; see explicit.py). A roster of
the book's characters then merges the names it found with their honorific and pet forms (roster.py), and the
sieve (sieve.py) places the rest: continued quotations, "he/she said", the paragraph's actor, the person
addressed, turn-taking. Every dialogue segment carries the rule that placed it and a confidence; every segment
gets an emotion and intensity (emotion.py). A character bible (bible.py) can rename and merge characters.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from stages.attribute.bible import Bible, Character
from stages.attribute.descriptors import with_descriptors
from stages.attribute.emotion import EMOTIONS, tag_emotion
from stages.attribute.explicit import (  # noqa: F401  (the explicit pass is part of this package's API)
    Attribution, attribute_paragraph, tag_after_quote, tag_before_quote,
)
from stages.attribute.roster import FEMALE_TITLES, MALE_TITLES, Person, Roster, build_roster
from stages.attribute.sieve import NAMED_RULES, resolve_chapter
from stages.model import NARRATOR, UNKNOWN_SPEAKER, Manuscript, Paragraph

__all__ = [
    "EMOTIONS", "Bible", "Character", "attribute", "attribute_paragraph", "book_roster", "build_bible", "tag_emotion",
]

KNOWN_RULES = NAMED_RULES | {"play-persona"}  # rules whose speaker is a name from the text itself
YOUNG_TITLES = frozenset({"Miss", "Master"})
ZH_ELDERLY = ("老", "婆", "爷", "奶")
ZH_CHILD = ("小", "儿", "孩")


def attribute(manuscript: Manuscript, *, bible: Bible | None = None) -> Manuscript:
    """Return the manuscript with speaker, confidence, rule, emotion and intensity set on every segment."""
    zh = manuscript.language.lower().startswith("zh")
    explicit = _explicit(manuscript)
    roster = _with_bible(_roster(explicit), bible)
    first_person = any(s.rule == "first-person" for s in explicit.segments)
    chapters = [resolve_chapter(ch, roster, zh, first_person) for ch in explicit.chapters]
    chapters = [replace(ch, paragraphs=tuple(_emotions(p) for p in ch.paragraphs)) for ch in chapters]
    return manuscript.with_chapters(chapters)


def build_bible(manuscript: Manuscript, roster: Roster | None = None) -> Bible:
    """Return the machine's character bible for the book: everyone who speaks, with aliases, gender and lines.
    `roster` is book_roster(manuscript) when the caller has it already."""
    attributed = manuscript if any(s.rule for s in manuscript.segments) else attribute(manuscript)
    roster = roster or book_roster(manuscript)
    lines: Counter[str] = Counter()
    first: dict[str, str] = {}
    for seg in attributed.segments:
        if seg.kind == "dialogue" and seg.speaker not in (UNKNOWN_SPEAKER, NARRATOR):  # the narrator's own lines
            lines[seg.speaker] += 1
            first.setdefault(seg.speaker, seg.id)
    people = {p.name: p for p in roster.people}
    characters = []
    for name in sorted(lines, key=lambda n: first[n]):
        person = people.get(name, Person(name, (), "unknown", 0))
        characters.append(Character(name, person.aliases, person.gender, _age_group(person), "", lines[name], first[name]))
    return Bible(tuple(characters), tuple(characters))


def book_roster(manuscript: Manuscript) -> Roster:
    """Return the book's characters with their aliases and genders, from its speech tags, honorifics and vocatives."""
    return _roster(_explicit(manuscript))


def _roster(explicit: Manuscript) -> Roster:
    """Return the named characters of the explicit pass plus those known by a description ("the nephew")."""
    return with_descriptors(explicit, build_roster(explicit, _named(explicit)))


def _explicit(manuscript: Manuscript) -> Manuscript:
    """Return the manuscript after the explicit-tag pass alone."""
    zh = manuscript.language.lower().startswith("zh")
    return manuscript.with_chapters([
        replace(ch, paragraphs=tuple(attribute_paragraph(p, zh) for p in ch.paragraphs)) for ch in manuscript.chapters
    ])


def _named(manuscript: Manuscript) -> Counter[str]:
    return Counter(s.speaker for s in manuscript.segments if s.kind == "dialogue" and s.rule in KNOWN_RULES)


def _with_bible(roster: Roster, bible: Bible | None) -> Roster:
    """Return the roster with the bible's names, aliases and genders taking precedence."""
    if bible is None or not bible.characters:
        return roster
    taken = {n for c in bible.characters for n in c.names()}
    people = [Person(c.name, c.aliases, c.gender, c.lines) for c in bible.characters]
    for p in roster.people:
        if {p.name, *p.aliases} & taken:
            c = bible.find(p.name) or next(bible.find(a) for a in p.aliases if bible.find(a))
            extra = tuple(a for a in (p.name, *p.aliases) if a not in taken)
            people = [replace(q, aliases=q.aliases + extra) if q.name == c.name else q for q in people]
            taken |= set(extra)
        else:
            people.append(p)
    return Roster(tuple(people), roster.zh)


def _emotions(paragraph: Paragraph) -> Paragraph:
    segs = list(paragraph.segments)
    for i, seg in enumerate(segs):
        beside = ""
        if seg.kind == "dialogue":
            beside = " ".join(segs[j].text for j in (i + 1, i - 1) if 0 <= j < len(segs) and segs[j].kind == "narration")
        emotion, intensity = tag_emotion(seg.text, seg.kind, beside)
        segs[i] = replace(seg, emotion=emotion, intensity=intensity)
    return replace(paragraph, segments=tuple(segs))


def _age_group(person: Person) -> str:
    titles = {n.split(" ")[0] for n in (person.name, *person.aliases)}
    if titles & YOUNG_TITLES:
        return "young"
    if titles & (MALE_TITLES | FEMALE_TITLES):
        return "adult"
    if any(h in person.name for h in ZH_ELDERLY):
        return "elderly"
    if any(h in person.name for h in ZH_CHILD):
        return "child"
    return "unknown"
