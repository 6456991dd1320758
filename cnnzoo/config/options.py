"""Typed option groups of the `train:` section: the optimizer, learning-rate schedules, early stopping
and the best checkpoint.

Each group is a frozen dataclass whose fields declare their type, default and bounds (`option`);
`parse_options` checks a YAML mapping against it with located errors, so every value Keras later sees
is a plain number, boolean or name, never a serialised object. A new schedule is one class added to
SCHEDULES; its options are checked and documented by their declaration.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from cnnzoo.config.source import Document, PathKey
from cnnzoo.errors import quote, suggest

MODES = ("auto", "min", "max")
METRIC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
DEVICE_NAME = re.compile(r"(GPU|CPU|TPU):[0-9]{1,4}")
# an MLflow store on this machine: a folder, file:... or sqlite:...; anything with another scheme (http,
# databricks, postgresql, ...) is a server, which a config may not choose: MLflow sends it the user's token
LOCAL_STORE = re.compile(r"(?!(?:databricks|databricks-uc|uc)$)(?:file:|sqlite:|[A-Za-z]:[\\/]|"
                         r"(?![A-Za-z][A-Za-z0-9+.-]*:)).*", re.S)
_LOWER_IS_BETTER = ("loss", "error", "mae", "mse", "rmse", "mape", "msle", "hinge", "divergence", "crossentropy",
                    "poisson", "cosh")
_HIGHER_IS_BETTER = ("accuracy", "acc", "auc", "precision", "recall", "f1", "fbeta", "iou", "r2", "score")


@dataclass(frozen=True)
class Check:
    """What one option accepts: int, number, bool, a string (text: 1 to 1000 characters), a metric name,
    device names or one of `choices`."""

    kind: str
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    choices: tuple[str, ...] = ()

    def accepts(self, value: Any) -> bool:
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "metric":
            return isinstance(value, str) and METRIC_NAME.fullmatch(value) is not None
        if self.kind == "choice":
            return value in self.choices
        if self.kind == "text":
            return isinstance(value, str) and 0 < len(value) <= 1000
        if self.kind == "string":
            return isinstance(value, str)
        if self.kind == "store":
            return isinstance(value, str) and 0 < len(value) <= 1000 and LOCAL_STORE.fullmatch(value) is not None
        if self.kind == "devices":
            return isinstance(value, list) and 0 < len(value) <= 1024 and all(
                isinstance(v, str) and DEVICE_NAME.fullmatch(v) for v in value)
        is_int = isinstance(value, int) and not isinstance(value, bool)
        if not (is_int or self.kind == "number" and isinstance(value, float)):
            return False
        low_ok = self.low is None or (value > self.low if self.open_low else value >= self.low)
        high_ok = self.high is None or (value < self.high if self.open_high else value <= self.high)
        return low_ok and high_ok

    def describe(self) -> str:
        if self.kind == "bool":
            return "true or false"
        if self.kind == "metric":
            return "a metric name such as val_loss or val_accuracy"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind in ("text", "string"):
            return "a string"
        if self.kind == "store":
            return ("a local MLflow store (a folder, file:... or sqlite:...); a config may not send runs to a "
                    "server: set MLFLOW_TRACKING_URI in your environment for one")
        if self.kind == "devices":
            return "a list of device names such as [GPU:0, GPU:1]"
        noun = "an integer" if self.kind == "int" else "a number"
        if self.low is None and self.high is None:
            return noun
        if self.high is None:
            return f"{noun} {'>' if self.open_low else '>='} {self.low:g}"
        left, right = "(" if self.open_low else "[", ")" if self.open_high else "]"
        return f"{noun} in {left}{_bound(self.low)}, {_bound(self.high)}{right}"

    def json_schema(self) -> dict:
        """The JSON Schema of what this check accepts (devices: config/keys.py)."""
        if self.kind in ("bool", "text", "string", "metric", "choice"):
            return {"bool": {"type": "boolean"}, "text": {"type": "string"}, "string": {"type": "string"},
                    "metric": {"type": "string"}, "choice": {"enum": list(self.choices)}}[self.kind]
        if self.kind == "store":
            return {"type": "string", "pattern": f"^{LOCAL_STORE.pattern}$"}
        schema: dict = {"type": "integer" if self.kind == "int" else "number"}
        if self.low is not None:
            schema["exclusiveMinimum" if self.open_low else "minimum"] = self.low
        if self.high is not None:
            schema["exclusiveMaximum" if self.open_high else "maximum"] = self.high
        return schema


def _bound(value: float | None) -> str:
    return "inf" if value is None else f"{value:g}"


def option(default: Any, kind: str, low: float | None = None, high: float | None = None, *,
           open_low: bool = False, open_high: bool = False, choices: tuple[str, ...] = ()) -> Any:
    """A dataclass field with its default and the Check its value must pass (kind: int, number, bool,
    metric, choice, text, string, store or devices)."""
    return dataclasses.field(default=default, metadata={
        "check": Check(kind, low, high, open_low, open_high, choices)})


# --- learning-rate schedules ----------------------------------------------------------------------

@dataclass(frozen=True)
class ConstantSchedule:
    name: ClassVar[str] = "constant"


@dataclass(frozen=True)
class StepSchedule:
    """Multiply the rate by `drop` every `every` epochs."""

    name: ClassVar[str] = "step"
    drop: float = option(0.5, "number", 0.0, 1.0, open_low=True)
    every: int = option(10, "int", 1, 100_000)


@dataclass(frozen=True)
class CosineSchedule:
    """Linear warm-up, then cosine decay to `min_lr` over the remaining epochs."""

    name: ClassVar[str] = "cosine"
    min_lr: float = option(0.0, "number", 0.0, 100.0)
    warmup_epochs: int = option(0, "int", 0, 100_000)


@dataclass(frozen=True)
class PlateauSchedule:
    """Keras ReduceLROnPlateau."""

    name: ClassVar[str] = "plateau"
    factor: float = option(0.1, "number", 0.0, 1.0, open_low=True, open_high=True)
    patience: int = option(3, "int", 0, 100_000)
    min_lr: float = option(0.0, "number", 0.0, 100.0)
    min_delta: float = option(1e-4, "number", 0.0, 1e9)
    cooldown: int = option(0, "int", 0, 100_000)
    monitor: str = option("val_loss", "metric")
    mode: str = option("auto", "choice", choices=MODES)


Schedule = ConstantSchedule | StepSchedule | CosineSchedule | PlateauSchedule
SCHEDULES: dict[str, type] = {cls.name: cls for cls in
                              (ConstantSchedule, StepSchedule, CosineSchedule, PlateauSchedule)}


# --- callbacks --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EarlyStoppingSpec:
    """Keras EarlyStopping; `mode: auto` is resolved from the monitor's name at validation."""

    monitor: str = option("val_loss", "metric")
    patience: int = option(5, "int", 0, 100_000)
    min_delta: float = option(0.0, "number", 0.0, 1e9)
    mode: str = option("auto", "choice", choices=MODES)
    restore_best_weights: bool = option(False, "bool")
    start_from_epoch: int = option(0, "int", 0, 100_000)


