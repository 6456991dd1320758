"""One writer per run folder: an exclusive lock (`.lock`, holding the writer's pid) taken by `train` and
`train --resume` for as long as they write the folder.

The lock is an flock on the file, so the kernel releases it when its process dies, however it dies;
a `.lock` left by a dead process is simply taken over (and said so).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from pathlib import Path
from typing import Iterator

from cnnzoo.errors import RunError

LOCK_NAME = ".lock"


@contextlib.contextmanager
def locked_run(run_path: Path, console=None) -> Iterator[None]:
    """Hold the run folder's lock; RunError at once if another process holds it."""
    path = Path(run_path) / LOCK_NAME
    try:
        fd = _open_lock(path, os.O_RDWR | os.O_CREAT)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RunError(f"{run_path}: its lock file {LOCK_NAME} is a symbolic link, which cnnzoo never writes "
                           f"through (it could point at any file). Remove {path} and run again.") from None
        raise RunError(f"{run_path}: cannot create the lock file {LOCK_NAME} ({exc.strerror}).") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RunError(f"{run_path}: its lock file {LOCK_NAME} is not a regular file (a FIFO or device). "
                           f"Remove {path} and run again.")
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
        fd = _open_lock(Path(run_path) / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return False  # none, or a link: no cnnzoo process holds that
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing also drops the shared lock taken when nobody held it
    return False


def _open_lock(path: Path, flags: int) -> int:
    """The lock file, never through a symbolic link and never waiting on a FIFO."""
    return os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)


def _read_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None
