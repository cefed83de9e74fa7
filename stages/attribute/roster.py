"""The book's characters: names found in speech tags, honorific forms and vocatives, merged into one entry per person.

"Mr. Darcy", "Darcy" and "Fitzwilliam Darcy" become one character; "Lizzy" and "Eliza" join "Elizabeth" through a
short table of common English pet names. Gender comes from honorifics first, then from the pronouns that follow a
name in the narration.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from stages.model import Manuscript

MIN_HONORIFIC_MENTIONS = 2  # "Mr. X" seen at least this often in the book becomes a character
MIN_VOCATIVE_MENTIONS = 2  # a name called out in quotes at least this often becomes a character
TITLE_GENDER_VOTES = 5  # one honorific outweighs this many pronouns
PRONOUN_WINDOW_CHARS = 80  # how far after a name a narration pronoun is read as referring to it

MALE_TITLES = frozenset("Mr. Mister Sir Lord Colonel Captain Dr. Uncle Father Brother King Prince Master Rev.".split())
FEMALE_TITLES = frozenset("Mrs. Miss Ms. Lady Madam Madame Mme. Aunt Mother Sister Queen Princess Dame Mistress".split())
TITLES = MALE_TITLES | FEMALE_TITLES
MALE_OF_SURNAME = frozenset("Mr. Mister Sir Lord Colonel Captain Dr. Rev.".split())  # a bare surname means him
# Common English pet names -> the given name they shorten; a pet name joins a character known by that given name.
PET_NAMES = {
    "Lizzy": "Elizabeth", "Lizzie": "Elizabeth", "Eliza": "Elizabeth", "Liz": "Elizabeth", "Beth": "Elizabeth",
    "Betsy": "Elizabeth", "Bess": "Elizabeth", "Kitty": "Catherine", "Kate": "Catherine", "Katie": "Catherine",
    "Jenny": "Jane", "Jack": "John", "Johnny": "John", "Bill": "William", "Will": "William", "Billy": "William",
    "Bob": "Robert", "Rob": "Robert", "Dick": "Richard", "Tom": "Thomas", "Tommy": "Thomas", "Ned": "Edward",
    "Ted": "Edward", "Charlie": "Charles", "Harry": "Henry", "Meg": "Margaret", "Peggy": "Margaret", "Molly": "Mary",
    "Polly": "Mary", "Sally": "Sarah", "Nan": "Anne", "Annie": "Anne", "Fanny": "Frances", "Jim": "James",
    "Jem": "James", "Sam": "Samuel", "Nell": "Eleanor", "Nelly": "Eleanor", "Dolly": "Dorothy", "Sukey": "Susan",
}
NOT_VOCATIVES = frozenset(
    "Sir Madam Ma’am Mama Mamma Papa Mother Father Aunt Uncle Miss Sister Brother God Heaven Lord Oh Yes No Well "
    "Indeed Nay Pray Dear Love Child Boy Girl I You Ay Ah Aye Hush Come Now Then Mr Mrs".split()
)
_WORD = r"[A-Z][a-z]+(?:[-’'][A-Z][a-z]+)?"
_TITLE = "|".join(re.escape(t) for t in sorted(TITLES, key=len, reverse=True))
_HONORIFIC_NAME = re.compile(rf"\b(?:{_TITLE})\s+{_WORD}(?:\s+(?:de\s+)?{_WORD})?(?![\w’'])")
_VOCATIVE = re.compile(rf",\s+({_WORD})(?=[,!?.]|\s*[”’](?![a-z]))")
_FULL_NAME = re.compile(rf"(?<=[a-z,;] )({_WORD}) ({_WORD})(?![\w’'])")  # "… of Fitzwilliam Darcy", mid-sentence
_MALE = re.compile(r"\b(he|his|him|himself)\b", re.I)
_FEMALE = re.compile(r"\b(she|her|hers|herself)\b", re.I)
_ZH_MALE = re.compile(r"他(?!们)")
_ZH_FEMALE = re.compile(r"[她伊](?!们)")  # 伊: Lu Xun's generation writes "she" so
ZH_PRONOUN_WINDOW_CHARS = 24
ZH_MALE_HINTS = "先生 老爷 少爷 哥 弟 叔 伯 爷 父 公 儿子 男".split()  # in a name: 四叔, 闰土哥
ZH_FEMALE_HINTS = "太太 夫人 小姐 姐 妹 妈 娘 婶 嫂 母 婆 女".split()


@dataclass(frozen=True)
class Person:
    """One character: the name to use, every other name seen for them, gender and how often named."""

    name: str
    aliases: tuple[str, ...]
    gender: str  # "male", "female" or "unknown"
    mentions: int


@dataclass(frozen=True)
class Roster:
    """The characters of a book and a lookup from every alias to its canonical name."""

    people: tuple[Person, ...]
    zh: bool = False  # Chinese names sit between other Han characters, with no word boundary

    def resolve(self, name: str) -> str | None:
        """Return the canonical name for `name`, or None when no character answers to it."""
        index = self._index()
        name = _clean(name)
        if name in index:
            return index[name]
        longer = {index[a] for a in index if a.endswith(" " + name) and " " in name}  # "Fitzwilliam Darcy"
        return longer.pop() if len(longer) == 1 else None

    def gender(self, name: str) -> str:
        """Return the gender of the character called `name` ("unknown" when not known)."""
        for person in self.people:
            if person.name == name:
                return person.gender
        return "unknown"

    def pattern(self) -> re.Pattern | None:
        """Return one regex that finds any alias (longest first), or None for an empty roster."""
        if "_pattern" not in self.__dict__:
            names = sorted(self._index(), key=len, reverse=True)
            edge = ("", "") if self.zh else (r"(?<![\w’'])", r"(?![\w’'])")
            pattern = re.compile(edge[0] + "(?:" + "|".join(map(re.escape, names)) + ")" + edge[1]) if names else None
            object.__setattr__(self, "_pattern", pattern)
        return self.__dict__["_pattern"]

    def _index(self) -> dict[str, str]:
        cached = self.__dict__.get("_cache")
        if cached is None:
            cached = {_clean(a): p.name for p in self.people for a in (p.name, *p.aliases)}
            object.__setattr__(self, "_cache", cached)
        return cached


def _clean(name: str) -> str:
    return re.sub(r"\s+", " ", name).strip()


def build_roster(manuscript: Manuscript, speakers: Counter[str]) -> Roster:
    """Return the roster from named speakers (name -> quotations they were tagged with) and the book's text."""
    zh = manuscript.language.lower().startswith("zh")
    found = Counter(speakers)
    if not zh:
        found.update(_honorific_names(manuscript))
        found.update(_vocatives(manuscript))
        found.update(_full_names(manuscript, found))
    groups = _group(found)
    people = []
    for members in groups:
        canonical = _canonical(members, found)
        aliases = tuple(sorted(m for m in members if m != canonical))
        people.append(Person(canonical, aliases, "unknown", sum(found[m] for m in members)))
    people = _with_genders(people, manuscript, zh)
    return Roster(tuple(sorted(people, key=lambda p: -p.mentions)), zh)


