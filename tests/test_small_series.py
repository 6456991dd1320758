"""Small time-series sets as the papers train them (issue 34): the BatchNormalization trap caught after
training and on eval, a validation split too small to choose by said before training, and
`input.shape: auto` / `units: auto` filled from the dataset. Real training through the CLI on UCR files
written here: series of small amplitude (variance ~0.01), so Keras' default BN momentum 0.99 leaves
the moving variance near its initial 1.0 after a few steps, as on ECG200."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from data_fixtures import write_ucr
from tiny_runs import invoke

LENGTH = 24
CONFIG = """\
name: series
input: {{shape: {shape}}}
model:
  layers:
    - Conv1D: {{filters: 8, kernel_size: 3, padding: same}}
    - BatchNormalization: {{momentum: {momentum}}}
    - ReLU
    - GlobalAveragePooling1D
    - Dense: {{units: {units}, activation: softmax}}
data: {{dataset: ucr, name: Small, validation_split: {val}}}
train: {{epochs: {epochs}, batch_size: 8, learning_rate: 0.01{train}}}
"""


def small_series(folder: Path, train: int = 48, test: int = 24, classes: int = 2) -> Path:
    """A UCR set whose classes differ in the sign of a small bump: variance ~0.01 everywhere."""
    rng = np.random.default_rng(0)

    def rows(count):
        labels = np.arange(count) % classes
        bump = np.sin(np.linspace(0, np.pi, LENGTH))
        return [[int(k) + 1, *np.round(0.1 * (2 * (k % 2) - 1) * bump * (1 + k // 2) + rng.normal(0, 0.03, LENGTH),
                                       5)] for k in labels]

    write_ucr(folder / "ucr" / "Small", "Small", rows(train), rows(test))
    return folder


def config(tmp_path: Path, *, momentum=0.99, shape=f"[{LENGTH}, 1]", units=2, val=0, epochs=2, train="") -> Path:
    path = tmp_path / "series.yaml"
    path.write_text(CONFIG.format(momentum=momentum, shape=shape, units=units, val=val, epochs=epochs, train=train))
    return path


def train(config_path: Path, tmp_path: Path, *extra) -> tuple[Path, str]:
    runs = tmp_path / "runs"
    before = set(runs.iterdir()) if runs.exists() else set()
    result = invoke("train", config_path, "--runs-dir", runs, "--data-dir", tmp_path / "data", *extra)
    assert result.exit_code == 0, result.output
    (run,) = set(runs.iterdir()) - before
    return run, " ".join(result.output.split())


def test_the_batchnorm_trap_is_caught_after_training_and_on_eval(tmp_path):
    small_series(tmp_path / "data")
    run, said = train(config(tmp_path, momentum=0.99), tmp_path)
    record = json.loads((run / "metrics.json").read_text())
    check = record["batchnorm"]
    assert check["trapped"] and check["off_layers"] == ["batch_normalization"], check
    assert check["layers"][0]["variance_ratio"] > 4 and check["samples"] == 48
    assert "warning: best.keras: the BatchNormalization moving statistics of batch_normalization are far" in said
    assert "momentum 0.99" in said and record["warnings"] and "BatchNormalization" in record["warnings"][-1]
    evaluated = invoke("eval", run, "--data-dir", tmp_path / "data")
    assert evaluated.exit_code == 0, evaluated.output
    assert "moving statistics of batch_normalization are far" in " ".join(evaluated.output.split())
    assert json.loads((run / "eval.json").read_text())["batchnorm"]["trapped"]


def test_statistics_that_track_the_data_raise_no_warning(tmp_path):
    small_series(tmp_path / "data")
    run, said = train(config(tmp_path, momentum=0.1, epochs=3), tmp_path)
    check = json.loads((run / "metrics.json").read_text())["batchnorm"]
    assert not check["trapped"] and not check["off_layers"], check
    assert 0.25 < check["layers"][0]["variance_ratio"] < 4
    assert "BatchNormalization moving statistics" not in said


def test_the_check_leaves_the_model_unchanged_and_flags_what_it_should():
    import keras

    from cnnzoo.training.batchnorm_check import check_batchnorm

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((LENGTH, 1)), keras.layers.Conv1D(4, 3), keras.layers.BatchNormalization(),
                              keras.layers.Dropout(0.5), keras.layers.GlobalAveragePooling1D(),
                              keras.layers.Dense(2, activation="softmax")])
    x = np.random.default_rng(0).normal(0, 0.05, (64, LENGTH, 1)).astype(np.float32)
    before = [v.numpy().copy() for v in model.variables]
    check = check_batchnorm(model, [x[:32], x[32:]], np.arange(64) % 2, ["a", "b"])
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, model.variables))
    assert check.off_layers == [model.layers[1].name] and check.layers[0].variance_ratio > 100
    assert model.layers[1].momentum == 0.99
    bn = model.layers[1]  # the data's own statistics: nothing to flag
    features = model.layers[0](x).numpy()
    bn.moving_mean.assign(features.mean((0, 1)))
    bn.moving_variance.assign(features.var((0, 1)))
    assert not check_batchnorm(model, [x[:32], x[32:]], np.arange(64) % 2, ["a", "b"]).off_layers


def test_a_validation_split_too_small_to_choose_by_is_said(tmp_path):
    small_series(tmp_path / "data", train=40)
    run, said = train(config(tmp_path, val=0.2), tmp_path)
    assert "warning: the validation split holds 8 samples, 4 of class '1' (fewer than 10 a class)" in said
    assert "Monitor the training loss instead" in said
    assert "validation split holds" in json.loads((run / "metrics.json").read_text())["warnings"][0]
    _, quiet = train(config(tmp_path, val=0.2, train=", checkpoint: {monitor: loss}"), tmp_path)
    assert "validation split holds" not in quiet


def test_shape_and_classes_come_from_the_data(tmp_path):
    small_series(tmp_path / "data", classes=3)
    run, said = train(config(tmp_path, shape="auto", units="auto"), tmp_path)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["input"]["shape"] == [LENGTH, 1]
    assert saved["model"]["layers"][-1]["Dense"]["units"] == 3
    assert json.loads((run / "metrics.json").read_text())["class_names"] == ["1", "2", "3"]
    shown = invoke("summary", config(tmp_path, shape="auto", units="auto"), "--data-dir", tmp_path / "data")
    assert shown.exit_code == 0 and f"({LENGTH}, 1)" in shown.output, shown.output


@pytest.mark.parametrize("data, message", [
    ("{dataset: mnist}", "`input.shape: auto` is filled from time-series data"),
    ("{dataset: ucr, name: Missing}", "`input.shape: auto` reads the dataset, which failed: UCR Missing data not found"),
])
def test_auto_where_the_data_cannot_say_is_an_error_at_its_line(tmp_path, data, message):
    small_series(tmp_path / "data")
    path = config(tmp_path, shape="auto")
    path.write_text(path.read_text().replace("{dataset: ucr, name: Small, validation_split: 0}", data))
    result = invoke("train", path, "--runs-dir", tmp_path / "runs", "--data-dir", tmp_path / "data")
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "Traceback" not in text and message in text, text
    assert "series.yaml:2" in text