@dataclass(frozen=True)
class CheckpointSpec:
    """Which epoch best.keras keeps."""

    monitor: str = option("val_accuracy", "metric")
    mode: str = option("auto", "choice", choices=MODES)


# --- batch mixing (data.mix) -------------------------------------------------------------------------

@dataclass(frozen=True)
class MixSpec:
    """Keras MixUp and CutMix on training batches (images and one-hot labels); 0 switches one off.
    With both on, each batch gets one of them, chosen at random."""

    mixup_alpha: float = option(0.2, "number", 0.0, 1.0)
    cutmix_factor: float = option(0.0, "number", 0.0, 1.0)


@dataclass(frozen=True)
class CropSpec:
    """Random-resized crop of streamed training images, done while decoding: a box of `scale` of the
    original image's area and `ratio` width/height, seeded by (seed, epoch, image), then resized."""

    scale_min: float = option(0.08, "number", 0.01, 1.0)
    scale_max: float = option(1.0, "number", 0.01, 1.0)
    ratio_min: float = option(0.75, "number", 0.1, 10.0)
    ratio_max: float = option(4 / 3, "number", 0.1, 10.0)


# --- experiment tracking ----------------------------------------------------------------------------

@dataclass(frozen=True)
class TensorBoardSpec:
    """Options of Keras' TensorBoard callback that cnnzoo exposes (logs go to runs/<run>/tensorboard/)."""

    histogram_freq: int = option(1, "int", 0, 100_000)  # weight histograms every N epochs; 0: none
    write_graph: bool = option(True, "bool")
    write_images: bool = option(False, "bool")
    write_steps_per_second: bool = option(False, "bool")


@dataclass(frozen=True)
class MLflowSpec:
    """Where MLflow logging goes; tracking_uri None means MLflow's own default (MLFLOW_TRACKING_URI or ./mlruns).
    A config names only a local store: a tracking server comes from the user's environment, never from a
    config or a run folder made by someone else."""

    tracking_uri: str | None = option(None, "store")
    experiment: str = option("cnnzoo", "text")
    run_name: str | None = option(None, "text")
    log_artifacts: bool = option(True, "bool")


def option_checks(cls: type) -> dict[str, Check]:
    """name -> Check of each option of a typed option class (for validation and the JSON schema)."""
    return {f.name: f.metadata["check"] for f in dataclasses.fields(cls)}


