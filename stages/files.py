"""Atomic writes: a file is either absent or complete, never half-written."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; shipped files get the usual mode
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` atomically; return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: Path, text: str) -> Path:
    """Write UTF-8 `text` to `path` atomically; return the path."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, data: object) -> Path:
    """Write `data` as indented UTF-8 JSON atomically; return the path."""
    return write_text(path, json.dumps(data, ensure_ascii=False, indent=1) + "\n")


def sha256_file(path: Path) -> str:
    """Return the sha256 hex digest of a file's bytes, read in blocks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def sweep_partials(folder: Path) -> int:
    """Delete temporary files an interrupted run left under `folder`; return how many."""
    swept = 0
    for tmp in Path(folder).rglob(".*.part*"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            swept += 1
    return swept
