"""User-facing errors: each becomes one clear paragraph and exit code 2 in the CLI."""

from __future__ import annotations

import difflib


class CnnzooError(Exception):
    """A mistake the user can fix (bad config, missing data, bad argument)."""

    exit_code = 2


class ConfigError(CnnzooError):
    """A problem located in a config file: file, line and YAML path are reported."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 path: str | None = None, hint: str | None = None):
        self.message = message
        self.file = file
        self.line = line
        self.path = path
        self.hint = hint
        super().__init__(str(self))

    @property
    def location(self) -> str:
        where = self.file or "<config>"
        if self.line is not None:
            where += f":{self.line}"
        if self.path:
            where += f" {self.path}"
        return where

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}"
        if self.hint:
            text += f" {self.hint}"
        return text


class DataError(CnnzooError):
    """A dataset file is missing, corrupt or in the wrong format."""


class RunError(CnnzooError):
    """A run folder is missing, incomplete or cannot be written."""


def quote(value: object, limit: int = 60) -> str:
    """A short, escaped excerpt of a user-supplied value for an error message: repr() escapes control
    characters, and anything longer than `limit` characters is cut."""
    text = repr(value)
    if len(text) <= limit:
        return text
    closing = text[0] if text[0] in "'\"" else ""
    return text[:limit - 3 - len(closing)] + "..." + closing


def shown(text: object, limit: int = 60) -> str:
    """User text to show between backticks: control characters escaped, cut to `limit` characters."""
    escaped = repr(str(text))[1:-1]
    return escaped if len(escaped) <= limit else escaped[:limit - 3] + "..."


def suggest(name: str, candidates: list[str]) -> str | None:
    """A 'did you mean' hint for a misspelt name, case-insensitive."""
    lowered = {c.lower(): c for c in candidates}
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return f"Did you mean `{lowered[match[0]]}`?" if match else None
