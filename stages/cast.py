"""Casting: which voice speaks for the narrator and for each character.

The cast sheet (cast.toml beside the manuscript) is the producer's to edit. A run keeps every
entry already there, adds the speakers it has not seen, and refuses voice ids the library lacks.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from stages import files
from stages.casting_plan import DISTINCT_TARGET, Similarity, plan, scenes, spread
from stages.errors import UserError
from stages.model import NARRATOR, UNKNOWN_SPEAKER, Manuscript, Segment, Voice

log = logging.getLogger(__name__)

BUNDLED_VOICES_DIR = Path(__file__).resolve().parents[1] / "voices"
DEFAULT_NARRATOR = "joe"
FEMALE_MARKERS = ("Mrs.", "Mrs", "Miss", "Lady", "Madam", "Madame", "Ms.", "Aunt", "Queen", "Duchess", "Mother", "Sister")
PRONOUN_GENDER = {"he": "male", "him": "male", "his": "male", "himself": "male",
                  "she": "female", "her": "female", "hers": "female", "herself": "female"}
PRONOUN_WINDOW_CHARS = 80  # how far after a name a pronoun is taken to refer back to it
MALE_MARKERS = ("Mr.", "Mr", "Sir", "Lord", "Dr.", "Uncle", "King", "Duke", "Father", "Brother", "Captain", "Colonel")


def load_library(*dirs: Path) -> dict[str, Voice]:
    """Return every voice card found in `dirs` (later folders override earlier ones), by id."""
    voices: dict[str, Voice] = {}
    for folder in (BUNDLED_VOICES_DIR, *dirs):
        for card in sorted(Path(folder).glob("*/voice.toml")):
            try:
                data = tomllib.loads(card.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as e:
                raise UserError(f"voice card {card} is not valid TOML ({e}); fix or remove it") from e
            if data.get("id") != card.parent.name:
                raise UserError(f"voice card {card} has id {data.get('id')!r}; it must match its folder name")
            voices[data["id"]] = Voice.from_dict(data)
    if not voices:
        raise UserError(f"no voices found in {BUNDLED_VOICES_DIR}; the voice library is missing from this checkout")
    return voices


@dataclass(frozen=True)
class Casting:
    """Speaker name -> voice id, for every speaker in a manuscript, with how distinct the main voices are."""

    voices: dict[str, str]
    main: tuple[str, ...] = ()  # the main characters, most lines first
    spread: tuple[tuple[str, str, float], ...] = ()  # (speaker, speaker, cosine of their voices), most similar first
    clashes: tuple[tuple[str, str, str], ...] = ()  # (speaker, speaker, voice) sharing a voice in one scene
    lines: dict[str, str] = field(default_factory=dict)  # segment id -> voice id: one line in another voice

    def voice_for(self, speaker: str) -> str:
        return self.voices.get(speaker) or self.voices[NARRATOR]

    def voice_for_segment(self, segment: Segment) -> str:
        """Return the voice id that says `segment`: the one given to that line, else its speaker's."""
        return self.lines.get(segment.id) or self.voice_for(segment.speaker)

    def voice_ids(self, manuscript: Manuscript) -> list[str]:
        """Return every voice id that says a line of `manuscript`, sorted."""
        return sorted({self.voice_for_segment(s) for s in manuscript.segments})


def guess_gender(name: str) -> str:
    """Return "female", "male" or "" from a speaker name's honorific."""
    first = name.split()[0] if name.split() else ""
    if first in FEMALE_MARKERS:
        return "female"
    if first in MALE_MARKERS:
        return "male"
    return ""


