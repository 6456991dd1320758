"""The task a config names or implies: `train.task`, else a regression loss; the data decides the rest
(training.labels). Plain names only, so config can check them without importing a model."""

from __future__ import annotations

TASKS = ("classification", "regression")
REGRESSION_LOSSES = ("mse", "mae", "huber", "log_cosh", "mean_squared_error", "mean_absolute_error",
                     "mean_squared_logarithmic_error", "mean_absolute_percentage_error", "msle", "mape")
REGRESSION_METRICS = ("mae", "rmse", "r2")


def task_hint(train) -> str | None:
    """The task the config alone tells (train.task, else a regression loss), or None: the data decides."""
    return hinted_task(train.task, train.loss)


def hinted_task(task: str | None, loss: str | None) -> str | None:
    if task:
        return task
    return "regression" if (loss or "").lower() in REGRESSION_LOSSES else None
