"""The `input:`, `data:` and `train:` sections, validated into spec objects against the keys declared in
config/keys.py (names, types, bounds and defaults written once)."""

from __future__ import annotations

import dataclasses
from typing import Any

from cnnzoo.config.compile_names import METRIC_ALIASES, check_loss, check_metrics, check_monitor, logged_columns
from cnnzoo.config import keys
from cnnzoo.config.data_options import data_options, train_options
from cnnzoo.config.expand import parse_layer_list
from cnnzoo.config.options import (CheckpointSpec, CropSpec, DistributeSpec, EarlyStoppingSpec, MLflowSpec, MixSpec,
                                   SCHEDULES,
                                   STRATEGIES, Schedule, TensorBoardSpec, check_optimizer, parse_options)
from cnnzoo.config.source import Document, PathKey
from cnnzoo.config.spec import InputSpec, TrainSpec
from cnnzoo.config.tasks import TASKS, hinted_task
from cnnzoo.config.keys import Key
from cnnzoo.data.interface import STREAMABLE, DataSpec
from cnnzoo.errors import quote, shown, suggest


class Section:
    """Typed access to one mapping of the document, with errors that point into it."""

    def __init__(self, doc: Document, path: PathKey, declared: tuple[Key, ...], required: bool = False):
        self.doc, self.path = doc, path
        self.keys = keys.by_name(declared)
        allowed = tuple(self.keys)
        value = doc.data.get(path[0]) if len(path) == 1 else None
        if value is None and required:
            raise doc.error(path, f"section `{path[-1]}` is required.")
        if value is not None and not isinstance(value, dict):
            raise doc.error(path, f"`{path[-1]}` must be a mapping, received {value!r}.")
        self.values = value or {}
        for key in self.values:
            if key not in allowed:
                raise doc.error(path + (key,), f"unknown key `{shown(key)}` (allowed: {', '.join(allowed)}).",
                                hint=suggest(str(key), list(allowed)))

    def error(self, key: str, message: str, hint: str | None = None):
        return self.doc.error(self.path + (key,), message, hint=hint)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def value(self, name: str) -> Any:
        """A scalar key, checked against its declaration (type, bounds, default)."""
        key = self.keys[name]
        check = key.check
        if check.kind == "int":
            return self.integer(name, key.default, check.low, check.high)
        if check.kind == "number":
            return self.number(name, key.default, check.low, check.high, open_low=check.open_low)
        if check.kind == "choice":
            return self.choice(name, key.default, check.choices, nullable=key.nullable)
        if check.kind == "bool":
            return self.flag(name, key.default)
        return self.string(name, key.default)

    def declared_default(self, name: str) -> Any:
        return keys.default(tuple(self.keys.values()), name)

    def integer(self, key: str, default: int | None, low: int = 1, high: int = 10**9) -> int | None:
        value = self.values.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.error(key, f"`{key}` must be an integer from {low} to {high}, received {value!r}.")
        return value

    def number(self, key: str, default: float | None, low: float, high: float,
               open_low: bool = False) -> float | None:
        value = self.values.get(key, default)
        if value is None:
            return None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not low <= value <= high or (open_low and value == low):
            bound = f"({low}, {high}]" if open_low else f"[{low}, {high}]"
            raise self.error(key, f"`{key}` must be a number in {bound}, received {value!r}.")
        return float(value)

    def choice(self, key: str, default: str | None, choices: tuple[str, ...], nullable: bool = True) -> str | None:
        value = self.values.get(key, default)
        if (value is not None or not nullable) and value not in choices:
            raise self.error(key, f"`{key}` must be one of {', '.join(choices)}, received {value!r}.",
                             hint=suggest(str(value), list(choices)))
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.values.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"`{key}` must be true or false, received {quote(value)}.")
        return value

    def string(self, key: str, default: str | None = None) -> str | None:
        value = self.values.get(key, default)
        if value is not None and not isinstance(value, str):
            raise self.error(key, f"`{key}` must be a string, received {value!r}.")
        return value

    def mapping(self, key: str) -> dict | None:
        """A mapping option that can also be switched on with `true` ({}) or off with `false` (None)."""
        value = self.values.get(key)
        if value is None or value is False:
            return None
        if value is True:
            return {}
        if not isinstance(value, dict):
            raise self.error(key, f"`{key}` must be a mapping (or true/false), received {quote(value)}.")
        return dict(value)


