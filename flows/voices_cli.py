"""`audiobook voices list|show|verify|add`: the voice library (bundled voices/ plus <root>/voices/) from the shell."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from pathlib import Path

from stages.errors import UserError

EXIT_PROBLEMS = 1  # `voices verify` found problems
OPEN_LICENCE_VALUES = {"titles": "(any title)", "series": "(any series)", "valid_from": "(no start)",
                       "valid_to": "(no end)"}  # what an empty licence field means, for `voices show`


def register(sub) -> None:
    """Add the `voices` command and its subcommands to the main parser's subparsers `sub`."""
    voices = sub.add_parser("voices", help="the voice library: list, show, verify and add voices")
    voices_sub = voices.add_subparsers(dest="voices_command", required=True)

    def command(name: str, help: str, run) -> argparse.ArgumentParser:
        p = voices_sub.add_parser(name, help=help)
        p.add_argument("--root", type=Path, default=Path(os.environ.get("AUDIOBOOK_ROOT", ".")),
                       help="workspace whose voices/ folder adds to the bundled voices (default: current folder)")
        p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
        p.set_defaults(run=run)
        return p

    command("list", "list every voice with its languages, engine and licence", _list)
    command("show", "show one voice's card, reference clips and licence", _show).add_argument("id", help="voice id")
    verify = command("verify", "re-check every voice's files, hashes and licence (exit 1 on any problem)", _verify)
    verify.add_argument("id", nargs="?", help="only this voice")
    add = command("add", "add a voice from a reference clip of one speaker", _add)
    add.add_argument("name", help="the new voice's name; its id is made from it")
    add.add_argument("--reference", type=Path, required=True, help="a clip of the speaker (3-30 s of clean speech)")
    add.add_argument("--transcript", required=True, help="what the clip says, word for word")
    add.add_argument("--licence", type=Path,
                     help="a .toml licence for the voice, its consent document beside it (README: Voice library)")
    add.add_argument("--no-match", action="store_true", help="do not shape a matched Piper voice toward the clip")
    add.add_argument("--gender", choices=("male", "female", ""), default="", help="the voice's gender, for casting")
    add.add_argument("--language", default="en-US", help="the language the voice speaks (BCP 47, default en-US)")
    add.add_argument("--protected", action="store_true",
                     help="an estate's voice: later clips that sound like it are refused without its licence")
    add.add_argument("--force", action="store_true", help="replace a voice of the same id in the workspace")


def _cards(args: argparse.Namespace):
    from stages.model import Workspace
    from stages.voices.card import load_cards

    workspace = Workspace(args.root.resolve())
    return workspace, load_cards(workspace.voices_dir)


def _card(cards: dict, voice_id: str):
    if voice_id not in cards:
        raise UserError(f"no voice {voice_id!r} in the library; `audiobook voices list` shows the ids "
                        f"({', '.join(sorted(cards))})")
    return cards[voice_id]


def _row(card) -> dict:
    licence = card.licence
    return {"id": card.id, "name": card.voice.name, "gender": card.voice.gender, "languages": list(card.languages),
            "engine": card.voice.engine, "licence": licence.id if licence else "", "valid_to":
            licence.valid_to if licence else "", "protected": card.protected}


def _list(args: argparse.Namespace) -> int:
    from flows.cli import _print_table

    _, cards = _cards(args)
    rows = [_row(c) for c in cards.values()]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return 0
    shown = [r | {"languages": ", ".join(r["languages"]), "licence": r["licence"] or "none (cannot render)",
                  "valid_to": r["valid_to"] or "open", "protected": "yes" if r["protected"] else "no"} for r in rows]
    _print_table(f"{len(rows)} voices", ("id", "name", "gender", "languages", "engine", "licence", "valid_to",
                                         "protected"), shown)
    return 0


def _show(args: argparse.Namespace) -> int:
    from stages.voices.licence import verify_card

    _, cards = _cards(args)
    card = _card(cards, args.id)
    data = card.to_dict() | {"folder": str(card.folder), "problems": verify_card(card, today=date.today())}
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=1))
        return 0
    for key in ("id", "name", "engine", "language", "languages", "gender", "age_group", "role", "styles",
                "description", "protected", "folder"):
        print(f"{key}: {_shown(data.get(key, ''))}")
    print("params: " + ", ".join(f"{k}={v}" for k, v in data["params"].items()))
    licence = data.get("licence")
    print("licence:" + ("" if licence else " none: this voice cannot render"))
    for key, value in (licence or {}).items():
        print(f"  {key}: {_shown(value) or OPEN_LICENCE_VALUES.get(key, '')}")
    for ref in data.get("reference", []):
        print(f"reference: {ref['path']} ({ref['seconds']:.2f} s, sha256 {ref['sha256'][:12]}): {ref['transcript']}")
    for problem in data["problems"]:
        print(f"problem: {problem}")
    return 0


def _shown(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return ", ".join(value) if isinstance(value, list) else str(value)


def _verify(args: argparse.Namespace) -> int:
    from stages.voices.audit import audit
    from stages.voices.licence import verify_card

    workspace, cards = _cards(args)
    chosen = [_card(cards, args.id)] if args.id else list(cards.values())
    found = {c.id: verify_card(c, today=date.today()) for c in chosen}
    failing = {k: v for k, v in found.items() if v}
    for voice_id, problems in failing.items():
        audit(workspace.root, "voice-verified-failed", voice=voice_id, problems=problems)
    if args.json:
        print(json.dumps({"ok": not failing, "voices": found}, ensure_ascii=False, indent=1))
    else:
        for problem in (p for problems in failing.values() for p in problems):
            print(problem)
    if failing:
        count = sum(len(v) for v in failing.values())
        print(f"error: {count} problem(s) in {len(failing)} of {len(chosen)} voice(s)", file=sys.stderr)
        return EXIT_PROBLEMS
    if not args.json:
        print(f"{len(chosen)} voice(s) verified: reference clips, consent documents and licences in order")
    return 0


def _add(args: argparse.Namespace) -> int:
    from stages.model import Workspace
    from stages.voices.add import add_voice

    workspace = Workspace(args.root.resolve())
    card = add_voice(args.name, args.reference, args.transcript, library_dir=workspace.voices_dir,
                     licence=args.licence, match=not args.no_match, protected=args.protected, force=args.force,
                     language=args.language, gender=args.gender)
    if args.json:
        print(json.dumps(card.to_dict() | {"folder": str(card.folder)}, ensure_ascii=False, indent=1))
        return 0
    licence = card.licence.id if card.licence else "none (add a [licence] table before casting it)"
    print(f"added voice {card.id!r} ({card.voice.engine}) in {card.folder}; licence: {licence}")
    return 0
