"""Real training runs small enough for any test: a 4-filter CNN on 80 generated MNIST-shaped images."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cnnzoo.cli import app
from data_fixtures import tiny_mnist, write_npz

TINY_CONFIG = """\
name: tiny
description: A 4-filter CNN for tests.
input: {shape: [28, 28, 1]}
model:
  layers:
    - Conv2D: {filters: 4, kernel_size: 3, activation: relu}
    - MaxPooling2D: {pool_size: 4}
    - Flatten
    - Dense: {units: 10, activation: softmax}
data: {dataset: mnist, validation_split: 0.25}
train: {epochs: 2, batch_size: 16, learning_rate: 0.01}
"""


def tiny_setup(folder: Path) -> tuple[Path, Path]:
    """(config path, data dir) of the tiny network and its generated data, written under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "tiny.yaml"
    config.write_text(TINY_CONFIG)
    data_dir = folder / "data"
    write_npz(data_dir / "mnist.npz", tiny_mnist(train_per_class=6, test_per_class=2))
    return config, data_dir


def invoke(*args):
    """Run the CLI in-process, on a terminal wide enough for the runs table."""
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "220"})


def train_tiny(config: Path, runs_dir: Path, data_dir: Path, *extra: str) -> Path:
    """Train through the CLI and return the new run folder."""
    before = set(runs_dir.iterdir()) if runs_dir.exists() else set()
    result = invoke("train", config, "--runs-dir", runs_dir, "--data-dir", data_dir, *extra)
    assert result.exit_code == 0, result.output
    (run_dir,) = set(runs_dir.iterdir()) - before
    return run_dir
