"""build_model(config) -> keras.Model: walks layers, blocks and branches. No data, no training."""

from __future__ import annotations

import re
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

from cnnzoo.config.expand import when_error
from cnnzoo.config.expr import is_deferred, resolve
from cnnzoo.config.spec import BlockNode, BranchNode, LayerNode, ModelConfig, Node, Where
from cnnzoo.data import default_scale
from cnnzoo.layers.registry import MERGE_CLASSES, check_layer_args, create_layer, layer_class
from cnnzoo.model.finetune import freeze_layers
from cnnzoo.precision import dtype_policy, resolve_precision

@dataclass
class Built:
    """The model plus, for each Keras layer name, the config entry and top-level group it came from."""

    model: Any
    where: dict[str, Where] = field(default_factory=dict)
    group: dict[str, int] = field(default_factory=dict)
    float32_node: Node | None = None  # under mixed precision, the entry whose output is the model's
    channels: dict[str, int] = field(default_factory=dict)  # block instance -> its input's channels
    pixel_scale: float | None = None  # what the pipeline multiplies pixels by (Application preprocessing undoes it)


def build_model(config: ModelConfig, allocate: bool = True) -> Built:
    """The Keras model under the dtype policy of train.precision; with a mixed policy the output layer
    still computes in float32 (a softmax in 16 bits loses the small probabilities the loss needs).

    With ``allocate=False`` the layers and shapes are real but no weight is ever filled: enough for
    parameter counts, FLOPs and the memory estimate of any size of network, not for running it."""
    import keras

    policy = resolve_precision(config.train.precision)
    built = Built(model=None, float32_node=output_node(config) if policy != "float32" else None,
                  pixel_scale=default_scale(config.data) if config.data else None)
    with dtype_policy(policy), nullcontext() if allocate else _unallocated_weights():
        inputs = keras.Input(shape=config.input.shape, dtype=config.input.dtype, name="input")
        x = inputs
        for index, node in enumerate(config.layers):
            x = _apply(node, x, built, index)
        built.model = keras.Model(inputs, x, name=config.name)
    freeze_layers(built.model, config.train.freeze)
    return built


@contextmanager
def _unallocated_weights():
    """Variables created here keep only their shape and initializer (Keras' deferred initialization,
    the mechanism JAX-style stateless building uses). Keras would fill every deferred variable at the
    next outermost StatelessScope exit, so ours are taken off its list again."""
    import keras
    from keras.src.backend.common import global_state  # the list has no public accessor

    pending = list(global_state.get_global_attribute("uninitialized_variables") or [])
    try:
        with keras.StatelessScope(initialize_variables=False):
            yield
    finally:
        global_state.set_global_attribute("uninitialized_variables", pending)


def output_node(config: ModelConfig) -> Node:
    """The entry that produces the model output (inside the last block, if it is one)."""
    node = config.layers[-1]
    while isinstance(node, BlockNode):
        node = node.children[-1]
    return node


def _apply(node: Node, x: Any, built: Built, group: int) -> Any:
    if not _decided(node, "when", built, (True, False)):
        return x
    if isinstance(node, LayerNode):
        y = _apply_layer(node, x, built, group)
    elif isinstance(node, BlockNode):
        built.channels[node.name] = x.shape[-1]
        y = x
        for child in node.children:
            y = _apply(child, y, built, group)
    else:
        y = _apply_branches(node, x, built, group)
    return _add_residual(node, x, y, built, group)


def _decided(node: Node, key: str, built: Built, allowed: tuple) -> Any:
    """`when` or `residual`, computed now that the channel counts of the enclosing blocks are known."""
    value = resolve(getattr(node, key), built.channels)
    if not any(value is a if isinstance(a, bool) else value == a for a in allowed):
        message, hint = when_error(value) if key == "when" else (
            f"`residual` must be true, false or auto, received {value!r}.", None)
        raise _entry(node).error(message, hint=hint, key=key)
    return value


def _entry(node: Node) -> Where:
    return node.entry or node.where


def _add_residual(node: Node, x: Any, y: Any, built: Built, group: int) -> Any:
    import keras

    mode = _decided(node, "residual", built, (True, False, "auto"))
    if mode is False or (mode == "auto" and tuple(x.shape) != tuple(y.shape)):
        return y
    if tuple(x.shape) != tuple(y.shape):
        raise _entry(node).error(f"`residual: true` adds the entry's input {_shape(x)} to its output {_shape(y)}, "
                               "but the shapes differ.",
                               hint="Use `residual: auto` to add it only when they are equal.", key="residual")
    add = keras.layers.Add(name=f"{node.name}.residual")
    _claim_name(built, add.name, node.where, group)
    return add([y, x])


