"""Atomic files: the one way cnnzoo writes a file that someone may read later (run folders, downloads,
the array cache, checkpoints).

A file is written under a temporary name in the same directory, flushed, fsynced and renamed into
place, so a crash or kill at any moment leaves either the old file or the new one, never half of one.
Temporary names are hidden, keep the suffix (Keras needs `.keras`) and carry the writer's pid, so a
file left by a killed writer is recognised and removed by the next one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
from pathlib import Path
from typing import Any, Callable

from cnnzoo.errors import RunError

_TEMP = re.compile(r"\.(?P<stem>.*)\.tmp-(?P<pid>\d+)-[0-9a-f]{8}(?P<suffix>.*)")


def temp_path(path: Path) -> Path:
    """An unused hidden sibling of `path` that keeps its suffix: `.best.tmp-<pid>-1a2b3c4d.keras`.
    The file is not created, so the writer creates it with the usual permissions."""
    while True:
        tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}{path.suffix}")
        if not tmp.exists():
            return tmp


def remove_stale_temps(path: Path) -> None:
    """Delete temporary siblings of `path` whose writer is no longer running (killed mid-write)."""
    with contextlib.suppress(OSError):
        for candidate in path.parent.glob(f".*.tmp-*{path.suffix}"):
            match = _TEMP.fullmatch(candidate.name)
            if match and match["stem"] == path.stem and not _running(int(match["pid"])):
                candidate.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def fsync_dir(directory: Path) -> None:
    """Make a rename durable; a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush a file written by someone else (Keras) to disk before it is renamed into place."""
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def write_error(path: Path, exc: OSError) -> RunError:
    """The message for a run-folder file that could not be written (the old version, if any, is intact)."""
    return RunError(f"{path}: cannot write the file ({exc.strerror or exc}); its previous version, if any, is "
                    f"intact and no partial file is left. Free disk space or fix the folder's permissions, "
                    f"then run the command again (an interrupted run continues with "
                    f"`cnnzoo train --resume {path.parent}`).")


def atomic_save(path: Path | str, writer: Callable[[Path], None],
                error: Callable[[Path, OSError], Exception] = write_error) -> Path:
    """Call ``writer(tmp)`` with a temporary path next to ``path``, then rename it onto ``path``.

    On any exception the temporary file is removed and an existing ``path`` is left untouched; an
    OSError (disk full, permissions) becomes ``error(path, exc)``, by default a RunError naming ``path``.
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        writer(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise error(path, exc) from None
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file, flush, fsync, rename, fsync directory)."""
    def write(tmp: Path) -> None:
        with open(tmp, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    return atomic_save(path, write)


def atomic_write_text(path: Path | str, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_safe(obj: Any) -> Any:
    """NaN and infinities become None; numpy scalars and arrays become Python values."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy scalar or array, without importing numpy
        return _json_safe(obj.tolist())
    return obj


def atomic_write_json(path: Path | str, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically; NaN/inf are written as null."""
    text = json.dumps(_json_safe(obj), indent=2, allow_nan=False)
    return atomic_write_text(path, text + "\n")
