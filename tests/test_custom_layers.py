"""cnnzoo's own layers (the 1998 LeNet-5's) against hand computations, from YAML with Keras' argument
checks, and through a real run: train, then eval and reload from the saved .keras checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cnnzoo.config import load_config
from cnnzoo.errors import ConfigError
from cnnzoo.layers.custom import LENET5_C3_TABLE, RBFOutput, ScaledTanh, Subsampling2D, TableConv2D, digit_prototypes
from cnnzoo.model.builder import build_model
from tiny_runs import invoke, tiny_setup, train_tiny

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def test_scaled_tanh_maps_plus_minus_one_to_themselves():
    x = np.array([[-1.0, 0.0, 1.0, 3.0]], np.float32)
    y = np.asarray(ScaledTanh()(x))
    np.testing.assert_allclose(y, 1.7159 * np.tanh(2.0 * x / 3.0), rtol=1e-6)
    np.testing.assert_allclose(y[0, [0, 2]], [-1.0, 1.0], atol=2e-4)  # the paper's choice of A and S


def test_subsampling_is_window_sum_times_coefficient_plus_bias():
    x = np.arange(32, dtype=np.float32).reshape(1, 4, 4, 2)
    layer = Subsampling2D(pool_size=2)
    layer.build(x.shape)
    layer.set_weights([np.array([2.0, -1.0], np.float32), np.array([0.5, 3.0], np.float32)])
    # map 0, top-left window: x[0,0,0,0]=0, x[0,0,1,0]=2, x[0,1,0,0]=8, x[0,1,1,0]=10 -> sum 20
    # map 1, bottom-right window: 21+23+29+31 = 104
    y = np.asarray(layer(x))
    assert y.shape == (1, 2, 2, 2) and layer.count_params() == 4
    assert y[0, 0, 0, 0] == pytest.approx(2.0 * 20 + 0.5)
    assert y[0, 1, 1, 1] == pytest.approx(-1.0 * 104 + 3.0)


def test_table_convolution_sees_only_its_connected_maps():
    layer = TableConv2D(filters=2, kernel_size=2, connections=[[0], [1, 2]])
    x = np.random.default_rng(0).normal(size=(1, 3, 3, 3)).astype(np.float32)
    layer.build(x.shape)
    assert layer.count_params() == 4 + 8 + 2  # one 2x2 kernel, two 2x2 kernels, two biases
    weights = np.arange(1, 13, dtype=np.float32) / 10
    layer.set_weights([weights, np.array([0.25, -1.0], np.float32)])
    y = np.asarray(layer(x))
    kernels = {(0, 0): weights[0:4].reshape(2, 2), (1, 1): weights[4:8].reshape(2, 2),
               (2, 1): weights[8:12].reshape(2, 2)}
    expected = np.zeros((2, 2, 2), np.float32) + [0.25, -1.0]
    for (m, k), w in kernels.items():
        for i in range(2):
            for j in range(2):
                expected[i, j, k] += np.sum(x[0, i:i + 2, j:j + 2, m] * w)
    np.testing.assert_allclose(y[0], expected, rtol=1e-5)
    changed = x.copy()
    changed[..., 1:] += 5.0  # maps 1 and 2 do not reach filter 0
    np.testing.assert_allclose(np.asarray(layer(changed))[..., 0], y[..., 0], rtol=1e-6)


def test_the_default_table_is_the_papers_c3():
    layer = TableConv2D(filters=16, kernel_size=5)
    layer.build((None, 14, 14, 6))
    assert layer.count_params() == 1_516
    assert [len(maps) for maps in LENET5_C3_TABLE] == [3] * 6 + [4] * 9 + [6]
    assert [k for k, maps in enumerate(LENET5_C3_TABLE) if 0 in maps] == [0, 4, 5, 6, 9, 10, 11, 12, 14, 15]


def test_rbf_output_is_squared_distance_to_fixed_bitmaps():
    prototypes = digit_prototypes()
    assert prototypes.shape == (84, 10) and set(np.unique(prototypes)) == {-1.0, 1.0}
    assert len({tuple(column) for column in prototypes.T}) == 10  # ten different digits
    x = np.stack([prototypes[:, 3], np.zeros(84, np.float32)])
    distances = RBFOutput(output="distances")
    y = np.asarray(distances(x))
    assert y[0, 3] == 0.0 and y[1, 7] == pytest.approx(84.0)  # |0 - (+-1)|^2 summed over 84 units
    assert y[0, 8] == pytest.approx(np.sum((prototypes[:, 3] - prototypes[:, 8]) ** 2))
    assert distances.trainable_weights == [] and distances.count_params() == 840
    probabilities = np.asarray(RBFOutput()(x))
    np.testing.assert_allclose(probabilities[0], np.exp(-y[0]) / np.exp(-y[0]).sum(), rtol=1e-5, atol=1e-30)
    assert probabilities[0].argmax() == 3


LAYER_ERRORS = [
    ("- TableConv2D: {filters: 16}", "TableConv2D needs argument(s) kernel_size"),
    ("- TableConv2D: {filters: 4, kernel_size: 5}", "`connections` needs one list of input maps per filter"),
    ("- TableConv2D: {filters: 1, kernel_size: 3, connections: [[0, 9]]}", "distinct input maps 0..0"),
    ("- Subsampling2D: {pool: 2}", "Subsampling2D has no argument `pool`"),
    ("- ScaledTanh: {amplitude: big}", "ScaledTanh argument `amplitude` must be a number"),
    ("- Flatten\n    - RBFOutput: {output: logits}", "`output` must be one of probabilities, distances"),
    ("- Flatten\n    - RBFOutput: {units: 10}", "the 7x12 bitmaps need 84 inputs"),
]


@pytest.mark.parametrize("entry, message", LAYER_ERRORS)
def test_yaml_arguments_are_checked_like_keras_layers(tmp_path, entry, message):
    path = tmp_path / "m.yaml"
    path.write_text(f"name: m\ninput: {{shape: [8, 8, 1]}}\nmodel:\n  layers:\n    {entry}\n")
    with pytest.raises(ConfigError) as info:
        build_model(load_config(path))
    assert message in str(info.value) and "m.yaml" in str(info.value)


def test_lenet5_1998_trains_then_evaluates_and_reloads_from_its_checkpoint(tmp_path):
    config, data_dir = tiny_setup(tmp_path)
    run = train_tiny(CONFIGS / "lenet5_1998.yaml", tmp_path / "runs", data_dir, "--epochs", "1",
                     "--set", "train.batch_size=16")
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
    evaluated = invoke("eval", run, "--data-dir", data_dir)
    assert evaluated.exit_code == 0, evaluated.output
    assert f"{metrics['test']['accuracy']:.4f}"[:4] in evaluated.output
    from cnnzoo.runs.folder import load_checkpoint

    model = load_checkpoint(run / "best.keras")
    assert [type(layer).__name__ for layer in model.layers].count("ScaledTanh") == 6
    assert model.count_params() == 60_840 and len(model.non_trainable_weights) == 1
    np.testing.assert_array_equal(model.get_layer("output").get_weights()[0], digit_prototypes())


def test_lenet5_1998_has_the_papers_parameters_layer_by_layer():
    from cnnzoo.model.summary import summarize

    config = load_config(CONFIGS / "lenet5_1998.yaml")
    rows = {row.name: row for row in summarize(config, build_model(config)).layers}
    assert [rows[n].params for n in ("C1", "S2", "C3", "S4", "C5", "F6", "output")] == [
        156, 12, 1_516, 32, 48_120, 10_164, 840]
    assert rows["C3"].flops == 2 * 150_000 + 1_600  # the paper's 151,600 connections: 150,000 taps, 1,600 biases
