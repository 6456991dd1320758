"""Learning-rate schedules from the `train.schedule` section, as stock Keras callbacks."""

from __future__ import annotations

import math
from typing import Any

from cnnzoo.config.spec import TrainSpec


def schedule_callbacks(train: TrainSpec, has_val: bool, prior_rows: list[dict] = ()) -> list[Any]:
    import keras

    from cnnzoo.callbacks import ReplayedReduceLROnPlateau

    name, options = train.schedule.name, train.schedule.options
    if name == "constant":
        return []
    if name == "plateau":
        monitor = options.get("monitor", "val_loss")
        return [ReplayedReduceLROnPlateau(
            list(prior_rows), monitor=monitor if has_val else monitor.removeprefix("val_"),
            factor=options.get("factor", 0.1), patience=options.get("patience", 3),
            min_lr=options.get("min_lr", 0.0))]
    return [keras.callbacks.LearningRateScheduler(epoch_rate(train))]


def epoch_rate(train: TrainSpec):
    """learning rate as a function of the 0-based epoch, for the step and cosine schedules."""
    base = train.learning_rate or train.optimizer_args.get("learning_rate", 0.001)
    options = train.schedule.options
    if train.schedule.name == "step":
        drop, every = options.get("drop", 0.5), options.get("every", 10)
        return lambda epoch, lr=None: base * drop ** (epoch // every)
    min_lr, warmup = options.get("min_lr", 0.0), options.get("warmup_epochs", 0)

    def cosine(epoch, lr=None):
        if epoch < warmup:
            return base * (epoch + 1) / warmup
        progress = (epoch - warmup) / max(1, train.epochs - warmup)
        return min_lr + 0.5 * (base - min_lr) * (1 + math.cos(math.pi * progress))
    return cosine
