"""What `cnnzoo eval` reports beyond single-label classification: regression (MAE, RMSE, R² on the whole
split, a predicted-vs-true scatter and a residual histogram), multi-label (per-label precision, recall
and F1), and ROC AUC for binary classifiers."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnzoo.evaluation.class_metrics import confusion_matrix
from cnnzoo.evaluation.regression_metrics import regression_scores, roc_auc


def task_result(run, plan, splits, y_true: np.ndarray, outputs: np.ndarray, base: dict[str, Any]) -> dict | None:
    """eval.json's content for a regression or multi-label run (its pictures written), else None."""
    if plan.task == "regression":
        return _regression(run, y_true, outputs, base)
    if plan.multi_label:
        return _multi_label(y_true, outputs, splits.class_names, base)
    return None


def _regression(run, y_true: np.ndarray, outputs: np.ndarray, base: dict) -> dict:
    from cnnzoo.evaluation.regression_plots import plot_residuals, plot_scatter

    predicted = np.asarray(outputs, np.float64).reshape(np.asarray(y_true).shape)
    base["metrics"].update(regression_scores(y_true, predicted))
    plot_scatter(y_true, predicted, run.scatter_png)
    plot_residuals(y_true, predicted, run.residuals_png)
    return {**base, "task": "regression", "plots": [run.scatter_png.name, run.residuals_png.name]}


def _multi_label(y_true: np.ndarray, outputs: np.ndarray, class_names: list[str], base: dict) -> dict:
    """Each label judged on its own (p >= 0.5): precision, recall, F1, support, and exact-match accuracy."""
    y_true = np.asarray(y_true).astype(np.int64)
    predicted = (np.asarray(outputs) >= 0.5).astype(np.int64)
    rows = []
    for k, name in enumerate(class_names):
        cm = confusion_matrix(y_true[:, k], predicted[:, k], 2)
        tp, fp, fn = cm[1, 1], cm[0, 1], cm[1, 0]
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({"name": name, "precision": float(precision), "recall": float(recall), "f1": float(f1),
                     "support": int(y_true[:, k].sum())})
    exact = float((predicted == y_true).all(axis=1).mean()) if len(y_true) else 0.0
    macro = {f"macro_{m}": float(np.mean([r[m] for r in rows])) for m in ("precision", "recall", "f1")}
    return {**base, "task": "classification", "multi_label": True, "per_class": rows,
            "averages": {"exact_match": exact, **macro}, "class_names": class_names}


def binary_auc(outputs: np.ndarray, y_true: np.ndarray) -> float | None:
    """ROC AUC of a two-class run: the sigmoid output, or the softmax column of class 1."""
    outputs = np.asarray(outputs)
    scores = outputs.reshape(-1) if outputs.ndim == 1 or outputs.shape[-1] == 1 else outputs[:, 1]
    return roc_auc(y_true, scores)
