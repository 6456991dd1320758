"""Reading the files cnnzoo wrote into a run folder when the folder may come from someone else: a
run's records and statistics are data, so a link, a FIFO or a huge file in their place is an error, never a
file of the user's read, a hang or a memory bomb. A leaf, so data/ (standardize.json) and runs/ both use it."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

from cnnzoo.errors import RunError

MAX_FILE_BYTES = 256 << 20  # config, history, records: far above any cnnzoo wrote, far below a bomb


def read_run_file(path: Path | str, limit: int = MAX_FILE_BYTES) -> str:
    """The text of a file cnnzoo wrote into a run folder, which may come from someone else: never read
    through a symbolic link (it could point at any file of the user's), only a regular file (a FIFO would
    block), at most ``limit`` bytes. FileNotFoundError as it comes; RunError for everything else."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RunError(f"{path}: is a symbolic link; cnnzoo reads the files of a run folder only as regular "
                           f"files, since a link could point anywhere. Replace the link by the file itself.") from None
        raise RunError(f"{path}: cannot read file ({exc.strerror or exc}).") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise RunError(f"{path}: is not a regular file (a FIFO, device or folder); a run folder holds regular "
                       f"files only. Remove it, or train the run again.")
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > limit:
            raise RunError(f"{path}: is {info.st_size:,} bytes, more than the {limit:,} a run file may have; it is "
                           f"not a file cnnzoo wrote. Remove it, or train the run again.")
        data = handle.read(limit + 1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise RunError(f"{path}: is not UTF-8 text; it is not a file cnnzoo wrote.") from None


def read_run_json(path: Path | str) -> Any:
    """A JSON file of a run folder, read as `read_run_file` reads; RunError when it is not valid JSON or
    nested deeper than Python's parser recurses (`[[[[...` is a RecursionError, not a value)."""
    text = read_run_file(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunError(f"{path}: is not valid JSON (line {exc.lineno}: {exc.msg}). The file is corrupt; "
                       f"delete it and re-run the command that writes it.") from None
    except RecursionError:
        raise RunError(f"{path}: is nested too deeply to be a file cnnzoo wrote. The file is corrupt; "
                       f"delete it and re-run the command that writes it.") from None
