"""Who gets which voice: main characters the most mutually distinct voices, minor ones from a pool, and never
one voice for two characters who speak in the same scene when the library allows it.

Pure functions over names, line counts, genders and a similarity between voices (the cosine of their speaker
embeddings, see stages/voices/embed.py), so the plan can be tested and reasoned about apart from any audio.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

from stages.model import NARRATOR, UNKNOWN_SPEAKER, Manuscript, Voice

MAIN_SHARE = 0.05  # a character with at least this share of the dialogue lines is a main character
MAIN_MAX = 8  # ... and at most this many are
SCENE_GAP_PARAGRAPHS = 6  # this many paragraphs without dialogue end a scene (so does a scene break)
DISTINCT_TARGET = 0.85  # main characters' voices should be at most this similar, pairwise

Similarity = Callable[[str, str], float]  # voice id, voice id -> cosine of their speaker embeddings


@dataclass(frozen=True)
class Plan:
    """The voice chosen for each speaker, the main characters, and what could not be kept apart."""

    voices: dict[str, str]
    main: tuple[str, ...]
    clashes: tuple[tuple[str, str, str], ...]  # (speaker, speaker, voice) sharing a voice in one scene


def scenes(manuscript: Manuscript) -> list[set[str]]:
    """Return the sets of characters who speak within one scene: a chapter cut at scene breaks and long stretches
    of narration."""
    out: list[set[str]] = []
    for chapter in manuscript.chapters:
        current: set[str] = set()
        quiet = 0
        for para in chapter.paragraphs:
            speakers = {s.speaker for s in para.segments if s.kind == "dialogue"} - {NARRATOR, UNKNOWN_SPEAKER}
            quiet = 0 if speakers else quiet + 1
            if para.kind == "scene_break" or quiet >= SCENE_GAP_PARAGRAPHS:
                if current:
                    out.append(current)
                current = set()
            current |= speakers
        if current:
            out.append(current)
    return out


def main_characters(lines: Counter[str]) -> list[str]:
    """Return the characters with a large share of the dialogue, most lines first."""
    total = sum(lines.values()) or 1
    ranked = [s for s, n in lines.most_common() if s not in (NARRATOR, UNKNOWN_SPEAKER)]
    return [s for s in ranked if lines[s] / total >= MAIN_SHARE][:MAIN_MAX]


def plan(
    lines: Counter[str],
    genders: dict[str, str],
    library: dict[str, Voice],
    pool: list[str],
    fixed: dict[str, str],
    similarity: Similarity,
    co_scene: list[set[str]],
) -> Plan:
    """Return voices for every speaker in `lines` not already `fixed` (the narrator and a producer's choices).

    Main characters, most lines first, each take the gender-compatible voice of `pool` least similar to the
    voices already given to the narrator and the other main characters (a greedy max-min spread). Minor
    characters take, from the same pool, a voice nobody they share a scene with has, the least used first.
    """
    chosen = dict(fixed)
    neighbours: dict[str, set[str]] = {}
    for scene in co_scene:
        for s in scene:
            neighbours.setdefault(s, set()).update(scene - {s})
    mains = [s for s in main_characters(lines) if s not in fixed]
    for speaker in mains:
        fits = _fitting(pool, genders.get(speaker, ""), library)
        taken = [chosen[s] for s in chosen if s in mains or s == NARRATOR]
        near = {chosen[n] for n in neighbours.get(speaker, ()) if n in chosen}
        fresh = [v for v in fits if v not in taken] or fits
        chosen[speaker] = min(fresh, key=lambda v: (v in near, max((similarity(v, t) for t in taken), default=0.0), v))
    used = Counter(chosen.values())
    for speaker, _ in lines.most_common():
        if speaker in chosen or speaker in (NARRATOR, UNKNOWN_SPEAKER):
            continue
        fits = _fitting(pool, genders.get(speaker, ""), library)
        near = {chosen[n] for n in neighbours.get(speaker, ()) if n in chosen} | {chosen.get(NARRATOR)}
        chosen[speaker] = min(fits, key=lambda v: (v in near, used[v], v))
        used[chosen[speaker]] += 1
    clashes = tuple(
        (a, b, chosen[a]) for scene in co_scene for a, b in combinations(sorted(scene), 2)
        if a in chosen and b in chosen and chosen[a] == chosen[b]
    )
    return Plan(chosen, tuple(main_characters(lines)), tuple(dict.fromkeys(clashes)))


def spread(plan_: Plan, similarity: Similarity) -> list[tuple[str, str, float]]:
    """Return the pairwise similarity of the main characters' (and the narrator's) voices, most similar first."""
    people = [NARRATOR, *plan_.main] if NARRATOR in plan_.voices else list(plan_.main)
    pairs = [(a, b, similarity(plan_.voices[a], plan_.voices[b])) for a, b in combinations(people, 2)
             if plan_.voices[a] != plan_.voices[b]]
    return sorted(pairs, key=lambda p: -p[2])


def _fitting(pool: list[str], gender: str, library: dict[str, Voice]) -> list[str]:
    """Return the pool's voices of `gender` (any voice when the gender is unknown or none fits)."""
    same = [v for v in pool if library[v].gender == gender]
    return same if gender and same else list(pool)
