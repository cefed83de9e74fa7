"""Rights: whether each cast voice's licence lets it speak this book, checked before any audio is made.

A voice is refused when its card has no licence, the licence does not cover the book's title (slug or
title) or series, is not yet valid or has expired, does not permit the use or the territory, or there is
no consent record (no consent document named, the document is missing, or its bytes differ from the
sha256 the licence recorded); a reference clip that changed since the card was written is refused too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from stages.errors import UserError
from stages.voices.audit import audit, read_audit
from stages.voices.card import USES, WORLDWIDE, Licence, VoiceCard, file_problems, licence_digest, sha256_file

RIGHTS_TABLE = "rights"  # audiobook.toml: [rights] use = "audiobook", territory = "worldwide"


class RightsError(UserError):
    """A cast voice may not be used for this book; nothing was synthesized."""

    def __init__(self, message: str, refusals: list[dict[str, str]]):
        super().__init__(message)
        self.refusals = refusals  # one {"voice", "licence", "reason"} per refused voice


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def _covers(licence: Licence, title: str, slug: str, series: Iterable[str]) -> bool:
    if not licence.titles and not licence.series:
        return True
    names = {_norm(title), _norm(slug)}
    in_series = {_norm(s) for s in series}
    return any(_norm(t) in names for t in licence.titles) or any(_norm(s) in in_series for s in licence.series)


def _scope(licence: Licence) -> str:
    parts = [repr(t) for t in licence.titles] + [f"series {s!r}" for s in licence.series]
    return ", ".join(parts)


def consent_problem(card: VoiceCard) -> str | None:
    """Return why the card's licence has no consent record, or None when the recorded document is intact."""
    licence = card.licence
    if licence is None or not licence.consent:
        return "no consent record (the [licence] names no consent document)"
    path = card.folder / licence.consent
    if not path.is_file():
        return f"no consent record ({path} is missing)"
    if sha256_file(path) != licence.consent_sha256:
        return f"no consent record ({path} differs from the sha256 the licence records)"
    return None


def _reference_problems(card: VoiceCard) -> list[str]:
    found = []
    for ref in card.references:
        path = card.folder / ref.path
        if not path.is_file():
            found.append(f"its reference clip {path} is missing")
        elif sha256_file(path) != ref.sha256:
            found.append(f"its reference clip {path} has changed since the card was written")
    return found


def _date_problem(licence: Licence, today: date) -> str | None:
    if licence.valid_from and today < date.fromisoformat(licence.valid_from):
        return f"the licence is not valid until {licence.valid_from} (today is {today.isoformat()})"
    if licence.valid_to and today > date.fromisoformat(licence.valid_to):
        return f"the licence expired on {licence.valid_to} (today is {today.isoformat()})"
    return None


def check_licence(
    card: VoiceCard,
    *,
    title: str,
    slug: str,
    series: Iterable[str] = (),
    use: str = "audiobook",
    territory: str = WORLDWIDE,
    today: date,
) -> str | None:
    """Return None when `card` may speak the book `title` (`slug`) for `use` in `territory`, else every reason not."""
    licence = card.licence
    if licence is None:
        return f"it has no licence (add a [licence] table to {card.path})"
    reasons = [consent_problem(card), *_reference_problems(card), _date_problem(licence, today)]
    if not _covers(licence, title, slug, series):
        reasons.append(f"the licence covers only {_scope(licence)}, not {title!r} ({slug})")
    if use not in licence.uses:
        reasons.append(f"the licence does not permit use {use!r} (it permits {', '.join(licence.uses)})")
    territories = {_norm(t) for t in licence.territories}
    if WORLDWIDE not in territories and _norm(territory) not in territories:
        covered = ", ".join(licence.territories)
        reasons.append(f"the licence does not cover territory {territory!r} (it covers {covered})")
    found = [r for r in reasons if r]
    return "; ".join(found) if found else None


def allowed_voices(
    cards: Mapping[str, VoiceCard],
    *,
    title: str,
    slug: str,
    series: Iterable[str] = (),
    use: str = "audiobook",
    territory: str = WORLDWIDE,
    today: date | None = None,
) -> set[str]:
    """Return the ids of the voices whose licence lets them speak this book: the pool casting may choose from."""
    today = today or date.today()
    series = list(series)
    return {vid for vid, card in cards.items()
            if check_licence(card, title=title, slug=slug, series=series, use=use, territory=territory, today=today)
            is None}


