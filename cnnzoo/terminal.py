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


def csv_text(value: object) -> str:
    """User text (a file, class or run name) for a CSV cell someone may open in a spreadsheet: printable,
    and a leading = + @ (or - before a non-number) quoted with ', so it is read as text, never a formula."""
    text = "" if value is None else printable(value)
    if text[:1] in ("=", "+", "@") or (text[:1] == "-" and not _is_number(text)):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
