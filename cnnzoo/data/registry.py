"""A dataset's module by name, imported on first use (no loader is imported before it is needed)."""

from __future__ import annotations

import importlib
from typing import Any

from cnnzoo.data.interface import DATASET_MODULES
from cnnzoo.errors import DataError


def dataset_module(name: str) -> Any:
    """A dataset's module (its `load`, `size` and `class_names`), imported on first use."""
    if name not in DATASET_MODULES:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASET_MODULES))}.")
    return importlib.import_module(DATASET_MODULES[name])
