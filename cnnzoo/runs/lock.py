"""One writer per run folder: an exclusive lock (`.lock`, holding the writer's pid) taken by `train` and
`train --resume` for as long as they write the folder.

The lock is an flock on the file, so the kernel releases it when its process dies, however it dies;
a `.lock` left by a dead process is simply taken over (and said so).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

from cnnzoo.errors import RunError

LOCK_NAME = ".lock"


@contextlib.contextmanager
def locked_run(run_path: Path, console=None) -> Iterator[None]:
    """Hold the run folder's lock; RunError at once if another process holds it."""
    path = Path(run_path) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RunError(f"{run_path}: cannot create the lock file {LOCK_NAME} ({exc.strerror}).") from None
    try:
        previous = _read_pid(fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunError(f"{run_path}: the run is in use by another cnnzoo process (pid {previous or '?'}), "
                           f"which is training it. Wait for it to finish, or stop it (Ctrl-C, or kill "
                           f"{previous or 'it'}) and resume then.") from None
        if previous and previous != os.getpid() and console is not None:
            console.print(f"taking over the lock left by pid {previous}, which is no longer running")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # a pid left in the file means its process died holding the lock
    finally:
        os.close(fd)  # releases the lock; the file stays, so no second process can lock a removed inode


def is_locked(run_path: Path) -> bool:
    """Whether a live process holds the run folder's lock now (it is training or resuming the run)."""
    try:
        fd = os.open(Path(run_path) / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing also drops the shared lock taken when nobody held it
    return False


def _read_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None