def _apply_layer(node: LayerNode, x: Any, built: Built, group: int) -> Any:
    dtype = "float32" if node is built.float32_node else None
    if is_deferred(node.args):
        node = replace(node, args=resolve(node.args, built.channels))
        check_layer_args(layer_class(node.type, node.where), node.args, node.where)
    if node.type == "Application":
        from cnnzoo.layers.applications import create_application

        layer = create_application(node, tuple(x.shape[1:]), built.pixel_scale)
    else:
        layer = create_layer(node, dtype=dtype)
    _claim_name(built, layer.name, node.where, group)
    try:
        y = layer(x)
    except Exception as exc:  # Keras reports shape problems with several exception types
        if isinstance(exc, MemoryError) or type(exc).__name__ == "ResourceExhaustedError":
            raise  # not a shape problem: the caller says which phase ran out of memory
        raise node.where.error(f"{node.type} cannot take input of shape {_shape(x)}: {_first_line(exc)}",
                               hint=_shape_hint(node, x)) from None
    if isinstance(y, (list, tuple)):
        raise node.where.error(f"{node.type} returns {len(y)} outputs; each entry must return one tensor.",
                               hint="Turn off options such as return_state.")
    _check_positive(node, x, y)
    return y


def _claim_name(built: Built, name: str, where: Where, group: int) -> None:
    """Keras refuses a model with two layers of one name; say which entry to rename instead."""
    if name in built.where or name == "input":
        raise where.error(f"layer name `{name}` is used twice in the model.",
                          hint="Give each layer a unique `name:` (`input` is taken by the input layer).")
    built.where[name] = where
    built.group[name] = group


def _apply_branches(node: BranchNode, x: Any, built: Built, group: int) -> Any:
    import keras

    outputs = []
    for branch in node.branches:
        y = x
        for child in branch:
            y = _apply(child, y, built, group)
        outputs.append(y)
    shapes = [_shape(y) for y in outputs]
    _check_mergeable(node, [tuple(y.shape) for y in outputs], shapes)
    merge = getattr(keras.layers, MERGE_CLASSES[node.merge])(name=f"{node.name}.{node.merge}")
    _claim_name(built, merge.name, node.where, group)
    try:
        return merge(outputs)
    except Exception as exc:
        raise node.where.error(f"cannot {node.merge} branch outputs of shapes {', '.join(shapes)}: "
                               f"{_first_line(exc)}") from None


def _check_mergeable(node: BranchNode, dims: list[tuple], shapes: list[str]) -> None:
    """Concatenate: equal but for the last axis. Element-wise merges broadcast as Keras does: on each
    axis the sizes are equal or 1 (a squeeze-excitation gate (N, 1, 1, C) times (N, H, W, C))."""
    if node.merge == "concatenate":
        bad = [i for i, axis in enumerate(zip(*dims)) if i < len(dims[0]) - 1 and len(set(axis)) > 1]
        what = "they must agree on all but the channel axis"
    else:
        bad = [i for i, axis in enumerate(zip(*dims)) if len(set(axis) - {1}) > 1]
        what = "on every axis their sizes must be equal or 1, which broadcasts"
    if len({len(d) for d in dims}) > 1:
        raise node.where.error(f"branch outputs have shapes {', '.join(shapes)}, which `{node.merge}` cannot merge: "
                               "their ranks differ.", hint="Add a Reshape, or keepdims: true on a global pooling.")
    if bad:
        sizes = " and ".join(str(size) for size in sorted({d[bad[-1]] for d in dims}, key=lambda v: v or 0))
        hint = ("Give the branches the same number of channels (filters)." if bad == [len(dims[0]) - 1]
                else "Give every branch the same strides and padding (e.g. padding: same).")
        raise node.where.error(f"branch outputs have shapes {', '.join(shapes)}, which `{node.merge}` cannot merge: "
                               f"{what}; axis {bad[-1]} has sizes {sizes}.", hint=hint)


def _check_positive(node: LayerNode, x: Any, y: Any) -> None:
    outputs = y if isinstance(y, (list, tuple)) else [y]
    for out in outputs:
        if any(d is not None and d <= 0 for d in out.shape[1:]):
            raise node.where.error(f"{node.type} turns input of shape {_shape(x)} into {_shape(out)}: "
                                   "a dimension goes to zero.",
                                   hint="Use a larger input, a smaller kernel/pool size or stride, or padding: same.")


def _shape(x: Any) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in x.shape) + ")"


def _shape_hint(node: LayerNode, x: Any) -> str | None:
    rank = len(x.shape) - 1
    for suffix, wanted in (("1D", 2), ("2D", 3), ("3D", 4)):
        if node.type.endswith(suffix) and rank != wanted:
            return (f"{node.type} works on {wanted - 1}D data with channels (rank {wanted} without batch); "
                    f"this input has rank {rank}. Check input.shape or add a Reshape.")
    return None


def _first_line(exc: Exception) -> str:
    """The first informative line: Keras wraps call errors in "Exception encountered when calling ..."."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(exc).splitlines()]
    lines = [line for line in lines if line and not line.startswith("Exception encountered when calling")]
    return lines[0] if lines else type(exc).__name__
