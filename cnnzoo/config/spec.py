"""Typed, validated config objects. Nothing past `cnnzoo.config` sees a raw YAML dict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from cnnzoo.config.options import CheckpointSpec, ConstantSchedule, DistributeSpec, EarlyStoppingSpec, Schedule
from cnnzoo.data.interface import DataSpec
from cnnzoo.errors import ConfigError


@dataclass(frozen=True)
class Where:
    """Where a model entry was written: file, line and YAML path, plus the block call chain."""

    file: str
    line: int | None
    path: str
    via: tuple[str, ...] = ()
    keys: dict[str, tuple[str, int | None]] = field(default_factory=dict, compare=False, hash=False)

    def error(self, message: str, hint: str | None = None, key: str | None = None) -> ConfigError:
        """An error at this entry, or at its argument `key` (own file and line when known, e.g. --set)."""
        path = f"{self.path}.{key}" if key else self.path
        if self.via:
            path += " (" + ", ".join(self.via) + ")"
        file, line = self.keys.get(key, (self.file, self.line)) if key else (self.file, self.line)
        return ConfigError(message, file=file, line=line, path=path, hint=hint)


@dataclass
class Guarded:
    """An entry's `when` (False never reaches a node; a Deferred one is decided while building) and
    `residual` (True, "auto": add the input when the shapes are equal, or a Deferred)."""

    when: Any = field(default=True, kw_only=True)
    residual: Any = field(default=False, kw_only=True)
    entry: Where | None = field(default=None, kw_only=True)  # where the entry (and these keys) was written


@dataclass
class LayerNode(Guarded):
    """One Keras layer: its class name, constructor arguments and unique layer name."""

    type: str
    args: dict[str, Any]
    name: str
    where: Where


@dataclass
class BranchNode(Guarded):
    """Parallel branches applied to the same input, merged by `merge`; [] is the identity."""

    branches: list[list["Node"]]
    merge: str
    name: str
    where: Where


@dataclass
class BlockNode(Guarded):
    """One use of a named block: the resolved parameters and the layers it expanded to."""

    block: str
    params: dict[str, Any]
    children: list["Node"]
    name: str
    where: Where


Node = Union[LayerNode, BranchNode, BlockNode]


@dataclass(frozen=True)
class InputSpec:
    shape: tuple[int, ...]
    dtype: str = "float32"


@dataclass(frozen=True)
class TrainSpec:
    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "adam"
    optimizer_args: dict[str, Any] = field(default_factory=dict)
    learning_rate: float | None = None
    schedule: Schedule = field(default_factory=ConstantSchedule)
    loss: str | None = None
    metrics: tuple[str, ...] = ("accuracy",)
    early_stopping: EarlyStoppingSpec | None = None
    checkpoint: CheckpointSpec = field(default_factory=lambda: CheckpointSpec(mode="max"))
    seed: int = 42
    steps_per_execution: int = 1
    jit_compile: bool | str = "auto"
    precision: str = "float32"
    tensorboard: Any = None  # TensorBoardSpec when train.tensorboard is set
    mlflow: Any = None  # MLflowSpec when train.mlflow is set
    freeze: tuple[str, ...] = ()  # glob patterns of layer names made non-trainable
    distribute: DistributeSpec = field(default_factory=DistributeSpec)
    task: str | None = None  # classification or regression; None: inferred (cnnzoo.training.labels)
    class_weight: Any = None  # ClassWeightSpec when train.class_weight is set
    folds: int | None = None  # cross-validation folds (cnnzoo.training.folds)
    label_smoothing: float = 0.0  # > 0 needs one-hot labels (categorical_crossentropy)


@dataclass(frozen=True)
class InitSpec:
    """`model.init_from`: weights copied by layer name from a run, a .keras or a .weights.h5 file."""

    path: str
    layers: tuple[str, ...] = ()  # glob patterns; empty: every layer
    skip_mismatch: bool = False
    file: str | None = None       # where it was written, for errors
    line: int | None = None


@dataclass
class ModelConfig:
    """A fully validated config: everything a command needs, nothing left as raw YAML."""

    name: str
    description: str
    input: InputSpec
    layers: list[Node]
    data: DataSpec | None
    train: TrainSpec
    file: str
    resolved: dict[str, Any]
    init_from: InitSpec | None = None
