"""The `audiobook` command: one function per subcommand, each a thin call into stages/ or the flow."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from flows import voices_cli
from studio import cli as studio_cli
from stages.errors import UserError

EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audiobook", description="Turn a book into a mastered audiobook album.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True)

    def book_command(parent, name: str, help: str) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help)
        p.add_argument("book", type=Path, help="the book file (.epub, .txt or .md)")
        p.add_argument("--root", type=Path, default=Path(os.environ.get("AUDIOBOOK_ROOT", ".")),
                       help="workspace holding manuscripts/, output/ and voices/ (default: current folder)")
        p.add_argument("--slug", help="folder name for the book (default: from its title)")
        p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
        p.add_argument("--notes", choices=("skip", "aside"), default="skip",
                       help="footnotes and endnotes: leave them out (default) or read each after its paragraph")
        p.add_argument("--series", type=Path, action="append", default=[],
                       help="a series folder whose character bible and lexicon apply too (repeatable; the book's win)")
        return p

    produce = book_command(sub, "produce", "produce the album for an EPUB, .txt or .md book")
    produce.add_argument("--narrator", help="voice id for the narrator (default: the cast sheet's, else joe)")
    produce.add_argument("--chapters", help="only these chapters, e.g. 1-3,5")
    produce.add_argument("--profile", metavar="NAME",
                         help="delivery profile: acx, apple, google, findaway or generic (default: audiobook.toml's "
                              "[retail] profile, else generic); fixes the files, their format and the checks")
    produce.add_argument("--dask", metavar="ADDRESS", default=os.environ.get("AUDIOBOOK_DASK"),
                         help="make the chapters on a Dask cluster: local:N for N worker processes here, or a "
                              "scheduler's address (tcp://host:8786; every worker must see --root at the same path)")
    produce.add_argument("--cover", type=Path, metavar="FILE",
                         help="the retail cover (.jpg or .png) instead of the book's own; checked against the profile")
    produce.set_defaults(run=_produce)

    ingest = book_command(sub, "ingest", "read a book into its manuscript and list its chapters")
    ingest.set_defaults(run=_ingest)

    attribute = book_command(sub, "attribute", "work out who speaks each line and how; update the character bible")
    attribute.add_argument("--review", action="store_true", help="list the lines a person should check")
    attribute.add_argument("--no-llm", action="store_true", help="use the built-in attributor even if an LLM is set up")
    attribute.set_defaults(run=_attribute)

    lexicon = sub.add_parser("lexicon", help="the pronunciation lexicon")
    lexicon_sub = lexicon.add_subparsers(dest="lexicon_command", required=True)
    suggest = book_command(lexicon_sub, "suggest", "list the names and rare words a producer should review")
    suggest.add_argument("--write", action="store_true",
                         help="also write manuscripts/<slug>/lexicon.toml with the suggestions to fill in")
    suggest.set_defaults(run=_lexicon_suggest)
    voices_cli.register(sub)
    studio_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, format="%(message)s")
    try:
        return args.run(args)
    except UserError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted: every finished take is kept; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED


def _quiet_prefect(debug: bool) -> None:
    """Keep Prefect's own run reports off the terminal: a failed run is reported once, by main()."""
    if debug:
        return
    for name in ("httpx", "httpcore", "uvicorn", "prefect"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _check_book(book: Path) -> Path:
    if not book.is_file():
        raise UserError(f"{book}: no such file; give the path of an .epub, .txt or .md book")
    return book.resolve()


def _produce(args: argparse.Namespace) -> int:
    book = _check_book(args.book)
    from flows.produce import run_produce
    from stages.profiles import get_profile

    if args.profile is not None:
        get_profile(args.profile)  # an unknown name is refused before Prefect starts
    _quiet_prefect(debug=args.debug)
    summary = run_produce(book, args.root.resolve(), dask=args.dask, slug=args.slug, narrator=args.narrator,
                          chapters=args.chapters, series=[p.resolve() for p in args.series], notes=args.notes,
                          profile=args.profile, cover=args.cover.resolve() if args.cover else None)
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    out = Path(summary["output"])
    print(f"{len(summary['chapters'])} chapters, {summary['synthesized']} segments synthesized, "
          f"{summary['cached']} from cache")
    print(f"album: {out}")
    for name in ("m4b", "sample", "epub", "listen", "report_html"):
        if name in summary["paths"]:
            print(f"  {Path(summary['paths'][name]).relative_to(out)}")
    return 0


def _direct(args: argparse.Namespace, use_llm: bool = True):
    """Return the workspace and the book's direction (attributed manuscript and bible), both saved."""
    from stages.attribute.direct import direct, project_config
    from stages.ingest import ingest, save_manuscript
    from stages.model import Workspace

    workspace = Workspace(args.root.resolve())
    manuscript = ingest(_check_book(args.book), workspace.manuscript_dir, slug=args.slug, notes=args.notes, save=False)
    book_dir = workspace.manuscript_dir(manuscript.slug)
    direction = direct(manuscript, book_dir=book_dir, cache_dir=workspace.cache_dir,
                       config=project_config(workspace.root), use_llm=use_llm,
                       series_dirs=[p.resolve() for p in args.series])
    save_manuscript(direction.manuscript, book_dir / "manuscript.json")
    return workspace, direction


def _read(args: argparse.Namespace):
    """Return the workspace and the book's manuscript, attributed by the built-in rules."""
    workspace, direction = _direct(args, use_llm=False)
    return workspace, direction.manuscript


def _attribute(args: argparse.Namespace) -> int:
    workspace, direction = _direct(args, use_llm=not args.no_llm)
    summary = direction.summary()
    review = [{"id": s.id, "speaker": s.speaker, "confidence": s.confidence, "rule": s.rule, "text": s.text}
              for s in direction.review()] if args.review else []
    if args.json:
        print(json.dumps(summary | ({"review_lines": review} if args.review else {}), ensure_ascii=False, indent=1))
        return 0
    print(f"{direction.manuscript.title}: {summary['attributed']} of {summary['dialogue']} dialogue lines "
          f"attributed, {summary['review']} to review")
    _print_table("characters", ("name", "gender", "lines", "aliases"),
                 [c | {"aliases": ", ".join(c["aliases"])} for c in summary["characters"]])
    if args.review:
        _print_table("lines to review", ("id", "speaker", "confidence", "rule", "text"), review)
    print(f"character bible: {workspace.manuscript_dir(direction.manuscript.slug) / 'characters.toml'}")
    for folder in args.series:
        print(f"series bible: {folder.resolve() / 'characters.toml'}")
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from stages.ingest import summarize

    workspace, manuscript = _read(args)
    rows = summarize(manuscript)
    if args.json:
        print(json.dumps({"slug": manuscript.slug, "title": manuscript.title, "author": manuscript.author,
                          "language": manuscript.language, "chapters": rows}, ensure_ascii=False, indent=1))
        return 0
    columns = ("number", "title", "paragraphs", "segments", "dialogue", "characters")
    _print_table(f"{manuscript.title} by {manuscript.author} ({manuscript.language})", columns, rows)
    print(f"manuscript: {workspace.manuscript_dir(manuscript.slug) / 'manuscript.json'}")
    if manuscript.skipped:
        print("left out: " + ", ".join(f"{s.title or s.kind} ({s.kind})" for s in manuscript.skipped))
    return 0


def _lexicon_suggest(args: argparse.Namespace) -> int:
    from stages.lexicon import load_lexicon, suggest, write_lexicon_template

    workspace, manuscript = _read(args)
    book_dir = workspace.manuscript_dir(manuscript.slug)
    suggestions = suggest(manuscript, load_lexicon(book_dir, [p.resolve() for p in args.series]))
    rows = [s.to_dict() for s in suggestions]
    if args.write:
        write_lexicon_template(book_dir / "lexicon.toml", suggestions)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return 0
    columns = ("word", "kind", "count", "first_segment_id", "first_context")
    _print_table(f"words to review in {manuscript.title}", columns, rows)
    if args.write:
        print(f"template: {book_dir / 'lexicon.toml'}")
    return 0


def _print_table(title: str, columns: tuple[str, ...], rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column.replace("_", " "), justify="right" if column in ("number", "count") or
                         isinstance(rows[0].get(column) if rows else "", int) else "left")
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    Console(width=None if sys.stdout.isatty() else 160).print(table)


if __name__ == "__main__":
    sys.exit(main())
