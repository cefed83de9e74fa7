"""Score speaker attribution against annotated quotes: accuracy per book, overall and by quote type.

    python bench/attribution.py [--book NAME] [--annotations DIR] [--corpus DIR] [--show-wrong]
    python bench/attribution.py --all-pp      # only the time to attribute all of Pride and Prejudice

Each `<name>.quotes.tsv` in the annotations folder (format: bench/annotations/README.md) lists quotes of one
corpus book with their speaker and type. The book is ingested (read_book), attributed (attribute) and each
annotation is matched to one quotation of its chapter by text. A quotation is a run of dialogue segments that
starts at an opening quotation mark; a quote interrupted by a tag ("…,” said he, “…”) is two quotations, and
the annotation names its first. The attributor's answer for a quotation is the speaker of its first segment.
Speakers compare case-insensitively through the book's alias map (`<name>.aliases.tsv`); "unknown" is always
wrong. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from stages.errors import UserError  # noqa: E402
from stages.model import UNKNOWN_SPEAKER, Manuscript  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus"
ANNOTATIONS = Path(__file__).resolve().parent / "annotations"
PP_EPUB = "jane-austen_pride-and-prejudice.epub"
ALL_PP_TARGET_S = 10.0  # attributing the whole novel, after ingest
QUOTE_TYPES = ("explicit", "anaphoric", "implicit")
COLUMNS = ("book", "chapter", "quote", "speaker", "type")
OPENING_QUOTES = "“„«\"「『‘"  # a dialogue segment starting with one of these begins a new quotation
_QUOTE_MARKS = re.compile(r"[“”„«»\"「」『』‘’']")
_INVISIBLE = re.compile(r"[\u00ad\u200b-\u200f\u2060\ufeff]")


@dataclass(frozen=True)
class Annotation:
    """One annotated quote: where it is, how it opens, who says it and how the text shows it."""

    book: str
    chapter: int
    quote: str
    speaker: str
    type: str
    line: int = 0  # line number in its annotation file, for messages


@dataclass(frozen=True)
class Quotation:
    """One quotation of the manuscript: its paragraph, its text and the speaker of its first segment."""

    chapter: int
    paragraph: str
    text: str
    speaker: str


@dataclass(frozen=True)
class Score:
    """How an attribution fared on one book's annotations."""

    annotated: int
    matched: int
    correct: int
    by_type: dict[str, tuple[int, int]] = field(default_factory=dict)  # type -> (matched, correct)
    unmatched: tuple[Annotation, ...] = ()
    wrong: tuple[tuple[Annotation, str], ...] = ()  # annotation, speaker the attributor gave

    @property
    def accuracy(self) -> float:
        """Correct over matched quotes (0 when nothing matched)."""
        return self.correct / self.matched if self.matched else 0.0


def normalize_text(text: str) -> str:
    """Return quote text compared for matching: no quotation marks or invisible characters, spaces collapsed."""
    text = _INVISIBLE.sub("", text.replace("\u00a0", " ").replace("\u200a", " "))
    return re.sub(r"\s+", " ", _QUOTE_MARKS.sub("", text)).strip()


def speaker_key(name: str, aliases: dict[str, str]) -> str:
    """Return the canonical, case-folded form of a speaker name through the alias map."""
    key = re.sub(r"\s+", " ", name.replace("’", "'")).strip().casefold()
    return aliases.get(key, key)


def same_speaker(annotated: str, given: str, aliases: dict[str, str]) -> bool:
    """Return True when the attributor's speaker is the annotated one; "unknown" never is."""
    if not given or given.casefold() == UNKNOWN_SPEAKER:
        return False
    return speaker_key(annotated, aliases) == speaker_key(given, aliases)


def read_annotations(path: Path) -> list[Annotation]:
    """Read a `.quotes.tsv` file: a header naming the columns, then one quote a row; `#` lines are comments."""
    rows = [(n, line) for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if line.strip() and not line.startswith("#")]
    if not rows or tuple(rows[0][1].split("\t")) != COLUMNS:
        raise UserError(f"{path}: the first row must be the tab-separated header {' '.join(COLUMNS)}; add it")
    out = []
    for n, line in rows[1:]:
        cells = line.split("\t")
        if len(cells) != len(COLUMNS) or not all(c.strip() for c in cells):
            raise UserError(f"{path}:{n}: expected {len(COLUMNS)} non-empty tab-separated cells, got {len(cells)}; "
                            "fix the row")
        book, chapter, quote, speaker, kind = (c.strip() for c in cells)
        if kind not in QUOTE_TYPES:
            raise UserError(f"{path}:{n}: type {kind!r} is not one of {', '.join(QUOTE_TYPES)}; fix the row")
        if not chapter.isdigit():
            raise UserError(f"{path}:{n}: chapter {chapter!r} is not a number; give the chapter's 1-based number")
        out.append(Annotation(book, int(chapter), quote, speaker, kind, n))
    return out