def parse_input(doc: Document) -> InputSpec:
    section = Section(doc, ("input",), keys.INPUT, required=True)
    shape = section.get("shape")
    if (not isinstance(shape, list) or not shape or len(shape) > 4
            or not all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= keys.MAX_DIMENSION for d in shape)):
        raise section.error("shape", f"`input.shape` must be a list of 1 to 4 positive integers "
                            f"(e.g. [28, 28, 1]), received {shape!r}.")
    dtype = section.value("dtype")
    return InputSpec(tuple(shape), dtype)


def parse_data(doc: Document) -> DataSpec | None:
    if doc.data.get("data") is None:
        return None
    section = Section(doc, ("data",), keys.DATA)
    dataset = section.value("dataset")
    if dataset is None:
        raise section.error("dataset", f"`data.dataset` is required: one of {', '.join(keys.DATASETS)}.")
    name = section.value("name")
    if dataset in ("ucr", "uea") and not name:
        raise section.error("name", f"a {dataset.upper()} dataset needs `name`, e.g. `name: "
                                    f"{'FordA' if dataset == 'ucr' else 'BasicMotions'}`.")
    if dataset == "image_folder" and not section.get("path"):
        raise section.error("path", "an image_folder dataset needs `path:` (a folder with one sub-folder per class).")
    if dataset == "tfrecord" and not section.get("path"):
        raise section.error("path", "a tfrecord dataset needs `path:` (a folder written by `cnnzoo pack`, a folder "
                                    "of .tfrecord shards or a glob of them).")
    augment = parse_layer_list(doc, ("data", "augment"), section.get("augment"))
    return DataSpec(
        dataset=dataset, name=name, path=section.value("path"),
        validation_split=section.value("validation_split"), test_split=section.value("test_split"),
        limit=section.value("limit"), scale=section.value("scale"),
        augment=tuple(augment), **data_options(section),
        mix=_option_group(section, "mix", MixSpec, "data.mix"),
        random_resized_crop=_crop(section, dataset),
    )


def parse_train(doc: Document, check_names: bool = True) -> TrainSpec:
    """The `train:` section; ``check_names=False`` skips the loss/metric/monitor name checks (a finished
    run's saved config is read as it was trained, even if it predates them)."""
    section = Section(doc, ("train",), keys.TRAIN)
    optimizer, optimizer_args = _optimizer(section)
    metrics = section.get("metrics", section.declared_default("metrics"))
    if isinstance(metrics, str):
        metrics = [metrics]
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise section.error("metrics", f"`metrics` must be a list of metric names, received {metrics!r}.")
    metrics = tuple(metrics)
    logged = _checked_names(section, metrics) if check_names else ["loss", *metrics]
    jit = section.get("jit_compile", section.declared_default("jit_compile"))
    if jit not in (True, False, "auto"):
        raise section.error("jit_compile", f"`jit_compile` must be true, false or auto, received {jit!r}.")
    spec = TrainSpec(
        epochs=section.value("epochs"),
        batch_size=section.value("batch_size"),
        optimizer=optimizer, optimizer_args=optimizer_args,
        learning_rate=section.value("learning_rate"),
        schedule=_schedule(section),
        loss=section.value("loss"),
        metrics=metrics,
        early_stopping=_option_group(section, "early_stopping", EarlyStoppingSpec, "early stopping"),
        checkpoint=_checkpoint(section, logged),
        seed=section.value("seed"),
        steps_per_execution=section.value("steps_per_execution"),
        jit_compile=jit,
        precision=section.value("precision"),
        tensorboard=_option_group(section, "tensorboard", TensorBoardSpec, "tensorboard"),
        mlflow=_option_group(section, "mlflow", MLflowSpec, "mlflow"),
        distribute=_distribute(section),
        label_smoothing=section.value("label_smoothing"),
        **train_options(section),
    )
    if spec.folds and spec.distribute.strategy != "none":
        raise section.error("folds", f"cross-validation trains its folds one after another on one device, so it "
                                     f"cannot run under the `{spec.distribute.strategy}` strategy. Leave out "
                                     f"train.folds (--folds) or train.distribute (--distribute).")
    return spec


