"""RunRecord: what a training run ended with, as its metrics.json holds it; the one class that writes
and reads that file.

Written once per training session (atomically, after the test evaluation). Read tolerantly: a file of
an older cnnzoo (no `version`, some keys missing) gives their defaults, a key this version does not
know is kept in `extra` (and written back); a missing `epochs_completed` (every version wrote it) or a
value of the wrong type is a `ValueError` naming the key, so `cnnzoo runs` marks that run damaged
instead of guessing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnzoo.atomic import atomic_write_json
from cnnzoo.errors import RunError
from cnnzoo.runs.folder import read_json

VERSION = 2  # 1: the files written before the record had a version


@dataclass
class RunRecord:
    """metrics.json, typed; the field order is the file's key order."""

    config: str | None = None
    dataset: str | None = None          # mnist, ucr/FordA: the `cnnzoo runs` dataset column
    monitor: str | None = None          # the checkpoint's monitored history column
    epochs_completed: int = 0
    interrupted: str | None = None      # the signal that stopped training, if one did
    stopped_early: bool = False
    nan_loss: dict | None = None        # {"epoch", "step"} where the loss stopped being finite
    best_epoch: int | None = None
    best: dict[str, float] = field(default_factory=dict)   # the best epoch's history row
    test: dict[str, float] = field(default_factory=dict)   # the evaluated checkpoint on the test split
    checkpoint_evaluated: str | None = None
    wall_seconds: float | None = None   # every session of the run
    session_seconds: float | None = None
    epoch_seconds_total: float | None = None
    samples_per_second: float | None = None
    train_samples: int | None = None
    val_samples: int | None = None
    test_samples: int | None = None
    class_names: list[str] = field(default_factory=list)
    params: int | None = None
    precision: str | None = None
    loss: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    memory_estimate_bytes: int | None = None
    memory_parts: dict[str, int] = field(default_factory=dict)
    peak_rss_bytes: int | None = None
    distribute: dict | None = None
    task: str | None = None
    multi_label: bool = False
    class_weight: dict[str, float] | None = None
    learned_weights: dict[str, list] | None = None  # only for a model this small (a fitted line)
    skipped_files: int | None = None    # streamed files data.bad_files: skip left out (listed in skipped_files.csv)
    batchnorm: dict | None = None       # training/batchnorm_check.py on a training sample, for a model with BN
    warnings: list[str] = field(default_factory=list)  # what train printed in yellow about the run's setup
    version: int = VERSION
    extra: dict[str, Any] = field(default_factory=dict)  # keys of a newer cnnzoo, kept as they were

    @property
    def status(self) -> str:
        """finished, stopped early, nan loss or interrupted (as `cnnzoo runs` shows it)."""
        if self.interrupted:
            return "interrupted"
        if self.nan_loss:
            return "nan loss"
        return "stopped early" if self.stopped_early else "finished"

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        if self.learned_weights is None:
            del data["learned_weights"]
        return {**data, **self.extra}

    @classmethod
    def from_json(cls, data: Any) -> "RunRecord":
        """A record from a parsed metrics.json; ValueError when it is not an object or a key has the wrong type."""
        if not isinstance(data, dict):
            raise ValueError("metrics.json does not hold a JSON object")
        if not isinstance(data.get("epochs_completed"), int):  # in every metrics.json cnnzoo ever wrote
            raise ValueError("`epochs_completed` is missing" if data.get("epochs_completed") is None else
                             f"`epochs_completed` holds {type(data['epochs_completed']).__name__}, expected int")
        known = {f.name: f for f in dataclasses.fields(cls) if f.name != "extra"}
        values = {key: _checked(key, value, _TYPES[key]) for key, value in data.items() if key in known}
        for key in _NUMBER_MAPS:  # shown, sorted and compared as numbers: anything else is a crafted file
            _numbers_only(key, values.get(key) or {})
        values.setdefault("version", 1)
        return cls(**values, extra={k: v for k, v in data.items() if k not in known})

    @classmethod
    def read(cls, path: Path | str) -> "RunRecord":
        """The record in ``path``; RunError naming the file when it is missing, not JSON or mistyped."""
        try:
            return cls.from_json(read_json(path))
        except ValueError as exc:
            raise RunError(f"{path}: {exc}. The file is damaged; train the run again (or `--resume` it).") from None

    def write(self, path: Path | str) -> None:
        atomic_write_json(path, self.to_json())


_TYPES = {  # what each key may hold (None is allowed for every one); ints are accepted as floats
    "config": str, "dataset": str, "monitor": str, "epochs_completed": int, "interrupted": str,
    "stopped_early": bool, "nan_loss": dict, "best_epoch": int, "best": dict, "test": dict,
    "checkpoint_evaluated": str, "wall_seconds": float, "session_seconds": float, "epoch_seconds_total": float,
    "samples_per_second": float, "train_samples": int, "val_samples": int, "test_samples": int,
    "class_names": list, "params": int, "precision": str, "loss": str, "versions": dict,
    "memory_estimate_bytes": int, "memory_parts": dict, "peak_rss_bytes": int, "distribute": dict, "task": str,
    "multi_label": bool, "class_weight": dict, "learned_weights": dict, "skipped_files": int, "batchnorm": dict,
    "warnings": list, "version": int,
}
_EMPTY = {"best": dict, "test": dict, "class_names": list, "versions": dict, "memory_parts": dict, "warnings": list}
_NUMBER_MAPS = ("best", "test", "memory_parts", "class_weight")


def _numbers_only(key: str, mapping: dict) -> None:
    for name, value in mapping.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"`{key}.{str(name)[:40]}` holds {type(value).__name__}, expected a number")


def _checked(key: str, value: Any, expected: type) -> Any:
    if value is None:
        return _EMPTY[key]() if key in _EMPTY else False if expected is bool else None
    numeric = expected is float and isinstance(value, int) and not isinstance(value, bool)
    if numeric or (isinstance(value, expected) and not (expected is int and isinstance(value, bool))):
        return value
    raise ValueError(f"`{key}` holds {type(value).__name__} {str(value)[:40]!r}, "
                     f"expected {expected.__name__}")
