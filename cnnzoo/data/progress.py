"""A rich progress bar on stderr, or nothing when progress is off."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from cnnzoo.terminal import console, plain


@contextmanager
def progress_bar(description: str, total: int | None, *, enabled: bool,
                 transfer: bool = False) -> Iterator[Callable[[int], None]]:
    """Yield `advance(n)`; a transient bar is shown only when `enabled`."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeRemainingColumn, TransferSpeedColumn)

    counter = (DownloadColumn(), TransferSpeedColumn()) if transfer else (MofNCompleteColumn(),)
    with Progress(TextColumn("{task.description}"), BarColumn(), *counter, TimeRemainingColumn(),
                  console=console(stderr=True), transient=True) as bar:
        task = bar.add_task(plain(description), total=total)
        yield lambda n: bar.advance(task, n)
