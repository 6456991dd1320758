"""`cnnzoo train --resume`: continue from the run folder alone, after a finish, SIGINT or SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cnnzoo.cli import app

REPO = Path(__file__).resolve().parent.parent
SMALL = ["--set", "data.limit=256", "--set", "train.batch_size=64"]


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNZOO_CACHE_DIR", str(tmp_path / "cache"))


def _invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def _only_run(runs: Path) -> Path:
    (run_dir,) = runs.iterdir()
    return run_dir


def _history(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "history.csv")


def test_resume_extends_a_finished_run(tmp_path, generated_data_dir):
    runs = tmp_path / "runs"
    result = _invoke("train", REPO / "configs/cnn1d.yaml", "--epochs", 2, "--runs-dir", runs,
                     "--data-dir", generated_data_dir, *SMALL)
    assert result.exit_code == 0, result.output
    run_dir = _only_run(runs)
    result = _invoke("train", "--resume", run_dir, "--epochs", 4, "--data-dir", generated_data_dir)
    assert result.exit_code == 0, result.output
    history = _history(run_dir)
    assert list(history["epoch"]) == [1, 2, 3, 4]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 4
    # wall time counts both sessions (it was the resumed session's alone)
    assert metrics["wall_seconds"] > metrics["session_seconds"] >= history["epoch_seconds"].iloc[2:].sum()
    assert metrics["wall_seconds"] >= history["epoch_seconds"].sum()
    assert metrics["best_epoch"] == int(history.loc[history["val_accuracy"].idxmax(), "epoch"])
    assert "epochs: 4" in (run_dir / "config.yaml").read_text()

    again = _invoke("train", "--resume", run_dir, "--data-dir", generated_data_dir)
    assert again.exit_code == 2 and "nothing to resume" in again.output
    shorter = _invoke("train", "--resume", run_dir, "--epochs", "2", "--data-dir", generated_data_dir)
    assert shorter.exit_code == 2 and "4 epoch(s) are done and the run is set to 2" in " ".join(shorter.output.split())


def test_resume_refuses_a_changed_network(tmp_path, generated_data_dir):
    runs = tmp_path / "runs"
    assert _invoke("train", REPO / "configs/cnn1d.yaml", "--epochs", 1, "--runs-dir", runs,
                   "--data-dir", generated_data_dir, *SMALL).exit_code == 0
    run_dir = _only_run(runs)
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace("filters: 128", "filters: 96"))
    result = _invoke("train", "--resume", run_dir, "--epochs", 2, "--data-dir", generated_data_dir)
    assert result.exit_code == 2
    assert "no longer builds the network" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
def test_killed_run_is_usable_and_resumes_without_gaps(sig, tmp_path, generated_data_dir):
    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "cnnzoo", "train", str(REPO / "configs/cnn1d.yaml"), "--epochs", "6",
               "--runs-dir", str(runs), "--data-dir", str(generated_data_dir), *SMALL]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "COLUMNS": "200"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(runs.glob("*/last.keras")):  # epoch 1 wholly written
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere inside the next epoch (or while it writes its checkpoint)
    process.send_signal(sig)
    output, _ = process.communicate(timeout=120)
    run_dir = _only_run(runs)
    done = len(_history(run_dir))
    assert done >= 1 and "Traceback" not in output
    if sig != signal.SIGKILL:
        assert process.returncode == 130 and f"cnnzoo train --resume {run_dir}" in output.replace("\n", "")
    assert _invoke("plot", run_dir).exit_code == 0
    assert _invoke("eval", run_dir, "--checkpoint", "last", "--data-dir", generated_data_dir).exit_code == 0

    result = _invoke("train", "--resume", run_dir, "--data-dir", generated_data_dir)
    assert result.exit_code == 0, result.output
    assert list(_history(run_dir)["epoch"]) == [1, 2, 3, 4, 5, 6]
    assert not [p for p in run_dir.iterdir() if "tmp" in p.name]


def test_replayed_early_stopping_matches_an_uninterrupted_one():
    import keras

    from cnnzoo.training.callbacks import ReplayedEarlyStopping

    rows = [{"epoch": e + 1, "val_loss": v} for e, v in enumerate([0.9, 0.7, 0.8, 0.75, 0.72])]
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")

    live = keras.callbacks.EarlyStopping(monitor="val_loss", patience=4)
    live.set_model(model)
    live.on_train_begin()
    for row in rows:
        live.on_epoch_end(row["epoch"] - 1, row)

    replayed = ReplayedEarlyStopping(rows[:3], monitor="val_loss", patience=4)
    replayed.set_model(model)
    replayed.on_train_begin()
    for row in rows[3:]:
        replayed.on_epoch_end(row["epoch"] - 1, row)
    assert (replayed.best, replayed.wait, replayed.best_epoch) == (live.best, live.wait, live.best_epoch) == (0.7, 3, 1)
