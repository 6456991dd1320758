"""Regression pictures for `cnnzoo eval`: predicted against true values (with the y = x line) and a
histogram of the residuals (predicted - true)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnzoo.runs.plots import plt, save_figure


def plot_scatter(y_true, y_pred, out: Path) -> Path:
    true, pred = np.asarray(y_true, float).reshape(-1), np.asarray(y_pred, float).reshape(-1)
    fig, ax = plt.subplots(figsize=(5.5, 5), layout="constrained")
    ax.scatter(true, pred, s=12, alpha=0.7)
    low, high = (float(min(true.min(), pred.min())), float(max(true.max(), pred.max()))) if true.size else (0, 1)
    ax.plot([low, high], [low, high], color="gray", linestyle="--", linewidth=1, label="predicted = true")
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title(f"predicted vs true ({true.size} values)")
    ax.legend(loc="upper left")
    return save_figure(fig, out)


def plot_residuals(y_true, y_pred, out: Path) -> Path:
    residuals = (np.asarray(y_pred, float) - np.asarray(y_true, float)).reshape(-1)
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.hist(residuals, bins=min(50, max(5, residuals.size // 4)), color="tab:blue", alpha=0.8)
    ax.axvline(0.0, color="gray", linestyle="--", linewidth=1)
    ax.set_xlabel("residual (predicted - true)")
    ax.set_ylabel("count")
    ax.set_title(f"residuals: mean {residuals.mean() if residuals.size else 0:.3g}, "
                 f"std {residuals.std() if residuals.size else 0:.3g}")
    return save_figure(fig, out)