def rights_scope(config: Mapping[str, Any]) -> dict[str, str]:
    """Return the use and territory a workspace's audiobook.toml [rights] table sets (audiobook, worldwide)."""
    table = config.get(RIGHTS_TABLE, {})
    if not isinstance(table, dict) or set(table) - {"use", "territory"}:
        raise UserError(f"audiobook.toml [{RIGHTS_TABLE}] may set only use and territory; fix it")
    use, territory = table.get("use", "audiobook"), table.get("territory", WORLDWIDE)
    if use not in USES or not isinstance(territory, str) or not territory.strip():
        raise UserError(f"audiobook.toml [{RIGHTS_TABLE}]: use must be one of {', '.join(USES)} and territory a "
                        f"name such as \"worldwide\" or \"US\"; fix it")
    return {"use": use, "territory": territory.strip()}


def enforce(
    cards: Mapping[str, VoiceCard],
    voice_ids: Iterable[str],
    *,
    title: str,
    slug: str,
    series: Iterable[str] = (),
    use: str = "audiobook",
    territory: str = WORLDWIDE,
    today: date | None = None,
    audit_root: Path | None = None,
) -> None:
    """Raise RightsError, naming each refused voice, its licence and why, unless every voice may speak the book.

    With `audit_root` (the workspace root) a refusal is logged as a render-refused line per voice, and a
    voice allowed for the first time, or under licence terms that changed since, as a licence-changed line.
    """
    today = today or date.today()
    series = list(series)
    refusals = []
    for voice_id in sorted(set(voice_ids)):
        card = cards.get(voice_id)
        reason = (check_licence(card, title=title, slug=slug, series=series, use=use, territory=territory, today=today)
                  if card else "the library has no card for it")
        if reason:
            licence = card.licence.id if card and card.licence else "none"
            refusals.append({"voice": voice_id, "licence": licence, "reason": reason,
                             "card": str(card.path) if card else "voices/"})
    if not refusals:
        if audit_root is not None:
            note_licence_changes(audit_root, [cards[v] for v in sorted(set(voice_ids))])
        return
    if audit_root is not None:
        for r in refusals:
            audit(audit_root, "render-refused", voice=r["voice"], licence=r["licence"], title=title, slug=slug,
                  use=use, territory=territory, reason=r["reason"])
    said = "; ".join(f"voice {r['voice']!r} (licence {r['licence']!r}) may not be used for {title!r}: {r['reason']}"
                     for r in refusals)
    raise RightsError(f"{said}; nothing was synthesized: cast another voice (the book's cast.toml or --narrator) "
                      f"or fix the [licence] in {', '.join(r['card'] for r in refusals)}", refusals)


def verify_card(card: VoiceCard, *, today: date) -> list[str]:
    """Return one line per problem with a card's files and licence (any title); [] when it is sound."""
    problems = file_problems(card)
    if card.licence is None:
        return problems + [f"{card.path}: voice {card.id!r} has no licence; add a [licence] table"]
    if card.licence.consent == "":
        problems.append(f"{card.path}: voice {card.id!r} has no consent record; name the consent document and "
                        f"its sha256 in [licence] consent and consent_sha256")
    if dated := _date_problem(card.licence, today):
        problems.append(f"{card.path}: voice {card.id!r}: {dated}; renew it and update [licence] valid_from/valid_to")
    return problems


def note_licence_changes(root: Path, cards: Iterable[VoiceCard]) -> int:
    """Log licence-changed for each card whose licence differs from the last one logged; return how many lines."""
    last: dict[str, str] = {}
    for event in read_audit(root):
        if "voice" in event and "licence_sha256" in event:
            last[event["voice"]] = event["licence_sha256"]
    written = 0
    for card in cards:
        digest = licence_digest(card.licence)
        if last.get(card.id, "") != digest and card.licence is not None:
            audit(root, "licence-changed", voice=card.id, licence=card.licence.id, licence_sha256=digest,
                  previous_sha256=last.get(card.id, ""), terms=card.licence.to_dict())
            written += 1
    return written
