"""Seeded, stratified splitting and per-split limits."""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from cnnzoo.data.interface import DatasetSplits
from cnnzoo.data.streams import refuse_stream
from cnnzoo.errors import DataError


def stratified_pick(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of `n` examples drawn per class in proportion to its size (largest remainder)."""
    classes, inverse, counts = np.unique(strata(y), return_inverse=True, return_counts=True)
    exact = counts * (n / max(len(y), 1))
    take = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - take), kind="stable")
    take[order[: n - int(take.sum())]] += 1
    picked = [rng.permutation(np.flatnonzero(inverse == k))[: take[k]] for k in range(len(classes))]
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)


def strata(y: np.ndarray) -> np.ndarray:
    """What stratification groups by: class labels; one group for float (regression) or multi-hot targets."""
    y = np.asarray(y)
    return y if y.ndim == 1 and y.dtype.kind in "biuU" else np.zeros(len(y), np.int64)


def _count(total: int, fraction: float) -> int:
    return int(np.floor(total * fraction + 0.5))


def stratified_split(y: np.ndarray, fraction: float, seed: int | Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(keep_idx, held_idx): hold out `fraction` of each class, deterministic under `seed`."""
    held = stratified_pick(y, _count(len(y), fraction), np.random.default_rng(seed))
    return np.setdiff1d(np.arange(len(y)), held), held


def three_way_split(y: np.ndarray, validation: float, test: float,
                    seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train_idx, val_idx, test_idx) with `test` and `validation` as fractions of all examples."""
    if validation + test >= 1.0:
        raise DataError(f"validation_split ({validation}) + test_split ({test}) leave no training data; "
                        "make their sum less than 1, e.g. `--set data.test_split=0.2`.")
    rng = np.random.default_rng(seed)
    test_idx = stratified_pick(y, _count(len(y), test), rng)
    rest = np.setdiff1d(np.arange(len(y)), test_idx)
    val_idx = rest[stratified_pick(y[rest], _count(len(y), validation), rng)]
    return np.setdiff1d(rest, val_idx), val_idx, test_idx


def limit_splits(splits: DatasetSplits, limit: int, seed: int) -> DatasetSplits:
    """Keep at most `limit` examples of each split, stratified as far as the limit allows."""
    rng = np.random.default_rng([seed, limit])
    arrays = {}
    for part in ("train", "val", "test"):
        x, y = getattr(splits, f"x_{part}"), getattr(splits, f"y_{part}")
        if len(y) > limit:
            keep = stratified_pick(y, limit, rng)
            x, y = x[keep], y[keep]
        arrays.update({f"x_{part}": x, f"y_{part}": y})
    return replace(splits, **arrays)


def take_splits(x: np.ndarray, y: np.ndarray, parts: tuple[np.ndarray, np.ndarray, np.ndarray],
                class_names: list[str], source: str) -> DatasetSplits:
    """DatasetSplits from one array pair and (train, val, test) index arrays."""
    (tr, va, te) = parts
    return DatasetSplits(x[tr], y[tr], x[va], y[va], x[te], y[te], class_names, source)


def fold_ids(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) of each example: each class shuffled (seeded) and dealt round-robin, so every
    fold holds each class in proportion."""
    groups = strata(y)
    ids = np.zeros(len(y), np.int64)
    rng = np.random.default_rng([seed, folds])
    offset = 0
    for value in np.unique(groups):
        members = rng.permutation(np.flatnonzero(groups == value))
        ids[members] = (np.arange(len(members)) + offset) % folds
        offset += len(members)
    return ids


def fold_splits(splits: DatasetSplits, fold: int, folds: int, seed: int) -> DatasetSplits:
    """Fold `fold` (1-based) of `folds` as the validation split, the other folds (training and validation
    data pooled) as the training split; the test split stays."""
    refuse_stream(splits.x_train, "cross-validation (train.folds)", "Set `data.in_memory: true`, or train "
                  "without folds on a validation split.")
    x = np.concatenate([splits.x_train, splits.x_val])
    y = np.concatenate([splits.y_train, splits.y_val])
    if len(y) < folds:
        raise DataError(f"{folds} folds need at least {folds} training examples; the data has {len(y)}.")
    ids = fold_ids(y, folds, seed)
    held = ids == fold - 1
    return replace(splits, x_train=x[~held], y_train=y[~held], x_val=x[held], y_val=y[held])
