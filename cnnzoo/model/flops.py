"""Forward FLOPs per sample for each Keras layer (a multiply-add counts as 2).

Conventions follow TensorFlow's profiler: convolutions and matmuls 2 per multiply-add, a bias
add 1 per output, pooling the window size per output, softmax 5 per element. Elementwise
activations count 1 per element (the profiler ignores them; they are well under 1%).
"""

from __future__ import annotations

import math
from typing import Any, Callable

from cnnzoo.layers.registry import ELEMENTWISE_MERGES

_COUNTERS: dict[str, Callable[[Any, list[tuple], tuple], int]] = {}


def _register(*class_names: str):
    def wrap(fn):
        for name in class_names:
            _COUNTERS[name] = fn
        return fn
    return wrap


def layer_flops(layer: Any) -> int:
    """FLOPs for one sample through `layer`, from the shapes it was called with."""
    inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
    in_shapes = [tuple(t.shape[1:]) for t in inputs]
    out_shape = tuple(layer.output.shape[1:])
    counter = next((_COUNTERS[k.__name__] for k in type(layer).__mro__ if k.__name__ in _COUNTERS), None)
    flops = counter(layer, in_shapes, out_shape) if counter else 0
    return flops + _activation_flops(layer, out_shape)


def _size(shape: tuple) -> int:
    return math.prod(d for d in shape if d is not None)


def _activation_flops(layer: Any, out_shape: tuple) -> int:
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", "linear")
    if name == "linear" or type(layer).__name__ == "Activation":
        return 0
    return (5 if name == "softmax" else 1) * _size(out_shape)


def _bias(layer: Any, out_shape: tuple) -> int:
    return _size(out_shape) if getattr(layer, "use_bias", False) else 0


@_register("BaseConv")
def _conv(layer, in_shapes, out_shape):
    kernel = math.prod(layer.kernel_size)
    channels_in = in_shapes[0][-1 if layer.data_format == "channels_last" else 0]
    per_output = 2 * kernel * channels_in // layer.groups
    return per_output * _size(out_shape) + _bias(layer, out_shape)


@_register("BaseConvTranspose")
def _conv_transpose(layer, in_shapes, out_shape):
    kernel = math.prod(layer.kernel_size)
    return 2 * kernel * layer.filters * _size(in_shapes[0]) + _bias(layer, out_shape)


@_register("BaseDepthwiseConv")
def _depthwise(layer, in_shapes, out_shape):
    return 2 * math.prod(layer.kernel_size) * _size(out_shape) + _bias(layer, out_shape)


@_register("BaseSeparableConv")
def _separable(layer, in_shapes, out_shape):
    channels_in = in_shapes[0][-1]
    spatial = _size(out_shape) // out_shape[-1]
    depthwise = 2 * math.prod(layer.kernel_size) * channels_in * layer.depth_multiplier * spatial
    pointwise = 2 * channels_in * layer.depth_multiplier * _size(out_shape)
    return depthwise + pointwise + _bias(layer, out_shape)


@_register("Dense")
def _dense(layer, in_shapes, out_shape):
    return 2 * in_shapes[0][-1] * _size(out_shape) + _bias(layer, out_shape)


@_register("BasePooling")
def _pooling(layer, in_shapes, out_shape):
    return math.prod(layer.pool_size) * _size(out_shape)


@_register("BaseGlobalPooling")
def _global_pooling(layer, in_shapes, out_shape):
    return _size(in_shapes[0])


@_register("BatchNormalization", "LayerNormalization", "GroupNormalization")
def _normalization(layer, in_shapes, out_shape):
    return 2 * _size(out_shape)  # inference: one scale and one shift per element


@_register("ReLU", "LeakyReLU", "ELU", "PReLU", "Activation", "ScaledTanh")
def _elementwise(layer, in_shapes, out_shape):
    return _size(out_shape)


@_register("Softmax")
def _softmax(layer, in_shapes, out_shape):
    return 5 * _size(out_shape)


@_register(*ELEMENTWISE_MERGES)
def _merge(layer, in_shapes, out_shape):
    return (len(in_shapes) - 1) * _size(out_shape)


# cnnzoo's own layers (layers/custom.py)
@_register("Subsampling2D")
def _subsampling(layer, in_shapes, out_shape):
    return (math.prod(layer.pool_size) + 1) * _size(out_shape)  # the window sum, x coefficient, + bias


@_register("TableConv2D")
def _table_conv(layer, in_shapes, out_shape):
    taps = math.prod(layer.kernel_size) * sum(len(maps) for maps in layer.connections)  # connected only
    return 2 * taps * _size(out_shape[:-1]) + _bias(layer, out_shape)


@_register("RBFOutput")
def _rbf(layer, in_shapes, out_shape):
    distances = 3 * in_shapes[0][-1] * _size(out_shape)  # subtract, square, add
    return distances + (5 * _size(out_shape) if layer.output_kind == "probabilities" else 0)
