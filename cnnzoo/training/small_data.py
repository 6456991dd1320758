"""What small data does to the choices a run makes from its validation split, said before training.

With a few series per class in the validation split (a 20% split of a 100-series UCR set holds 20, some
classes 5), `val_loss` moves by whole samples from epoch to epoch: the best checkpoint and early
stopping follow noise and often keep epoch 1-3. The time-series papers monitor the training loss
instead; a larger split or cross-validation are the other ways out.
"""

from __future__ import annotations

import numpy as np

MIN_PER_CLASS = 10  # validation samples of the rarest class below which the split is too small to choose by


def validation_warning(config, splits, plan) -> str | None:
    """A warning when a classification run chooses its checkpoint, early stop or schedule by a
    validation metric measured on fewer than MIN_PER_CLASS samples of some class."""
    if plan.task != "classification" or plan.multi_label or len(splits.x_val) == 0:
        return None
    chosen = [name for name, monitor in _monitors(config) if monitor.startswith("val_")]
    if not chosen:
        return None
    counts = np.bincount(np.asarray(splits.y_val, np.int64), minlength=max(splits.num_classes, 1))
    rarest = int(np.argmin(counts))
    if counts[rarest] >= MIN_PER_CLASS:
        return None
    name = splits.class_names[rarest] if rarest < len(splits.class_names) else str(rarest)
    return (f"the validation split holds {len(splits.x_val)} samples, {int(counts[rarest])} of class {name!r} "
            f"(fewer than {MIN_PER_CLASS} a class), and {_listed(chosen)} follow a validation metric: on so "
            f"few samples it is noise, and the best checkpoint is often an early epoch. Monitor the training "
            f"loss instead, as the time-series papers do (`train.checkpoint: {{monitor: loss}}`, early stopping "
            f"and the plateau schedule on `loss`; the *_wang configs do), or use a larger validation_split or "
            f"`cnnzoo train --folds`.")


def _monitors(config) -> list[tuple[str, str]]:
    train = config.train
    found = [("the checkpoint", train.checkpoint.monitor)]
    if train.early_stopping is not None:
        found.append(("early stopping", train.early_stopping.monitor))
    schedule = getattr(train, "schedule", None)
    monitor = getattr(schedule, "monitor", None)
    if isinstance(monitor, str):
        found.append(("the plateau schedule", monitor))
    return found


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
