"""Printing user-supplied text safely: consoles without emoji codes, text without control characters
or rich markup. A config key, layer name or class-folder name is data, never terminal commands."""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def console(**kwargs: Any):
    """A rich Console that leaves `:name:` alone (emoji codes in user text would turn into pictures)."""
    from rich.console import Console

    return Console(emoji=False, **kwargs)


def printable(text: object) -> str:
    """`text` with control characters (escape sequences, bells, ...) shown as escapes, e.g. \\x1b."""
    return _CONTROL.sub(lambda match: repr(match.group())[1:-1], str(text))


def plain(text: object) -> str:
    """User text for a rich string or table cell: printable, and `[...]` not read as markup."""
    from rich.markup import escape

    return escape(printable(text))
