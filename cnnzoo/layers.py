"""Layer registry: the one place that turns a layer entry into a Keras layer.

Every public layer class of `keras.layers` is available by its class name, except the few
that could run code or need Python objects a config cannot express.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from typing import Any


REFUSED = {
    "Lambda": "it runs arbitrary Python code, which a config file must never do",
    "TFSMLayer": "it loads and runs a saved model from disk",
    "TorchModuleWrapper": "it wraps Python objects a config cannot express",
    "JaxLayer": "it wraps Python objects a config cannot express",
    "FlaxLayer": "it wraps Python objects a config cannot express",
    "Layer": "it is the abstract base class",
    "Wrapper": "it is an abstract base class",
    "InputLayer": "the input is declared by the top-level `input:` section",
    "RNN": "it needs a cell object; use LSTM, GRU or SimpleRNN",
    "StackedRNNCells": "it needs cell objects; stack LSTM/GRU layers instead",
    "Pipeline": "list the layers directly instead",
}
MERGE_LAYERS = {"Add": "add", "Concatenate": "concatenate", "Average": "average",
                "Maximum": "maximum", "Minimum": "minimum", "Multiply": "multiply",
                "Subtract": "subtract", "Dot": "dot"}
MERGE_MODES = ("concatenate", "add", "multiply", "average", "maximum", "minimum", "subtract")
NESTED_LAYER_ARGS = ("layer", "backward_layer")
BASE_LAYER_ARGS = ("name", "dtype", "trainable", "activity_regularizer", "autocast")

# Required arguments whose type the signature cannot tell us (they have no default).
_INTS = "an integer or a list of integers"
REQUIRED_ARG_TYPES = {"filters": "int", "units": "int", "kernel_size": _INTS, "pool_size": _INTS,
                      "rate": "number", "size": _INTS, "padding": "any", "target_shape": "ints",
                      "dims": "ints", "n": "int", "stddev": "number", "scale": "number"}


@functools.lru_cache(maxsize=1)
def keras_layer_classes() -> dict[str, type]:
    """Every usable layer class of `keras.layers`, by class name."""
    import keras

    classes = {}
    for name in dir(keras.layers):
        obj = getattr(keras.layers, name)
        if inspect.isclass(obj) and issubclass(obj, keras.layers.Layer) and name not in REFUSED:
            classes[name] = obj
    return classes


def is_layer_name(name: str) -> bool:
    return name in keras_layer_classes() or name in REFUSED or name == "Application"


def suggest(name: str, candidates: list[str]) -> str | None:
    """A 'did you mean' hint for a misspelt name, case-insensitive."""
    lowered = {c.lower(): c for c in candidates}
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return f"Did you mean `{lowered[match[0]]}`?" if match else None


def layer_class(name: str, where, block_names: list[str] = ()) -> type:
    """The Keras class for a layer name, or a ConfigError that says what to write instead."""
    if name in REFUSED:
        raise where.error(f"layer `{name}` is not allowed in a config: {REFUSED[name]}.")
    if name in MERGE_LAYERS:
        mode = MERGE_LAYERS[name]
        raise where.error(f"`{name}` merges several inputs and cannot stand in a list of layers.",
                          hint=f"Use `branches: [...]` with `merge: {mode}`." if mode in MERGE_MODES
                          else f"Branches can merge by {', '.join(MERGE_MODES)}.")
    classes = keras_layer_classes()
    if name not in classes:
        hint = suggest(name, list(classes) + list(block_names))
        raise where.error(f"unknown layer or block `{name}`.",
                          hint=hint or "Layers are Keras class names such as Conv2D, Dense or "
                                       "MaxPooling2D; blocks must be defined under model.blocks.")
    return classes[name]


@functools.lru_cache(maxsize=None)
def layer_signature(cls: type) -> dict[str, inspect.Parameter]:
    """Named constructor arguments of a layer class, following **kwargs up to keras Layer."""
    import keras

    params: dict[str, inspect.Parameter] = {}
    own_class = True
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        signature = inspect.signature(klass.__init__)
        takes_kwargs = False
        for param in list(signature.parameters.values())[1:]:
            if param.kind is param.VAR_KEYWORD:
                takes_kwargs = True
            elif param.kind is not param.VAR_POSITIONAL and (own_class or param.default is not param.empty):
                # an ancestor's required argument (Conv's `rank`) is supplied by the subclass itself
                params.setdefault(param.name, param)
        if not takes_kwargs or klass is keras.layers.Layer:
            break
        own_class = False
    return params


def check_layer_args(cls: type, args: dict[str, Any], where) -> None:
    """Unknown, missing and mistyped arguments, checked against the class's real signature."""
    check_args(cls.__name__, layer_signature(cls), args, where)


