"""`- Application: {...}`: a keras.applications model as one entry, checked like a layer, with its own
preprocessing in the model; `weights: null` trains, a weights file loads, a .keras file round-trips."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import numpy as np
import pytest

from cnnzoo.config import load_config
from cnnzoo.errors import ConfigError
from cnnzoo.model.builder import build_model

CONFIG = """
name: mobilenet_flowers
input: {shape: [32, 32, 3]}
model:
  layers:
    - Application: {name: MobileNetV2, alpha: 0.35, weights: WEIGHTS, include_top: false, pooling: avg}
    - Dense: {units: 17, activation: softmax}
data: {dataset: oxflower17}
"""


def config(tmp_path: Path, weights: str = "null", text: str = CONFIG):
    path = tmp_path / "app.yaml"
    path.write_text(textwrap.dedent(text.replace("WEIGHTS", weights)))
    return load_config(path)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """One build for the tests that only read or train it (MobileNetV2 has 150 layers)."""
    return build_model(config(tmp_path_factory.mktemp("app"))).model


def test_weights_null_trains_one_step_and_round_trips(model, tmp_path):
    from cnnzoo.runs.folder import load_checkpoint

    assert [layer.name for layer in model.layers] == ["input", "mobile_net_v2", "dense"]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", run_eagerly=True)  # skip tracing
    x = np.random.default_rng(0).random((4, 32, 32, 3), np.float32)
    before = [np.array(w) for w in model.trainable_weights]
    loss = float(model.train_on_batch(x, np.arange(4)))
    assert np.isfinite(loss)
    assert sum(not np.array_equal(b, np.array(a)) for b, a in zip(before, model.trainable_weights)) > 100
    model.save(tmp_path / "m.keras")
    again = load_checkpoint(tmp_path / "m.keras")
    np.testing.assert_allclose(again(x, training=False), model(x, training=False), atol=1e-6)


def test_the_applications_preprocessing_runs_on_0_255_pixels(model):
    backbone = model.get_layer("mobile_net_v2")
    preprocess = backbone.get_layer("mobile_net_v2.preprocess")
    # the pipeline feeds pixels x 1/255; MobileNetV2's preprocess_input maps 0..255 to -1..1
    np.testing.assert_allclose(preprocess(np.array([[0.0, 0.5, 1.0]], np.float32)), [[-1.0, 0.0, 1.0]], atol=1e-6)


def test_a_weights_file_is_loaded(tmp_path):
    import keras

    made = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None,
                                          pooling="avg")
    made.save_weights(tmp_path / "backbone.weights.h5")
    backbone = build_model(config(tmp_path, str(tmp_path / "backbone.weights.h5"))).model.get_layer("mobile_net_v2")
    network = backbone.layers[-1]
    for mine, theirs in zip(network.get_weights(), made.get_weights()):
        np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("change, where, message", [
    (("MobileNetV2", "MobileNetV3"), "model.layers[0].Application.name", "Did you mean `MobileNetV2`?"),
    (("alpha:", "alpah:"), "model.layers[0].Application.alpah", "MobileNetV2 has no argument `alpah`"),
    (("include_top: false", "include_top: 3"), "model.layers[0].Application.include_top", "must be true or false"),
])
def test_arguments_are_checked_like_layers(tmp_path, change, where, message):
    with pytest.raises(ConfigError) as info:
        config(tmp_path, text=CONFIG.replace(*change))
    assert info.value.path == where and message in str(info.value)


def test_a_missing_weights_file_is_an_error_at_the_entry(tmp_path):
    with pytest.raises(ConfigError, match="Application.weights: weights file .*nothing.h5 does not exist"):
        build_model(config(tmp_path, str(tmp_path / "nothing.h5")))


def _online() -> bool:
    try:
        socket.getaddrinfo("storage.googleapis.com", 443)
        return True
    except OSError:
        return False


@pytest.mark.skipif(_online(), reason="online: Keras would download the ImageNet weights")
def test_imagenet_weights_offline_give_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(ConfigError) as info:
        build_model(config(tmp_path, "imagenet"))
    text = str(info.value)
    assert "Application.weights: the ImageNet weights of MobileNetV2 could not be downloaded" in text
    assert "~/.keras/models" in text and "weights: null" in text
