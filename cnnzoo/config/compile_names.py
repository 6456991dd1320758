"""`train.loss`, `train.metrics` and the monitors: names checked with the config's other errors.

Keras resolves a loss or metric name only when `fit` starts, so a misspelt one would pass `cnnzoo summary`
and stop `train` with a traceback; and a callback monitoring a name that no history column has only
warns, so a misspelt checkpoint monitor (`val_acc`) would quietly keep the last epoch as "best". A
history column is named by the string the config gives (`metrics: [acc]` logs `acc` and `val_acc`).

Names are looked up in Keras' own name tables, never resolved: resolving a metric builds it, and
building variables starts TensorFlow's runtime, after which a multi-worker strategy can no longer be set up.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from cnnzoo.config.source import Document, PathKey
from cnnzoo.config.tasks import REGRESSION_METRICS
from cnnzoo.errors import quote, suggest

LOSS_ALIASES = ("crossentropy", "ce")  # model.compile picks the crossentropy for the labels
METRIC_ALIASES = ("accuracy", "acc")  # model.compile picks the accuracy for the labels
_BASE_CLASSES = ("Loss", "Metric", "Mean", "Sum", "MeanMetricWrapper", "Reduction")


def check_loss(doc: Document, path: PathKey, name: str | None) -> None:
    if name is None or name.lower() in LOSS_ALIASES:
        return
    _check_name(doc, path, name, "loss", _registry("losses"), LOSS_ALIASES,
                "Use a name from keras.losses, e.g. categorical_crossentropy or mse.")


def check_metrics(doc: Document, path: PathKey, names: tuple[str, ...], task: str | None) -> None:
    """Each metric a name Keras knows; rmse and r2 are cnnzoo's regression metrics, so only where the
    task may be regression."""
    regression = REGRESSION_METRICS if task != "classification" else ()
    for index, name in enumerate(names):
        if name.lower() in METRIC_ALIASES or name in regression:
            continue
        _check_name(doc, path + (index,), name, "metric", _registry("metrics"), (*METRIC_ALIASES, *regression),
                    "Use accuracy, or a name from keras.metrics such as auc or mae.")


def logged_columns(metrics: tuple[str, ...], task: str | None, metrics_given: bool) -> list[str]:
    """The training-history columns (without val_) a run logs: loss and each metric as written; a
    regression run logs mae, rmse, r2 in place of the default accuracy (cnnzoo.training.labels.compile_metrics)."""
    if task != "regression":
        return list(dict.fromkeys(["loss", *metrics]))
    named = [m for m in metrics if m not in REGRESSION_METRICS] if metrics_given else []
    return list(dict.fromkeys(["loss", *REGRESSION_METRICS, *named]))


def check_monitor(doc: Document, path: PathKey, monitor: str, logged: list[str], task: str | None) -> None:
    """`monitor` must name a history column, with or without val_ (a run without a validation split
    monitors the training column)."""
    maybe = list(REGRESSION_METRICS) if task is None else []  # the data may still make it a regression
    if monitor.removeprefix("val_") in (*logged, *maybe):
        return
    choices = [name for column in (*logged, *maybe) for name in (f"val_{column}", column)]
    also = " (a regression run also mae, rmse, r2)" if maybe else ""
    raise doc.error(path, f"monitor {quote(monitor)} names no column of the training history, which logs "
                          f"{', '.join(logged)} and their val_ forms{also}.",
                    hint=suggest(monitor, choices) or "Monitor val_loss, or add the metric to train.metrics.")


def _check_name(doc: Document, path: PathKey, name: str, what: str, registry: dict[str, Any],
                aliases: tuple[str, ...], fallback_hint: str) -> None:
    found = registry.get(name)
    if found is not None and name not in _BASE_CLASSES:
        needed = _required_arguments(found)
        if not needed:
            return
        raise doc.error(path, f"{what} {quote(name)} needs arguments ({', '.join(needed)}) that a name in the "
                              f"config cannot give.", hint=f"Choose a {what} that works without arguments.")
    known = sorted((n for n in registry if n not in _BASE_CLASSES), key=str.islower)  # snake_case wins a hint
    raise doc.error(path, f"unknown {what} {quote(name)}: Keras has no {what} of that name.",
                    hint=suggest(name, [*known, *aliases]) or fallback_hint)


def _registry(module: str) -> dict[str, Any]:
    """Keras' name -> class/function table that `keras.<module>.get` looks names up in."""
    public = importlib.import_module(f"keras.{module}")
    try:
        return dict(importlib.import_module(f"keras.src.{module}").ALL_OBJECTS_DICT)
    except (ImportError, AttributeError):  # another Keras layout: the public names only
        return {n: getattr(public, n) for n in dir(public) if not n.startswith("_") and n not in ("get", "serialize",
                                                                                                "deserialize")}


def _required_arguments(obj: Any) -> list[str]:
    """The constructor arguments without a default of a class (a function needs none)."""
    if not inspect.isclass(obj):
        return []
    params = inspect.signature(obj.__init__).parameters.values()
    return [p.name for p in params if p.name != "self" and p.default is p.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
