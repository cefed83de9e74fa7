"""The voice library's audit log: one JSON line per event, appended to <workspace>/voices/audit.jsonl.

The log records who-may-speak decisions a rights holder may later ask about: voices added, licences
changed, renders refused, verifications that failed. It is only ever appended to (one write per line,
flushed and synced), never rewritten, so a line once written stays as it was.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from stages.errors import UserError

AUDIT_FILE = "audit.jsonl"
EVENTS = ("voice-added", "licence-changed", "render-refused", "voice-verified-failed")  # the events written today
_EVENT_NAME = re.compile(r"^[a-z][a-z-]*$")
RESERVED_KEYS = ("time", "event")


def audit_path(root: Path) -> Path:
    """Return the audit log of the workspace at `root`."""
    return Path(root) / "voices" / AUDIT_FILE


def audit(root: Path, event: str, **fields: Any) -> Path:
    """Append {"time": UTC ISO time, "event": event, **fields} as one line to the workspace's log; return its path."""
    if not _EVENT_NAME.match(event):
        raise UserError(f"audit event {event!r} is not a lowercase-hyphenated name such as {EVENTS[0]!r}")
    if clash := [k for k in RESERVED_KEYS if k in fields]:
        raise UserError(f"audit field {clash[0]!r} is reserved for the log itself; name the field differently")
    time = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    line = json.dumps({"time": time, "event": event, **fields}, ensure_ascii=False, default=str) + "\n"
    path = audit_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))  # one write per line: lines from two processes never interleave
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def read_audit(root: Path) -> list[dict[str, Any]]:
    """Return every event in the workspace's audit log, oldest first ([] when there is none)."""
    path = audit_path(root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    events = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise UserError(f"{path} line {number} is not JSON ({e}); the log was edited by hand") from e
    return events
