"""The checks of a read-along EPUB that EPUBCheck does not make: clips inside their audio, durations, fragment ids.

Reading a whole novel's EPUB (~1 GB, its MP3s stored inside) is kept to what the checks need: the XML
documents, and of each MP3 only its headers, read in place from the EPUB file.
"""

from __future__ import annotations

import json
import posixpath
import zipfile
from pathlib import Path
from typing import BinaryIO

from stages import files
from stages.errors import UserError
from stages.package import epubzip
from stages.package.overlay import (
    CLIP_SLACK_MS,
    DURATION_TOLERANCE_MS,
    EPUB_TEXTREF,
    NS,
    SMIL_AUDIO,
    SMIL_PAR,
    SMIL_SEQ,
    SMIL_TEXT,
    audio_duration_ms,
    parse_clock,
)

KNOWN_VERSION = 1  # bump when a check is added or changed: earlier findings are then not reused


def _xml(z: zipfile.ZipFile, name: str, epub: Path):
    from lxml import etree

    try:
        return etree.fromstring(z.read(name), etree.XMLParser(collect_ids=False))
    except (KeyError, etree.XMLSyntaxError) as e:
        raise UserError(f"{epub} has no readable {name} ({e}); write the EPUB again") from e


def _declared_durations(opf) -> dict[str, float]:
    """Return media:duration values by the id they refine ("" for the book's total)."""
    out = {}
    for meta in opf.iterfind("opf:metadata/opf:meta[@property='media:duration']", NS):
        out[meta.get("refines", "").lstrip("#")] = parse_clock(meta.text or "")
    return out


def _audio_ms(z: zipfile.ZipFile, raw: BinaryIO, epub: Path, src: str) -> float:
    """Return the length in ms of the EPUB's audio member `src` (MP3 or MP4), read from its headers (-1.0 when it is
    absent)."""
    try:
        info = z.getinfo(src)
    except KeyError:
        return -1.0
    if info.compress_type == zipfile.ZIP_STORED:  # read in place: only the headers, not the whole member
        return audio_duration_ms(epubzip.open_stored(raw, info, where=str(epub)), src, where=f"{epub}:{src}")
    with z.open(info) as member:
        return audio_duration_ms(member, src, where=f"{epub}:{src}")


def _check_overlay(
    z: zipfile.ZipFile, raw: BinaryIO, epub: Path, smil_name: str, audio_ms: dict[str, float]
) -> tuple[list[str], float, list[str]]:
    """Return the problems of one SMIL overlay, the sum of its clips in ms and the members it read besides itself."""
    problems, total, ids, members, clocks = [], 0.0, {}, {}, {}
    base = posixpath.dirname(smil_name)
    smil = _xml(z, smil_name, epub)

    def member(ref: str) -> str:  # a SMIL src, resolved to a member name once per distinct src
        if ref not in members:
            members[ref] = posixpath.normpath(posixpath.join(base, ref))
        return members[ref]

    def check_fragment(element, ref: str) -> None:
        doc, _, frag = ref.partition("#")
        if doc not in ids:
            name = member(doc)
            ids[doc] = name, set(_xml(z, name, epub).xpath("//@id", smart_strings=False)) if _has(z, name) else set()
        if frag not in ids[doc][1]:
            problems.append(f"{_where(smil_name, element)} points at #{frag}, which is not an id in {ids[doc][0]}")

    def clock(value: str) -> float:  # a clip's end is the next clip's begin: parse each value once
        if value not in clocks:
            clocks[value] = parse_clock(value)
        return clocks[value]

    for seq in smil.iter(SMIL_SEQ):  # a segment timed word by word names its span in epub:textref
        if "#" in (ref := seq.get(EPUB_TEXTREF, "")):
            check_fragment(seq, ref)
    for par in smil.iter(SMIL_PAR):
        children = {child.tag: child for child in par}  # faster than two find()s, for ~100k pars a novel
        text, audio = children.get(SMIL_TEXT), children.get(SMIL_AUDIO)
        if text is None or audio is None:
            problems.append(f"{_where(smil_name, par)} lacks a text or audio element")
            continue
        check_fragment(par, text.get("src", ""))
        src = member(audio.get("src", ""))
        if src not in audio_ms:
            audio_ms[src] = _audio_ms(z, raw, epub, src)
        begin, end = clock(audio.get("clipBegin", "0")), clock(audio.get("clipEnd", "0"))
        if audio_ms[src] < 0:
            problems.append(f"{_where(smil_name, par)} plays {src}, which is not in the EPUB")
        elif not 0 <= begin < end <= audio_ms[src] + CLIP_SLACK_MS:
            problems.append(f"{_where(smil_name, par)} clip {begin:.0f}-{end:.0f} ms is outside {src} "
                            f"(0-{audio_ms[src]:.0f} ms)")
        total += end - begin
    read = sorted({name for name, _ in ids.values()} | {m for m in members.values() if m in audio_ms})
    return problems, total, read