def _honorific_names(manuscript: Manuscript) -> Counter[str]:
    counts = Counter(_clean(m.group(0)) for s in manuscript.segments for m in _HONORIFIC_NAME.finditer(s.text))
    common = {(_split(n)[0], _split(n)[1][-1]) for n, c in counts.items() if c >= MIN_HONORIFIC_MENTIONS}
    return Counter({
        name: n for name, n in counts.items()
        if n >= MIN_HONORIFIC_MENTIONS or (_split(name)[0], _split(name)[1][-1]) in common  # "Mr. Fitzwilliam Darcy"
    })


def _vocatives(manuscript: Manuscript) -> Counter[str]:
    counts = Counter(
        m.group(1) for s in manuscript.segments if s.kind == "dialogue" for m in _VOCATIVE.finditer(s.text)
    )
    return Counter({n: c for n, c in counts.items() if c >= MIN_VOCATIVE_MENTIONS and n not in NOT_VOCATIVES})


def _full_names(manuscript: Manuscript, found: Counter[str]) -> Counter[str]:
    """Return given-name + surname pairs whose surname a titled character carries ("Fitzwilliam Darcy")."""
    surnames = {_split(n)[1][-1] for n in found if _split(n)[0] in TITLES}
    counts = Counter(
        f"{m.group(1)} {m.group(2)}" for s in manuscript.segments for m in _FULL_NAME.finditer(s.text)
        if m.group(2) in surnames and m.group(1) not in TITLES
    )
    return Counter({n: c for n, c in counts.items() if c >= MIN_HONORIFIC_MENTIONS})


