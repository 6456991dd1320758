"""Run folders for the predict and export tests, made without training: the shipped config (plus
overrides) built with a fixed seed and saved as best.keras next to its resolved config.yaml.
Trained runs come from `train_run_folder` where a test needs peaked probabilities."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent


def saved_run(folder: Path, config: Path | str, overrides: list[str] = (), seed: int = 1) -> Path:
    """`folder` as a run folder holding config.yaml and an untrained best.keras of `config`."""
    import keras

    from cnnzoo.config import load_config
    from cnnzoo.model.builder import build_model

    spec = load_config(config, list(overrides))
    keras.utils.set_random_seed(seed)
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(spec.resolved, sort_keys=False))
    build_model(spec).model.save(folder / "best.keras")
    return folder


def train_run_folder(runs_dir: Path, config: str, data_dir: Path, overrides: list[str], epochs: int = 1) -> Path:
    """A real run of a shipped config through `cnnzoo train`."""
    from cnnzoo.cli import app

    args = ["train", str(REPO / "configs" / f"{config}.yaml"), "--epochs", str(epochs), "--runs-dir", str(runs_dir),
            "--data-dir", str(data_dir)]
    for override in overrides:
        args += ["--set", override]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (run_dir,) = runs_dir.iterdir()
    return run_dir
