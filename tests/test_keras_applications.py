"""The shipped ResNet50, MobileNetV2 and EfficientNet-B0 configs against `keras.applications`:
the same layers with weights (class, output shape, parameters), the same merges and stochastic-depth
Dropouts (rate and noise shape too), the same totals. Keras' padding, reshape and activation layers have no weights and are
left out of the comparison: the configs use `padding: same` (the same shapes as Keras' ZeroPadding2D
before a strided convolution at 224x224) and GlobalAveragePooling2D(keepdims) instead of a Reshape."""

from __future__ import annotations

from collections import Counter

import pytest

APPLICATIONS = {"resnet50": "ResNet50", "mobilenet_v2": "MobileNetV2", "efficientnet_b0": "EfficientNetB0"}
COMPARED = ("Add", "Multiply", "Dropout")  # no weights, but they are the structure the new constructs build


def structure(model) -> Counter:
    """(class, output shape, parameters, dropout rate and noise shape) of every layer that has weights or
    merges/drops a branch."""
    return Counter((type(layer).__name__, tuple(layer.output.shape), layer.count_params(),
                    getattr(layer, "rate", None), getattr(layer, "noise_shape", None))
                   for layer in model.layers[1:]
                   if layer.count_params() or type(layer).__name__ in COMPARED)


@pytest.fixture(scope="module")
def keras_model():
    import keras

    cache: dict = {}

    def get(name: str):
        if name not in cache:
            cache[name] = getattr(keras.applications, APPLICATIONS[name])(weights=None)
        return cache[name]

    return get


@pytest.mark.parametrize("name", sorted(APPLICATIONS))
def test_shipped_config_is_layer_for_layer_keras_applications(name, build_shipped, keras_model):
    config, built = build_shipped(name)
    ours, reference = built.model, keras_model(name)
    assert ours.count_params() == reference.count_params()
    assert len(ours.non_trainable_weights) == len(reference.non_trainable_weights)
    assert ours.output_shape == reference.output_shape
    mine, theirs = structure(ours), structure(reference)
    assert mine == theirs, f"only cnnzoo: {mine - theirs}; only Keras: {theirs - mine}"

