"""Exported models loaded back in their own runtime, each as `predict(batch) -> outputs` for one batch.

TensorFlow loads a SavedModel (its `serve` endpoint), LiteRT (`ai_edge_litert`, else TensorFlow's
`tf.lite` interpreter) runs a `.tflite` file, quantising float inputs and dequantising integer outputs
with the file's own parameters, onnxruntime runs an `.onnx` file, and Keras loads a `.keras` file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from cnnzoo.errors import CnnzooError

Runner = Callable[[np.ndarray], np.ndarray]


class MissingRuntime(CnnzooError):
    """An optional runtime or converter is not installed."""


def need(module: str, purpose: str, extra: str = "export"):
    """Import an optional package of `extra`, or say how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingRuntime(f"{purpose} needs the Python package `{module.split('.')[0]}`, which is not "
                             f"installed; install the {extra} extra: pip install 'cnnzoo[{extra}]'.") from None


def savedmodel_runner(path: Path) -> Runner:
    import tensorflow as tf

    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    name = next(iter(serve.structured_input_signature[1]))
    return lambda x: next(iter(serve(**{name: tf.constant(x)}).values())).numpy()


def tflite_runner(path: Path) -> Runner:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # TensorFlow's own interpreter, deprecated in favour of LiteRT
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    allocated = tuple(source["shape"])  # the input shape the tensors are allocated for now

    def run(x: np.ndarray) -> np.ndarray:
        nonlocal allocated
        if allocated != x.shape:
            interpreter.resize_tensor_input(source["index"], x.shape)
            interpreter.allocate_tensors()
            allocated = x.shape
        interpreter.set_tensor(source["index"], _quantize(x, source))
        interpreter.invoke()
        return _dequantize(interpreter.get_tensor(target["index"]), target)

    return run


def _quantize(x: np.ndarray, details: dict) -> np.ndarray:
    scale, zero = details["quantization"]
    dtype = details["dtype"]
    if scale and np.issubdtype(x.dtype, np.floating) and np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
    return x.astype(dtype)


def _dequantize(y: np.ndarray, details: dict) -> np.ndarray:
    scale, zero = details["quantization"]
    if scale and np.issubdtype(y.dtype, np.integer):
        return (y.astype(np.float32) - zero) * scale
    return y.astype(np.float32)


def onnx_runner(path: Path) -> Runner:
    ort = need("onnxruntime", "verifying an ONNX export")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def keras_runner(path: Path) -> Runner:
    import keras

    import cnnzoo.layers.custom  # noqa: F401  (registers cnnzoo's own layers for load_model)

    model = keras.models.load_model(path)
    return lambda x: np.asarray(model.predict_on_batch(x))
