"""Footnotes and endnotes read as asides: the note's text said after the paragraph that refers to it.

By default a note reference is silent and the notes themselves are skipped (they are back matter).
With notes="aside" each reader resolves the references of a block to the notes' text, and the
notes follow the block as blocks of their own, which become narration introduced by "Note:".
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from stages.ingest.blocks import Block
from stages.ingest.xhtml import inline_text, local, types

log = logging.getLogger(__name__)

NOTE_MODES = ("skip", "aside")
NOTE_TYPES = frozenset({"footnote", "endnote", "rearnote", "note"})
NOTE_ROLES = frozenset({"doc-footnote", "doc-endnote"})
NOTE_LISTS = frozenset({"footnotes", "endnotes", "rearnotes"})


def check_mode(notes: str) -> str:
    """Return `notes` when it is a known mode, else raise UserError listing the choices."""
    from stages.errors import UserError

    if notes not in NOTE_MODES:
        raise UserError(f"unknown notes mode {notes!r}; choose one of: {', '.join(NOTE_MODES)}")
    return notes


def collect_notes(file_name: str, root) -> dict[str, str]:
    """Return {"file#id": text} for every footnote or endnote in a parsed XHTML document."""
    found: dict[str, str] = {}
    for el in root.iter():
        ident = el.get("id") if local(el) else None
        if ident and _is_note(el):
            text = inline_text(el).replace("\n", " ")
            if text:
                found.setdefault(f"{file_name}#{ident}", text)
    return found


def _is_note(el) -> bool:
    if NOTE_TYPES.intersection(types(el)) or el.get("role") in NOTE_ROLES:
        return True
    parent = el.getparent()
    return local(el) == "li" and parent is not None and any(
        NOTE_LISTS.intersection(types(a)) or a.get("role") == "doc-endnotes" for a in (parent, parent.getparent())
        if a is not None)


def with_notes(blocks: list[Block] | tuple[Block, ...], lookup: Callable[[str], str | None],
               where: str = "") -> list[Block]:
    """Return `blocks` with a "note" block after each block that refers to notes, in reference order."""
    out: list[Block] = []
    for block in blocks:
        out.append(block)
        seen: set[str] = set()
        for key in block.notes:
            if key in seen:
                continue
            seen.add(key)
            text = lookup(key)
            if text:
                out.append(Block("note", text))
            else:
                log.warning("%s: note %s is referred to but not found; it is not read", where or "book", key)
    return out
