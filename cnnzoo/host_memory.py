"""What this machine has, for every stage that allocates: the memory this process may grow to, byte sizes
read and written for people, one allocation checked before it is made, the peak so far, and running out
of memory turned into one error paragraph.

- `available_memory()`: the cgroup's limit (less what the rest of the cgroup uses) where one is set, else
  the kernel's MemAvailable; plus what this process already holds, since an estimate counts the TensorFlow
  baseline that is already loaded. `CNNZOO_MEMORY_LIMIT` (bytes, or e.g. `8GB`, `512MiB`) caps it.
- `check_allocation(nbytes, what)`: a DataError before one array that cannot fit is allocated.
- `out_of_memory(phase)`: ResourceExhaustedError and MemoryError become `OutOfMemory` naming the phase.
The estimate of a whole run and its refusal are model.memory / model.memory_guard."""

from __future__ import annotations

import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from cnnzoo.errors import CnnzooError, DataError

CGROUP_V2 = Path("/sys/fs/cgroup")
CGROUP_V1 = Path("/sys/fs/cgroup/memory")
NO_LIMIT = 1 << 60  # cgroup v1 writes "no limit" as a huge number
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}


class MemoryRefused(CnnzooError):
    """What a run or a file needs exceeds the memory available; nothing was loaded or written."""


class OutOfMemory(CnnzooError):
    """TensorFlow or numpy ran out of memory in spite of the estimate."""


def available_memory() -> tuple[int, str]:
    """(bytes this process may grow to, where that number comes from)."""
    own = _own_rss()
    override = os.environ.get("CNNZOO_MEMORY_LIMIT")
    if override:
        return parse_bytes(override), "CNNZOO_MEMORY_LIMIT"
    cgroup = _cgroup_room()
    if cgroup is not None:
        room, limit = cgroup
        return room + own, (f"the cgroup memory limit {human_bytes(limit)}, less what other processes in it use, "
                            f"plus the {human_bytes(own)} this process holds")
    free = _meminfo("MemAvailable")
    return free + own, f"MemAvailable {human_bytes(free)} plus the {human_bytes(own)} this process holds"


def parse_bytes(text: str) -> int:
    match = re.fullmatch(r"\s*([0-9.]+)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in _UNITS:
        raise CnnzooError(f"CNNZOO_MEMORY_LIMIT={text!r} is not a size; use bytes or e.g. 8GB, 512MiB.")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def human_bytes(value: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(value) < 1000 or unit == "PB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} EB"


def check_allocation(nbytes: int, what: str) -> None:
    """Raise DataError before allocating `nbytes` for `what` when that cannot fit."""
    available, source = available_memory()
    if nbytes > available:
        raise DataError(f"{what} needs {human_bytes(nbytes)} of memory for one array, but {human_bytes(available)} "
                        f"is available ({source}). Use a smaller input.shape or a data.limit.")


@contextmanager
def out_of_memory(phase: str | Callable[[], str], hint: str = "") -> Iterator[None]:
    """Turn running out of memory inside the block into `OutOfMemory` naming `phase` (a callable is
    asked at the moment of failure, e.g. for the current epoch and step)."""
    try:
        yield
    except MemoryError as exc:  # numpy's _ArrayMemoryError is one
        raise OutOfMemory(_oom_message(phase, f"MemoryError: {exc}", hint)) from None
    except Exception as exc:
        if type(exc).__name__ != "ResourceExhaustedError":
            raise
        raise OutOfMemory(_oom_message(phase, f"ResourceExhaustedError: {_first_line(exc)}", hint)) from None


def _oom_message(phase: str | Callable[[], str], detail: str, hint: str) -> str:
    where = phase() if callable(phase) else phase
    return (f"ran out of memory while {where} ({detail}). Free memory (close other programs), or lower "
            f"train.batch_size or input.shape. {hint}").strip()


def _first_line(exc: Exception) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)[:300]


def _own_rss() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _meminfo(key: str) -> int:
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return NO_LIMIT  # not Linux: no known bound, so nothing is refused


def _cgroup_room() -> tuple[int, int] | None:
    """(limit - usage, limit) of this process's memory cgroup, v2 or v1; None without a limit."""
    for limit_file, usage_file in ((CGROUP_V2 / "memory.max", CGROUP_V2 / "memory.current"),
                                   (CGROUP_V1 / "memory.limit_in_bytes", CGROUP_V1 / "memory.usage_in_bytes")):
        try:
            limit_text = limit_file.read_text().strip()
            usage = int(usage_file.read_text().strip())
        except (OSError, ValueError):
            continue
        if limit_text == "max" or not limit_text.isdigit() or int(limit_text) >= NO_LIMIT:
            return None
        return max(int(limit_text) - usage, 0), int(limit_text)
    return None


def peak_rss() -> int:
    """This process's peak resident memory so far, in bytes.

    Linux: VmHWM of /proc/self/status. Not ru_maxrss, which Linux carries across exec: a process started
    by a fork of a 3 GB parent reports at least 3 GB from its first instruction."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    scale = 1 if sys.platform == "darwin" else 1024  # macOS reports bytes, Linux KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