def _split(name: str) -> tuple[str, list[str]]:
    words = name.split(" ")
    if words[0] in TITLES and len(words) > 1:
        return words[0], [w for w in words[1:] if w != "de"]
    return "", words


def _group(found: Counter[str]) -> list[list[str]]:
    """Return names grouped by person: titled names first, longest first, then bare names, then pet names."""
    def order(name: str) -> tuple:
        title, words = _split(name)
        return (not title, name in PET_NAMES, title == "" and len(words) > 1, -len(words), -found[name], name)

    groups: list[list[str]] = []
    for name in sorted(found, key=order):
        home = _home(name, groups)
        if home is None:
            groups.append([name])
        else:
            home.append(name)
    for group in list(groups):  # "Miss Elizabeth" is the Elizabeth known by her given name
        title, words = _split(group[0])
        bare = next((g for g in groups if g is not group and g[0] == words[0]), None) if title == "Miss" else None
        if bare is not None:
            bare.extend(group)
            groups.remove(group)
    return groups


def _home(name: str, groups: list[list[str]]) -> list[str] | None:
    """Return the group `name` belongs to, or None when it names someone new."""
    title, words = _split(name)
    heads = [(_split(g[0]), g) for g in groups]
    if title:  # "Sir William" joins "Sir William Lucas"; "Mr. Darcy" joins "Mr. Fitzwilliam Darcy"
        prefix = next((g for (t, w), g in heads if t == title and w[: len(words)] == words), None)
        surname = [g for (t, w), g in heads if t == title and t in MALE_OF_SURNAME and w[-len(words):] == words]
        return prefix or (surname[0] if len(surname) == 1 else None)
    if name in PET_NAMES:
        return next((g for (t, w), g in heads if not t and w[0] == PET_NAMES[name]), None)
    if len(words) == 1:
        bare = next((g for (t, w), g in heads if not t and w == words), None)
        male = [g for (t, w), g in heads if t in MALE_OF_SURNAME and w[-1] == words[0]]
        given = [g for (t, w), g in heads if t in TITLES - {"Mrs.", "Miss", "Ms."} and w[0] == words[0] and len(w) > 0]
        return bare or (male[0] if len(male) == 1 else None) or (given[0] if len(given) == 1 else None)
    full = [g for (t, w), g in heads if t and w == words]
    first = [g for (t, w), g in heads if not t and w == words[:1]]
    male = [g for (t, w), g in heads if t in MALE_OF_SURNAME and w == words[-1:]]
    for candidates in (full, first, male):
        if len(candidates) == 1:
            return candidates[0]
    return None


def _canonical(members: list[str], found: Counter[str]) -> str:
    """Return the usual titled form ("Mr. Darcy"), or the most used name for people called by a given name."""
    titled = [m for m in members if _split(m)[0] not in ("", "Miss", "Master")]
    titled = titled or [m for m in members if _split(m)[0]] if all(_split(m)[0] for m in members) else titled
    return max(titled or members, key=lambda m: (found[m], -len(m)))


def _with_genders(people: list[Person], manuscript: Manuscript, zh: bool) -> list[Person]:
    votes = {p.name: 0 for p in people}
    for p in people:
        for name in (p.name, *p.aliases):
            title = _split(name)[0]
            votes[p.name] += TITLE_GENDER_VOTES * ((title in MALE_TITLES) - (title in FEMALE_TITLES))
            if zh:
                votes[p.name] += TITLE_GENDER_VOTES * (any(h in name for h in ZH_MALE_HINTS)
                                                      - any(h in name for h in ZH_FEMALE_HINTS))
    roster = Roster(tuple(people), zh)
    pattern = roster.pattern()
    window, he, she = (ZH_PRONOUN_WINDOW_CHARS, _ZH_MALE, _ZH_FEMALE) if zh else (PRONOUN_WINDOW_CHARS, _MALE, _FEMALE)
    if pattern is not None:
        for seg in manuscript.segments:
            if seg.kind != "narration":
                continue
            for m in pattern.finditer(seg.text):
                after = seg.text[m.end(): m.end() + window]
                male, female = he.search(after), she.search(after)
                if male or female:
                    he_first = male and (not female or male.start() < female.start())
                    votes[roster.resolve(m.group(0))] += 1 if he_first else -1
    return [Person(p.name, p.aliases, _gender(votes[p.name]), p.mentions) for p in people]


def _gender(vote: int) -> str:
    return "male" if vote > 0 else "female" if vote < 0 else "unknown"