def read_aliases(path: Path) -> dict[str, str]:
    """Read a `.aliases.tsv` file (alias TAB canonical a line) into a case-folded alias -> canonical map."""
    if not path.is_file():
        return {}
    aliases: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if len(cells) != 2 or not all(c.strip() for c in cells):
            raise UserError(f"{path}:{n}: expected 'alias<TAB>canonical name'; fix the row")
        canonical = speaker_key(cells[1], {})
        aliases[speaker_key(cells[0], {})] = canonical
        aliases.setdefault(canonical, canonical)
    return aliases


def quotations(manuscript: Manuscript, chapter: int) -> list[Quotation]:
    """Return the chapter's quotations in reading order: dialogue runs split at each opening quotation mark."""
    out: list[Quotation] = []
    for paragraph in manuscript.chapter(chapter).paragraphs:
        texts: list[str] = []
        speaker = ""
        for seg in (*paragraph.segments, None):
            opens = seg is not None and seg.kind == "dialogue" and (not texts or seg.text[:1] in OPENING_QUOTES)
            if texts and (seg is None or seg.kind != "dialogue" or opens):
                out.append(Quotation(chapter, paragraph.id, normalize_text(" ".join(texts)), speaker))
                texts = []
            if seg is not None and seg.kind == "dialogue":
                speaker = seg.speaker if not texts else speaker
                texts.append(seg.text)
    return out


def match(annotations: list[Annotation], manuscript: Manuscript) -> list[tuple[Annotation, Quotation | None]]:
    """Pair each annotation with a quotation of its chapter by text; None where nothing matches.

    The quotation is the first one not already taken whose text starts with the annotation's quote, or failing
    that contains it; taking them in order lets equal quotes ("Good afternoon!") pair up in reading order.
    """
    chapters = {c.number for c in manuscript.chapters}
    pools: dict[int, list[Quotation]] = {}
    taken: set[int] = set()
    pairs: list[tuple[Annotation, Quotation | None]] = []
    for ann in annotations:
        if ann.chapter not in chapters:
            pairs.append((ann, None))
            continue
        pool = pools.setdefault(ann.chapter, quotations(manuscript, ann.chapter))
        want = normalize_text(ann.quote)
        free = [q for q in pool if id(q) not in taken]
        found = next((q for q in free if q.text.startswith(want)), None) or next(
            (q for q in free if want in q.text), None)
        if found is not None:
            taken.add(id(found))
        pairs.append((ann, found))
    return pairs


def score(pairs: list[tuple[Annotation, Quotation | None]], aliases: dict[str, str]) -> Score:
    """Count matched and correctly attributed quotes, overall and by type."""
    by_type = {t: [0, 0] for t in QUOTE_TYPES}
    unmatched, wrong = [], []
    for ann, quote in pairs:
        if quote is None:
            unmatched.append(ann)
            continue
        counts = by_type.setdefault(ann.type, [0, 0])
        counts[0] += 1
        if same_speaker(ann.speaker, quote.speaker, aliases):
            counts[1] += 1
        else:
            wrong.append((ann, quote.speaker))
    matched = sum(m for m, _ in by_type.values())
    return Score(len(pairs), matched, sum(c for _, c in by_type.values()),
                 {t: (m, c) for t, (m, c) in by_type.items()}, tuple(unmatched), tuple(wrong))


def combine(scores: list[Score]) -> Score:
    """Return the sum of several books' scores."""
    by_type: dict[str, tuple[int, int]] = {}
    for s in scores:
        for t, (m, c) in s.by_type.items():
            m0, c0 = by_type.get(t, (0, 0))
            by_type[t] = (m0 + m, c0 + c)
    return Score(sum(s.annotated for s in scores), sum(s.matched for s in scores),
                 sum(s.correct for s in scores), by_type,
                 tuple(a for s in scores for a in s.unmatched), tuple(w for s in scores for w in s.wrong))


