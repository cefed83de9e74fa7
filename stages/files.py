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


class Staged:
    """A file written in full under a temporary name beside `path`, before it is made durable and put in place.

    Whoever wrote it can read it at `tmp` (to check it, say) while `commit` syncs it to disk and renames it onto
    `path`, so checking a large file overlaps waiting for the disk to take it; `discard` drops it instead."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part" + self.path.suffix,
                                        dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(tmp_name)
        os.chmod(self.tmp, 0o666 & ~_umask())

    def commit(self) -> Path:
        """Sync the file to disk and rename it onto its path; return the path."""
        try:
            with open(self.tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(self.tmp, self.path)
        finally:
            self.tmp.unlink(missing_ok=True)
        return self.path

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


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
