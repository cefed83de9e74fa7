"""The casting director's whole step: attribute every line (LLM when configured, else the built-in
sieve), then merge the character bible with what a producer edited, and save both.

With series folders, their bibles steer the attribution too (the book's own edits win) and each series bible
learns the book's characters after the run; see bible.py for the rules."""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from stages.attribute import attribute, book_roster, build_bible
from stages.attribute.bible import BIBLE_FILE, Bible, combine, inherit, load_series, update_series
from stages.errors import UserError
from stages.model import UNKNOWN_SPEAKER, Manuscript, Segment

log = logging.getLogger(__name__)

PROJECT_CONFIG_FILE = "audiobook.toml"  # at the workspace root: [llm] base_url, model, api_key, ...
LOW_CONFIDENCE = 0.5  # dialogue attributed below this is listed for review


@dataclass(frozen=True)
class Direction:
    manuscript: Manuscript
    bible: Bible
    llm: dict | None  # the LLM run's report, None when no LLM is configured

    def review(self) -> list[Segment]:
        """Return the dialogue segments a person should check: unknown speaker or low confidence."""
        return [s for s in self.manuscript.segments
                if s.kind == "dialogue" and (s.speaker == UNKNOWN_SPEAKER or s.confidence < LOW_CONFIDENCE)]

    def summary(self) -> dict:
        """Return characters with their line counts, and how many lines need review."""
        dialogue = [s for s in self.manuscript.segments if s.kind == "dialogue"]
        return {
            "characters": [{"name": c.name, "aliases": list(c.aliases), "gender": c.gender, "lines": c.lines}
                           for c in sorted(self.bible.characters, key=lambda c: -c.lines)],
            "dialogue": len(dialogue),
            "attributed": sum(s.speaker != UNKNOWN_SPEAKER for s in dialogue),  # the narrator's own lines count
            "review": len(self.review()),
            "llm": self.llm,
        }


def project_config(root: Path) -> dict:
    """Return the workspace's audiobook.toml as a dict ({} when there is none)."""
    path = Path(root) / PROJECT_CONFIG_FILE
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path} is not valid TOML ({e}); fix it or remove it") from e


def _edited_by_hand(bible: Bible) -> list:
    """Return the characters a person added or changed: the guidance an LLM gets (its own earlier
    answers are not fed back, so an untouched re-run sends the same prompts and hits the cache)."""
    return [c for c in bible.characters if c not in bible.machine]


def machine_bible(manuscript: Manuscript, steering: Bible) -> Bible:
    """Return the machine's bible for the attributed book; a character the bible renamed keeps the aliases and
    gender the text gives under the name the roster knows them by."""
    roster = book_roster(manuscript)
    fresh = build_bible(manuscript, roster)
    people = roster.people
    out = []
    for c in fresh.characters:
        known = steering.find(c.name)
        person = next((p for p in people if known and {p.name, *p.aliases} & known.names()), None)
        if person is not None and not c.aliases and c.gender == "unknown":
            aliases = tuple(n for n in (person.name, *person.aliases) if n != c.name)
            c = replace(c, aliases=aliases, gender=person.gender)
        out.append(c)
    return Bible(tuple(out), tuple(out))


def direct(manuscript: Manuscript, *, book_dir: Path, cache_dir: Path, config: dict | None = None,
           use_llm: bool = True, series_dirs: Sequence[Path] = ()) -> Direction:
    """Attribute `manuscript` steered by its character bible laid over the series bibles of `series_dirs`; merge
    and save the book's bible in `book_dir` and add the book to each series bible; return the direction."""
    bible_path = Path(book_dir) / BIBLE_FILE
    book, series = Bible.load(bible_path), load_series(series_dirs)
    edited = combine(series, book)
    llm_config = None
    if use_llm:
        from stages.attribute.llm import LlmConfig

        llm_config = LlmConfig.from_env(config or {})
    report = None
    if llm_config is not None:
        from stages.attribute.llm import attribute_with_llm

        log.info("attributing with %s at %s", llm_config.model, llm_config.base_url)
        manuscript, llm_report = attribute_with_llm(
            manuscript, llm_config, cache_dir=Path(cache_dir) / "llm",
            fallback=lambda m: attribute(m, bible=edited), characters=[c.to_dict() for c in _edited_by_hand(edited)],
        )
        report = llm_report.to_dict()
    else:
        manuscript = attribute(manuscript, bible=edited)
    fresh = machine_bible(manuscript, edited)
    bible = book.merge(inherit(series, fresh))
    bible.save(bible_path)
    update_series(series_dirs, fresh, manuscript.slug)
    return Direction(manuscript, bible, report)
