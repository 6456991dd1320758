"""`cnnzoo summary CONFIG --diagram FILE`: a picture of the network, top to bottom, without Graphviz.

One box per config entry with its output shape and parameters. Blocks and branch groups are single
boxes; with ``expand`` the top-level blocks, every branch group and every block holding branches
open into frames, branches side by side (Inception modules read as four columns and a merge).
Drawn with matplotlib (.png, .svg) or written as Mermaid flowchart text (.mmd).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cnnzoo.atomic import atomic_save, atomic_write_text
from cnnzoo.config.spec import BlockNode, BranchNode, LayerNode, ModelConfig, Node
from cnnzoo.errors import RunError
from cnnzoo.model.summary import ModelSummary

FORMATS = (".png", ".svg", ".mmd")
# layout units: 1 unit = INCH inches
BOX_W, BOX_H, GAP, PAD, TITLE = 2.6, 0.78, 0.32, 0.18, 0.36
INCH = 0.75
MIN_WIDTH = 4.6


# --- the tree of what is drawn -------------------------------------------------------------------

@dataclass
class Box:
    title: str
    kind: str
    detail: str
    id: str = ""
    w: float = BOX_W
    h: float = BOX_H


@dataclass
class Stack:
    items: list  # of Box, Stack, Branches, Frame; empty = the identity branch
    w: float = 0.0
    h: float = 0.0


@dataclass
class Branches:
    columns: list[Stack]
    merge: Box
    w: float = 0.0
    h: float = 0.0


@dataclass
class Frame:
    title: str
    inner: Stack
    id: str = ""
    w: float = 0.0
    h: float = 0.0


@dataclass
class _Context:
    rows: dict  # Keras layer name -> summary Row
    expand: bool
    ids: list = field(default_factory=list)

    def new_id(self) -> str:
        self.ids.append(len(self.ids))
        return f"n{len(self.ids)}"


def diagram_tree(config: ModelConfig, summary: ModelSummary, expand: bool = False) -> Stack:
    """The model as nested boxes, the input first."""
    rows = {child.name: child for row in summary.layers for child in (row.children or [row])}
    ctx = _Context(rows, expand)
    first = Box("input", config.input.dtype, _shape(summary.input_shape), ctx.new_id())
    return _stack([first, *(_element(node, ctx, top=True) for node in config.layers)])


def _element(node: Node, ctx: _Context, top: bool = False):
    title = node.name if top else node.name.rsplit(".", 1)[-1]  # inside a frame, the frame names the rest
    if isinstance(node, LayerNode):
        row = ctx.rows[node.name]
        return Box(title, _layer_kind(node), _detail(row.output_shape, row.params), ctx.new_id())
    if ctx.expand and (isinstance(node, BranchNode) or (top or _has_branches(node))):
        if isinstance(node, BranchNode):
            return _branches(node, ctx, title)
        return _frame(f"{title}  (block {node.block}, {_params(_param_count(node, ctx))})",
                      _stack([_element(child, ctx) for child in node.children]), ctx.new_id())
    kind = f"block {node.block}" if isinstance(node, BlockNode) else f"branches ({node.merge})"
    return Box(title, kind, _detail(_output_shape(node, ctx), _param_count(node, ctx)), ctx.new_id())


SHOWN_ARGS = ("filters", "units", "kernel_size", "pool_size", "size", "strides", "rate", "activation")


def _layer_kind(node: LayerNode) -> str:
    """``Conv2D 64 7x7 /2 relu``: the class and the arguments that say what it does."""
    parts = [node.type]
    for key in SHOWN_ARGS:
        value = node.args.get(key)
        if value is None or (key == "strides" and value in (1, [1, 1], (1, 1))):
            continue
        if isinstance(value, (list, tuple)):
            value = "x".join(map(str, value))
        elif key in ("kernel_size", "pool_size") and isinstance(value, int):
            value = f"{value}x{value}" if "1D" not in node.type else value
        parts.append(f"/{value}" if key == "strides" else f"rate {value}" if key == "rate" else str(value))
    return " ".join(parts)


def _branches(node: BranchNode, ctx: _Context, title: str):
    columns = [_stack([_element(child, ctx) for child in branch]) for branch in node.branches]
    merge_row = ctx.rows[f"{node.name}.{node.merge}"]
    # the merge box names the branch group
    merge = Box(title, f"merge: {node.merge}", _detail(merge_row.output_shape, merge_row.params), ctx.new_id())
    return _measure_branches(Branches(columns, merge))


def _has_branches(node: Node) -> bool:
    if isinstance(node, BranchNode):
        return True
    return isinstance(node, BlockNode) and any(_has_branches(child) for child in node.children)


def _layer_names(node: Node) -> list[str]:
    if isinstance(node, LayerNode):
        return [node.name]
    if isinstance(node, BlockNode):
        return [name for child in node.children for name in _layer_names(child)]
    return [n for branch in node.branches for child in branch for n in _layer_names(child)] + \
        [f"{node.name}.{node.merge}"]


def _param_count(node: Node, ctx: _Context) -> int:
    return sum(ctx.rows[name].params for name in _layer_names(node))


def _output_shape(node: Node, ctx: _Context) -> list:
    return ctx.rows[_layer_names(node)[-1]].output_shape


def _shape(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _params(count: int) -> str:
    return f"{count:,} params"


def _detail(shape, params: int) -> str:
    return f"{_shape(shape)}  {_params(params)}" if params else _shape(shape)


# --- layout: sizes bottom-up ---------------------------------------------------------------------

def _stack(items: list) -> Stack:
    stack = Stack(items)
    stack.w = max((i.w for i in items), default=0.6)
    stack.h = sum(i.h for i in items) + GAP * max(len(items) - 1, 0)
    return stack


def _measure_branches(group: Branches) -> Branches:
    group.w = sum(c.w for c in group.columns) + GAP * (len(group.columns) - 1)
    group.w = max(group.w, group.merge.w)
    group.h = GAP + max(c.h for c in group.columns) + 1.5 * GAP + group.merge.h
    return group


def _frame(title: str, inner: Stack, id_: str) -> Frame:
    return Frame(title, inner, id_, inner.w + 2 * PAD, inner.h + TITLE + 2 * PAD)


# --- drawing with matplotlib ---------------------------------------------------------------------

def draw(tree: Stack, out: Path, title: str) -> Path:
    """Render the tree to a PNG or SVG file (format from the suffix), atomically."""
    from cnnzoo.runs.plots import plt

    width, height = max(tree.w + 2 * PAD, MIN_WIDTH), tree.h + 2 * PAD + TITLE
    left = (width - tree.w) / 2
    fig = plt.figure(figsize=(width * INCH, height * INCH))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    ax.text(width / 2, height - PAD, title, ha="center", va="top", fontsize=10, weight="bold")
    _draw(ax, tree, left, height - PAD - TITLE)
    try:
        with plt.rc_context({"svg.fonttype": "none"}):  # SVG text stays text: searchable and smaller
            atomic_save(out, lambda tmp: fig.savefig(tmp, format=out.suffix[1:].lower(), dpi=110))
    finally:
        plt.close(fig)
    return out


def _draw(ax, item, x: float, top: float) -> None:
    """Draw ``item`` with its top-left corner at (x, top)."""
    if isinstance(item, Box):
        _draw_box(ax, item, x, top)
    elif isinstance(item, Frame):
        _draw_frame(ax, item, x, top)
    elif isinstance(item, Branches):
        _draw_branches(ax, item, x, top)
    else:
        _draw_stack(ax, item, x, top)


def _draw_stack(ax, stack: Stack, x: float, top: float) -> None:
    y = top
    for index, item in enumerate(stack.items):
        left = x + (stack.w - item.w) / 2
        if index:
            _arrow(ax, x + stack.w / 2, y + GAP, x + stack.w / 2, y)
        _draw(ax, item, left, y)
        y -= item.h + GAP


def _draw_branches(ax, group: Branches, x: float, top: float) -> None:
    centre = x + group.w / 2
    columns_top, merge_top = top - GAP, top - group.h + group.merge.h
    left = x + (group.w - (sum(c.w for c in group.columns) + GAP * (len(group.columns) - 1))) / 2
    for column in group.columns:
        middle = left + column.w / 2
        bottom = columns_top - column.h
        if column.items:
            _arrow(ax, centre, top, middle, columns_top)
            _draw_stack(ax, column, left, columns_top)
        else:  # identity: the input goes straight to the merge
            bottom = columns_top - 0.3
            ax.text(middle, columns_top - 0.05, "identity", ha="center", va="top", fontsize=6, style="italic")
            _arrow(ax, centre, top, middle, columns_top, head=False)
        # down the column's own lane to just above the merge, so no line crosses another column's boxes
        _arrow(ax, middle, bottom, middle, merge_top + GAP, head=False)
        _arrow(ax, middle, merge_top + GAP, centre, merge_top)
        left += column.w + GAP
    _draw_box(ax, group.merge, centre - group.merge.w / 2, merge_top)


def _draw_frame(ax, frame: Frame, x: float, top: float) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x, top - frame.h), frame.w, frame.h, boxstyle="round,pad=0,rounding_size=0.12",
                                fc="#f4f6fb", ec="#7d8fb3", lw=0.8, ls="--"))
    ax.text(x + PAD, top - 0.08, frame.title, ha="left", va="top", fontsize=7, weight="bold", color="#34466b")
    _draw_stack(ax, frame.inner, x + PAD, top - TITLE - PAD / 2)


_COLOURS = {"Conv": "#dbe9f6", "Pool": "#e4f2df", "Dense": "#fbe3d6", "Norm": "#efe4f6", "block": "#fff4cc",
            "branches": "#fff4cc", "Dropout": "#eeeeee"}


def _draw_box(ax, box: Box, x: float, top: float) -> None:
    from matplotlib.patches import FancyBboxPatch

    colour = next((c for key, c in _COLOURS.items() if key in box.kind), "#ffffff")
    ax.add_patch(FancyBboxPatch((x, top - box.h), box.w, box.h, boxstyle="round,pad=0,rounding_size=0.08",
                                fc=colour, ec="#333333", lw=0.7))
    cx = x + box.w / 2
    ax.text(cx, top - 0.1, _fit(box.title, box.w), ha="center", va="top", fontsize=7, weight="bold")
    ax.text(cx, top - 0.35, _fit(box.kind, box.w), ha="center", va="top", fontsize=6.5)
    ax.text(cx, top - 0.57, _fit(box.detail, box.w), ha="center", va="top", fontsize=6, color="#333333")


def _fit(text: str, width: float) -> str:
    limit = int(width * 13)
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


def _arrow(ax, x0: float, y0: float, x1: float, y1: float, head: bool = True) -> None:
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                arrowprops={"arrowstyle": "-|>" if head else "-", "lw": 0.7, "color": "#555555",
                            "shrinkA": 0, "shrinkB": 0, "mutation_scale": 7})


# --- Mermaid -------------------------------------------------------------------------------------

def mermaid(tree: Stack) -> str:
    """Mermaid flowchart text (top to bottom): boxes as nodes, frames as subgraphs."""
    lines = ["flowchart TB"]
    _mermaid_items(tree, lines, "  ")
    return "\n".join(lines) + "\n"


def _mermaid_items(item, lines: list[str], indent: str) -> tuple[list[str], list[str]]:
    """Emit ``item``; return its entry and exit node ids (edges attach there)."""
    if isinstance(item, Box):
        label = "<br/>".join(_quote(t) for t in (f"<b>{item.title}</b>", item.kind, item.detail))
        lines.append(f'{indent}{item.id}["{label}"]')
        return [item.id], [item.id]
    if isinstance(item, Frame):
        lines.append(f'{indent}subgraph {item.id}["{_quote(item.title)}"]')
        ends = _mermaid_items(item.inner, lines, indent + "  ")
        lines.append(f"{indent}end")
        return ends
    if isinstance(item, Branches):
        entries, exits = [], []
        for column in item.columns:
            first, last = _mermaid_items(column, lines, indent) if column.items else ([], [])
            entries += first or [item.merge.id]
            exits += last
        _mermaid_items(item.merge, lines, indent)
        lines.extend(f"{indent}{e} --> {item.merge.id}" for e in exits)
        return entries, [item.merge.id]
    entries, exits = [], []
    for element in item.items:
        first, last = _mermaid_items(element, lines, indent)
        lines.extend(f"{indent}{a} --> {b}" for a in exits for b in first)
        entries, exits = entries or first, last
    return entries, exits


def _quote(text: str) -> str:
    return text.replace('"', "#quot;")


def write_diagram(config: ModelConfig, summary: ModelSummary, out: Path, expand: bool = False) -> Path:
    """The diagram in the format of ``out``'s suffix: .png, .svg or .mmd."""
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise RunError(f"{out}: --diagram writes {', '.join(FORMATS)} files; give a file name with one of "
                       f"these suffixes, e.g. --diagram {out.with_suffix('.svg').name}.")
    tree = diagram_tree(config, summary, expand)
    if out.suffix.lower() == ".mmd":
        return atomic_write_text(out, mermaid(tree))
    title = f"{config.name}: {summary.params:,} parameters"
    return draw(tree, out, title)
