"""End to end on small subsets: `cnnzoo train` of shipped configs, then `eval` and `plot` on the run folder.

The data is the generated stand-in for the shared datasets (`generated_data_dir`, conftest.py): MNIST, FordA
and Flowers-17 in their real formats, a few hundred examples each."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cnnzoo.cli import app
from data_fixtures import assert_drawn_png

REPO = Path(__file__).resolve().parent.parent
RUN_FILES = ("config.yaml", "history.csv", "best.keras", "last.keras", "accuracy.png", "loss.png",
             "metrics.json", "summary.txt")
CASES = {
    "lenet": ["--set", "data.limit=384"],
    "cnn1d": ["--set", "data.limit=256", "--set", "train.batch_size=64"],
    "alexnet": ["--set", "input.shape=[32,32,3]", "--set", "data.limit=102", "--set", "train.batch_size=16"],
}


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNZOO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))


def _train(config: str, runs_dir: Path, data_dir: Path, extra: list[str], epochs: int = 2) -> Path:
    result = CliRunner().invoke(app, ["train", str(REPO / "configs" / f"{config}.yaml"), "--epochs", str(epochs),
                                      "--runs-dir", str(runs_dir), "--data-dir", str(data_dir), *extra])
    assert result.exit_code == 0, result.output
    (run_dir,) = runs_dir.iterdir()
    assert str(run_dir) in result.output.replace("\n", "")
    return run_dir


@pytest.mark.parametrize("config", list(CASES))
def test_train_eval_plot_on_a_small_subset(config, tmp_path, generated_data_dir):
    import keras

    run_dir = _train(config, tmp_path / "runs", generated_data_dir, CASES[config])
    for name in RUN_FILES:
        assert (run_dir / name).stat().st_size > 0, name

    history = pd.read_csv(run_dir / "history.csv")
    assert list(history["epoch"]) == [1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "epoch_seconds"} <= set(history)

    metrics = json.loads((run_dir / "metrics.json").read_text())
    best = history.loc[history["val_accuracy"].idxmax()]
    assert metrics["best_epoch"] == int(best["epoch"])
    assert metrics["best"]["val_accuracy"] == pytest.approx(best["val_accuracy"])
    assert metrics["epochs_completed"] == 2 and metrics["interrupted"] is None
    assert metrics["params"] == keras.models.load_model(run_dir / "best.keras").count_params()
    assert set(metrics["versions"]) == {"python", "tensorflow", "keras", "cnnzoo"}

    result = CliRunner().invoke(app, ["eval", str(run_dir), "--data-dir", str(generated_data_dir), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["metrics"]["accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=1e-6)
    assert report["metrics"]["loss"] == pytest.approx(metrics["test"]["loss"], rel=1e-4)
    cm = np.array(report["confusion_matrix"])
    assert cm.sum() == report["samples"] == metrics["test_samples"]
    assert np.trace(cm) / cm.sum() == pytest.approx(report["metrics"]["accuracy"], abs=1e-6)
    csv = pd.read_csv(run_dir / "confusion_matrix.csv", index_col=0)
    assert csv.to_numpy().tolist() == cm.tolist()
    assert_drawn_png(run_dir / "confusion_matrix.png")
    assert json.loads((run_dir / "eval.json").read_text())["metrics"] == report["metrics"]

    (run_dir / "accuracy.png").unlink()
    result = CliRunner().invoke(app, ["plot", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert_drawn_png(run_dir / "accuracy.png")


def test_metrics_agree_with_fresh_evaluate_of_best_checkpoint(tmp_path, generated_data_dir):
    import keras

    from cnnzoo import data as datasets
    from cnnzoo.config import load_config

    run_dir = _train("lenet", tmp_path / "runs", generated_data_dir, CASES["lenet"])
    config = load_config(run_dir / "config.yaml")
    splits = datasets.load_dataset(config.data, input_shape=config.input.shape, data_dir=generated_data_dir,
                                   seed=config.train.seed, progress=False)
    model = keras.models.load_model(run_dir / "best.keras")
    loss, accuracy = model.evaluate(splits.x_test.astype("float32") / 255, splits.y_test, verbose=0)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert metrics["test"]["loss"] == pytest.approx(loss, rel=1e-4)


def test_resolved_config_rebuilds_the_same_model(tmp_path, generated_data_dir):
    from cnnzoo.config import load_config
    from cnnzoo.model.builder import build_model

    run_dir = _train("lenet", tmp_path / "runs", generated_data_dir, [*CASES["lenet"], "--seed", "7"], epochs=1)
    original = build_model(load_config(REPO / "configs" / "lenet.yaml", ["data.limit=384"])).model
    reloaded_config = load_config(run_dir / "config.yaml")
    reloaded = build_model(reloaded_config).model
    assert reloaded_config.train.seed == 7 and reloaded_config.train.epochs == 1
    assert reloaded.count_params() == original.count_params()
    assert [l.output.shape for l in reloaded.layers] == [l.output.shape for l in original.layers]


def test_plot_overlays_several_runs(tmp_path, generated_data_dir):
    first = _train("lenet", tmp_path / "a", generated_data_dir, CASES["lenet"], epochs=1)
    second = _train("lenet", tmp_path / "b", generated_data_dir, [*CASES["lenet"], "--seed", "3"], epochs=1)
    out = tmp_path / "both.png"
    result = CliRunner().invoke(app, ["plot", str(first), str(second), "--metric", "loss", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert_drawn_png(out)
    assert str(out) in result.output


def test_runs_are_never_overwritten(tmp_path, generated_data_dir):
    runs = tmp_path / "runs"
    for seed in ("1", "2"):
        result = CliRunner().invoke(app, ["train", str(REPO / "configs" / "lenet.yaml"), "--epochs", "1",
                                          "--seed", seed, "--runs-dir", str(runs), "--data-dir",
                                          str(generated_data_dir), *CASES["lenet"]])
        assert result.exit_code == 0, result.output
    assert len(list(runs.iterdir())) == 2


def test_sigint_stops_cleanly_and_leaves_a_usable_run(tmp_path, generated_data_dir):
    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "cnnzoo", "train", str(REPO / "configs" / "lenet.yaml"), "--epochs", "200",
               "--runs-dir", str(runs), "--data-dir", str(generated_data_dir), "--set", "data.limit=512"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "COLUMNS": "200"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(runs.glob("*/history.csv")):
        time.sleep(0.2)
    assert list(runs.glob("*/history.csv")), "no epoch finished in time"
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output
    assert "Traceback" not in output and "Stopped by SIGINT" in output
    (run_dir,) = runs.iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = pd.read_csv(run_dir / "history.csv")
    assert metrics["interrupted"] == "SIGINT"
    assert metrics["epochs_completed"] == len(history) >= 1 and list(history["epoch"]) == list(range(1, len(history) + 1))
    assert not list(run_dir.glob(".*tmp*")), "temporary files left behind"
    result = CliRunner().invoke(app, ["eval", str(run_dir), "--data-dir", str(generated_data_dir), "--json"])
    assert result.exit_code == 0, result.output


def test_nan_loss_stops_with_epoch_and_step_and_keeps_finite_checkpoints(tmp_path, generated_data_dir):
    runs = tmp_path / "runs"
    result = CliRunner().invoke(app, ["train", str(REPO / "configs" / "lenet.yaml"), "--epochs", "3",
                                      "--runs-dir", str(runs), "--data-dir", str(generated_data_dir), *CASES["lenet"],
                                      "--set", "train.optimizer={name: sgd, learning_rate: 1.0e+12}"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "loss became NaN or infinite at epoch 1, step" in text and "learning rate" in text
    (run_dir,) = runs.iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["nan_loss"]["epoch"] == 1 and metrics["nan_loss"]["step"] >= 1
    assert not (run_dir / "last.keras").exists()
