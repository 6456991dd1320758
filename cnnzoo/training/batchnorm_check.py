"""Whether a model's BatchNormalization statistics describe the data it is used on.

BatchNormalization normalises with each batch's statistics in training and with moving averages in
inference. With Keras' momentum 0.99 the averages start at mean 0, variance 1 and need hundreds of
optimizer steps to reach the data's: a small dataset (a UCR training set of 100 series, batch 32, early
stopping) gives 50-300 steps in all, so inference normalises with the wrong statistics and a model that
fits its training data predicts one class for it. Nothing in the training curves shows it.

The check, on a sample of training data: predict in inference mode; measure each BN layer's input
statistics in a training-mode pass (the moving averages set to the sample's exact mean and variance);
predict again in inference mode with those. A layer whose moving variance is far from the measured one,
or whose moving mean is off by more than a standard deviation, is named; a model whose inference-mode
accuracy on its own training data is far below its accuracy with the measured statistics has the trap.
Every variable is restored afterwards: the model is unchanged.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

SAMPLE = 512                  # training samples looked at, at most
SAMPLE_VALUES = 1 << 25       # and at most this many input values (224x224x3 images: 222 samples)
BATCH = 64
VARIANCE_FACTOR = 4.0         # moving / measured variance (median over channels) beyond this, or below its inverse
MEAN_SHIFT = 1.0              # |moving - measured mean| (median over channels) in measured standard deviations
ACCURACY_GAP = 0.10           # inference-mode accuracy this far below the measured-statistics accuracy


@dataclass
class LayerStatistics:
    name: str
    variance_ratio: float     # moving variance / the data's, median over channels
    mean_shift: float         # |moving mean - the data's| / the data's standard deviation, median over channels
    momentum: float

    @property
    def off(self) -> bool:
        ratio = self.variance_ratio
        return not (1 / VARIANCE_FACTOR <= ratio <= VARIANCE_FACTOR) or self.mean_shift > MEAN_SHIFT


@dataclass
class BatchNormCheck:
    samples: int
    layers: list[LayerStatistics] = field(default_factory=list)
    accuracy_inference: float | None = None           # on the training sample, as `eval` would predict
    accuracy_measured_statistics: float | None = None  # the same sample, BN with the sample's statistics
    single_class: str | None = None                    # the one class inference mode predicts for every sample

    @property
    def off_layers(self) -> list[str]:
        return [layer.name for layer in self.layers if layer.off]

    @property
    def accuracy_gap(self) -> float | None:
        if self.accuracy_inference is None or self.accuracy_measured_statistics is None:
            return None
        return self.accuracy_measured_statistics - self.accuracy_inference

    @property
    def trapped(self) -> bool:
        """A layer's moving statistics are far from the data's, or inference mode costs accuracy."""
        gap = self.accuracy_gap
        return bool(self.off_layers) or (gap is not None and gap >= ACCURACY_GAP)

    def warning(self, where: str) -> str | None:
        if not self.trapped:
            return None
        off = [layer for layer in self.layers if layer.off] or self.layers
        named = ", ".join(layer.name for layer in off[:5]) + (f" and {len(off) - 5} more" if len(off) > 5 else "")
        worst = max(off, key=lambda layer: abs(math.log(max(layer.variance_ratio, 1e-12))))
        cost = ""
        if self.accuracy_gap is not None:
            cost = (f" In inference mode the model scores {self.accuracy_inference:.1%} on {self.samples} of its "
                    f"own training samples, against {self.accuracy_measured_statistics:.1%} with the data's "
                    f"statistics")
            cost += f" (it predicts {self.single_class!r} for every one)." if self.single_class else "."
        return (f"{where}: the BatchNormalization moving statistics of {named} are far from the data's (moving "
                f"variance {worst.variance_ratio:.3g}x the measured one in {worst.name}).{cost} Too few "
                f"optimizer steps for momentum {worst.momentum:g}: lower the layers' momentum (e.g. "
                f"`BatchNormalization: {{momentum: 0.9}}`), use a smaller batch, or train more steps.")

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "off_layers": self.off_layers, "trapped": self.trapped}


def check_batchnorm(model: Any, inputs, labels: np.ndarray | None, class_names: list[str]) -> BatchNormCheck | None:
    """The check on `inputs`, an iterable of model-ready input batches (the evaluation pipeline of a training
    sample) and their integer `labels` (None when accuracy does not apply). None without BN layers."""
    layers = batchnorm_layers(model)
    if not layers:
        return None
    batches = list(inputs)
    saved = [variable.numpy() for variable in model.non_trainable_variables]
    momenta = [layer.momentum for layer in layers]
    before = [(layer.moving_mean.numpy(), layer.moving_variance.numpy()) for layer in layers]
    try:
        inference = _predict(model, batches)
        _measure(model, layers, batches)
        measured = [(layer.moving_mean.numpy(), layer.moving_variance.numpy()) for layer in layers]
        recalibrated = _predict(model, batches)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        for variable, value in zip(model.non_trainable_variables, saved):
            variable.assign(value)
    check = BatchNormCheck(samples=len(inference), layers=[
        _statistics(layer.name, momentum, old, new) for layer, momentum, old, new in zip(layers, momenta, before, measured)])
    if labels is not None and inference.ndim == 2 and inference.shape[1] > 1:
        predicted, corrected = inference.argmax(1), recalibrated.argmax(1)
        check.accuracy_inference = round(float(np.mean(predicted == labels)), 4)
        check.accuracy_measured_statistics = round(float(np.mean(corrected == labels)), 4)
        if len(np.unique(labels)) > 1 and len(np.unique(predicted)) == 1:
            check.single_class = class_names[int(predicted[0])] if int(predicted[0]) < len(class_names) else str(
                int(predicted[0]))
    return check


def check_training_sample(model: Any, config, splits, plan) -> BatchNormCheck | None:
    """check_batchnorm on a seeded sample of the training split, fed as evaluation feeds the test split."""
    from cnnzoo.data.streams import is_stream
    from cnnzoo.training.setup import evaluation_pipeline

    if len(splits.x_train) == 0 or not batchnorm_layers(model):
        return None
    positions = sample_positions(len(splits.x_train), splits.x_train.shape[1:], config.train.seed)
    x, y = splits.x_train[positions], np.asarray(splits.y_train)[positions]
    pipeline = evaluation_pipeline(config, x, y, plan, splits.num_classes)
    batches = [inputs for inputs, _ in pipeline]
    labels = None
    if plan.task == "classification" and not plan.multi_label:
        labels = y[x.kept()] if is_stream(x) else y  # files skipped under data.bad_files: skip are not predicted
    return check_batchnorm(model, batches, labels, splits.class_names)


def batchnorm_layers(model: Any) -> list:
    import keras

    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, keras.layers.BatchNormalization)]


def sample_positions(count: int, input_shape, seed: int) -> np.ndarray:
    """Sorted positions of the training samples the check looks at: a seeded choice, bounded in values."""
    budget = max(1, SAMPLE_VALUES // max(1, math.prod(input_shape)))
    size = min(count, SAMPLE, budget)
    return np.sort(np.random.default_rng(seed).choice(count, size, replace=False)) if size < count else np.arange(count)


def _predict(model: Any, batches: list) -> np.ndarray:
    outputs = [np.asarray(model(batch, training=False)) for batch in batches]
    return np.concatenate(outputs).astype(np.float64)


def _measure(model: Any, layers: list, batches: list) -> None:
    """Training-mode passes that leave each layer's moving statistics at the running mean of the batches'
    (momentum k/(k+1) for batch k): the data's statistics as the layer sees them in training."""
    for k, batch in enumerate(batches):
        for layer in layers:
            layer.momentum = k / (k + 1)
        model(batch, training=True)


def _statistics(name: str, momentum: float, moving: tuple, measured: tuple) -> LayerStatistics:
    (old_mean, old_var), (mean, var) = moving, measured
    spread = np.sqrt(np.maximum(var, 1e-12))
    ratio = np.median(old_var / np.maximum(var, 1e-12))
    shift = np.median(np.abs(old_mean - mean) / spread)
    return LayerStatistics(name, round(float(ratio), 4), round(float(shift), 4), momentum)
