"""Targets of table and array sources as the model is fed them: classes (int64 indices, names kept),
multi-hot rows (multi-label) or float32 values (regression, one column or several)."""

from __future__ import annotations

import numpy as np

from cnnzoo.errors import DataError


def encode_targets(parts: list[np.ndarray], hint: str | None, names: list[str] | None = None,
                   what: str = "the target") -> tuple[list[np.ndarray], list[str]]:
    """(parts encoded, class names); no class names means regression.

    Text or whole numbers are classes unless the config asks for regression; other numbers are a
    regression target. 2-D 0/1 targets under classification are multi-label, one class per column.
    """
    joined = np.concatenate(parts) if parts else np.zeros(0)
    numeric = joined.dtype.kind in "biuf"
    if hint == "regression" or (numeric and hint is None and not _whole(joined)):
        if not numeric:
            raise DataError(f"{what} holds text, so it cannot be a regression target; use train.task: "
                            "classification (or a classification loss) or a numeric target.")
        return [p.astype(np.float32) for p in parts], []
    if joined.ndim == 2 and joined.shape[1] > 1:
        return _multi_hot(parts, joined, names, what)
    values = np.unique(joined)
    if names is not None and numeric and len(names) > int(values.max(initial=0)):
        return [p.astype(np.int64).reshape(-1) for p in parts], [str(n) for n in names]
    return [np.searchsorted(values, p.reshape(-1)).astype(np.int64) for p in parts], [_name(v) for v in values]


def _whole(values: np.ndarray) -> bool:
    return values.dtype.kind in "biu" or bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))


def _multi_hot(parts, joined, names, what):
    if not np.isin(joined, (0, 1)).all():
        raise DataError(f"{what} has {joined.shape[1]} columns but values other than 0 and 1; a multi-label target "
                        "is multi-hot (0/1 per class), and several numeric columns are a regression target "
                        "(train.task: regression).")
    width = joined.shape[1]
    labels = [str(n) for n in names] if names is not None and len(names) == width else [str(k) for k in range(width)]
    return [p.astype(np.float32) for p in parts], labels


def _name(value) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def is_multi_label(y: np.ndarray, class_names: list[str]) -> bool:
    return bool(class_names) and np.asarray(y).ndim == 2