def annotation_files(folder: Path, book: str | None = None) -> list[Path]:
    """Return the folder's `.quotes.tsv` files, only those whose name contains `book` when given."""
    if not folder.is_dir():
        raise UserError(f"annotations folder {folder} does not exist; pass --annotations DIR")
    files = sorted(p for p in folder.glob("*.quotes.tsv") if not book or book.lower() in p.name.lower())
    if not files:
        raise UserError(f"no *.quotes.tsv in {folder}" + (f" matching {book!r}" if book else "") +
                        "; check --book and --annotations")
    return files


def score_file(path: Path, corpus: Path) -> tuple[Score, float, str]:
    """Ingest and attribute the book of one annotation file; return its score, attribution seconds and name."""
    from stages.attribute import attribute
    from stages.ingest import read_book

    annotations = read_annotations(path)
    books = {a.book for a in annotations}
    if len(books) != 1:
        raise UserError(f"{path}: rows name {len(books)} books ({', '.join(sorted(books))}); use one file a book")
    book = books.pop()
    if not (corpus / book).is_file():
        raise UserError(f"{path}: book {book} is not in {corpus}; pass --corpus DIR or fix the book column")
    manuscript, _ = read_book(corpus / book)
    start = time.perf_counter()
    attributed = attribute(manuscript)
    seconds = time.perf_counter() - start
    aliases = read_aliases(path.with_name(path.name.removesuffix(".quotes.tsv") + ".aliases.tsv"))
    return score(match(annotations, attributed), aliases), seconds, book


def percent(correct: int, total: int) -> str:
    """Return 'correct/total = NN.N%'."""
    return f"{correct}/{total} = {100 * correct / total:.1f}%" if total else "0/0"


def print_score(name: str, s: Score, seconds: float | None, show_wrong: bool) -> None:
    """Print one book's (or the total's) figures."""
    timing = f", attribution {seconds:.2f} s" if seconds is not None else ""
    print(f"{name}: {s.annotated} annotated, {s.matched} matched{timing}")
    print(f"  accuracy {percent(s.correct, s.matched)}")
    for kind in QUOTE_TYPES:
        m, c = s.by_type.get(kind, (0, 0))
        print(f"  {kind:<10} {percent(c, m)}")
    for ann in s.unmatched:
        print(f"  unmatched: chapter {ann.chapter} line {ann.line}: {ann.quote!r} ({ann.speaker})")
    if show_wrong:
        for ann, given in s.wrong:
            print(f"  wrong: chapter {ann.chapter} {ann.type}: {ann.quote!r} is {ann.speaker}, got {given}")


def time_all_pp(corpus: Path) -> None:
    """Print the seconds attribution takes on all of Pride and Prejudice (after ingest)."""
    from stages.attribute import attribute
    from stages.ingest import read_book

    manuscript, _ = read_book(corpus / PP_EPUB)
    start = time.perf_counter()
    attributed = attribute(manuscript)
    seconds = time.perf_counter() - start
    quotes = sum(1 for s in attributed.segments if s.kind == "dialogue")
    print(f"{PP_EPUB}: attributed {len(attributed.chapters)} chapters, {quotes} dialogue segments "
          f"in {seconds:.2f} s (target <= {ALL_PP_TARGET_S:.0f} s)")


def main(argv: list[str] | None = None) -> int:
    """Score every annotation file (or one book's) and print per-book and overall figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--book", help="only annotation files whose name contains this")
    parser.add_argument("--annotations", type=Path, default=ANNOTATIONS, help="folder of *.quotes.tsv files")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="folder holding the books")
    parser.add_argument("--show-wrong", action="store_true", help="list every wrongly attributed quote")
    parser.add_argument("--all-pp", action="store_true", help="only time attributing all of Pride and Prejudice")
    args = parser.parse_args(argv)
    try:
        if args.all_pp:
            time_all_pp(args.corpus)
            return 0
        scores = []
        for path in annotation_files(args.annotations, args.book):
            s, seconds, book = score_file(path, args.corpus)
            print_score(book, s, seconds, args.show_wrong)
            scores.append(s)
        if len(scores) > 1:
            print_score("overall", combine(scores), None, False)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