def option_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def parse_options(doc: Document, path: PathKey, cls: type, values: dict, what: str) -> Any:
    """`values` (a YAML mapping) checked against the typed option class `cls`; `mode: auto` resolved."""
    names = option_names(cls)
    for key, value in values.items():
        if key not in names:
            raise doc.error(path + (key,), f"{what} has no option `{key}` (it takes: {', '.join(names) or 'nothing'}).",
                            hint=suggest(str(key), list(names)))
        check = option_checks(cls)[key]
        if not check.accepts(value):
            raise doc.error(path + (key,), f"{what} option `{key}` must be {check.describe()}, "
                                           f"received {quote(value)}.")
    spec = cls(**values)
    if "mode" in names and spec.mode == "auto":
        spec = dataclasses.replace(spec, mode=_inferred_mode(doc, path, spec.monitor, what))
    return spec


def _inferred_mode(doc: Document, path: PathKey, monitor: str, what: str) -> str:
    """min for losses and errors, max for accuracy-like metrics; anything else must say."""
    words = set(re.split(r"[_\d]+", monitor.lower().removeprefix("val_")))
    if words & set(_LOWER_IS_BETTER):
        return "min"
    if words & set(_HIGHER_IS_BETTER):
        return "max"
    raise doc.error(path + ("monitor",), f"cannot tell whether {what} should minimise or maximise "
                                         f"`{monitor}`.", hint="Add `mode: min` or `mode: max`.")


# --- distribution -----------------------------------------------------------------------------------

STRATEGIES = ("none", "mirrored", "multi_worker")


@dataclass(frozen=True)
class DistributeSpec:
    """`train.distribute`: the tf.distribute strategy (cnnzoo/training/distribute.py). `devices` narrows `mirrored`
    to some local devices; `timeout_seconds` bounds a wait on another worker in `multi_worker`."""

    strategy: str = option("none", "choice", choices=STRATEGIES)
    devices: tuple[str, ...] = option((), "devices")
    scale_learning_rate: str = option("none", "choice", choices=("none", "linear"))
    timeout_seconds: int = option(120, "int", 1, 86_400)


# --- optimizer ---------------------------------------------------------------------------------------

_REFUSED_OPTIMIZERS = ("Optimizer", "LossScaleOptimizer", "MultiOptimizer")
# arguments whose default (None) does not tell their type
_OPTIMIZER_ARG_CHECKS = {"ema_overwrite_frequency": Check("int", 1, None),
                         "gradient_accumulation_steps": Check("int", 1, None),
                         "name": Check("metric")}


def optimizer_classes() -> dict[str, type]:
    """Every usable optimizer class of keras.optimizers, by lower-case name."""
    import keras

    return {name.lower(): obj for name in dir(keras.optimizers)
            if inspect.isclass(obj := getattr(keras.optimizers, name))
            and issubclass(obj, keras.optimizers.Optimizer) and name not in _REFUSED_OPTIMIZERS}


def base_learning_rate(train) -> float:
    """The learning rate training starts from, before any schedule or replica scaling: train.learning_rate,
    else the optimizer mapping's learning_rate, else the optimizer's own default (Adam 0.001, SGD 0.01):
    what the compiled optimizer uses, so a schedule and the distributed scaling start where it does."""
    rate = train.learning_rate or train.optimizer_args.get("learning_rate")
    if rate:
        return float(rate)
    parameter = inspect.signature(optimizer_classes()[train.optimizer.lower()].__init__).parameters["learning_rate"]
    return float(parameter.default)


def check_optimizer(doc: Document, name: str, args: dict) -> type:
    """The optimizer class for `name`; every argument must exist and be a plain value of its type."""
    classes = optimizer_classes()
    cls = classes.get(name.lower())
    if cls is None:
        raise doc.error(("train", "optimizer"), f"unknown optimizer {quote(name)}.",
                        hint=suggest(name, [c.__name__ for c in classes.values()])
                        or f"Known: {', '.join(sorted(c.__name__ for c in classes.values()))}.")
    params = {p.name: p for p in inspect.signature(cls.__init__).parameters.values()
              if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name != "self"}
    for key, value in args.items():
        if key not in params:
            raise doc.error(("train", "optimizer", key), f"{cls.__name__} has no argument `{key}`.",
                            hint=suggest(key, sorted(params)))
        check = _optimizer_arg_check(key, params[key].default)
        if not (check.accepts(value) or _string_list(key, value)):
            raise doc.error(("train", "optimizer", key), f"{cls.__name__} argument `{key}` must be "
                            f"{check.describe()}, received {quote(value)}.",
                            hint="Optimizer arguments are plain values; serialised Keras objects "
                                 "(mappings with class_name/module) are not accepted.")
    return cls


def _optimizer_arg_check(key: str, default: Any) -> Check:
    if key in _OPTIMIZER_ARG_CHECKS:
        return _OPTIMIZER_ARG_CHECKS[key]
    if isinstance(default, bool):
        return Check("bool")
    if key == "learning_rate":
        return Check("number", 0.0, None, open_low=True)
    return Check("number")


def _string_list(key: str, value: Any) -> bool:
    """Muon's `exclude_layers`: a list of layer-name patterns."""
    return key == "exclude_layers" and isinstance(value, list) and all(
        isinstance(v, str) and len(v) <= 200 for v in value)
