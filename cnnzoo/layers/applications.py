"""`- Application: {name: MobileNetV2, weights: imagenet, include_top: false, pooling: avg}`: any model of
`keras.applications` as one entry, with its own input preprocessing inside the model.

The arguments are checked against the application function's signature like layer arguments;
`input_shape` comes from the entry's input. `weights` is `imagenet` (downloaded by Keras into
`~/.keras/models`), null, or a path to a weights file. `preprocess: false` leaves out the
application's `preprocess_input`, which otherwise runs first, on pixels brought back to 0..255
(the pipeline multiplied them by `data.scale`).
"""

from __future__ import annotations

import functools
import importlib
import inspect
from pathlib import Path
from typing import Any

from cnnzoo.errors import suggest
from cnnzoo.layers.registry import check_args

APPLICATION = "Application"
SUPPLIED = ("input_shape", "input_tensor", "name")  # set by cnnzoo, not by the config
OWN_KEYS = {"name": "the application, e.g. MobileNetV2", "preprocess": "true or false"}


@functools.lru_cache(maxsize=1)
def application_functions() -> dict[str, Any]:
    """Every model constructor of `keras.applications`, by name."""
    import keras

    return {name: getattr(keras.applications, name) for name in dir(keras.applications)
            if name[:1].isupper() and callable(getattr(keras.applications, name))}


def check_application(args: dict[str, Any], where) -> None:
    """`name` names a keras.applications model; the other arguments fit its signature."""
    functions = application_functions()
    name = args.get("name")
    if not isinstance(name, str) or name not in functions:
        raise where.error(f"`Application` needs `name:` one of keras.applications' models, received {name!r}.",
                          hint=suggest(str(name), list(functions)) or f"Known: {', '.join(sorted(functions))}.",
                          key="name")
    if not isinstance(args.get("preprocess", True), bool):
        raise where.error(f"`preprocess` must be true or false, received {args['preprocess']!r}.", key="preprocess")
    signature = {key: param for key, param in inspect.signature(functions[name]).parameters.items()
                 if key not in SUPPLIED}
    check_args(name, signature, {k: v for k, v in args.items() if k not in OWN_KEYS}, where)
    weights = args.get("weights", "imagenet")
    if weights is not None and not isinstance(weights, str):
        raise where.error(f"`weights` must be imagenet, null or a path to a weights file, received {weights!r}.",
                          key="weights")


def create_application(node, input_shape: tuple, pixel_scale: float | None) -> Any:
    """The application as one Keras model named after the entry: preprocessing, then the network."""
    import keras

    args = {k: v for k, v in node.args.items() if k not in OWN_KEYS}
    weights = args.get("weights", "imagenet")
    if weights not in (None, "imagenet") and not Path(weights).is_file():
        raise node.where.error(f"weights file {weights} does not exist.", key="weights")
    inputs = keras.Input(shape=tuple(input_shape), name=f"{node.name}.input")
    x = ApplicationPreprocess(node.args["name"], pixel_scale, name=f"{node.name}.preprocess")(inputs) \
        if node.args.get("preprocess", True) else inputs
    try:
        network = application_functions()[node.args["name"]](input_shape=tuple(input_shape), **args)
    except Exception as exc:  # Keras reports bad shapes with ValueError, failed downloads with Exception
        raise _build_error(node, weights, exc) from None
    return keras.Model(inputs, network(x), name=node.name)


def _build_error(node, weights: Any, exc: Exception):
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    if weights == "imagenet" and ("fetch" in reason.lower() or "url" in reason.lower()):
        return node.where.error(
            f"the ImageNet weights of {node.args['name']} could not be downloaded ({reason}).",
            hint="Keras keeps them in ~/.keras/models (or $KERAS_HOME/models) once downloaded: connect once, or copy "
                 "the file there, or use `weights: null` or `weights: PATH` to a weights file.", key="weights")
    return node.where.error(f"Keras could not build {node.args['name']}: {reason}")


def preprocess_function(application: str):
    """The `preprocess_input` of the application's own module."""
    module = importlib.import_module(application_functions()[application].__module__)
    return module.preprocess_input


def _register(cls):
    import keras

    return keras.saving.register_keras_serializable(package="cnnzoo")(cls)


def _layer_base():
    import keras

    return keras.layers.Layer


@_register
class ApplicationPreprocess(_layer_base()):
    """An application's `preprocess_input` on 0..255 pixels (inputs divided by `pixel_scale` first)."""

    def __init__(self, application: str, pixel_scale: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self.application = application
        self.pixel_scale = pixel_scale

    def call(self, inputs):
        pixels = inputs / self.pixel_scale if self.pixel_scale else inputs
        return preprocess_function(self.application)(pixels)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "application": self.application, "pixel_scale": self.pixel_scale}
