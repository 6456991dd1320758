"""What train, resume, eval and bench share before a model meets data: checking the config has data,
how labels are fed (LabelPlan), compiling with the config's optimizer, and the tf.data pipelines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnnzoo.builder import output_node
from cnnzoo.config.options import optimizer_classes
from cnnzoo.config.spec import ModelConfig
from cnnzoo.errors import ConfigError


@dataclass
class LabelPlan:
    """How labels are fed, chosen from the loss (or the output width when no loss is given)."""

    loss: str
    one_hot: bool
    task: str = "classification"  # or regression (cnnzoo.tasks)
    multi_label: bool = False     # sigmoid outputs on multi-hot targets


def require_data(config: ModelConfig) -> ModelConfig:
    """The config, if it says what to train on (a run folder's config.yaml may have been edited)."""
    if config.data is None:
        raise ConfigError("the config has no `data:` section, so there is nothing to train or evaluate on.",
                          file=config.file, path="data", hint="Add e.g. `data: {dataset: mnist}`.")
    return config


def plan_labels(config: ModelConfig, model: Any, num_classes: int, splits: Any = None) -> LabelPlan:
    return _soft_labels_allowed(config, _plan(config, model, num_classes, splits))


def _plan(config: ModelConfig, model: Any, num_classes: int, splits: Any) -> LabelPlan:
    from cnnzoo.tasks import plan_for

    other = plan_for(config, model, splits) if splits is not None else None
    if other is not None:
        return other
    width = model.output_shape[-1]
    last = output_node(config)
    if width == 1 and num_classes == 2:
        return LabelPlan(config.train.loss or "binary_crossentropy", one_hot=False)
    if width != num_classes:
        raise last.where.error(f"the model ends in {width} output(s) but the dataset has {num_classes} classes.",
                               hint=f"Make the last layer Dense with units: {num_classes}"
                                    + (" (or 1 with sigmoid for two classes)." if num_classes == 2 else "."))
    soft = needs_soft_labels(config)
    loss = config.train.loss or ("categorical_crossentropy" if soft else "sparse_categorical_crossentropy")
    if soft and loss != "categorical_crossentropy":
        raise ConfigError(f"{soft} needs one-hot labels, but train.loss is {loss}.", file=config.file,
                          path="train.loss", hint="Write `loss: categorical_crossentropy` (or leave loss out).")
    return LabelPlan(loss, one_hot=loss.startswith("categorical"))


def _soft_labels_allowed(config: ModelConfig, plan: LabelPlan) -> LabelPlan:
    """Label smoothing and MixUp/CutMix need one-hot class labels: refused for a single sigmoid output,
    multi-label and regression runs (they would train another loss, or silently not mix)."""
    soft = needs_soft_labels(config)
    if soft == "data.mix" and len(config.input.shape) != 3:
        raise ConfigError(f"data.mix (MixUp/CutMix) mixes images, but this model's input has shape "
                          f"{list(config.input.shape)}.", file=config.file, path="data.mix",
                          hint="Leave data.mix out for series and tables.")
    if soft and not plan.one_hot:
        kind = "a regression" if plan.task == "regression" else ("a multi-label" if plan.multi_label else
                                                                 "a single-sigmoid binary")
        raise ConfigError(f"{soft} needs one-hot class labels (a softmax over the classes), but this is {kind} "
                          f"run.", file=config.file, path=soft,
                          hint=f"Leave {soft} out, or end the model in Dense(units=<classes>, softmax).")
    return plan


def needs_soft_labels(config: ModelConfig) -> str | None:
    """What in the config mixes or smooths labels (so they must be one-hot), or None."""
    if config.train.label_smoothing:
        return "train.label_smoothing"
    mix = config.data.mix if config.data is not None else None
    return "data.mix" if mix is not None and (mix.mixup_alpha or mix.cutmix_factor) else None


def compile_model(model: Any, config: ModelConfig, plan: LabelPlan) -> None:
    args = dict(config.train.optimizer_args)
    if config.train.learning_rate is not None:
        args["learning_rate"] = config.train.learning_rate
    # validated plain values only, passed to the class itself: nothing is deserialised
    optimizer = optimizer_classes()[config.train.optimizer.lower()](**args)
    from cnnzoo.tasks import compile_metrics

    try:
        model.compile(optimizer=optimizer, loss=_loss(plan.loss, config.train.label_smoothing),
                      metrics=compile_metrics(config, plan),
                      steps_per_execution=config.train.steps_per_execution,
                      jit_compile=config.train.jit_compile)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"Keras rejected the training setup: {str(exc).splitlines()[0]}",
                          file=config.file, path="train", hint="Check train.loss and train.metrics.") from None


def _loss(name: str, label_smoothing: float) -> Any:
    if not label_smoothing:
        return name
    import keras

    return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)


@dataclass
class Pipelines:
    train: Any
    val: Any | None
    test: Any | None
    class_weight: dict[int, float] | None = None  # train.class_weight resolved for Keras' fit


def make_pipelines(config: ModelConfig, splits, plan: LabelPlan, first_epoch: int = 0,
                   drop_remainder: bool = False) -> Pipelines:
    """Validation and test passes, and the endless training stream from epoch ``first_epoch`` on."""
    from cnnzoo import data as datasets
    from cnnzoo.data.mixing import make_mixer
    from cnnzoo.layers import create_layer

    scale = datasets.default_scale(config.data)
    augment = _augmenter([create_layer(n) for n in config.data.augment]) if config.data.augment else None
    mix = make_mixer(config.data.mix, config.train.seed) if plan.one_hot else None
    common = dict(batch_size=config.train.batch_size, num_classes=max(splits.num_classes, 1), one_hot=plan.one_hot,
                  scale=scale, seed=config.train.seed)

    def pipe(x, y, train=False):
        if len(x) == 0:
            return None
        return datasets.make_pipeline(x, y, shuffle=train, augment=augment if train else None,
                                      first_epoch=first_epoch, drop_remainder=drop_remainder and train,
                                      mix=mix if train else None, **common)

    from cnnzoo.class_weights import fit_class_weight

    return Pipelines(pipe(splits.x_train, splits.y_train, train=True), pipe(splits.x_val, splits.y_val),
                     pipe(splits.x_test, splits.y_test), fit_class_weight(config, splits, plan))


def _augmenter(layers: list[Any]) -> Any:
    import keras

    return keras.Sequential(layers, name="augment")
