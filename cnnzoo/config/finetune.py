"""`model.init_from` and `train.freeze`: parsed, and every layer-name pattern checked against the model.

    model:
      init_from: runs/lenet-20260101-120000        # a run folder, a .keras or a .weights.h5 file
      init_from: {path: runs/lenet-*, layers: [conv2d*], skip_mismatch: true}
    train:
      freeze: [conv2d*, stem.*]                     # glob patterns of layer names
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from cnnzoo.config.source import Document, PathKey
from cnnzoo.config.spec import BlockNode, BranchNode, InitSpec, LayerNode, Node
from cnnzoo.errors import suggest

INIT_KEYS = ("path", "layers", "skip_mismatch")


def parse_init_from(doc: Document) -> InitSpec | None:
    path = ("model", "init_from")
    value = (doc.data.get("model") or {}).get("init_from")
    if value is None:
        return None
    if isinstance(value, str):
        value = {"path": value}
    if not isinstance(value, dict) or not isinstance(value.get("path"), str) or not value["path"]:
        raise doc.error(path, f"`init_from` must be a path, or a mapping with `path:` (and optional `layers:`, "
                              f"`skip_mismatch:`), received {value!r}.")
    for key in value:
        if key not in INIT_KEYS:
            raise doc.error(path + (key,), f"unknown key `{key}` (allowed: {', '.join(INIT_KEYS)}).",
                            hint=suggest(str(key), list(INIT_KEYS)))
    skip = value.get("skip_mismatch", False)
    if not isinstance(skip, bool):
        raise doc.error(path + ("skip_mismatch",), f"`skip_mismatch` must be true or false, received {skip!r}.")
    origin = doc.origin(path)
    return InitSpec(value["path"], _patterns(doc, path + ("layers",), value.get("layers")), skip,
                    origin.file, origin.line)


def parse_freeze(doc: Document) -> tuple[str, ...]:
    return _patterns(doc, ("train", "freeze"), (doc.data.get("train") or {}).get("freeze"))


def _patterns(doc: Document, path: PathKey, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise doc.error(path, f"`{path[-1]}` must be a list of layer-name patterns such as [conv2d*, stem.*], "
                              f"received {value!r}.")
    return tuple(value)


def layer_names(nodes: list[Node]) -> list[str]:
    """Every Keras layer name the model will have, in order (merge layers included)."""
    names: list[str] = []
    for node in nodes:
        if isinstance(node, LayerNode):
            names.append(node.name)
        elif isinstance(node, BlockNode):
            names += layer_names(node.children)
        elif isinstance(node, BranchNode):
            names += [n for branch in node.branches for n in layer_names(branch)] + [f"{node.name}.{node.merge}"]
    return names


def check_patterns(doc: Document, nodes: list[Node], init: InitSpec | None, freeze: tuple[str, ...]) -> None:
    """A pattern that matches no layer is a typo: say so at its line, with the nearest layer name."""
    names = layer_names(nodes)
    groups = [(("train", "freeze"), freeze)]
    if init is not None:
        groups.append((("model", "init_from", "layers"), init.layers))
    for path, patterns in groups:
        for i, pattern in enumerate(patterns):
            if not any(fnmatchcase(name, pattern) for name in names):
                shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
                raise doc.error(path + (i,), f"`{pattern}` matches no layer of the model (its layers: {shown}).",
                                hint=suggest(pattern, names))
