"""Learning-rate schedules from the `train.schedule` section, as stock Keras callbacks."""

from __future__ import annotations

import math
from typing import Any

from cnnzoo.config.options import ConstantSchedule, PlateauSchedule, StepSchedule, base_learning_rate
from cnnzoo.config.spec import TrainSpec


def schedule_callbacks(train: TrainSpec, has_val: bool, prior_rows: list[dict] = ()) -> list[Any]:
    import keras

    from cnnzoo.training.callbacks import ReplayedReduceLROnPlateau

    schedule = train.schedule
    if isinstance(schedule, ConstantSchedule):
        return []
    if isinstance(schedule, PlateauSchedule):
        return [ReplayedReduceLROnPlateau(
            list(prior_rows), monitor=schedule.monitor if has_val else schedule.monitor.removeprefix("val_"),
            mode=schedule.mode, factor=schedule.factor, patience=schedule.patience, min_lr=schedule.min_lr,
            min_delta=schedule.min_delta, cooldown=schedule.cooldown)]
    return [keras.callbacks.LearningRateScheduler(epoch_rate(train))]


def epoch_rate(train: TrainSpec):
    """learning rate as a function of the 0-based epoch, for the step and cosine schedules."""
    base = base_learning_rate(train)
    schedule = train.schedule
    if isinstance(schedule, StepSchedule):
        return lambda epoch, lr=None: base * schedule.drop ** (epoch // schedule.every)
    min_lr, warmup = schedule.min_lr, schedule.warmup_epochs

    def cosine(epoch, lr=None):
        if epoch < warmup:
            return base * (epoch + 1) / warmup
        progress = (epoch - warmup) / max(1, train.epochs - warmup)
        return min_lr + 0.5 * (base - min_lr) * (1 + math.cos(math.pi * progress))
    return cosine