def _checked_names(section: Section, metrics: tuple[str, ...]) -> list[str]:
    """Check the loss, metric and monitor names (config/compile_names.py); the history columns logged."""
    loss, task = section.string("loss"), section.get("task")
    task = hinted_task(task if task in TASKS else None, loss)
    check_loss(section.doc, section.path + ("loss",), loss)
    check_metrics(section.doc, section.path + ("metrics",), metrics, task)
    logged = logged_columns(metrics, task, metrics_given="metrics" in section.values)
    for key in ("checkpoint", "early_stopping", "schedule"):  # before parse_options infers a mode from them
        value = section.get(key)
        if isinstance(value, dict) and isinstance(value.get("monitor"), str):
            check_monitor(section.doc, section.path + (key, "monitor"), value["monitor"], logged, task)
    return logged


def _checkpoint(section: Section, logged: list[str]) -> CheckpointSpec:
    """train.checkpoint; without a monitor, validation accuracy where the history logs it, else validation loss."""
    accuracy = next((name for name in METRIC_ALIASES if name in logged), None)
    monitor = f"val_{accuracy}" if accuracy else "val_loss"
    values = section.mapping("checkpoint")
    if values is None:
        return CheckpointSpec(monitor, "max" if accuracy else "min")
    return parse_options(section.doc, section.path + ("checkpoint",), CheckpointSpec,
                         {"monitor": monitor, **values}, "checkpoint")


def _distribute(section: Section) -> DistributeSpec:
    """`distribute: mirrored` (a strategy name) or a mapping of DistributeSpec options."""
    value = section.get("distribute")
    if isinstance(value, str):
        value = {"strategy": value}
    if value is None:
        return DistributeSpec()
    if not isinstance(value, dict):
        raise section.error("distribute", f"`distribute` must be a strategy ({', '.join(STRATEGIES)}) or a "
                                          f"mapping with `strategy:`, received {quote(value)}.")
    spec = parse_options(section.doc, section.path + ("distribute",), DistributeSpec, value, "distribute")
    return dataclasses.replace(spec, devices=tuple(spec.devices))


def _optimizer(section: Section) -> tuple[str, dict]:
    value = section.get("optimizer", section.declared_default("optimizer"))
    if isinstance(value, str):
        name, args = value, {}
    elif isinstance(value, dict) and isinstance(value.get("name"), str):
        name, args = value["name"], {k: v for k, v in value.items() if k != "name"}
    else:
        raise section.error("optimizer", f"`optimizer` must be a name (adam) or a mapping with `name:` and "
                            f"arguments, received {quote(value)}.")
    check_optimizer(section.doc, name, args)
    return name, args


def _crop(section: Section, dataset: str) -> CropSpec | None:
    crop = _option_group(section, "random_resized_crop", CropSpec, "data.random_resized_crop")
    if crop is None:
        return None
    if dataset not in STREAMABLE or section.get("in_memory") is True:
        raise section.error("random_resized_crop", "a random-resized crop is cut from the original file while it is "
                                                   "decoded, so it needs streamed images: an image_folder, tfrecord "
                                                   "or tfds source with `in_memory: false`.")
    if crop.scale_min > crop.scale_max or crop.ratio_min > crop.ratio_max:
        raise section.error("random_resized_crop", "each range needs min <= max (scale_min <= scale_max, "
                                                   "ratio_min <= ratio_max).")
    return crop


def _option_group(section: Section, key: str, cls: type, what: str):
    values = section.mapping(key)
    return None if values is None else parse_options(section.doc, section.path + (key,), cls, values, what)


def _schedule(section: Section) -> Schedule:
    value = section.get("schedule", section.declared_default("schedule"))
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise section.error("schedule", f"`schedule` must be a name or a mapping with `name:`, "
                                        f"received {quote(value)}.")
    name = value.get("name", "constant")
    if name not in SCHEDULES:
        raise section.error("schedule", f"unknown schedule {quote(name)}; use one of {', '.join(SCHEDULES)}.",
                            hint=suggest(str(name), list(SCHEDULES)))
    options = {k: v for k, v in value.items() if k != "name"}
    return parse_options(section.doc, section.path + ("schedule",), SCHEDULES[name], options, f"schedule `{name}`")
