"""What a trained network looks at: Grad-CAM maps, first-layer filters and feature maps, computed from
a run's checkpoint. The pictures themselves are drawn by cnnzoo.runs.pictures; this module only computes.

Layer names are the Keras names `cnnzoo summary --expand` prints (block and branch prefixes included).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnzoo.errors import RunError, suggest

CONV_TYPES = ("Conv1D", "Conv2D", "SeparableConv1D", "SeparableConv2D", "DepthwiseConv2D", "DepthwiseConv1D")


@dataclass
class CamResult:
    """Grad-CAM of one input: the class explained, its probability, and the map at input resolution
    (H, W) for images or (L,) for series, scaled to [0, 1]."""

    predicted: int
    probability: float
    explained: int
    heatmap: np.ndarray


def layer_names(model: Any) -> list[str]:
    return [layer.name for layer in model.layers if type(layer).__name__ != "InputLayer"]


def get_layer(model: Any, name: str, run_path: Any) -> Any:
    """The layer called `name`, or a RunError with did-you-mean."""
    names = layer_names(model)
    if name not in names:
        raise RunError(f"{run_path}: the model has no layer `{name}`. "
                       + (suggest(name, names) or f"Layers: {', '.join(names[:30])}."))
    return model.get_layer(name)


def _spatial_rank(layer: Any) -> int:
    """1 or 2 when the layer's output is a feature map with spatial extent (length or height x width > 1)."""
    shape = tuple(layer.output.shape)
    spatial = shape[1:-1]
    if len(spatial) in (1, 2) and all(d is not None for d in spatial) and max(spatial) > 1:
        return len(spatial)
    return 0


def default_cam_layer(model: Any, run_path: Any) -> Any:
    """The last convolutional layer whose output still has spatial extent (else the last such layer)."""
    spatial = [layer for layer in model.layers[1:] if _spatial_rank(layer)]
    convs = [layer for layer in spatial if type(layer).__name__ in CONV_TYPES]
    if not spatial:
        raise RunError(f"{run_path}: no layer of this model has a spatial output, so Grad-CAM has nothing to map.")
    return (convs or spatial)[-1]


def cam_layer(model: Any, name: str | None, run_path: Any) -> Any:
    layer = default_cam_layer(model, run_path) if name is None else get_layer(model, name, run_path)
    if not _spatial_rank(layer):
        raise RunError(f"{run_path}: layer `{layer.name}` has output shape {tuple(layer.output.shape)}, which has "
                       f"no spatial extent; Grad-CAM needs a convolutional feature map. Pick a layer before the "
                       f"flattening or global pooling (default: `{default_cam_layer(model, run_path).name}`).")
    return layer


def grad_cam(model: Any, layer: Any, inputs: np.ndarray, class_index: int | None = None) -> list[CamResult]:
    """Grad-CAM (Selvaraju et al.): the feature maps of `layer`, weighted by the spatial mean of the
    gradient of the class score, summed over channels, ReLU'd, and resized to the input."""
    import keras
    import tensorflow as tf

    probe = keras.Model(model.inputs[0], [layer.output, model.output])
    x = tf.convert_to_tensor(inputs, tf.float32)
    with tf.GradientTape() as tape:
        maps, probs = probe(x, training=False)  # under mixed precision the maps are 16-bit
        probs = tf.cast(probs, tf.float32)
        predicted = tf.argmax(probs, axis=-1, output_type=tf.int32)
        explained = predicted if class_index is None else tf.fill(tf.shape(predicted), class_index)
        score = tf.gather(_class_scores(probs), explained, batch_dims=1)
    grads = tf.cast(tape.gradient(score, maps), tf.float32)
    maps = tf.cast(maps, tf.float32)
    axes = tuple(range(1, len(maps.shape) - 1))
    weights = tf.reduce_mean(grads, axis=axes, keepdims=True)
    cams = tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1)).numpy()
    probs = probs.numpy()
    return [CamResult(int(p), float(probs[i, p]), int(e), _to_input_size(cams[i], inputs.shape[1:-1]))
            for i, (p, e) in enumerate(zip(predicted.numpy(), explained.numpy()))]


def _class_scores(probs):
    """A sigmoid output of one unit scores class 1 as p and class 0 as 1 - p."""
    import tensorflow as tf

    return tf.concat([1 - probs, probs], axis=-1) if probs.shape[-1] == 1 else probs


def _to_input_size(cam: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    import tensorflow as tf

    if cam.ndim == 1:
        resized = np.interp(np.linspace(0, len(cam) - 1, size[0]), np.arange(len(cam)), cam)
    else:
        resized = tf.image.resize(cam[..., None], size, method="bilinear").numpy()[..., 0]
    peak = resized.max()
    return resized / peak if peak > 0 else resized


def conv_kernels(model: Any, name: str | None, run_path: Any) -> tuple[Any, np.ndarray]:
    """(layer, kernel as float32 (filters, *window, in_channels)) of a convolutional layer; default the first."""
    if name is None:
        convs = [layer for layer in model.layers if type(layer).__name__ in CONV_TYPES]
        if not convs:
            raise RunError(f"{run_path}: the model has no convolutional layer, so it has no filters to show.")
        layer = convs[0]
    else:
        layer = get_layer(model, name, run_path)
        if type(layer).__name__ not in CONV_TYPES:
            raise RunError(f"{run_path}: layer `{name}` is a {type(layer).__name__}, not a convolution; `filters` "
                           f"shows the kernels of Conv1D/Conv2D layers.")
    kernel = np.asarray(layer.kernel.numpy(), np.float32)  # (*window, in, out)
    return layer, np.moveaxis(kernel, -1, 0)


def default_map_layers(model: Any) -> list[str]:
    """Every convolution and pooling layer with a spatial output (LeNet-5's C1, S2, C3, S4 ...), at most 8."""
    return [layer.name for layer in model.layers[1:]
            if _spatial_rank(layer) and ("Conv" in type(layer).__name__ or "Pool" in type(layer).__name__)][:8]


def feature_maps(model: Any, names: list[str], inputs: np.ndarray, run_path: Any) -> list[tuple[Any, np.ndarray]]:
    """(layer, its output for the one input, without the batch axis) for each named layer."""
    import keras

    layers = [get_layer(model, name, run_path) for name in names]
    probe = keras.Model(model.inputs[0], [layer.output for layer in layers])
    outputs = probe(inputs[:1], training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [(layer, np.asarray(keras.ops.convert_to_numpy(out), np.float32)[0]) for layer, out in zip(layers, outputs)]
