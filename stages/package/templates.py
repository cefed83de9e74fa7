"""The one jinja2 environment for the HTML pages this package writes (templates sit beside it)."""

from __future__ import annotations

from functools import cache
from pathlib import Path


@cache
def environment():
    """Return the autoescaping, strict jinja2 environment that loads this folder's templates."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