def infer_genders(manuscript: Manuscript) -> dict[str, str]:
    """Return "female"/"male" for speakers whose honorific, or the pronouns that follow their name, say so."""
    speakers = [s for s in manuscript.speakers() if s not in (NARRATOR, UNKNOWN_SPEAKER)]
    votes = {s: Counter() for s in speakers}
    patterns = {s: re.compile(rf"\b{re.escape(s)}\b") for s in speakers}
    for seg in manuscript.segments:
        if seg.kind != "narration":
            continue
        for speaker, pattern in patterns.items():
            for m in pattern.finditer(seg.text):
                after = seg.text[m.end(): m.end() + PRONOUN_WINDOW_CHARS].lower()
                votes[speaker].update(PRONOUN_GENDER[w] for w in re.findall(r"[a-z]+", after) if w in PRONOUN_GENDER)
    genders = {}
    for speaker in speakers:
        by_title = guess_gender(speaker)
        (top, n), *rest = votes[speaker].most_common() or [("", 0)]
        runner_up = rest[0][1] if rest else 0
        genders[speaker] = by_title or (top if n >= 2 and n >= 2 * runner_up else "")
    return genders


def cast(
    manuscript: Manuscript,
    library: dict[str, Voice],
    sheet: Path,
    narrator: str | None = None,
    genders: dict[str, str] | None = None,
    similarity: Similarity | None = None,
    allowed: set[str] | None = None,
) -> Casting:
    """Return the casting for `manuscript`, keeping every entry of an existing cast sheet, and save the sheet.

    `genders` (from the character bible) wins over what the text's honorifics and pronouns suggest.
    `similarity` (voice id, voice id -> cosine of their speaker embeddings) spreads the main characters over
    the most distinct voices; without it, voices are dealt round-robin by gender. `allowed` (the voices whose
    licence covers this book) limits the voices a new speaker may be given; a producer's choice is kept as is,
    for the rights check to accept or refuse.
    """
    existing = read_sheet(sheet, library) if sheet.exists() else {}
    line_voices = read_line_voices(sheet, library) if sheet.exists() else {}
    lines = Counter(s.speaker for s in manuscript.segments)
    chosen = dict(existing)
    chosen.setdefault(NARRATOR, narrator or _narrator_voice(library))
    if narrator:
        _check_voice(narrator, library, "--narrator")
        chosen[NARRATOR] = narrator
    chosen.setdefault(UNKNOWN_SPEAKER, chosen[NARRATOR])
    pools = _character_pools({k: v for k, v in library.items() if allowed is None or k in allowed},
                             language=manuscript.language)
    genders = infer_genders(manuscript) | {k: v for k, v in (genders or {}).items() if v in ("male", "female")}
    if similarity is not None and pools[""]:
        dialogue = Counter(s.speaker for s in manuscript.segments if s.kind == "dialogue")
        pool = sorted({v for g in ("male", "female", "") for v in pools[g]})
        planned = plan(dialogue, genders, library, pool, chosen, similarity, scenes(manuscript))
        chosen = {**planned.voices, **{s: v for s, v in chosen.items()}}
        for speaker in lines:
            chosen.setdefault(speaker, chosen[NARRATOR])
        casting = Casting(chosen, planned.main, tuple(spread(planned, similarity)), planned.clashes, line_voices)
        write_sheet(sheet, chosen, lines, library, casting)
        return casting
    turn = Counter()
    for speaker, _ in lines.most_common():
        if speaker in chosen:
            continue
        gender = genders.get(speaker, "")
        pool = pools.get(gender) or pools[""]
        if not pool:
            chosen[speaker] = chosen[NARRATOR]
            continue
        chosen[speaker] = pool[turn[gender] % len(pool)]
        turn[gender] += 1
    casting = Casting(chosen, lines=line_voices)
    write_sheet(sheet, chosen, lines, library, casting)
    return casting


def embedding_similarity(library: dict[str, Voice], cache_dir: Path | None = None,
                         allowed: set[str] | None = None) -> Similarity:
    """Return voice id, voice id -> cosine of the two voices' speaker embeddings (cached under `cache_dir`).

    A voice outside `allowed` is never synthesized to be measured: it counts as identical to every other.
    """
    from stages.voices.embed import cosine, voice_embedding

    vectors: dict[str, object] = {}

    def similarity(a: str, b: str) -> float:
        if allowed is not None and not {a, b} <= allowed:
            return 1.0
        for v in (a, b):
            if v not in vectors:
                vectors[v] = voice_embedding(library[v], cache_dir)
        return cosine(vectors[a], vectors[b])

    return similarity


