"""Model summary: one row per config entry (blocks and branches grouped), params and FLOPs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cnnzoo.config.spec import BlockNode, BranchNode, ModelConfig
from cnnzoo.host_memory import human_bytes
from cnnzoo.model.builder import Built
from cnnzoo.model.flops import layer_flops
from cnnzoo.model.memory import PART_LABELS, estimate_training
from cnnzoo.terminal import plain


@dataclass
class Row:
    name: str
    type: str
    output_shape: list[int | None]
    params: int
    flops: int
    children: list["Row"] = field(default_factory=list)
    frozen_params: int = 0  # parameters of layers frozen by `trainable: false` or train.freeze


@dataclass
class ModelSummary:
    name: str
    input_shape: list[int]
    params: int
    trainable_params: int
    non_trainable_params: int
    flops: int
    weight_bytes: int
    layers: list[Row]
    training_memory_bytes: int = 0
    memory_parts: dict[str, int] = field(default_factory=dict)
    memory_batch_size: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def summarize(config: ModelConfig, built: Built, data_dir: Path | None = None) -> ModelSummary:
    """Rows, totals and the training-memory estimate; `built` may be unallocated (build_model(allocate=False))."""
    model = built.model
    by_group: dict[int, list[Row]] = {}
    for layer in model.layers[1:]:  # [0] is the InputLayer
        row = Row(layer.name, type(layer).__name__, _shape(layer.output), layer.count_params(), layer_flops(layer),
                  frozen_params=0 if layer.trainable else layer.count_params())
        by_group.setdefault(built.group[layer.name], []).append(row)
    rows: list[Row] = []
    for i, node in enumerate(config.layers):
        previous = rows[-1].output_shape if rows else list(config.input.shape)
        rows.append(_group_row(node, by_group.get(i, []), previous))
    trainable = sum(_count(w) for w in model.trainable_weights)
    return ModelSummary(
        name=config.name, input_shape=list(config.input.shape), params=model.count_params(),
        trainable_params=trainable, non_trainable_params=model.count_params() - trainable,
        flops=sum(r.flops for r in rows),
        weight_bytes=sum(_count(w) * _itemsize(w) for w in model.weights), layers=rows,
        **estimate_training(config, model, data_dir=data_dir).to_json(),
    )


def _group_row(node: Any, rows: list[Row], previous: list[int | None]) -> Row:
    """One row per entry; a block whose layers `when:` all left out passes its input through."""
    if not isinstance(node, (BlockNode, BranchNode)) and len(rows) == 1:
        return rows[0]
    kind = (f"block {node.block}" if isinstance(node, BlockNode) else f"branches ({node.merge})"
            if isinstance(node, BranchNode) else f"{node.type} + residual")
    if not rows:
        return Row(node.name, f"{kind} (empty: when)", previous, 0, 0)
    return Row(node.name, kind, rows[-1].output_shape, sum(r.params for r in rows),
               sum(r.flops for r in rows), rows, sum(r.frozen_params for r in rows))


def _shape(tensor: Any) -> list[int | None]:
    return list(tensor.shape[1:])


def _count(weight: Any) -> int:
    size = 1
    for d in weight.shape:
        size *= d
    return size


def _itemsize(weight: Any) -> int:
    return {"float16": 2, "bfloat16": 2, "float64": 8}.get(str(weight.dtype), 4)


def render_summary(summary: ModelSummary, expand: bool = False):
    """A rich renderable: the per-entry table plus totals."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{plain(summary.name)}  (input {tuple(summary.input_shape)})", title_justify="left")
    table.add_column("layer", overflow="fold")
    for header, justify in (("type", "left"), ("output shape", "left"), ("params", "right"),
                            ("FLOPs/sample", "right")):
        table.add_column(header, justify=justify, no_wrap=True)
    frozen = any(row.frozen_params for row in summary.layers)
    if frozen:  # only for fine-tuning configs: which rows train
        table.add_column("trainable", no_wrap=True)
    for row in summary.layers:
        _add_row(table, row, "", bold=bool(row.children), frozen=frozen)
        if expand:
            for child in row.children:
                child = Row(child.name.removeprefix(row.name + "."), child.type, child.output_shape,
                            child.params, child.flops, frozen_params=child.frozen_params)
                _add_row(table, child, "  ", bold=False, frozen=frozen)
    totals = Text(
        f"params: {summary.params:,}  (trainable {summary.trainable_params:,}, "
        f"non-trainable {summary.non_trainable_params:,})\n"
        f"forward FLOPs per sample: {summary.flops:,} ({_human(summary.flops)}FLOPs)\n"
        f"weight memory: {human_bytes(summary.weight_bytes)}\n"
        f"training memory estimate: {human_bytes(summary.training_memory_bytes)} at batch size "
        f"{summary.memory_batch_size} ({_memory_parts(summary.memory_parts)})")
    return Group(table, totals)


def _memory_parts(parts: dict[str, int]) -> str:
    ordered = sorted(parts.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{PART_LABELS.get(k, k)} {human_bytes(v)}" for k, v in ordered if v)


def _add_row(table, row: Row, indent: str, bold: bool, frozen: bool = False) -> None:
    style = "bold" if bold else None
    shape = "(" + ", ".join("None" if d is None else str(d) for d in row.output_shape) + ")"
    cells = [indent + plain(row.name), plain(row.type), shape, f"{row.params:,}", f"{row.flops:,}"]
    cells += [_trainable(row)] if frozen else []
    table.add_row(*cells, style=style)


def _trainable(row: Row) -> str:
    if not row.params:
        return ""
    return "frozen" if row.frozen_params == row.params else "yes" if not row.frozen_params else \
        f"{row.params - row.frozen_params:,} of {row.params:,}"


def _human(value: float, base: int = 1000) -> str:
    for unit in ("", "K", "M", "G", "T"):
        if abs(value) < base:
            return f"{value:.2f} {unit}" if unit else f"{value:.0f} "
        value /= base
    return f"{value:.2f} P"
