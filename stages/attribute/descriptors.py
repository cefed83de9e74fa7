"""Speakers known by a description: "the nephew", "Scrooge’s nephew", "his wife", "her father".

A description used as a speech tag more than once ("returned the nephew", "said the gentleman") names a
character of its own, so every line of that person gets one voice; a possessive form ("Scrooge’s nephew")
names one at first use. A kinship description ("said his lady", "cried her father") is resolved through the
person the pronoun points at: a wife is the Mrs. of Mr. X's surname, a father the Mr. of the owner's surname.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace

from stages.attribute.explicit import tag_subject
from stages.attribute.roster import Person, Roster
from stages.model import Manuscript, Segment

MIN_DESCRIPTOR_TAGS = 2  # "the gentleman" tagged this often becomes a character
# kinship noun -> (relation, gender of the person it names)
RELATIONS = {
    "wife": ("spouse", "female"), "lady": ("spouse", "female"), "husband": ("spouse", "male"),
    "father": ("parent", "male"), "papa": ("parent", "male"), "mother": ("parent", "female"),
    "mamma": ("parent", "female"), "mama": ("parent", "female"), "son": ("child", "male"),
    "daughter": ("child", "female"), "brother": ("sibling", "male"), "sister": ("sibling", "female"),
    "uncle": ("kin", "male"), "aunt": ("kin", "female"), "nephew": ("kin", "male"), "niece": ("kin", "female"),
    "cousin": ("kin", "unknown"), "friend": ("friend", "unknown"), "companion": ("friend", "unknown"),
}
# "X’s nephew" calls X "uncle" or "aunt": a "the uncle" tag beside an "X’s nephew" one means X
RECIPROCAL = {
    "nephew": ("uncle", "aunt"), "niece": ("uncle", "aunt"), "uncle": ("nephew", "niece"), "aunt": ("nephew", "niece"),
    "son": ("father", "mother"), "daughter": ("father", "mother"), "father": ("son", "daughter"),
    "mother": ("son", "daughter"), "wife": ("husband",), "husband": ("wife",), "brother": ("brother", "sister"),
    "sister": ("brother", "sister"),
}
MALE_NOUNS = frozenset(
    "man gentleman boy lad fellow youth king prince lord master sir squire father husband uncle brother son "
    "nephew grandfather".split()
)
FEMALE_NOUNS = frozenset(
    "woman lady girl lass maid maiden queen princess mistress madam mother wife aunt sister daughter "
    "niece grandmother widow".split()
)
# Heads that describe a role in the exchange, not a person of their own.
NOT_PERSONS = frozenset(
    "other latter former same one first second last rest voice voices whole party company others both two "
    "three all speaker reply answer".split()
)
MARRIED_MALE = ("Mr.", "Sir", "Lord", "Dr.", "Colonel", "Captain")
MARRIED_FEMALE = ("Mrs.", "Lady", "Madame", "Mme.")
_POSSESSIVE = re.compile(r"^([A-Z][\w\-]*(?: [A-Z][\w\-]*)*)[’']s ([a-z][\w\-]*(?: [a-z][\w\-]*)?)$")
_THE = re.compile(r"^the ((?:[a-z][\w\-]* )?([a-z][\w\-]*))$")


def noun_gender(noun: str) -> str:
    noun = noun.lower()
    return "male" if noun in MALE_NOUNS else "female" if noun in FEMALE_NOUNS else "unknown"


def quote_tag(segs: list[Segment] | tuple[Segment, ...], i: int) -> str | None:
    """Return the speech tag's subject phrase beside the quotation at `i` (the tag after it first)."""
    if i + 1 < len(segs) and segs[i + 1].kind == "narration":
        if who := tag_subject(segs[i + 1].text, after=True):
            return who
    if i > 0 and segs[i - 1].kind == "narration":
        return tag_subject(segs[i - 1].text, after=False)
    return None


