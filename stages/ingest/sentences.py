"""Split a paragraph into spoken units: quotations apart from narration, then sentences.

A segment is what the engine says in one go and what the read-along page highlights, so it
must be a whole sentence (or the quoted / unquoted part of one) and never empty or huge.
"""

from __future__ import annotations

import re

MAX_SEGMENT_CHARS = 400  # longer sentences are cut at ; , or spaces
MIN_PIECE_CHARS = 80  # a cut never leaves a piece shorter than this
MENTION_MAX_WORDS = 4  # a quoted phrase this short inside a sentence is a title, not speech
MENTION_MAX_HAN = 8

# Formatting characters that are invisible on the page and must not reach the engine, and typographic
# spaces that become a plain space (U+3000 stays: Chinese text uses it visibly).
_INVISIBLE = "\u2060\u200b\u00ad\ufeff"
_SPACES = "\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f"
_TIDY = str.maketrans(_SPACES, " " * len(_SPACES), _INVISIBLE)
_NEEDS_TIDY = re.compile(f"[{_INVISIBLE}{_SPACES}]")

_DOUBLE_PAIRS = {"“": "”", "„": "”", "«": "»", '"': '"', "「": "」", "『": "』"}
_CLOSERS = "”»」』"
_CLOSING_PUNCT = "”’\"')]»」』）》"

_ABBREVIATIONS = frozenset(
    "Mr Mrs Ms Messrs Mme Mlle Dr St Jr Sr Rev Col Capt Gen Lt Sgt Prof Hon Gov Mt No Nos Vol vs viz cf Fr Esq".split()
)
_EN_BOUNDARY = re.compile(r"([.!?…]+)([" + re.escape(_CLOSING_PUNCT) + r"]*)(\s+)(?=[“‘\"'(\[«A-Z0-9])")
_ZH_BOUNDARY = re.compile(r"([。！？!?]+|…+)([" + re.escape(_CLOSING_PUNCT) + r"]*)")
_WORD = re.compile(r"\w")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SPACE_RUN = re.compile(r"[\t\r\f\v][ \t\r\f\v]*| [ \t\r\f\v]+")  # only runs that are not already one space
_LINE_BREAK = re.compile(r" *\n[ \n]*")
_QUOTE_MARK = re.compile("[" + re.escape("".join(_DOUBLE_PAIRS) + _CLOSERS + "‘’") + "]")
_LAST_TOKEN = re.compile(r"\S+$")
ABBREVIATION_WINDOW_CHARS = 40  # an abbreviation or initial is looked for this far before a full stop


def clean_text(text: str) -> str:
    """Return `text` without invisible formatting characters, with spaces tidied and ends stripped."""
    if _NEEDS_TIDY.search(text):
        text = text.translate(_TIDY)
    text = _SPACE_RUN.sub(" ", text)
    if "\n" in text:
        text = _LINE_BREAK.sub("\n", text)
    return text.strip()


def spoken_form(text: str, language: str) -> str:
    """Return what the engine should say for `text`: numbers, abbreviations and symbols in words."""
    from stages.normalize import normalize

    return normalize(text, language).text


def is_chinese(language: str) -> bool:
    """Return True for Chinese language tags (zh, zh-Hans, zh-CN, ...)."""
    return language.lower().startswith("zh")


def has_words(text: str) -> bool:
    """Return True when `text` holds at least one letter, digit or ideograph."""
    return bool(_WORD.search(text))


def quote_spans(text: str, single_quotes: bool = False) -> list[tuple[str, bool]]:
    """Return `text` cut into (piece, is_quote) spans, each piece unstripped, together covering `text`."""
    spans: list[tuple[str, bool]] = []
    start, closer = 0, None
    for m in _QUOTE_MARK.finditer(text):
        i, ch = m.start(), m.group()
        if closer is None:
            if ch in _DOUBLE_PAIRS or (single_quotes and ch == "‘"):
                if i > start:
                    spans.append((text[start:i], False))
                start, closer = i, _DOUBLE_PAIRS.get(ch, "’")
            elif ch in _CLOSERS and not spans and has_words(text[start:i]):
                spans.append((text[start : i + 1], True))  # the paragraph opened inside a quotation
                start = i + 1
        elif ch == closer and not (closer == "’" and i + 1 < len(text) and text[i + 1].isalpha()):
            spans.append((text[start : i + 1], True))
            start, closer = i + 1, None
    if start < len(text):
        spans.append((text[start:], closer is not None))
    return _merge_mentions(spans)


