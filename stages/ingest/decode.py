"""Read a text file as lines, decoding and hashing it block by block so a big book is never held twice.

The encoding is chosen once, from the first block (see choose_encoding): a BOM wins; else UTF-8,
GB18030 or Windows-1252 by what the bytes look like. Bytes the chosen encoding cannot read do not stop
the read: in UTF-8 they are taken as Windows-1252 (the usual cause is text pasted in from another file),
counted, and reported once, as a warning naming the line of the first one.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path

from stages.errors import UserError

log = logging.getLogger(__name__)

BLOCK_BYTES = 1 << 20  # read, decode and hash this much at a time
CONTROL_SHARE_MAX = 0.01  # more control characters than this and the file is binary, not text
HAN_SHARE_MIN = 0.3  # GB18030 is believed only when this share of the non-ASCII text is Han
# Share of the non-ASCII text (valid UTF-8 characters and stray bytes) that reads as UTF-8:
UTF8_SHARE_SURE = 0.5  # at least this: UTF-8 (GB18030 text reads so by chance for 20-30 % of its characters)
UTF8_SHARE_MIN = 0.05  # below this, and not Chinese: Windows-1252 (its few UTF-8-looking pairs are chance)
GB18030_PAIRED_SHARE_MIN = 0.9  # share of high bytes that must come in pairs for GB18030 (1.0 in Chinese text)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_ESCAPED = re.compile(r"[\udc80-\udcff]")  # bytes the decoder could not read, kept by "surrogateescape"
_NON_ASCII = re.compile(r"[^\x00-\x7f\udc80-\udcff]")
_HIGH_BYTE = re.compile(rb"[\x80-\xff]")
_HIGH_PAIR = re.compile(rb"[\x81-\xfe][\x80-\xfe]")
# A byte that is not UTF-8 is read as Windows-1252; its five unassigned bytes as Latin-1.
_FALLBACK = {0xDC00 + b: bytes([b]).decode("cp1252", "ignore") or chr(b) for b in range(0x80, 0x100)}
_MAGIC = (  # binary formats a book file is sometimes confused with, to say what the file is
    (b"PK\x03\x04", "a zip archive (an EPUB or a Word file?)"), (b"%PDF", "a PDF"), (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"), (b"\xd0\xcf\x11\xe0", "an old Word document"),
    (b"\x7fELF", "a program"), (b"\x1f\x8b", "a gzip archive"), (b"Rar!", "a RAR archive"),
)
ENCODING_NAMES = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "utf-16": "UTF-16", "gb18030": "GB18030",
                  "cp1252": "Windows-1252"}


class TextFile:
    """The lines of a text file, decoded incrementally; `sha256` and the counts are final once read."""

    def __init__(self, path: Path, block_bytes: int = BLOCK_BYTES):
        self.path = Path(path)
        self.block_bytes = block_bytes
        self.encoding = ""
        self.sha256 = ""
        self.chars = 0
        self.replaced = 0  # bytes read by the fallback (or replaced) because the encoding could not read them
        self.first_replaced_line = 0

    def lines(self, *, report: bool = True) -> Iterator[str]:
        """Yield each line without its line ending ("\\n", "\\r\\n" or "\\r"); the last line may be empty.

        Once all lines are read, raise UserError if the file was binary after all, and (with `report`)
        log a warning when bytes had to be read in another encoding.
        """
        self.chars = self.replaced = self.first_replaced_line = 0
        digest = hashlib.sha256()
        controls = 0
        carry = ""
        number = 1  # line number at the start of `carry`
        try:
            with open(self.path, "rb") as f:
                first = f.read(self.block_bytes)
                self.encoding = choose_encoding(first)
                decoder = codecs.getincrementaldecoder(self.encoding)(errors=_errors(self.encoding))
                block = first
                while True:
                    final = len(block) < self.block_bytes
                    digest.update(block)
                    text = self._repair(decoder.decode(block, final=final), number)
                    controls += len(_CONTROL.findall(text))
                    self.chars += len(text)
                    if block is first:
                        _check_not_binary(self.path, first, controls, len(text))
                    text = carry + text
                    if not final and text.endswith("\r"):
                        text, carry = text[:-1], "\r"
                    else:
                        carry = ""
                    pieces = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
                    if not final:
                        carry = pieces.pop() + carry
                    yield from pieces
                    number += len(pieces)
                    if final:
                        break
                    block = f.read(self.block_bytes)
        except OSError as e:
            raise UserError(f"cannot read {self.path}: {e.strerror or e}; check the file and its permissions") from e
        self.sha256 = digest.hexdigest()
        if controls > CONTROL_SHARE_MAX * max(self.chars, 1):
            raise UserError(
                f"{self.path}: not a text file (binary or in an unknown encoding); save the book as UTF-8 text")
        if report:
            self._warn()

    def _repair(self, text: str, number: int) -> str:
        """Return `text` with undecodable bytes read as Windows-1252, counting them and noting the first line."""
        if self.encoding in ("utf-16", "gb18030"):
            found = text.count("\ufffd")
            first = text.find("\ufffd")
        else:
            first = (m.start() if (m := _ESCAPED.search(text)) else -1)
            found = 0
            if first >= 0:
                text, found = _ESCAPED.subn(lambda m: _FALLBACK[ord(m.group())], text)
        if found and not self.replaced:
            self.first_replaced_line = number + text.count("\n", 0, first)
        self.replaced += found
        return text

    def _warn(self) -> None:
        if not self.replaced or self.encoding == "cp1252":
            return
        if self.encoding.startswith("utf-8"):
            what = "read as Windows-1252"
        else:
            what = "replaced by \ufffd"
        log.warning(
            "%s: %d byte(s) are not valid %s (the first on line %d); %s. Check those lines, and save the "
            "file as UTF-8 to be sure", self.path, self.replaced, ENCODING_NAMES[self.encoding],
            self.first_replaced_line, what)


def _errors(encoding: str) -> str:
    return "replace" if encoding in ("utf-16", "gb18030") else "surrogateescape"


def choose_encoding(head: bytes) -> str:
    """Return the codec for a file whose first block is `head`.

    Without a BOM: UTF-8 when all of it, or most of its non-ASCII text, reads as UTF-8 (stray bytes are
    then Windows-1252 pasted in); GB18030 when its non-ASCII bytes come in pairs that read as Chinese;
    UTF-8 again when some of it reads as UTF-8; else Windows-1252.
    """
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    text = codecs.getincrementaldecoder("utf-8")("surrogateescape").decode(head, final=False)
    bad = len(_ESCAPED.findall(text))
    if not bad:
        return "utf-8"
    good = len(_NON_ASCII.findall(text))
    share = good / (good + bad)
    if share >= UTF8_SHARE_SURE:
        return "utf-8"
    if _reads_as_chinese(head):
        return "gb18030"
    return "utf-8" if share >= UTF8_SHARE_MIN else "cp1252"


def _reads_as_chinese(head: bytes) -> bool:
    """Return True when `head` is GB18030 Chinese: high bytes in pairs, decoding to mostly Han characters."""
    high = len(_HIGH_BYTE.findall(head))
    if 2 * len(_HIGH_PAIR.findall(head)) < GB18030_PAIRED_SHARE_MIN * high:
        return False
    try:
        text = codecs.getincrementaldecoder("gb18030")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    non_ascii = sum(1 for c in text if ord(c) > 127)
    return bool(non_ascii) and len(_HAN.findall(text)) >= HAN_SHARE_MIN * non_ascii


def _check_not_binary(path: Path, head: bytes, controls: int, chars: int) -> None:
    """Raise UserError when the first block is plainly binary, naming the format when it is a known one."""
    if controls <= CONTROL_SHARE_MAX * max(chars, 1):
        return
    kind = next((name for magic, name in _MAGIC if head.startswith(magic)), "binary data")
    raise UserError(
        f"{path}: not a text file: it holds {kind}, not text; give the book itself "
        "(.epub, or .txt/.md saved as UTF-8 text)"
    )
