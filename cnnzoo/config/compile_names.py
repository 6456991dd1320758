"""`train.loss`, `train.metrics` and the monitors: names checked with the config's other errors.

Keras resolves a loss or metric name only when `fit` starts, so a misspelt one would pass `cnnzoo summary`
and stop `train` with a traceback; and a callback monitoring a name that no history column has only
warns, so a misspelt checkpoint monitor (`val_acc`) would quietly keep the last epoch as "best". A
history column is named by the string the config gives (`metrics: [acc]` logs `acc` and `val_acc`).
"""

from __future__ import annotations

from typing import Any

from cnnzoo.config.source import Document, PathKey
from cnnzoo.errors import quote
from cnnzoo.layers import suggest
from cnnzoo.tasks import REGRESSION_METRICS

COMPILE_ALIASES = ("accuracy", "acc", "crossentropy", "ce")  # model.compile resolves these from the loss
LOSS_ALIASES = ("mse", "mae", "mape", "msle", "kld")  # keras.losses.get knows them; dir(keras.losses) does not
_NOT_NAMES = ("Loss", "Metric", "Mean", "Sum", "MeanMetricWrapper", "deserialize", "get", "serialize")


def check_loss(doc: Document, path: PathKey, name: str | None) -> None:
    import keras

    if name is None or _resolves(keras.losses.get, name):
        return
    raise doc.error(path, f"unknown loss {quote(name)}: Keras has no loss of that name.",
                    hint=suggest(name, [*_public_names(keras.losses), *LOSS_ALIASES])
                    or "Use a name from keras.losses, e.g. categorical_crossentropy or mse.")


def check_metrics(doc: Document, path: PathKey, names: tuple[str, ...]) -> None:
    import keras

    known = [*_public_names(keras.metrics), *COMPILE_ALIASES, *REGRESSION_METRICS]  # later wins a hint's tie
    for index, name in enumerate(names):
        if name in COMPILE_ALIASES or name in REGRESSION_METRICS or _resolves(keras.metrics.get, name):
            continue
        raise doc.error(path + (index,), f"unknown metric {quote(name)}: Keras has no metric of that name.",
                        hint=suggest(name, known) or "Use accuracy, or a name from keras.metrics such as auc or mae.")


def check_monitor(doc: Document, path: PathKey, monitor: str, metrics: tuple[str, ...]) -> None:
    """`monitor` must name a history column: loss or a metric of train.metrics (or the regression
    metrics cnnzoo adds), optionally with val_."""
    logged = list(dict.fromkeys(["loss", *metrics]))
    if monitor.removeprefix("val_") in (*logged, *REGRESSION_METRICS):
        return
    choices = [name for column in (*logged, *REGRESSION_METRICS) for name in (f"val_{column}", column)]
    raise doc.error(path, f"monitor {quote(monitor)} names no column of the training history, which logs "
                          f"{', '.join(logged)} and their val_ forms (regression runs also mae, rmse, r2).",
                    hint=suggest(monitor, choices) or "Monitor val_loss, or add the metric to train.metrics.")


def _resolves(get: Any, name: str) -> bool:
    try:
        get(name)
    except (ValueError, TypeError):  # unknown, or a class that needs arguments (MeanIoU)
        return False
    return True


def _public_names(module: Any) -> list[str]:
    return [name for name in dir(module) if not name.startswith("_") and name not in _NOT_NAMES]
