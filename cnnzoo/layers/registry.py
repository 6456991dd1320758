"""Layer registry: the one place that turns a layer entry into a Keras layer.

Every public layer class of `keras.layers` is available by its class name, except the few
that could run code or need Python objects a config cannot express, and so are cnnzoo's own layers
(cnnzoo.layers.custom: what the 1998 LeNet-5 needs), checked the same way.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Collection

from cnnzoo.errors import quote, suggest


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
# `merge:` of branches -> the Keras layer that merges them (the one list of merge modes)
MERGE_CLASSES = {"concatenate": "Concatenate", "add": "Add", "multiply": "Multiply", "average": "Average",
                 "maximum": "Maximum", "minimum": "Minimum", "subtract": "Subtract"}
MERGE_MODES = tuple(MERGE_CLASSES)
ELEMENTWISE_MERGES = tuple(cls for mode, cls in MERGE_CLASSES.items() if mode != "concatenate")
# merge layers cannot stand in a list of layers; Dot has no `merge:` mode
MERGE_LAYERS = {**{cls: mode for mode, cls in MERGE_CLASSES.items()}, "Dot": "dot"}
NESTED_LAYER_ARGS = ("layer", "backward_layer")
BASE_LAYER_ARGS = ("name", "dtype", "trainable", "activity_regularizer", "autocast")
# A mapping argument is a Keras object written as {class_name: ..., config: {...}}; it is accepted only
# for these kinds (by argument-name suffix) and built from that module's class, never deserialised.
OBJECT_ARG_MODULES = {"_initializer": "initializers", "_regularizer": "regularizers", "_constraint": "constraints"}
# Arguments Keras would read as a file path when given a string (IndexLookup: StringLookup,
# IntegerLookup, TextVectorization). A config may not make cnnzoo read files.
PATH_ARGS = ("vocabulary",)

# Required arguments whose type the signature cannot tell us (they have no default).
_INTS = "an integer or a list of integers"
REQUIRED_ARG_TYPES = {"filters": "int", "units": "int", "kernel_size": _INTS, "pool_size": _INTS,
                      "rate": "number", "size": _INTS, "padding": "any", "target_shape": "ints",
                      "dims": "ints", "n": "int", "stddev": "number", "scale": "number"}


@functools.lru_cache(maxsize=1)
def keras_layer_classes() -> dict[str, type]:
    """Every usable layer class of `keras.layers`, and cnnzoo's own layers, by class name."""
    import keras

    from cnnzoo.layers.custom import CUSTOM_LAYERS

    classes = dict(CUSTOM_LAYERS)
    for name in dir(keras.layers):
        obj = getattr(keras.layers, name)
        if inspect.isclass(obj) and issubclass(obj, keras.layers.Layer) and name not in REFUSED:
            classes[name] = obj
    return classes


def is_layer_name(name: str) -> bool:
    return name in keras_layer_classes() or name in REFUSED or name == "Application"


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


def check_layer_args(cls: type, args: dict[str, Any], where, deferred: Collection[str] = ()) -> None:
    """Unknown, missing and mistyped arguments, checked against the class's real signature. The types
    of `deferred` arguments (they read `$in_channels`) are checked again once the builder knows them."""
    check_args(cls.__name__, layer_signature(cls), args, where, deferred)


def check_args(owner: str, signature: dict[str, inspect.Parameter], args: dict[str, Any], where,
               deferred: Collection[str] = ()) -> None:
    """`args` against the named parameters of `owner` (a layer class, an application function)."""
    for key, value in args.items():
        if key not in signature:
            hint = suggest(key, list(signature)) or f"{owner} takes: {', '.join(signature)}."
            raise where.error(f"{owner} has no argument `{key}`.", hint=hint, key=key)
        if key not in deferred:
            _check_type(owner, key, value, signature[key], where)
    missing = [p.name for p in signature.values()
               if p.default is inspect.Parameter.empty and p.name not in args]
    if missing:
        raise where.error(f"{owner} needs argument(s) {', '.join(missing)}.",
                          hint=f"Write e.g. `- {owner}: {{{missing[0]}: ...}}`.")


