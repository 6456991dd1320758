"""Test-time augmentation for `cnnzoo eval` and `predict --tta`: class probabilities averaged over mirrored views.

A view reverses some axes of each (batch, height, width, channels) image batch before the model sees
it; `flip` adds the left-right mirror to the image itself (timm's and MMPretrain's usual flip TTA).
Only for data whose classes survive a mirror: flowers and most photos, not digits or text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from cnnzoo.errors import RunError
from cnnzoo.tensorflow_import import import_tensorflow

VIEWS = {"none": ((),), "flip": ((), (2,))}  # per view, the image axes to reverse (2 = width)


def check_tta_name(tta: str) -> None:
    if tta not in VIEWS:
        raise RunError(f"--tta must be one of {', '.join(VIEWS)} (got {tta!r}).")


def check_tta(tta: str, input_shape: Sequence[int], task: str, multi_label: bool, run_path: Path | str) -> None:
    """Refuse what the views cannot serve, before the split is evaluated."""
    check_tta_name(tta)
    if tta == "none":
        return
    if len(input_shape) != 3:
        raise RunError(f"{run_path}: --tta {tta} mirrors images (height, width, channels), and this run's input "
                       f"is {tuple(input_shape)}; leave out --tta.")
    if task != "classification" or multi_label:
        kind = "a regression" if task == "regression" else "a multi-label"
        raise RunError(f"{run_path}: --tta averages the class probabilities of single-label classifiers, and "
                       f"this is {kind} run; leave out --tta.")


def view(images: Any, axes: tuple[int, ...]) -> Any:
    """One view of an image batch: ``images`` with ``axes`` reversed (none: the batch itself)."""
    return import_tensorflow().reverse(images, axis=list(axes)) if axes else images


def predict_views(model: Any, pipe: Any, tta: str) -> np.ndarray:
    """The model's outputs on ``pipe``'s inputs, averaged over the views of ``tta``."""
    outputs = []
    for axes in VIEWS[tta]:
        views = pipe.map(lambda x, y, axes=axes: (view(x, axes), y)) if axes else pipe
        outputs.append(model.predict(views, verbose=0))
    return outputs[0] if len(outputs) == 1 else np.mean(outputs, axis=0)
