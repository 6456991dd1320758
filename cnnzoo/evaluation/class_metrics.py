"""Classification metrics in plain numpy: confusion matrix, per-class report, top-k accuracy."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from cnnzoo.atomic import atomic_write_text
from cnnzoo.terminal import csv_text


def _labels(y) -> np.ndarray:
    """Integer labels from integer labels or one-hot rows."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        y = y.argmax(axis=1)
    return y.astype(np.int64).ravel()


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Counts with true classes as rows and predicted classes as columns (labels or one-hot rows)."""
    y_true, y_pred = _labels(y_true), _labels(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} labels but y_pred has {y_pred.size}.")
    for name, labels in (("y_true", y_true), ("y_pred", y_pred)):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"{name} holds labels outside 0..{num_classes - 1}: "
                             f"min {labels.min()}, max {labels.max()}.")
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, with 0.0 where den is 0."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _per_class(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 and support per class."""
    cm = np.asarray(cm)
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    precision = _divide(tp, cm.sum(axis=0))
    recall = _divide(tp, support)
    f1 = _divide(2 * precision * recall, precision + recall)
    return precision, recall, f1, support


def per_class_report(cm: np.ndarray, class_names: list[str]) -> list[dict]:
    """One dict per class: name, precision, recall, f1, support (0.0 where undefined)."""
    precision, recall, f1, support = _per_class(cm)
    if len(class_names) != len(support):
        raise ValueError(f"{len(class_names)} class names for a {len(support)}-class confusion matrix.")
    return [{"name": str(name), "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(class_names, precision, recall, f1, support)]


def averages(cm: np.ndarray) -> dict:
    """Accuracy plus macro- and support-weighted precision, recall and F1."""
    precision, recall, f1, support = _per_class(cm)
    total = support.sum()
    weights = support / total if total else np.zeros_like(support, dtype=float)
    result = {"accuracy": float(np.trace(cm) / total) if total else 0.0}
    for name, values in (("precision", precision), ("recall", recall), ("f1", f1)):
        result[f"macro_{name}"] = float(values.mean()) if values.size else 0.0
        result[f"weighted_{name}"] = float((values * weights).sum())
    return result


def top_k_accuracy(y_true, probs, k: int) -> float:
    """Fraction of samples whose true class is among the k highest scores."""
    probs = np.asarray(probs, dtype=float)
    y_true = _labels(y_true)
    if probs.ndim != 2 or probs.shape[0] != y_true.size:
        raise ValueError(f"probs must have shape (N, K) with N={y_true.size}; got {probs.shape}.")
    if y_true.size == 0:
        return 0.0
    k = min(k, probs.shape[1])
    top = np.argpartition(-probs, k - 1, axis=1)[:, :k]
    return float((top == y_true[:, None]).any(axis=1).mean())


def predictions_from_probs(probs) -> np.ndarray:
    """Class labels from softmax (N, K) outputs by argmax, or sigmoid (N,) / (N, 1) outputs by p >= 0.5."""
    probs = np.asarray(probs, dtype=float)
    if probs.ndim == 1 or (probs.ndim == 2 and probs.shape[1] == 1):
        return (probs.reshape(-1) >= 0.5).astype(np.int64)
    if probs.ndim == 2:
        return probs.argmax(axis=1).astype(np.int64)
    raise ValueError(f"probs must have shape (N,), (N, 1) or (N, K); got {probs.shape}.")


def write_confusion_csv(cm: np.ndarray, class_names: list[str], path: Path | str) -> Path:
    """CSV with predicted class names as header and true class names as the first column."""
    cm = np.asarray(cm)
    if cm.shape != (len(class_names), len(class_names)):
        raise ValueError(f"{len(class_names)} class names for a confusion matrix of shape {cm.shape}.")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["true \\ predicted", *map(csv_text, class_names)])
    for name, row in zip(class_names, cm):
        writer.writerow([csv_text(name), *(int(v) for v in row)])
    return atomic_write_text(path, buffer.getvalue())