def with_descriptors(manuscript: Manuscript, roster: Roster) -> Roster:
    """Return the roster plus the characters known only by a description used as a speech tag."""
    heads, owned = _described(manuscript, roster)
    aliases: dict[str, tuple[str, ...]] = {}
    for owner, nouns in owned.items():  # "returned the uncle" beside "Scrooge’s nephew" is Scrooge
        answers = set().union(*(RECIPROCAL.get(n, ()) for n in nouns))
        for head in [h for h in heads if h in answers and not _owns(owned, h)]:
            if "unknown" in (noun_gender(head), roster.gender(owner)) or noun_gender(head) == roster.gender(owner):
                aliases[owner] = aliases.get(owner, ()) + (*heads.pop(head), f"the {head}", f"The {head}")
    people = [replace(p, aliases=tuple(dict.fromkeys(p.aliases + aliases.get(p.name, ())))) for p in roster.people]
    for head, phrases in heads.items():
        own = next((ph for ph in phrases if _POSSESSIVE.match(ph)), None)
        if own is None and sum(phrases.values()) < MIN_DESCRIPTOR_TAGS:
            continue
        name = own or head.capitalize()
        if roster.resolve(name) or roster.resolve(head.capitalize()):
            continue  # a named character answers to it ("the Ghost" when Ghost is a name)
        names = (set(phrases) | {f"the {head}", f"The {head}"}) - {name}
        people.append(Person(name, tuple(sorted(names)), noun_gender(head), sum(phrases.values())))
    return replace(roster, people=tuple(people))


def _described(manuscript: Manuscript, roster: Roster) -> tuple[dict[str, Counter[str]], dict[str, set[str]]]:
    """Return descriptive tag phrases by head noun, and for each named owner the nouns of "Owner’s noun" tags."""
    counts: Counter[str] = Counter()
    for ch in manuscript.chapters:
        for para in ch.paragraphs:
            segs = para.segments
            for i, seg in enumerate(segs):
                starts = seg.kind == "dialogue" and (i == 0 or segs[i - 1].kind != "dialogue")
                if starts and seg.rule == "descriptor" and (phrase := quote_tag(segs, i)):
                    counts[phrase.replace("'", "’")] += 1
    heads: dict[str, Counter[str]] = {}
    owned: dict[str, set[str]] = {}
    for phrase, n in counts.items():
        if m := _POSSESSIVE.match(phrase):
            head, owner = m.group(2).split(" ")[-1], roster.resolve(m.group(1))
            if head in NOT_PERSONS or not owner:
                continue
            owned.setdefault(owner, set()).add(head)
        elif (m := _THE.match(phrase)) and m.group(2) not in NOT_PERSONS:
            head = m.group(2)
        else:
            continue
        heads.setdefault(head, Counter())[phrase] += n
    return heads, owned


def _owns(owned: dict[str, set[str]], head: str) -> bool:
    return any(head in nouns for nouns in owned.values())


def surname(person: Person) -> str | None:
    """Return the family name a character carries in any of their names ("Mr. Bennet" -> "Bennet")."""
    for name in (person.name, *person.aliases):
        words = name.split(" ")
        if len(words) >= 2 and words[-1][:1].isupper() and "’" not in name:
            return words[-1]
    return None


def relative(noun: str, owner: str, roster: Roster, recent: list[str]) -> str | None:
    """Return the character who is the `owner`'s wife, father, sister … as far as names tell, or None."""
    relation, gender = RELATIONS[noun]
    people = {p.name: p for p in roster.people}
    if owner not in people or relation in ("friend", "kin"):
        return None
    family = surname(people[owner])
    titles = MARRIED_FEMALE if gender == "female" else MARRIED_MALE
    candidates = [p for p in roster.people if p.name != owner and p.gender == gender]
    if relation in ("spouse", "parent"):
        married = [p for p in candidates if p.name.split(" ")[0] in titles]
        if family:
            same = [p for p in married if surname(p) == family]
            if len(same) == 1:
                return same[0].name
        in_view = [p.name for p in married if p.name in recent]
        return max(in_view, key=recent.index) if in_view else None
    if family:  # child or sibling: someone of the owner's family, the most recent one
        kin = [p.name for p in candidates if surname(p) == family and p.name in recent]
        return max(kin, key=recent.index) if kin else None
    return None


def possessive(phrase: str) -> tuple[str, str] | None:
    """Return (pronoun, kinship noun) for "his wife", "her father"; None for other phrases."""
    m = re.fullmatch(r"(his|her|their)\s+(?:\w+\s+)?(\w+)", phrase, re.I)
    return (m.group(1).lower(), m.group(2).lower()) if m and m.group(2).lower() in RELATIONS else None

