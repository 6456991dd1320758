"""How labels are fed, decided once for train, resume, eval and bench: the task (classification or
regression; told by `train.task`, else by the loss, else by the data: a float target is regression), one-hot
or sparse, multi-label, label smoothing and mixing, and what the task changes: the default metrics, the
checkpoint's monitor and what metrics.json records."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from cnnzoo.config.options import CheckpointSpec
from cnnzoo.config.spec import ModelConfig
from cnnzoo.config.tasks import REGRESSION_METRICS, task_hint
from cnnzoo.data import standardize
from cnnzoo.data.targets import is_multi_label
from cnnzoo.errors import ConfigError
from cnnzoo.model.builder import output_node
from cnnzoo.training.class_weights import recorded


@dataclass
class LabelPlan:
    """How labels are fed, chosen from the loss (or the output width when no loss is given)."""

    loss: str
    one_hot: bool
    task: str = "classification"  # or regression
    multi_label: bool = False     # sigmoid outputs on multi-hot targets


def plan_labels(config: ModelConfig, model: Any, num_classes: int, splits: Any = None) -> LabelPlan:
    return _soft_labels_allowed(config, _plan(config, model, num_classes, splits))


def _plan(config: ModelConfig, model: Any, num_classes: int, splits: Any) -> LabelPlan:
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


def plan_for(config, model, splits):
    """The LabelPlan of a regression or multi-label run, else None (single-label classification)."""
    task = task_of(config.train, splits)
    multi = task == "classification" and is_multi_label(splits.y_train, splits.class_names)
    if task == "classification" and not multi:
        return None
    y = splits.y_train
    width = 1 if y.ndim == 1 else y.shape[-1]
    if model.output_shape[-1] != width:
        what = f"{width} target column(s)" if task == "regression" else f"{width} labels (multi-label)"
        raise output_node(config).where.error(
            f"the model ends in {model.output_shape[-1]} output(s) but the data has {what}.",
            hint=f"Make the last layer Dense with units: {width}"
                 + ("" if task == "regression" else " and activation: sigmoid") + ".")
    loss = config.train.loss or ("mse" if task == "regression" else "binary_crossentropy")
    return LabelPlan(loss, one_hot=False, task=task, multi_label=multi)


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


def task_of(train, splits) -> str:
    """The run's task: the config's hint, else regression when the loader gave no classes (a float target)."""
    return task_hint(train) or ("regression" if not splits.class_names else "classification")


def regression_metrics() -> list[Any]:
    """MAE, RMSE and R² as Keras metrics named mae, rmse and r2 (history columns and eval keys)."""
    import keras

    return [keras.metrics.MeanAbsoluteError(name="mae"), keras.metrics.RootMeanSquaredError(name="rmse"),
            keras.metrics.R2Score(name="r2")]


def compile_metrics(config, plan) -> list[Any]:
    """train.metrics as written; for regression, the config's default ["accuracy"] becomes MAE/RMSE/R²;
    multi-label accuracy is per label (binary)."""
    metrics = list(config.train.metrics)
    if plan.multi_label:
        import keras

        return [keras.metrics.BinaryAccuracy(name=m) if m in ("accuracy", "acc") else m for m in metrics]
    if plan.task != "regression":
        return metrics
    given = "metrics" in (config.resolved.get("train") or {})
    named = [m for m in metrics if m not in REGRESSION_METRICS] if given else []
    return regression_metrics() + named


def for_task(config, task: str):
    """The config with the checkpoint monitoring val_loss (min) for regression, unless it names its own."""
    if task != "regression" or "checkpoint" in (config.resolved.get("train") or {}):
        return config

    train = dataclasses.replace(config.train, checkpoint=CheckpointSpec(monitor="val_loss", mode="min"))
    return dataclasses.replace(config, train=train)


def learned_weights(model: Any, limit: int = 16) -> dict[str, list] | None:
    """The weights of a model this small (a fitted line: kernel and bias), by variable path; else None."""
    if model.count_params() > limit:
        return None
    return {variable.path: variable.numpy().ravel().tolist() for variable in model.weights}


def task_facts(run, model: Any, plan, splits, pipes) -> dict[str, Any]:
    """What the run record holds beyond the shared keys: the task, class weights, a small model's weights;
    the run's standardization goes to its standardize.json."""
    standardize.record(run.standardize, splits)
    return {"task": plan.task, "multi_label": plan.multi_label, "learned_weights": learned_weights(model),
            "class_weight": recorded(pipes.class_weight, splits.class_names)}
