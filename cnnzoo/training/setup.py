"""What train, resume, eval and bench share before a model meets data: checking the config has data,
compiling with the config's optimizer, and the tf.data pipelines (how labels are fed: training.labels)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnnzoo import data as datasets
from cnnzoo.config.options import optimizer_classes
from cnnzoo.config.spec import ModelConfig
from cnnzoo.data.mixing import make_mixer
from cnnzoo.errors import ConfigError
from cnnzoo.layers.registry import create_layer
from cnnzoo.training.class_weights import fit_class_weight
from cnnzoo.training.labels import LabelPlan, compile_metrics


def require_data(config: ModelConfig) -> ModelConfig:
    """The config, if it says what to train on (a run folder's config.yaml may have been edited)."""
    if config.data is None:
        raise ConfigError("the config has no `data:` section, so there is nothing to train or evaluate on.",
                          file=config.file, path="data", hint="Add e.g. `data: {dataset: mnist}`.")
    return config


def compile_model(model: Any, config: ModelConfig, plan: LabelPlan) -> None:
    args = dict(config.train.optimizer_args)
    if config.train.learning_rate is not None:
        args["learning_rate"] = config.train.learning_rate
    # validated plain values only, passed to the class itself: nothing is deserialised
    optimizer = optimizer_classes()[config.train.optimizer.lower()](**args)
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
                   drop_remainder: bool = False, shard: tuple[int, int, int] | None = None) -> Pipelines:
    """Validation and test passes, and the endless training stream from epoch ``first_epoch`` on (with
    ``shard``, a streamed training split's share of this multi_worker worker only)."""
    augment = _augmenter([create_layer(n) for n in config.data.augment]) if config.data.augment else None
    mix = make_mixer(config.data.mix, config.train.seed) if plan.one_hot else None
    common = _pipeline_options(config, plan, splits.num_classes)

    def pipe(x, y, train=False):
        if len(x) == 0:
            return None
        return datasets.make_pipeline(x, y, shuffle=train, augment=augment if train else None,
                                      first_epoch=first_epoch, drop_remainder=drop_remainder and train,
                                      mix=mix if train else None, shard=shard if train else None,
                                      crop=config.data.random_resized_crop if train else None, **common)

    return Pipelines(pipe(splits.x_train, splits.y_train, train=True), pipe(splits.x_val, splits.y_val),
                     pipe(splits.x_test, splits.y_test), fit_class_weight(config, splits, plan))


def evaluation_pipeline(config: ModelConfig, x, y, plan: LabelPlan, num_classes: int) -> Any:
    """An evaluation pass (no shuffle, no augmentation) over any samples, as make_pipelines' val and test."""
    return datasets.make_pipeline(x, y, shuffle=False, **_pipeline_options(config, plan, num_classes))


def _pipeline_options(config: ModelConfig, plan: LabelPlan, num_classes: int) -> dict[str, Any]:
    """What every pass of a run shares: batch size, labels, the data's scale, the seed."""
    return dict(batch_size=config.train.batch_size, num_classes=max(num_classes, 1), one_hot=plan.one_hot,
                scale=datasets.default_scale(config.data), seed=config.train.seed)


def _augmenter(layers: list[Any]) -> Any:
    import keras

    return keras.Sequential(layers, name="augment")
