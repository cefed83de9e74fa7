"""Open an EPUB's package: check it is an EPUB and not DRM-encrypted, then load it, tolerating missing files.

ebooklib reads the manifest, spine and metadata. Its reader is wrapped so that a manifest item missing
from the zip becomes an item without content (the caller skips it with a warning) instead of an
exception, and so that it does not parse the table of contents itself: `epub.toc_titles` does that.
"""

from __future__ import annotations

import logging
import warnings
import zipfile
import zlib
from pathlib import Path

from stages.errors import UserError

log = logging.getLogger(__name__)

CONTAINER_PATH = "META-INF/container.xml"
MIMETYPE_PATH = "mimetype"
EPUB_MIMETYPE = "application/epub+zip"
ENCRYPTION_PATH = "META-INF/encryption.xml"
MIMETYPE_MAX_BYTES = 100
# Font obfuscation (IDPF and Adobe) scrambles embedded fonts only; anything else means DRM.
FONT_OBFUSCATION_ALGORITHMS = frozenset({"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"})


def check_package(path: Path) -> None:
    """Raise UserError unless `path` is a zip holding an EPUB container that is not DRM-encrypted."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            mimetype = _mimetype(zf) if MIMETYPE_PATH in names else ""
            encryption = zf.read(ENCRYPTION_PATH) if ENCRYPTION_PATH in names else None
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise UserError(f"{path}: not a valid EPUB ({e}); re-download or re-export the book as EPUB") from e
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}; check the file and its permissions") from e
    if CONTAINER_PATH not in names:
        what = f"a {mimetype!r} archive" if mimetype and mimetype != EPUB_MIMETYPE else "a zip archive"
        lacks = CONTAINER_PATH if mimetype else f"{CONTAINER_PATH} or a {MIMETYPE_PATH} file"
        raise UserError(
            f"{path}: not a valid EPUB: it is {what} without {lacks}; if it is an EPUB, re-export it from "
            "its editor, otherwise convert the book to EPUB, .txt or .md"
        )
    if mimetype != EPUB_MIMETYPE:
        found = f"says {mimetype!r}" if mimetype else "is missing"
        log.warning("%s: the %s file %s; reading it as an EPUB anyway", path, MIMETYPE_PATH, found)
    if encryption is not None:
        check_not_encrypted(path, encryption)


def _mimetype(zf: zipfile.ZipFile) -> str:
    with zf.open(MIMETYPE_PATH) as f:
        return f.read(MIMETYPE_MAX_BYTES).decode("ascii", "replace").strip()


def check_not_encrypted(path: Path, encryption_xml: bytes) -> None:
    """Raise UserError when encryption.xml encrypts more than fonts."""
    from lxml import etree

    from stages.ingest.xhtml import local

    try:
        root = etree.fromstring(encryption_xml, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as e:
        raise UserError(f"{path}: unreadable {ENCRYPTION_PATH} ({e}); the EPUB may be DRM-protected or damaged") from e
    algorithms = {el.get("Algorithm") for el in root.iter() if local(el) == "encryptionmethod"}
    drm = sorted(a or "unknown" for a in algorithms - FONT_OBFUSCATION_ALGORITHMS)
    if drm:
        raise UserError(
            f"{path}: the EPUB is DRM-encrypted ({', '.join(drm)}); only DRM-free books can be read: "
            "use a DRM-free edition of the book"
        )


def open_book(path: Path):
    """Return the ebooklib book and the paths its package lists that the zip lacks (those items have no content)."""
    from ebooklib import epub

    missing: list[str] = []

    class Reader(epub.EpubReader):
        def read_file(self, name):
            try:
                return super().read_file(name)
            except (KeyError, zipfile.BadZipFile, zlib.error):
                if name == CONTAINER_PATH or name == getattr(self, "opf_file", None):
                    raise
                missing.append(name)
                return None

        def _parse_nav(self, *args, **kwargs):
            return None

        def _parse_ncx(self, *args, **kwargs):
            return None

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = Reader(str(path), options={"ignore_ncx": True})
            book = reader.load()
            reader.process()
    except zipfile.BadZipFile as e:
        raise UserError(f"{path}: not a valid EPUB (bad zip: {e}); re-download or re-export the book") from e
    except KeyError as e:
        raise UserError(f"{path}: not a valid EPUB (missing file {e} inside); re-export the book as EPUB") from e
    except Exception as e:  # ebooklib raises EpubException, lxml errors, IndexError on broken packages
        raise UserError(
            f"{path}: not a valid EPUB (no readable package document: {e}); re-export the book as EPUB"
        ) from e
    return book, missing
