"""The `model:` section: layer entries, branches, reusable blocks and `repeat`, expanded to nodes.

Entry forms in a layers list:
    - Flatten                                  a layer (or block) without arguments
    - Conv2D: {filters: 20, kernel_size: 5}    a layer with arguments
      repeat: 2                                the same entry N times
    - conv_bn: {filters: 64}                   a block defined under model.blocks
      name: stem                               (blocks only) the block instance's name
    - branches: [[...], [...], []]             parallel branches, [] is the identity
      merge: concatenate                       or add, multiply, average, maximum, ...
    - ...                                      any entry:
      when: ${strides == 1}                    kept only when true (may read $in_channels)
      residual: auto                           add its input to its output (auto: when shapes allow)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cnnzoo.config import expr
from cnnzoo.config.expr import Deferred, ExprError, IN_CHANNELS, REPEAT_INDEX
from cnnzoo.config.source import Document, PathKey, format_path
from cnnzoo.config.spec import BlockNode, BranchNode, LayerNode, Node, Where
from cnnzoo.errors import suggest
from cnnzoo.layers import registry as layer_registry

ENTRY_META_KEYS = ("repeat", "name", "when", "residual", "trainable")
BRANCH_KEYS = ("branches", "merge", "repeat", "name", "when", "residual", "trainable")
RESIDUAL_MODES = (True, False, "auto")
BLOCK_KEYS = ("params", "layers", "description")
MAX_REPEAT = 10_000
MAX_BLOCK_DEPTH = 32
MAX_ENTRIES = 10_000  # layers, blocks and branches after expansion: nested `repeat` multiplies
REQUIRED = object()
BUILT_IN = {IN_CHANNELS: "the channel count of the block's input",
            REPEAT_INDEX: "0, 1, ... for the copies of a `repeat`ed entry"}


@dataclass
class BlockDef:
    name: str
    params: dict[str, Any]
    layers: list[Any]
    path: PathKey


@dataclass
class _Scope:
    """Naming and parameter context while expanding one list of entries."""

    prefix: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    via: tuple[str, ...] = ()
    depth: int = 0
    block: str = ""  # the block instance whose input `$in_channels` means
    counters: dict[str, int] = field(default_factory=dict)

    def unique(self, base: str) -> str:
        count = self.counters.get(base, 0)
        self.counters[base] = count + 1
        return self.prefix + (base if count == 0 else f"{base}_{count}")


def parse_model(doc: Document) -> list[Node]:
    model = doc.data.get("model")
    if not isinstance(model, dict):
        raise doc.error(("model",), "a `model:` mapping with a `layers:` list is required.",
                        hint="e.g. model: {layers: [Flatten, {Dense: {units: 10}}]}")
    _check_keys(doc, ("model",), model, ("layers", "blocks", "init_from"))
    blocks = _parse_blocks(doc, model.get("blocks") or {})
    layers = model.get("layers")
    if not isinstance(layers, list) or not layers:
        raise doc.error(("model", "layers"), "`model.layers` must be a non-empty list of layers.")
    return _Expander(doc, blocks).expand_list(layers, ("model", "layers"), _Scope())


def _check_keys(doc: Document, path: PathKey, mapping: dict, allowed: tuple[str, ...]) -> None:
    for key in mapping:
        if key not in allowed:
            hint = suggest(str(key), list(allowed))
            raise doc.error(path + (key,), f"unknown key `{key}` (allowed: {', '.join(allowed)}).", hint=hint)


def _parse_blocks(doc: Document, blocks: Any) -> dict[str, BlockDef]:
    if not isinstance(blocks, dict):
        raise doc.error(("model", "blocks"), "`model.blocks` must be a mapping of block name to definition.")
    parsed = {}
    for name, body in blocks.items():
        path = ("model", "blocks", name)
        if not isinstance(name, str) or not name.isidentifier():
            raise doc.error(path, f"block name {name!r} must be a plain identifier.")
        if layer_registry.is_layer_name(name):
            raise doc.error(path, f"block name `{name}` is already a Keras layer name.",
                            hint="Pick another name, e.g. in snake_case.")
        if not isinstance(body, dict) or not isinstance(body.get("layers"), list) or not body["layers"]:
            raise doc.error(path, f"block `{name}` needs a non-empty `layers:` list (and optional `params:`).")
        _check_keys(doc, path, body, BLOCK_KEYS)
        parsed[name] = BlockDef(name, _parse_params(doc, path + ("params",), body.get("params")),
                                body["layers"], path)
    return parsed


def _parse_params(doc: Document, path: PathKey, params: Any) -> dict[str, Any]:
    """`params: [filters, kernel, strides: 1]`: bare names are required, mappings give defaults."""
    if params is None:
        return {}
    if isinstance(params, dict):
        params = [{k: v} for k, v in params.items()]
    if not isinstance(params, list):
        raise doc.error(path, "`params` must be a list like [filters, kernel, strides: 1].")
    result: dict[str, Any] = {}
    for i, item in enumerate(params):
        pairs = [(item, REQUIRED)] if isinstance(item, str) else list(item.items()) if isinstance(item, dict) else []
        if not pairs:
            raise doc.error(path + (i,), f"parameter entry {item!r} must be a name or `name: default`.")
        for name, default in pairs:
            if not isinstance(name, str) or not name.isidentifier():
                raise doc.error(path + (i,), f"parameter name {name!r} must be a plain identifier.")
            if name in (IN_CHANNELS, REPEAT_INDEX):
                raise doc.error(path + (i,), f"`{name}` is built in ({BUILT_IN[name]}); it cannot be a parameter.",
                                hint="Pick another name.")
            result[name] = default
    return result


class _Expander:
    def __init__(self, doc: Document, blocks: dict[str, BlockDef]):
        self.doc = doc
        self.blocks = blocks
        self.entries = 0

    def where(self, path: PathKey, scope: _Scope) -> Where:
        origin = self.doc.origin(path)
        return Where(origin.file, origin.line, format_path(path), scope.via)

    def expand_list(self, entries: Any, path: PathKey, scope: _Scope) -> list[Node]:
        if entries is None:
            return []
        if not isinstance(entries, list):
            raise self.where(path, scope).error("expected a list of layer entries, received "
                                                f"{type(entries).__name__}.")
        nodes: list[Node] = []
        for i, entry in enumerate(entries):
            nodes.extend(self.expand_entry(entry, path + (i,), scope))
        return nodes

    def expand_entry(self, entry: Any, path: PathKey, scope: _Scope) -> list[Node]:
        where = self.where(path, scope)
        raw, entry = entry, self.substitute(entry, path, scope)
        if isinstance(entry, str):
            entry = {entry: None}
        if not isinstance(entry, dict) or not entry:
            raise where.error(f"a layer entry must be a name like `Flatten` or a mapping like "
                              f"`Conv2D: {{filters: 32}}`, received {entry!r}.")
        when = entry.get("when", True)
        if when is False:
            return []
        if when is not True and not isinstance(when, Deferred):
            raise where.error(*when_error(when), key="when")
        residual = entry.get("residual", False)
        if not isinstance(residual, Deferred) and not any(residual is m if isinstance(m, bool) else residual == m
                                                          for m in RESIDUAL_MODES):
            raise where.error(f"`residual` must be true, false or auto, received {residual!r}.", key="residual")
        repeat = self.repeat_count(entry, where)
        trainable = entry.get("trainable", True)
        if not isinstance(trainable, bool):
            raise self.where(path + ("trainable",), scope).error(
                f"`trainable` must be true or false, received {trainable!r}.")
        per_copy = repeat > 1 and REPEAT_INDEX in str(raw)  # arguments that differ copy by copy
        copies = (self.substitute(raw, path, scope, i) if per_copy and i else entry for i in range(repeat))
        nodes = [self.expand_once(copy, path, scope, where) for copy in copies]
        for node in nodes:
            node.when, node.residual, node.entry = when, residual, where
        return nodes if trainable else [freeze_node(node) for node in nodes]

    def repeat_count(self, entry: dict, where: Where) -> int:
        repeat = self.static(entry.get("repeat", 1), where, "repeat")
        if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
            raise where.error(f"`repeat` must be an integer from 1 to {MAX_REPEAT}, received {repeat!r}.",
                              key="repeat")
        return repeat

    @staticmethod
    def static(value: Any, where: Where, key: str | None = None) -> Any:
        """Values that shape the expansion (names, repeat, merge) must be known before building."""
        if expr.is_deferred(value):
            raise where.error(f"`{key or value}` cannot depend on `${IN_CHANNELS}`, which is known only while "
                              "building.", hint="Use it in layer arguments, `when` or `residual`.", key=key)
        return value

    def expand_once(self, entry: dict, path: PathKey, scope: _Scope, where: Where) -> Node:
        self.entries += 1
        if self.entries > MAX_ENTRIES:
            raise where.error(f"the model expands to more than {MAX_ENTRIES:,} entries (nested `repeat` or blocks?).")
        if "branches" in entry:
            return self.expand_branches(entry, path, scope, where)
        kinds = [k for k in entry if k not in ENTRY_META_KEYS]
        if len(kinds) != 1:
            raise where.error(f"a layer entry needs exactly one layer or block name, found "
                              f"{kinds or 'none'}.",
                              hint="Indent arguments under the layer name: `- Dense: {units: 10}`.")
        kind = kinds[0]
        args = entry[kind]
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise where.error(f"the arguments of `{kind}` must be a mapping, received {args!r}.",
                              hint=f"Write `- {kind}: {{argument: value}}` or a bare `- {kind}`.", key=str(kind))
        if kind in self.blocks:
            return self.expand_block(self.blocks[kind], args, entry.get("name"), path, scope, where)
        return self.make_layer(str(kind), args, entry, path + (kind,), scope, where)

    def make_layer(self, kind: str, args: dict, entry: dict, path: PathKey, scope: _Scope, where: Where) -> LayerNode:
        if "name" in entry:
            raise where.error("`name` next to a layer goes inside its arguments.",
                              hint=f"Write `- {kind}: {{name: ..., ...}}`.", key="name")
        if kind == "Application":
            return self.make_application(args, path, scope, where)
        cls = layer_registry.layer_class(kind, where, list(self.blocks))
        args = dict(args)
        for key in layer_registry.NESTED_LAYER_ARGS:
            if key in args:
                args[key] = self.expand_nested_layer(args[key], path + (key,), scope)
        arg_where = self.where(path, scope)
        origins = {key: self.doc.origin(path + (key,)) for key in args}
        arg_where = Where(arg_where.file, arg_where.line, arg_where.path, arg_where.via,
                          {key: (o.file, o.line) for key, o in origins.items()})
        deferred = [key for key in args if expr.is_deferred(args[key])]  # checked again once built
        layer_registry.check_layer_args(cls, args, arg_where, deferred=deferred)
        name = self.static(args.get("name"), arg_where, "name")
        if name is not None and not isinstance(name, str):
            raise arg_where.error(f"`name` must be a string, received {name!r}.", key="name")
        return LayerNode(kind, args, scope.prefix + name if name else scope.unique(_snake(kind)), arg_where)

    def make_application(self, args: dict, path: PathKey, scope: _Scope, where: Where) -> LayerNode:
        """A keras.applications model as one entry (see cnnzoo.layers.applications)."""
        from cnnzoo.layers.applications import check_application

        origins = {key: self.doc.origin(path + (key,)) for key in args}
        where = Where(where.file, where.line, format_path(path), where.via,
                      {key: (o.file, o.line) for key, o in origins.items()})
        check_application(args, where)
        return LayerNode("Application", dict(args), scope.unique(_snake(args["name"])), where)

    def expand_nested_layer(self, entry: Any, path: PathKey, scope: _Scope) -> LayerNode:
        nodes = self.expand_entry(entry, path, _Scope(scope.prefix + "inner.", scope.params, scope.via,
                                                            block=scope.block))
        if len(nodes) != 1 or not isinstance(nodes[0], LayerNode):
            raise self.where(path, scope).error("a wrapped `layer` must be a single Keras layer.")
        return nodes[0]

    def expand_branches(self, entry: dict, path: PathKey, scope: _Scope, where: Where) -> BranchNode:
        for key in entry:
            if key not in BRANCH_KEYS:
                raise where.error(f"unknown key `{key}` in a branches entry (allowed: {', '.join(BRANCH_KEYS)}).",
                                  key=str(key))
        branches = entry["branches"]
        merge = self.static(entry.get("merge", "concatenate"), where, "merge")
        if not isinstance(branches, list) or len(branches) < 2:
            raise where.error("`branches` must be a list of at least two layer lists ([] is the identity).",
                              key="branches")
        if merge not in layer_registry.MERGE_MODES:
            raise where.error(f"unknown merge {merge!r}; use one of {', '.join(layer_registry.MERGE_MODES)}.",
                              hint=suggest(str(merge), list(layer_registry.MERGE_MODES)), key="merge")
        name = self.static(entry.get("name"), where, "name") or scope.unique("branches")
        if entry.get("name"):
            name = scope.prefix + str(name)
        expanded = []
        for k, branch in enumerate(branches):
            child = _Scope(f"{name}.b{k}.", scope.params, scope.via, scope.depth, scope.block)
            expanded.append(self.expand_list(branch, path + ("branches", k), child))
        return BranchNode(expanded, merge, name, where)

    def expand_block(self, block: BlockDef, args: dict, name: Any, path: PathKey, scope: _Scope,
                     where: Where) -> BlockNode:
        if scope.depth >= MAX_BLOCK_DEPTH:
            where = Where(where.file, where.line, where.path, where.via[:2] + ("...",))  # not 32 repeated lines
            raise where.error(f"blocks nested deeper than {MAX_BLOCK_DEPTH} levels (does `{block.name}` use itself?).")
        name = self.static(name, where, "name")
        if name is not None and not isinstance(name, str):
            raise where.error(f"`name` must be a string, received {name!r}.", key="name")
        instance = scope.prefix + name if name else scope.unique(block.name)
        call = f"in block `{block.name}` used at {where.path}" + (f" line {where.line}" if where.line else "")
        child = _Scope(instance + ".", {}, scope.via + (call,), scope.depth + 1, instance)
        child.params = self.bind_params(block, args, where, child)
        children = self.expand_list(block.layers, block.path + ("layers",), child)
        return BlockNode(block.name, child.params, children, instance, where)

    def bind_params(self, block: BlockDef, args: dict, where: Where, child: _Scope) -> dict[str, Any]:
        """The block's parameters: the use's arguments, then defaults in order (a default may be an
        expression of the parameters before it, or of `$in_channels`)."""
        for key in args:
            if key not in block.params:
                hint = suggest(str(key), list(block.params))
                raise where.error(f"block `{block.name}` has no parameter `{key}` "
                                  f"(its parameters: {', '.join(block.params) or 'none'}).", hint=hint, key=str(key))
        missing = [k for k, v in block.params.items() if v is REQUIRED and k not in args]
        if missing:
            raise where.error(f"block `{block.name}` needs parameter(s) {', '.join(missing)}.",
                              hint=f"Write `- {block.name}: {{{missing[0]}: ...}}`.")
        params = dict(args)
        child.params = params
        for key, default in block.params.items():
            if key not in args:
                params[key] = self.substitute(default, block.path + ("params",), child)
        return {key: params[key] for key in block.params}

    def substitute(self, value: Any, path: PathKey, scope: _Scope, index: int = 0) -> Any:
        """`$param` and `${expression}` keep the value's type as a whole value, and become text inside
        longer strings; a value that reads `$in_channels` stays Deferred until the builder knows it.
        `index` is `$repeat_index`, the copy of a `repeat`ed entry being expanded."""
        if isinstance(value, dict):
            keys = {k: self.substitute(k, path, scope, index) for k in value}
            for k, key in keys.items():
                if isinstance(key, Deferred):
                    self.static(key, self.where(path + (k,), scope))
            return {keys[k]: self.substitute(v, path + (k,), scope, index) for k, v in value.items()}
        if isinstance(value, list):
            return [self.substitute(v, path + (i,), scope, index) for i, v in enumerate(value)]
        if not isinstance(value, str) or "$" not in value:
            return value
        where = self.where(path, scope)
        env = {**scope.params, REPEAT_INDEX: index}
        try:
            used = expr.references(value)
            for name in used:
                self.check_defined(name, where, scope)
            if any(name == IN_CHANNELS or expr.is_deferred(env[name]) for name in used):
                return Deferred(value, env, scope.block, where)
            return expr.render(value, env)
        except ExprError as exc:
            raise where.error(f"{exc}.", hint=_expression_hint(str(exc))) from None

    @staticmethod
    def check_defined(name: str, where: Where, scope: _Scope) -> None:
        if name == REPEAT_INDEX or name == IN_CHANNELS and scope.block:
            return
        if name == IN_CHANNELS:
            raise where.error(f"`${IN_CHANNELS}` is the channel count of a block's input; it can only be used "
                              "inside a block.", hint="Write the number here, or move these layers into a block.")
        if not scope.via:
            raise where.error(f"`${name}` is used outside a block; only block layers can use parameters.")
        if name not in scope.params:
            defined = [*scope.params, *BUILT_IN]
            raise where.error(f"undefined block parameter `${name}` (defined: {', '.join('$' + p for p in defined)}).",
                              hint=suggest(name, list(scope.params)))


def when_error(value: Any) -> tuple[str, str]:
    return (f"`when` must be true or false, received {value!r} ({type(value).__name__}).",
            "Compare values, e.g. `when: ${strides == 1 and in_channels == filters}`.")


def _expression_hint(message: str) -> str | None:
    if "divides by zero" in message:
        return "Check the parameters this use passes (a `// 0` or `/ 0`)."
    return None


def freeze_node(node: Node) -> Node:
    """`trainable: false` on an entry, block use or branches group: every layer inside it is frozen."""
    if isinstance(node, LayerNode):
        node.args["trainable"] = False
    for child in node.children if isinstance(node, BlockNode) else \
            [c for branch in node.branches for c in branch] if isinstance(node, BranchNode) else []:
        freeze_node(child)
    return node


def parse_layer_list(doc: Document, path: PathKey, entries: Any) -> list[Node]:
    """A plain list of layer entries outside `model` (e.g. data.augment); no blocks."""
    nodes = _Expander(doc, {}).expand_list(entries, path, _Scope(prefix="augment."))
    for node in nodes:
        if node.residual is not False:
            raise node.entry.error("`residual` works in model layers only, not in this list.", key="residual")
    return nodes


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", name).lower()