def _narrator_voice(library: dict[str, Voice]) -> str:
    if DEFAULT_NARRATOR in library:
        return DEFAULT_NARRATOR
    return next(v.id for v in library.values() if v.role == "narrator")


def _character_pools(library: dict[str, Voice], language: str) -> dict[str, list[str]]:
    primary = language.split("-")[0]
    chars = [v for v in library.values() if v.role == "character" and v.language.split("-")[0] == primary]
    pools = {g: [v.id for v in chars if v.gender == g] for g in ("male", "female")}
    # unknown gender: alternate between the two so neighbouring speakers sound different
    pools[""] = [v for pair in zip(pools["male"], pools["female"]) for v in pair] or [v.id for v in chars]
    return pools


def _check_voice(voice_id: str, library: dict[str, Voice], where: str) -> None:
    if voice_id not in library:
        raise UserError(f"{where}: unknown voice {voice_id!r}; choose one of: {', '.join(sorted(library))}")


def read_sheet(sheet: Path, library: dict[str, Voice]) -> dict[str, str]:
    """Return the speaker -> voice id table of a cast sheet, checking every voice exists."""
    try:
        data = tomllib.loads(sheet.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"cast sheet {sheet} is not valid TOML ({e}); fix it or delete it to recast") from e
    table = data.get("speakers", {})
    for speaker, voice_id in table.items():
        _check_voice(voice_id, library, f"{sheet} [speakers] {speaker!r}")
    return dict(table)


def read_line_voices(sheet: Path, library: dict[str, Voice]) -> dict[str, str]:
    """Return the segment id -> voice id table (`[lines]`) of a cast sheet: lines said in another voice."""
    try:
        table = tomllib.loads(sheet.read_text(encoding="utf-8")).get("lines", {})
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"cast sheet {sheet} is not valid TOML ({e}); fix it or delete it to recast") from e
    for segment, voice_id in table.items():
        _check_voice(voice_id, library, f"{sheet} [lines] {segment!r}")
    return dict(table)


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_sheet(sheet: Path, chosen: dict[str, str], lines: Counter, library: dict[str, Voice],
                casting: Casting | None = None) -> Path:
    """Write the cast sheet: one `speaker = voice` line each, with its line count as a comment, and how alike
    the main characters' voices are (cosine of their speaker embeddings; at most DISTINCT_TARGET is the aim)."""
    out = [
        "# Cast sheet: which voice speaks for whom. Edit a voice id and re-run `audiobook produce`;",
        "# only the lines of the speakers you changed are synthesized again.",
        "# Voices: " + ", ".join(f"{v.id} ({v.gender or 'any'}, {v.role})" for v in library.values()),
    ]
    if casting is not None and casting.spread:
        out.append(f"# Main characters' voices, pairwise similarity (aim <= {DISTINCT_TARGET}):")
        out += [f"#   {a} / {b}: {c:.2f}" for a, b, c in casting.spread]
    for a, b, voice in casting.clashes if casting is not None else ():
        out.append(f"#   {a} and {b} share {voice} in one scene: the library has too few distinct voices")
    out += ["", "[speakers]"]
    for speaker, voice_id in chosen.items():
        out.append(f"{_toml_str(speaker)} = {_toml_str(voice_id)}  # {lines.get(speaker, 0)} segments")
    if casting is not None and casting.lines:
        out += ["", "# Single lines said in another voice than their speaker's (segment id = voice id)", "[lines]"]
        out += [f"{_toml_str(segment)} = {_toml_str(voice_id)}" for segment, voice_id in sorted(casting.lines.items())]
    return files.write_text(sheet, "\n".join(out) + "\n")