def _check_type(owner: str, key: str, value: Any, param: inspect.Parameter, where) -> None:
    if key in NESTED_LAYER_ARGS:
        return
    _check_plain_value(owner, key, value, where)
    expected = _expected_type(param)
    if expected is None or value is None and param.default is None or _matches(value, expected):
        return
    fraction = expected in ("int", "ints") and isinstance(value, float)
    raise where.error(f"{owner} argument `{key}` must be {_DESCRIPTIONS[expected]}, "
                      f"received {value!r} ({_yaml_type(value)}).", key=key,
                      hint="In `${...}`, `/` gives a decimal: use `//`, round(...) or make_divisible(...)."
                      if fraction else None)


def _check_plain_value(owner: str, key: str, value: Any, where) -> None:
    """Values are plain data: no file paths, and mappings only as Keras objects of the argument's kind."""
    if key in PATH_ARGS and isinstance(value, str):
        raise where.error(f"{owner} argument `{key}` must be an inline list, received the string "
                          f"{quote(value)}: a config may not make cnnzoo read a file.",
                          hint=f"Write the entries out, e.g. `{key}: [a, b, c]`.", key=key)
    if isinstance(value, dict):
        object_class(key, value, where)
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) and _has_mapping(v) for v in value):
        raise where.error(f"{owner} argument `{key}` must not hold mappings, received {quote(value)}.", key=key)


def _has_mapping(value: Any) -> bool:
    if isinstance(value, dict):
        return True
    return isinstance(value, list) and any(_has_mapping(v) for v in value)


def object_class(key: str, value: dict, where) -> type:
    """The Keras class of an {class_name, config} argument, after checking it is a plain description."""
    import keras

    module_name = next((m for suffix, m in OBJECT_ARG_MODULES.items() if key.endswith(suffix)), None)
    if module_name is None:
        raise where.error(f"argument `{key}` cannot be a mapping, received {quote(value)}.",
                          hint="Only *_initializer, *_regularizer and *_constraint arguments take "
                               "{class_name: ..., config: {...}}.", key=key)
    module = getattr(keras, module_name)
    names = sorted(n for n in dir(module) if inspect.isclass(getattr(module, n)))
    extra = set(value) - {"class_name", "config"}
    config = value.get("config", {})
    if extra or not isinstance(config, dict) or any(_has_mapping(v) for v in config.values()):
        raise where.error(f"`{key}` must be {{class_name: ..., config: {{...}}}} with plain values, received "
                          f"{quote(value)}.", hint="Keys such as module or registered_name are not accepted.",
                          key=key)
    cls = getattr(module, str(value.get("class_name")), None) if value.get("class_name") in names else None
    if cls is None:
        raise where.error(f"`{key}` names no class of keras.{module_name}: {quote(value.get('class_name'))}.",
                          hint=suggest(str(value.get("class_name")), names) or f"Known: {', '.join(names)}.",
                          key=key)
    return cls


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


def expected_type(param: inspect.Parameter) -> str | None:
    """bool, int, number, ints or None (anything): what cnnzoo checks an argument against (also the schema's type)."""
    return _expected_type(param)


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
    args = {key: _convert_arg(key, value, node.where) for key, value in node.args.items()}
    args["name"] = node.name  # an explicit name is prefixed with its block instance (stem.conv1)
    if dtype:
        args.setdefault("dtype", dtype)
    try:
        with _safe_mode():
            return cls(**args)
    except Exception as exc:  # Keras validates arguments in constructors with many error types
        raise node.where.error(f"Keras could not create {node.type}: {_first_line(exc)}") from None


def _convert_arg(key: str, value: Any, where) -> Any:
    if key in NESTED_LAYER_ARGS and hasattr(value, "type"):
        return create_layer(value)
    if isinstance(value, dict):
        cls = object_class(key, value, where)
        try:
            return cls(**_tuple_lists(value.get("config", {})))
        except Exception as exc:  # wrong or missing constructor arguments
            raise where.error(f"Keras could not create {cls.__name__} for `{key}`: {_first_line(exc)}",
                              key=key) from None
    return _tuple_lists(value)


def _safe_mode():
    """Keras' safe mode for anything a layer deserialises itself (it refuses Python lambdas)."""
    from keras.src.saving.serialization_lib import SafeModeScope

    return SafeModeScope(True)


def _tuple_lists(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuple_lists(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuple_lists(v) for k, v in value.items()}
    return value


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