def check_args(owner: str, signature: dict[str, inspect.Parameter], args: dict[str, Any], where) -> None:
    """`args` against the named parameters of `owner` (a layer class, an application function)."""
    for key, value in args.items():
        if key not in signature:
            hint = suggest(key, list(signature)) or f"{owner} takes: {', '.join(signature)}."
            raise where.error(f"{owner} has no argument `{key}`.", hint=hint, key=key)
        _check_type(owner, key, value, signature[key], where)
    missing = [p.name for p in signature.values()
               if p.default is inspect.Parameter.empty and p.name not in args]
    if missing:
        raise where.error(f"{owner} needs argument(s) {', '.join(missing)}.",
                          hint=f"Write e.g. `- {owner}: {{{missing[0]}: ...}}`.")


def _check_type(owner: str, key: str, value: Any, param: inspect.Parameter, where) -> None:
    if key in NESTED_LAYER_ARGS:
        return
    expected = _expected_type(param)
    if expected is None or value is None and param.default is None or _matches(value, expected):
        return
    raise where.error(f"{owner} argument `{key}` must be {_DESCRIPTIONS[expected]}, "
                      f"received {value!r} ({_yaml_type(value)}).", key=key)


def _expected_type(param: inspect.Parameter) -> str | None:
    default = param.default
    if default is inspect.Parameter.empty:
        kind = REQUIRED_ARG_TYPES.get(param.name, "any")
        return {"any": None, _INTS: "ints"}.get(kind, kind)
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "ints"
    if isinstance(default, float):
        return "number"
    if isinstance(default, tuple) and all(isinstance(v, int) for v in default):
        return "ints"
    return None


_DESCRIPTIONS = {"bool": "true or false", "int": "an integer", "ints": _INTS, "number": "a number"}


def _matches(value: Any, expected: str) -> bool:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if expected == "bool":
        return isinstance(value, bool)
    if expected == "int":
        return is_int
    if expected == "number":
        return is_int or isinstance(value, float)
    if expected == "ints":
        items = value if isinstance(value, list) else [value]
        return bool(items) and all(isinstance(v, int) and not isinstance(v, bool) for v in items)
    return True


def _yaml_type(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string",
             list: "list", dict: "mapping", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def create_layer(node, dtype: str | None = None) -> Any:
    """Instantiate the Keras layer of a LayerNode; Keras' own complaints point at the entry.
    `dtype` overrides the global dtype policy unless the entry sets its own."""
    cls = layer_class(node.type, node.where)
    args = {key: _convert_arg(key, value) for key, value in node.args.items()}
    args["name"] = node.name  # an explicit name is prefixed with its block instance (stem.conv1)
    if dtype:
        args.setdefault("dtype", dtype)
    try:
        return cls(**args)
    except Exception as exc:  # Keras validates arguments in constructors with many error types
        raise node.where.error(f"Keras could not create {node.type}: {_first_line(exc)}") from None


def _convert_arg(key: str, value: Any) -> Any:
    if key in NESTED_LAYER_ARGS and hasattr(value, "type"):
        return create_layer(value)
    return _tuple_lists(value)


def _tuple_lists(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuple_lists(v) for v in value)
    return value


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
