"""Refusing what will not fit, and turning what still runs out of memory into one error paragraph.

- `available_memory()`: what this process may grow to: the cgroup's limit (less what the rest of the
  cgroup uses) where one is set, else the kernel's MemAvailable; plus what this process already
  holds, since an estimate counts the TensorFlow baseline that is already loaded.
  `CNNZOO_MEMORY_LIMIT` (bytes, or e.g. `8GB`, `512MiB`) caps it, e.g. on a shared machine.
- `check_fits(estimate, ...)`: a `MemoryRefused` error (exit code 2) with the estimate by part,
  what is available and what to change, unless `force`.
- `check_allocation(nbytes, what)`: the same for one array about to be allocated (exact, so no force).
- `out_of_memory(phase)`: ResourceExhaustedError and MemoryError become `OutOfMemory` naming the phase.
"""

from __future__ import annotations

import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from cnnzoo.errors import CnnzooError, DataError
from cnnzoo.memory import MemoryEstimate, human_bytes

CGROUP_V2 = Path("/sys/fs/cgroup")
CGROUP_V1 = Path("/sys/fs/cgroup/memory")
NO_LIMIT = 1 << 60  # cgroup v1 writes "no limit" as a huge number
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}


class MemoryRefused(CnnzooError):
    """The estimate of a run exceeds the memory available; nothing was loaded or written."""


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


def check_fits(estimate: MemoryEstimate, *, what: str, force: bool, locate: Callable[[str], str] | None = None,
               console: Any = None) -> int:
    """Refuse `estimate` when it exceeds what is available (say so and go on with `force`); returns
    the bytes available."""
    available, source = available_memory()
    if estimate.total <= available:
        return available
    message = (f"{what} needs an estimated {human_bytes(estimate.total)} of memory, but {human_bytes(available)} "
               f"is available ({source}). Estimate by part: {'; '.join(estimate.lines())} (a training step's "
               f"gradients and activations and the checkpoint writing never overlap: the larger counts). "
               f"To fit: {' '.join(_advice(estimate, locate))}"
               + "".join(f" Note: {note}." for note in estimate.notes))
    if force:
        if console is not None:
            from rich.markup import escape

            console.print(f"[yellow]warning:[/] {escape(message)} Going on (--force).", highlight=False)
        return available
    raise MemoryRefused(message + " Or pass --force to try anyway (the estimate is within about 30%).")


def _advice(estimate: MemoryEstimate, locate: Callable[[str], str] | None) -> list[str]:
    parts = estimate.parts
    tips = []
    batch_bound = parts.get("activations", 0) + parts.get("input_pipeline", 0)
    if batch_bound and estimate.batch_size > 1:
        tips.append(f"lower train.batch_size ({estimate.batch_size} now; activations and batches in flight, "
                    f"{human_bytes(batch_bound)}, scale with it);")
    if parts.get("dataset", 0) or parts.get("activations", 0):
        tips.append(f"use a smaller input.shape (the dataset arrays, {human_bytes(parts.get('dataset', 0))}, and the "
                    "activations scale with its size);")
    if estimate.largest_layer:
        name, params = estimate.largest_layer
        place = f" ({locate(name)})" if locate else ""
        tips.append(f"shrink the layer with the most parameters, `{name}`{place}, {params:,} parameters "
                    "(each costs its weight, gradient and optimizer slots);")
    if estimate.policy == "float32":
        tips.append("set train.precision: mixed_bfloat16 (mixed_float16 on a GPU), which halves the activations;")
    tips[-1] = tips[-1].rstrip(";") + "."
    return tips


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


def check_run_memory(config: Any, *, what: str, force: bool, data_dir: Path | None = None, console: Any = None,
                     batch_size: int | None = None, with_data: bool = True, inference: bool = False
                     ) -> MemoryEstimate:
    """Build `config`'s model without weights, estimate the run and refuse it if it cannot fit."""
    from cnnzoo.builder import build_model
    from cnnzoo.memory import estimate_inference, estimate_training

    built = build_model(config, allocate=False)
    if inference:
        estimate = estimate_inference(config, built.model, data_dir=data_dir)
    else:
        estimate = estimate_training(config, built.model, data_dir=data_dir, batch_size=batch_size,
                                     with_data=with_data)
    estimate.available = check_fits(estimate, what=what, force=force, console=console,
                                    locate=lambda name: _located(built.where.get(name)))
    return estimate


def _located(where: Any) -> str:
    if where is None:
        return "a merge of branches"
    return f"{where.file}:{where.line} {where.path}" if where.line else f"{where.file} {where.path}"


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


def phase_tracker() -> Any:
    """A Keras callback that knows the epoch and step being trained (for `out_of_memory`)."""
    import keras

    class PhaseTracker(keras.callbacks.Callback):  # first in the list: its hooks run before the others'
        epoch = step = 0
        doing = "training"

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch, self.step, self.doing = epoch + 1, 0, "training"

        def on_train_batch_begin(self, batch, logs=None):
            self.step = batch + 1

        def on_test_begin(self, logs=None):
            self.doing = "validating"

        def on_epoch_end(self, epoch, logs=None):
            self.doing = "saving"

        def describe(self) -> str:
            return {"training": f"training epoch {self.epoch} step {self.step}",
                    "validating": f"validating after training epoch {self.epoch}",
                    "saving": f"writing the history and checkpoints of epoch {self.epoch}"}[self.doing]

    return PhaseTracker()
