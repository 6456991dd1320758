"""What every loader receives and returns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class DatasetSplits:
    """Train/validation/test arrays: images uint8 (N,H,W,C), series float32 (N,L,1), labels int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class LoadRequest:
    """The arguments of `load_dataset` that every loader needs besides the spec."""

    input_shape: tuple[int, ...]
    data_dir: Path | None
    seed: int
    cache_dir: Path | None = None
    progress: bool = True