def _identity(z: zipfile.ZipFile, names: list[str]) -> list | None:
    """Return the CRC-32 and size of each member named (what a check of them depends on); None if one is missing."""
    try:
        return [[z.getinfo(n).CRC, z.getinfo(n).file_size] for n in names]
    except KeyError:
        return None


def _has(z: zipfile.ZipFile, name: str) -> bool:
    try:
        z.getinfo(name)
    except KeyError:
        return False
    return True


def _where(smil_name: str, element) -> str:
    """Return how a problem names a SMIL element: "OEBPS/c01.smil par 'par-c01-p0001-s01'"."""
    return f"{smil_name} {element.tag.rpartition('}')[2]} {element.get('id')!r}"


def check_overlays(epub_path: Path, *, known: Path | None = None) -> list[str]:
    """Return what is wrong with the EPUB's Media Overlays that EPUBCheck does not check ([] when all is well).

    With `known` (a JSON file in the book's work folder) an overlay whose SMIL, text documents and audio are
    byte for byte (by the zip's CRC-32 and size) those of an earlier check keeps that check's findings, so a
    rebuild after one chapter changed checks that chapter; the book-wide sums are always made anew."""
    epub = Path(epub_path)
    earlier = _read_known(known)
    found_now: dict[str, dict] = {}
    if not zipfile.is_zipfile(epub):
        raise UserError(f"{epub} is not an EPUB (not a readable zip file); write it again with write_overlay_epub")
    with zipfile.ZipFile(epub) as z, open(epub, "rb") as raw:
        root = _xml(z, "META-INF/container.xml", epub).find(".//container:rootfile", NS)
        opf_name = root.get("full-path")
        opf = _xml(z, opf_name, epub)
        base = posixpath.dirname(opf_name)
        hrefs = {i.get("id"): posixpath.normpath(posixpath.join(base, i.get("href")))
                 for i in opf.iterfind("opf:manifest/opf:item", NS)}
        declared = _declared_durations(opf)
        problems, audio_ms, sums = [], {}, {}
        for item in opf.iterfind("opf:manifest/opf:item[@media-overlay]", NS):
            mo = item.get("media-overlay")
            if mo not in hrefs:
                problems.append(f"no item {mo}")
                sums[mo] = 0.0
                continue
            entry = earlier.get(hrefs[mo])
            if entry is not None and _identity(z, [hrefs[mo], *entry["read"]]) == entry["identity"]:
                audio_ms.update(entry["audio_ms"])
            else:
                found, total, read = _check_overlay(z, raw, epub, hrefs[mo], audio_ms)
                entry = {"read": read, "identity": _identity(z, [hrefs[mo], *read]), "problems": found,
                         "sum_ms": total, "audio_ms": {m: audio_ms[m] for m in read if m in audio_ms}}
            found_now[hrefs[mo]] = entry
            problems += entry["problems"]
            sums[mo] = entry["sum_ms"]
            if mo not in declared:
                problems.append(f"overlay {mo} has no media:duration")
            elif abs(declared[mo] - sums[mo]) > DURATION_TOLERANCE_MS:
                problems.append(f"overlay {mo} declares {declared[mo]:.0f} ms but its clips sum to {sums[mo]:.0f} ms")
    if abs(declared.get("", -1.0) - sum(sums.values())) > DURATION_TOLERANCE_MS:
        problems.append(
            f"the book declares {declared.get('')} ms in all but its overlays sum to {sum(sums.values()):.0f} ms"
        )
    real = sum(v for v in audio_ms.values() if v > 0)
    if abs(sum(sums.values()) - real) > DURATION_TOLERANCE_MS:
        problems.append(f"the overlays play {sum(sums.values()):.0f} ms but the audio files last {real:.0f} ms")
    if known is not None:
        files.write_json(Path(known), {"version": KNOWN_VERSION, "overlays": found_now})
    return problems


def _read_known(path: Path | None) -> dict[str, dict]:
    """Return the findings of the last check by SMIL member, or {} (no file, another version, unreadable)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8")) if path else {}
        overlays = data["overlays"] if data.get("version") == KNOWN_VERSION else {}
        return {k: v for k, v in overlays.items() if {"read", "identity", "problems", "sum_ms", "audio_ms"} <= set(v)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}
