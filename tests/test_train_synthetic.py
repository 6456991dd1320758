"""The train path without any real dataset: train, resume, eval and plot on small datasets the tests
generate (class-coloured images in an image folder, offset series in UCR format), learnable in a few
epochs. Runs the same code paths as the real-data tests, with the schedules and callbacks switched on."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cnnzoo.cli import app
from data_fixtures import assert_drawn_png, encode, ucr_rows, write_files, write_ucr

IMAGES = textwrap.dedent("""\
    name: colours
    input: {shape: [16, 16, 3]}
    model:
      layers:
        - Conv2D: {filters: 8, kernel_size: 3, activation: relu}
        - GlobalAveragePooling2D
        - Dense: {units: 3, activation: softmax}
    data: {dataset: image_folder, path: PATH, validation_split: 0.2, test_split: 0.2, scale: 0.00392156862745098}
    train:
      epochs: 4
      batch_size: 16
      optimizer: {name: adam, learning_rate: 0.05}
      schedule: {name: cosine, warmup_epochs: 1}
      early_stopping: {monitor: val_loss, patience: 10}
    """)
SERIES = textwrap.dedent("""\
    name: offsets
    input: {shape: [32, 1]}
    model:
      layers:
        - Conv1D: {filters: 8, kernel_size: 3, activation: relu}
        - GlobalAveragePooling1D
        - Dense: {units: 2, activation: softmax}
    data: {dataset: ucr, name: Offsets}
    train:
      epochs: 2
      batch_size: 16
      optimizer: {name: sgd, learning_rate: 0.1, momentum: 0.9}
      schedule: {name: plateau, patience: 1}
      checkpoint: {monitor: val_loss}
    """)


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNZOO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("CNNZOO_DATA_DIR", raising=False)


def _coloured(label: int, seed: int) -> np.ndarray:
    """A noisy 16x16 image whose brightest channel is the class."""
    rng = np.random.default_rng([label, seed])
    image = rng.integers(0, 90, (16, 16, 3))
    image[..., label] += 150
    return image.astype(np.uint8)


@pytest.fixture
def image_config(tmp_path) -> Path:
    entries = {f"class_{label}/img_{i:03d}.png": encode(_coloured(label, seed=i), "png")
               for label in range(3) for i in range(60)}
    write_files(tmp_path / "colours", entries)
    config = tmp_path / "colours.yaml"
    config.write_text(IMAGES.replace("PATH", str(tmp_path / "colours")))
    return config


@pytest.fixture
def series_config(tmp_path) -> tuple[Path, Path]:
    labels = [0, 1] * 80
    write_ucr(tmp_path / "data" / "ucr" / "Offsets", "Offsets", ucr_rows(labels, 32, seed=1),
              ucr_rows(labels[:40], 32, seed=2))
    config = tmp_path / "offsets.yaml"
    config.write_text(SERIES)
    return config, tmp_path / "data"


def _train(*args: str) -> Path:
    result = CliRunner().invoke(app, ["train", *args])
    assert result.exit_code == 0, result.output
    return result


def test_images_train_eval_plot_without_real_data(image_config, tmp_path):
    runs = tmp_path / "runs"
    _train(str(image_config), "--runs-dir", str(runs))
    (run,) = runs.iterdir()
    history = pd.read_csv(run / "history.csv")
    assert list(history["epoch"]) == [1, 2, 3, 4]
    rates = history["learning_rate"].tolist()
    assert rates[0] == pytest.approx(0.05) and rates[-1] < rates[1]  # warm-up, then cosine decay
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.9, metrics["test"]  # the colour decides the class
    assert metrics["best_epoch"] == int(history.loc[history["val_accuracy"].idxmax(), "epoch"])

    evaluated = CliRunner().invoke(app, ["eval", str(run), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.output)
    assert report["class_names"] == ["class_0", "class_1", "class_2"]
    assert report["metrics"]["accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=1e-6)
    assert np.asarray(report["confusion_matrix"]).sum() == metrics["test_samples"]

    (run / "accuracy.png").unlink()
    plotted = CliRunner().invoke(app, ["plot", str(run)])
    assert plotted.exit_code == 0, plotted.output
    assert_drawn_png(run / "accuracy.png")


def _eval_json(run: Path, *args: str) -> dict:
    evaluated = CliRunner().invoke(app, ["eval", str(run), "--json", *args])
    assert evaluated.exit_code == 0, evaluated.output
    return json.loads(evaluated.output)


def test_ema_validates_and_keeps_the_averaged_weights_in_best(image_config, tmp_path):
    """`use_ema`: each epoch's validation and best.keras use the moving average of the weights;
    last.keras keeps the raw weights, with the average in its optimizer state (for an exact resume)."""
    import keras

    runs = tmp_path / "runs"
    ema = "train.optimizer={name: adam, learning_rate: 0.05, use_ema: true, ema_momentum: 0.9}"
    _train(str(image_config), "--runs-dir", str(runs), "--epochs", "1", "--set", ema)  # best = last epoch
    (run,) = runs.iterdir()
    (validated_loss,) = pd.read_csv(run / "history.csv")["val_loss"]
    assert _eval_json(run, "--split", "val")["metrics"]["loss"] == pytest.approx(validated_loss, rel=1e-5)
    raw = _eval_json(run, "--split", "val", "--checkpoint", "last")["metrics"]["loss"]
    assert abs(raw - validated_loss) > 1e-3, (raw, validated_loss)  # the raw weights were not validated

    best, last = (keras.models.load_model(run / name) for name in ("best.keras", "last.keras"))
    averages = [v for v in last.optimizer.variables if v.path.endswith("_average")]
    assert len(averages) == len(last.trainable_variables) == len(best.trainable_variables)
    for kept, average in zip(best.trainable_variables, averages):
        np.testing.assert_allclose(kept.numpy(), average.numpy(), rtol=1e-6, atol=1e-7)  # swaps add


def test_series_train_then_resume_continues_the_same_run(series_config, tmp_path):
    config, data = series_config
    runs = tmp_path / "runs"
    _train(str(config), "--runs-dir", str(runs), "--data-dir", str(data))
    (run,) = runs.iterdir()
    first = pd.read_csv(run / "history.csv")
    resumed = _train("--resume", str(run), "--epochs", "4", "--data-dir", str(data))
    assert "resuming after epoch 2 of 4" in resumed.output
    history = pd.read_csv(run / "history.csv")
    assert list(history["epoch"]) == [1, 2, 3, 4]
    pd.testing.assert_frame_equal(history.iloc[:2][["loss", "val_loss"]], first[["loss", "val_loss"]])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 4
    assert metrics["best_epoch"] == int(history.loc[history["val_loss"].idxmin(), "epoch"])
    assert metrics["test"]["accuracy"] >= 0.9, metrics["test"]