def _is_mention(before: str, quote: str, after: str) -> bool:
    """Return True for a short quoted title or word inside a sentence ("labelled “Orange Marmalade,” but")."""
    tail = before.rstrip()
    if not tail or not tail[-1].isalnum():
        return False
    inner = quote.strip().strip("“”„«»\"「」『』‘’").rstrip(",，")
    if not inner or re.search(r"[.!?…。！？]$", inner):
        return False
    nxt = after.lstrip()
    if nxt and nxt[0].isupper():
        return False
    if _HAN.search(inner):
        return len(inner) <= MENTION_MAX_HAN
    return len(inner.split()) <= MENTION_MAX_WORDS


def _merge_mentions(spans: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    marked = []
    for k, (piece, is_quote) in enumerate(spans):
        before = spans[k - 1][0] if k and not spans[k - 1][1] else ""
        after = spans[k + 1][0] if k + 1 < len(spans) and not spans[k + 1][1] else ""
        marked.append((piece, is_quote and not _is_mention(before, piece, after)))
    merged: list[tuple[str, bool]] = []
    for piece, is_quote in marked:
        if merged and not is_quote and not merged[-1][1]:
            merged[-1] = (merged[-1][0] + piece, False)
        else:
            merged.append((piece, is_quote))
    return merged


def _is_abbreviation(text: str, end: int) -> bool:
    """Return True when the full stop at `text[end]` belongs to an abbreviation or an initial."""
    m = _LAST_TOKEN.search(text[max(0, end - ABBREVIATION_WINDOW_CHARS):end])
    if not m:
        return False
    token = m.group().lstrip("“‘\"'([«—-")
    if token in _ABBREVIATIONS or "." in token:
        return True
    return len(token) == 1 and token.isupper() and token != "I"


def split_sentences(text: str, language: str) -> list[str]:
    """Return the sentences of `text`, closing quotes kept with the sentence they close."""
    cuts: list[int] = []
    last = 0
    if is_chinese(language):
        for m in _ZH_BOUNDARY.finditer(text):
            end = m.end()
            if end < len(text) and has_words(text[last:end]) and has_words(text[end:]):
                cuts.append(end)
                last = end
    else:
        for m in _EN_BOUNDARY.finditer(text):
            if m.group(1) == "." and not m.group(2) and _is_abbreviation(text, m.start()):
                continue
            end = m.end(2)
            if has_words(text[last:end]):
                cuts.append(end)
                last = end
    bounds = [0, *cuts, len(text)]
    pieces = [text[a:b].strip() for a, b in zip(bounds, bounds[1:])]
    return [p for p in pieces if p]


def split_long(sentence: str, max_chars: int = MAX_SEGMENT_CHARS) -> list[str]:
    """Return `sentence` cut at ; : , or spaces into pieces of at most `max_chars` (when possible)."""
    pieces: list[str] = []
    rest = sentence
    while len(rest) > max_chars:
        cut = _best_cut(rest, max_chars)
        if cut <= 0:
            break
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    pieces.append(rest)
    return [p for p in pieces if p]


def _best_cut(text: str, max_chars: int) -> int:
    window = text[:max_chars]
    for marks in (";；:：", ",，、", " 　"):
        best = max(window.rfind(m) for m in marks)
        if best >= MIN_PIECE_CHARS and has_words(text[best + 1 :]):
            return best + 1
    return max_chars if len(text) > max_chars else -1


def segment_text(text: str, language: str, single_quotes: bool = False) -> list[tuple[str, bool]]:
    """Return the (segment text, is_dialogue) pieces of one paragraph, in order, none empty."""
    out: list[tuple[str, bool]] = []
    for span, is_quote in quote_spans(text, single_quotes):
        for sentence in split_sentences(span.strip(), language):
            out.extend((piece, is_quote) for piece in split_long(sentence))
    return _attach_wordless(out)


def _attach_wordless(pieces: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """Fold pieces with no word in them (a lone dash or quote mark) into a neighbour."""
    out: list[tuple[str, bool]] = []
    pending = ""
    for piece, is_quote in pieces:
        if not has_words(piece):
            if out:
                out[-1] = (_join(out[-1][0], piece), out[-1][1])
            else:
                pending = _join(pending, piece)
            continue
        out.append((_join(pending, piece), is_quote))
        pending = ""
    return out


def _join(a: str, b: str) -> str:
    if not a or not b:
        return a or b
    return a + b if b[0] in _CLOSING_PUNCT + ",.;:!?，。；：！？" else f"{a} {b}"
