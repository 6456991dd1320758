"""Classification or regression: the task a config trains for, told by `train.task`, else by its loss,
else by the data (a float target is regression), and what each task changes: labels, default metrics,
the checkpoint's monitor."""

from __future__ import annotations

import dataclasses
from typing import Any

TASKS = ("classification", "regression")
REGRESSION_LOSSES = ("mse", "mae", "huber", "log_cosh", "mean_squared_error", "mean_absolute_error",
                     "mean_squared_logarithmic_error", "mean_absolute_percentage_error", "msle", "mape")
REGRESSION_METRICS = ("mae", "rmse", "r2")


def task_hint(train) -> str | None:
    """The task the config alone tells (train.task, else a regression loss), or None: the data decides."""
    return hinted_task(train.task, train.loss)


def hinted_task(task: str | None, loss: str | None) -> str | None:
    if task:
        return task
    return "regression" if (loss or "").lower() in REGRESSION_LOSSES else None


def task_of(train, splits) -> str:
    """The run's task: the config's hint, else regression when the loader gave no classes (a float target)."""
    return task_hint(train) or ("regression" if not splits.class_names else "classification")


def regression_metrics() -> list[Any]:
    """MAE, RMSE and R² as Keras metrics named mae, rmse and r2 (history columns and eval keys)."""
    import keras

    return [keras.metrics.MeanAbsoluteError(name="mae"), keras.metrics.RootMeanSquaredError(name="rmse"),
            keras.metrics.R2Score(name="r2")]


def plan_for(config, model, splits):
    """The LabelPlan of a regression or multi-label run, else None (single-label classification)."""
    from cnnzoo.builder import output_node
    from cnnzoo.data.targets import is_multi_label
    from cnnzoo.training_setup import LabelPlan

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
    from cnnzoo.config.options import CheckpointSpec

    train = dataclasses.replace(config.train, checkpoint=CheckpointSpec(monitor="val_loss", mode="min"))
    return dataclasses.replace(config, train=train)


def learned_weights(model: Any, limit: int = 16) -> dict[str, list] | None:
    """The weights of a model this small (a fitted line: kernel and bias), by variable path; else None."""
    if model.count_params() > limit:
        return None
    return {variable.path: variable.numpy().ravel().tolist() for variable in model.weights}


def task_facts(run_path, model: Any, plan, splits, pipes) -> dict[str, Any]:
    """What metrics.json records beyond the shared keys: the task, class weights, a small model's weights;
    the run's standardization goes to standardize.json beside it."""
    from cnnzoo.class_weights import recorded
    from cnnzoo.data import standardize

    standardize.record(run_path, splits)
    facts = {"task": plan.task, "multi_label": plan.multi_label,
             "class_weight": recorded(pipes.class_weight, splits.class_names)}
    weights = learned_weights(model)
    if weights is not None:
        facts["learned_weights"] = weights
    return facts
