"""build_model(config) -> keras.Model: walks layers, blocks and branches. No data, no training."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cnnzoo.config.spec import BlockNode, BranchNode, LayerNode, ModelConfig, Node, Where
from cnnzoo.data import default_scale
from cnnzoo.finetune import freeze_layers
from cnnzoo.layers import create_layer
from cnnzoo.precision import dtype_policy, resolve_precision

_MERGE_CLASSES = {"concatenate": "Concatenate", "add": "Add", "multiply": "Multiply", "average": "Average",
                  "maximum": "Maximum", "minimum": "Minimum", "subtract": "Subtract"}


@dataclass
class Built:
    """The model plus, for each Keras layer name, the config entry and top-level group it came from."""

    model: Any
    where: dict[str, Where] = field(default_factory=dict)
    group: dict[str, int] = field(default_factory=dict)
    float32_node: Node | None = None  # under mixed precision, the entry whose output is the model's
    pixel_scale: float | None = None  # what the pipeline multiplies pixels by (Application preprocessing undoes it)


def build_model(config: ModelConfig) -> Built:
    """The Keras model under the dtype policy of train.precision; with a mixed policy the output layer
    still computes in float32 (a softmax in 16 bits loses the small probabilities the loss needs)."""
    import keras

    policy = resolve_precision(config.train.precision)
    built = Built(model=None, float32_node=output_node(config) if policy != "float32" else None,
                  pixel_scale=default_scale(config.data) if config.data else None)
    with dtype_policy(policy):
        inputs = keras.Input(shape=config.input.shape, dtype=config.input.dtype, name="input")
        x = inputs
        for index, node in enumerate(config.layers):
            x = _apply(node, x, built, index)
        built.model = keras.Model(inputs, x, name=config.name)
    freeze_layers(built.model, config.train.freeze)
    return built


def output_node(config: ModelConfig) -> Node:
    """The entry that produces the model output (inside the last block, if it is one)."""
    node = config.layers[-1]
    while isinstance(node, BlockNode):
        node = node.children[-1]
    return node


def _apply(node: Node, x: Any, built: Built, group: int) -> Any:
    if isinstance(node, LayerNode):
        return _apply_layer(node, x, built, group)
    if isinstance(node, BlockNode):
        for child in node.children:
            x = _apply(child, x, built, group)
        return x
    return _apply_branches(node, x, built, group)


def _apply_layer(node: LayerNode, x: Any, built: Built, group: int) -> Any:
    if node.type == "Application":
        from cnnzoo.applications import create_application

        layer = create_application(node, tuple(x.shape[1:]), built.pixel_scale)
    else:
        layer = create_layer(node, dtype="float32" if node is built.float32_node else None)
    _claim_name(built, layer.name, node.where, group)
    try:
        y = layer(x)
    except Exception as exc:  # Keras reports shape problems with several exception types
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
    _check_mergeable(node, shapes)
    merge = getattr(keras.layers, _MERGE_CLASSES[node.merge])(name=f"{node.name}.{node.merge}")
    _claim_name(built, merge.name, node.where, group)
    try:
        return merge(outputs)
    except Exception as exc:
        raise node.where.error(f"cannot {node.merge} branch outputs of shapes {', '.join(shapes)}: "
                               f"{_first_line(exc)}") from None


def _check_mergeable(node: BranchNode, shapes: list[str]) -> None:
    dims = [s.strip("()").split(", ") for s in shapes]
    if node.merge == "concatenate":
        dims = [d[:-1] for d in dims]
    if any(d != dims[0] for d in dims):
        what = "all but the channel axis" if node.merge == "concatenate" else "every axis"
        raise node.where.error(f"branch outputs have shapes {', '.join(shapes)}, which `{node.merge}` cannot merge: "
                               f"they must agree on {what}.",
                               hint="Give every branch the same strides and padding (e.g. padding: same).")


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
