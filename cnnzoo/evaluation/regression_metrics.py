"""Regression metrics in plain numpy over a whole split (R² exact, never a mean of batch values), and
ROC AUC for binary classifiers."""

from __future__ import annotations

import numpy as np


def regression_scores(y_true, y_pred) -> dict[str, float]:
    """mae, rmse and r2; with several target columns, r2 is the mean of the columns' R²."""
    y_true, y_pred = _columns(y_true), _columns(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred {y_pred.shape}.")
    error = y_pred - y_true
    return {"mae": float(np.abs(error).mean()), "rmse": float(np.sqrt((error ** 2).mean())),
            "r2": float(np.mean(r2_per_column(y_true, y_pred)))}


def r2_per_column(y_true, y_pred) -> np.ndarray:
    """1 - SS_res / SS_tot per column; a constant column scores 1.0 when predicted exactly, else 0.0."""
    y_true, y_pred = _columns(y_true), _columns(y_pred)
    residual = ((y_true - y_pred) ** 2).sum(axis=0)
    total = ((y_true - y_true.mean(axis=0)) ** 2).sum(axis=0)
    exact = np.where(residual == 0, 1.0, 0.0)
    return np.where(total > 0, 1.0 - residual / np.where(total > 0, total, 1.0), exact)


def _columns(values) -> np.ndarray:
    values = np.asarray(values, np.float64)
    return values.reshape(len(values), -1)


def roc_auc(y_true, scores) -> float | None:
    """Area under the ROC curve of scores for the positive class (label 1), ties counted half (the
    Mann-Whitney statistic); None when one class is absent."""
    y_true = np.asarray(y_true).reshape(-1).astype(bool)
    scores = np.asarray(scores, np.float64).reshape(-1)
    positives, negatives = int(y_true.sum()), int((~y_true).sum())
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(scores)]
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + end + 1) / 2.0  # average 1-based rank of a tie group
    return float((ranks[y_true].sum() - positives * (positives + 1) / 2) / (positives * negatives))
