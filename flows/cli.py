"""The `audiobook` command."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from stages.errors import UserError

EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audiobook", description="Turn a book into a mastered audiobook album.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True)
    produce = sub.add_parser("produce", help="produce the album for an EPUB, .txt or .md book")
    produce.add_argument("book", type=Path, help="the book file (.epub, .txt or .md)")
    produce.add_argument("--root", type=Path, default=Path(os.environ.get("AUDIOBOOK_ROOT", ".")),
                         help="workspace holding manuscripts/, output/ and voices/ (default: current folder)")
    produce.add_argument("--slug", help="folder name for the book (default: from its title)")
    produce.add_argument("--narrator", help="voice id for the narrator (default: the cast sheet's, else joe)")
    produce.add_argument("--chapters", help="only these chapters, e.g. 1-3,5")
    produce.add_argument("--json", action="store_true", help="print the run's summary as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.debug:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, format="%(message)s")
    try:
        return _produce(args)
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


def _produce(args: argparse.Namespace) -> int:
    book = args.book
    if not book.is_file():
        raise UserError(f"{book}: no such file; give the path of an .epub, .txt or .md book")
    from flows.produce import produce_flow

    _quiet_prefect(debug=args.debug)

    summary = produce_flow(book.resolve(), args.root.resolve(), slug=args.slug, narrator=args.narrator, chapters=args.chapters)
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        out = Path(summary["output"])
        print(f"{len(summary['chapters'])} chapters, {summary['synthesized']} segments synthesized, "
              f"{summary['cached']} from cache")
        print(f"album: {out}")
        for name in ("m4b", "listen", "report_html"):
            print(f"  {Path(summary['paths'][name]).relative_to(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
