"""Find an EPUB's cover as a JPEG or PNG, including the raster inside a Standard Ebooks SVG cover."""

from __future__ import annotations

import base64
import binascii
import posixpath
import re
from dataclasses import dataclass
from urllib.parse import unquote

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_DATA_URI = re.compile(rb"data:image/(jpeg|jpg|png);base64,([A-Za-z0-9+/=\s]+)")
_SVG_HREF = re.compile(rb"<image[^>]*?(?:xlink:)?href=\"([^\"#]+)\"", re.S)
_IMG_SRC = re.compile(rb"<(?:img|image)[^>]*?(?:src|xlink:href|href)=\"([^\"#]+)\"", re.S)


@dataclass(frozen=True)
class Cover:
    """A cover image ready to write beside the manuscript."""

    data: bytes
    mime: str  # "image/jpeg" or "image/png"

    @property
    def suffix(self) -> str:
        return ".png" if self.mime == "image/png" else ".jpg"


def raster_cover(data: bytes) -> Cover | None:
    """Return `data` as a Cover when it is a JPEG or PNG (by its magic bytes), else None."""
    if data.startswith(JPEG_MAGIC):
        return Cover(data=data, mime="image/jpeg")
    if data.startswith(PNG_MAGIC):
        return Cover(data=data, mime="image/png")
    return None


def svg_embedded_raster(svg: bytes) -> Cover | None:
    """Return the largest base64 JPEG/PNG embedded in an SVG (`<image xlink:href="data:image/jpeg;base64,...">`)."""
    best: Cover | None = None
    for m in _DATA_URI.finditer(svg):
        try:
            data = base64.b64decode(re.sub(rb"\s+", b"", m.group(2)), validate=True)
        except (binascii.Error, ValueError):
            continue
        cover = raster_cover(data)
        if cover and (best is None or len(cover.data) > len(best.data)):
            best = cover
    return best


def find_cover(book) -> Cover | None:
    """Return the EPUB's cover image (EPUB 3 cover-image, EPUB 2 meta cover, or a likely-named image)."""
    for item in _cover_candidates(book):
        cover = _item_cover(book, item)
        if cover:
            return cover
    return None


def _cover_candidates(book) -> list:
    items = list(book.get_items())
    out = [i for i in items if "cover-image" in (getattr(i, "properties", None) or [])]
    out += [i for i in items if type(i).__name__ == "EpubCover"]
    for _, attrs in book.get_metadata("OPF", "cover"):
        ref = book.get_item_with_id((attrs or {}).get("content", ""))
        if ref is not None:
            out.append(ref)
    out += [i for i in items if i.media_type.startswith("image/") and "cover" in (i.id + i.file_name).lower()]
    out += [i for i in items if type(i).__name__ == "EpubCoverHtml"]
    for ref in getattr(book, "guide", None) or []:
        if (ref.get("type") or "").lower() == "cover" and ref.get("href"):
            page = book.get_item_with_href(unquote(ref["href"]).partition("#")[0])
            if page is not None:
                out.append(page)
    return out


def _item_cover(book, item) -> Cover | None:
    data = item.content or b""
    if item.media_type in ("image/jpeg", "image/png"):
        return raster_cover(data)
    if item.media_type == "image/svg+xml":
        return svg_embedded_raster(data) or _linked(book, item.file_name, _SVG_HREF, data)
    if item.media_type in ("application/xhtml+xml", "text/html"):
        return svg_embedded_raster(data) or _linked(book, item.file_name, _IMG_SRC, data)
    return None


def _linked(book, base: str, pattern: re.Pattern, data: bytes) -> Cover | None:
    """Return the first raster image a cover SVG or page links to by path."""
    for m in pattern.finditer(data):
        href = m.group(1).decode("utf-8", "replace")
        if href.startswith("data:"):
            continue
        target = posixpath.normpath(posixpath.join(posixpath.dirname(base), unquote(href)))
        item = book.get_item_with_href(target)
        if item is not None and item.media_type in ("image/jpeg", "image/png"):
            cover = raster_cover(item.content or b"")
            if cover:
                return cover
    return None
