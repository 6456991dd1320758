"""The memory a run will take, estimated from the config and its model before any weight or data exists.

A run's peak resident memory is modelled as what stays for the whole run plus the larger of two
things that never overlap:

- stays: TensorFlow's own baseline (libraries, traced functions), the weights, the optimizer slots,
  the dataset arrays as cnnzoo holds them (uint8 images, float32 series, plus the tensors the
  pipeline makes of them) and the tf.data batches in flight;
- a training step: a float32 gradient per weight, the activations kept for the backward pass
  (per sample, times the batch size, in the compute dtype of the policy) and, under a mixed
  policy, the 16-bit copies of the weights;
- writing a checkpoint: Keras builds the weights file in memory and copies it into the archive,
  so weights and optimizer slots exist twice more for a moment.

`benchmarks/memory.py` compares the estimate with the measured peak RSS of short real runs; the
constants below come from those runs (docs/scaling.md, "Memory").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnzoo.host_memory import human_bytes

if TYPE_CHECKING:
    from cnnzoo.config.spec import ModelConfig

MIB = 1 << 20
TF_BASELINE = 700 * MIB        # TensorFlow + Keras + cnnzoo imported, before any model (measured: 610-640 MiB)
TF_PER_LAYER = 1 * MIB         # traced train/test functions and their graphs grow with the layer count
ACTIVATION_FACTOR = 2.0        # per layer output kept: the output and its gradient (pre-activations too)
CHECKPOINT_COPIES = 2          # the in-memory weights file and its copy into the .keras archive
INFLIGHT_BATCHES = 4           # prefetch buffer plus the parallel map's batches being cut

# Optimizer slot variables per weight (Keras 3 optimizers); unknown optimizers count 2.
SLOTS = {"sgd": 0, "adam": 2, "adamw": 2, "nadam": 2, "adamax": 2, "adadelta": 2, "adagrad": 1,
         "rmsprop": 1, "lion": 1, "ftrl": 2, "adafactor": 1, "lamb": 2, "muon": 1}

PART_LABELS = {
    "tensorflow": "TensorFlow baseline",
    "weights": "weights",
    "optimizer": "optimizer slots",
    "dataset": "dataset arrays (streamed: references and buffers)",
    "input_pipeline": "tf.data batches in flight",
    "gradients": "gradients",
    "activations": "activations for backprop",
    "checkpoint": "checkpoint writing",
}
STEP_PARTS = ("gradients", "activations")  # exist during a step; checkpoint writing happens between steps


@dataclass
class MemoryEstimate:
    """Bytes by part; `total` is the modelled peak (see the module docstring)."""

    parts: dict[str, int]
    batch_size: int
    policy: str
    largest_layer: tuple[str, int] | None = None  # (Keras layer name, parameters)
    notes: list[str] = field(default_factory=list)
    available: int | None = None  # set once checked against the machine

    @property
    def total(self) -> int:
        stays = sum(v for k, v in self.parts.items() if k not in STEP_PARTS and k != "checkpoint")
        step = sum(self.parts.get(k, 0) for k in STEP_PARTS)
        return stays + max(step, self.parts.get("checkpoint", 0))

    def to_json(self) -> dict[str, Any]:
        return {"training_memory_bytes": self.total, "memory_parts": dict(self.parts),
                "memory_batch_size": self.batch_size}

    def lines(self) -> list[str]:
        """One `label: size` line per part, largest first."""
        ordered = sorted(self.parts.items(), key=lambda kv: -kv[1])
        return [f"{PART_LABELS.get(k, k)}: {human_bytes(v)}" for k, v in ordered if v]


def estimate_training(config: ModelConfig, model: Any, *, data_dir: Path | None = None,
                      batch_size: int | None = None, with_data: bool = True) -> MemoryEstimate:
    """A `train` run of `model` (built or unallocated) at ``batch_size`` (bench's synthetic batches), else at
    the config's batch size, which no batch exceeds `data.limit` (the most samples a split keeps)."""
    batch = batch_size or config.train.batch_size
    if batch_size is None and config.data is not None and config.data.limit:
        batch = min(batch, config.data.limit)
    weights = weight_bytes(model)
    slots = optimizer_slots(config) * 4 * _trainable(model)
    data, notes = dataset_bytes(config, data_dir) if with_data and config.data else (0, [])
    parts = {
        "tensorflow": TF_BASELINE + TF_PER_LAYER * len(model.layers),
        "weights": weights,
        "optimizer": slots,
        "dataset": data,
        "input_pipeline": INFLIGHT_BATCHES * batch * _input_elements(config) * 4,
        "gradients": 4 * _trainable(model) + _autocast_copies(model),
        "activations": int(ACTIVATION_FACTOR * batch * activation_bytes(model)),
        "checkpoint": CHECKPOINT_COPIES * (weights + slots),
    }
    return MemoryEstimate(parts, batch, model.dtype_policy.name, largest_layer(model), notes)


def estimate_inference(config: ModelConfig, model: Any, *, data_dir: Path | None = None) -> MemoryEstimate:
    """`eval` of a checkpoint: weights with their optimizer slots (a checkpoint holds both), the data,
    and one forward pass (outputs are freed as the next layer runs)."""
    full = estimate_training(config, model, data_dir=data_dir)
    parts = {k: full.parts[k] for k in ("tensorflow", "weights", "optimizer", "dataset", "input_pipeline")}
    parts["activations"] = full.batch_size * _largest_output_pair(model)
    return MemoryEstimate(parts, full.batch_size, full.policy, full.largest_layer, full.notes)


def weight_bytes(model: Any) -> int:
    return sum(_size(w.shape) * _itemsize(w.dtype) for w in model.weights)


def activation_bytes(model: Any) -> int:
    """Bytes of every layer's output for one sample, in the dtype the layer computes in."""
    return _input_elements_of(model) * 4 + sum(activation_bytes_of(layer) for layer in model.layers[1:])


def optimizer_slots(config: ModelConfig) -> int:
    name = config.train.optimizer.lower()
    args = config.train.optimizer_args
    slots = SLOTS.get(name, 2)
    if name in ("sgd", "rmsprop") and args.get("momentum", 0.0):
        slots += 1
    if name == "rmsprop" and args.get("centered"):
        slots += 1
    if args.get("amsgrad"):
        slots += 1
    if args.get("use_ema"):  # the moving average of each weight
        slots += 1
    return slots


def largest_layer(model: Any) -> tuple[str, int] | None:
    layers = [(layer.name, layer.count_params()) for layer in model.layers[1:]]
    return max(layers, key=lambda item: item[1]) if layers else None


def dataset_bytes(config: ModelConfig, data_dir: Path | None) -> tuple[int, list[str]]:
    """The dataset's arrays at the input size (all of them while loading, the kept splits afterwards,
    plus the tensors the pipelines make of those), from its sample count; 0 with a note if unknown."""
    from cnnzoo.data import UNSCALED
    from cnnzoo.data.sizes import sample_count, stream_bytes
    from cnnzoo.data.storage import choose_storage

    spec = config.data
    storage = choose_storage(spec, config.input.shape, data_dir)
    if storage.stream:  # the references and the stream's buffers, not the images: they do not grow with the data
        held = stream_bytes(spec, config.input.shape, data_dir)
        return held, ([] if held else [f"the size of the {spec.dataset} listing is not known before it is read"])
    found = sample_count(spec, config.input.shape, data_dir)
    if found is None:
        return 0, [f"the size of the {spec.dataset} dataset is not known before it is read; not counted"]
    samples, extra = found
    per_sample = _input_elements(config) * (4 if spec.dataset in UNSCALED else 1)  # float32, not uint8
    kept = min(samples, 3 * spec.limit) if spec.limit else samples
    return samples * per_sample + extra + kept * per_sample, []


def _autocast_copies(model: Any) -> int:
    """Under a mixed policy each step casts the float32 weights to the 16-bit compute dtype."""
    if model.dtype_policy.compute_dtype == "float32":
        return 0
    return 2 * _trainable(model)


def _largest_output_pair(model: Any) -> int:
    sizes = [activation_bytes_of(layer) for layer in model.layers]
    return max((a + b for a, b in zip(sizes, sizes[1:])), default=sum(sizes))


def activation_bytes_of(layer: Any) -> int:
    outputs = layer.output if isinstance(layer.output, (list, tuple)) else [layer.output]
    return sum(_size(t.shape[1:]) for t in outputs) * _itemsize(getattr(layer, "compute_dtype", "float32"))


def _trainable(model: Any) -> int:
    return sum(_size(w.shape) for w in model.trainable_weights)


def _input_elements(config: ModelConfig) -> int:
    return math.prod(config.input.shape)


def _input_elements_of(model: Any) -> int:
    return sum(_size(t.shape[1:]) for t in model.inputs)


def _size(shape: Any) -> int:
    return math.prod(int(d) for d in shape if d is not None)


def _itemsize(dtype: Any) -> int:
    name = str(getattr(dtype, "name", dtype))
    return {"float16": 2, "bfloat16": 2, "float64": 8, "int64": 8, "uint8": 1, "int8": 1}.get(name, 4)
