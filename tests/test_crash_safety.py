"""Nothing lost: kills at chosen moments, exact resume, full disks and damaged run files.

Every run here is a real `cnnzoo train` process on a small subset of the generated stand-in for the shared
datasets (`generated_data_dir`, conftest.py); the kills are real signals.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cnnzoo.cli import app
from cnnzoo.errors import RunError
from cnnzoo.runs.folder import check_free_space

REPO = Path(__file__).resolve().parent.parent
SMALL = ["--set", "data.limit=256", "--set", "train.batch_size=64"]


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNZOO_CACHE_DIR", str(tmp_path / "cache"))


def _cnnzoo(*args, **popen) -> subprocess.Popen:
    command = [sys.executable, "-m", "cnnzoo", *map(str, args)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200"}, **popen)


def _run(*args, **popen) -> tuple[int, str]:
    process = _cnnzoo(*args, **popen)
    output, _ = process.communicate(timeout=300)
    return process.returncode, output


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _only_run(runs: Path) -> Path:
    (run_dir,) = runs.iterdir()
    return run_dir


def _epochs(run_dir: Path) -> list[int]:
    return list(pd.read_csv(run_dir / "history.csv")["epoch"])


def _weights(path: Path) -> list[np.ndarray]:
    import keras

    return keras.models.load_model(path).get_weights()


@pytest.mark.parametrize("optimizer", [[], ["--set", "train.optimizer={name: adam, use_ema: true, ema_momentum: 0.9}"]],
                         ids=["plain", "ema"])
def test_deterministic_resume_gives_the_same_weights(optimizer, tmp_path, generated_data_dir):
    """cnn1d has Dropout, so this also checks that random layers draw the same masks after a resume;
    with EMA, that last.keras keeps the raw weights and the average (best.keras keeps the average)."""
    common = [REPO / "configs/cnn1d.yaml", "--deterministic", "--data-dir", generated_data_dir, *SMALL, *optimizer]
    assert _run("train", *common, "--epochs", 3, "--runs-dir", tmp_path / "whole")[0] == 0
    assert _run("train", *common, "--epochs", 1, "--runs-dir", tmp_path / "split")[0] == 0
    split = _only_run(tmp_path / "split")
    code, output = _run("train", "--resume", split, "--epochs", 3, "--deterministic", "--data-dir", generated_data_dir)
    assert code == 0, output
    whole = _only_run(tmp_path / "whole")
    for name in ("last.keras", "best.keras"):
        for a, b in zip(_weights(whole / name), _weights(split / name), strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    columns = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    pd.testing.assert_frame_equal(pd.read_csv(whole / "history.csv")[columns],
                                  pd.read_csv(split / "history.csv")[columns], rtol=1e-6)
    best = [json.loads((r / "metrics.json").read_text())["best_epoch"] for r in (whole, split)]
    assert best[0] == best[1]


def _wait_until(condition, process, seconds=240) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        if condition():
            return True
    return False


@pytest.mark.parametrize("moment", ["writing last.keras", "writing best.keras"])
def test_kill_while_a_checkpoint_is_written(moment, tmp_path, generated_data_dir):
    """SIGKILL while a checkpoint's temporary file exists (after epoch 1, so there is a previous one):
    the folder stays usable and --resume trains the epochs the checkpoint does not hold again."""
    runs = tmp_path / "runs"
    process = _cnnzoo("train", REPO / "configs/lenet.yaml", "--epochs", 8, "--runs-dir", runs,
                      "--data-dir", generated_data_dir, *SMALL)
    name = moment.split()[1].removesuffix(".keras")

    def mid_write():
        return any(run.joinpath(f"{name}.keras").exists() and any(run.glob(f".{name}.tmp-*.keras"))
                   for run in runs.glob("*"))

    caught = _wait_until(mid_write, process)
    process.kill()
    output, _ = process.communicate(timeout=60)
    assert caught, f"the run ended before a second {name}.keras write was seen:\n{output}"
    run_dir = _only_run(runs)
    assert _invoke("plot", run_dir).exit_code == 0
    assert _invoke("eval", run_dir, "--checkpoint", name, "--data-dir", generated_data_dir).exit_code == 0

    code, output = _run("train", "--resume", run_dir, "--data-dir", generated_data_dir)
    assert code == 0, output
    if name == "last":  # history.csv is written first, so it is one epoch ahead of last.keras
        assert "trained again" in output
    assert _epochs(run_dir) == list(range(1, 9))
    assert not [p.name for p in run_dir.iterdir() if ".tmp" in p.name]


def _limit_file_size(limit: int):
    def apply():  # in the child: writes past `limit` fail with EFBIG instead of killing the process
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_checkpoint_that_cannot_be_written_stops_cleanly(tmp_path, generated_data_dir):
    """A file-size limit below LeNet's checkpoint size makes every checkpoint write fail, as a full
    disk would: a clear error, exit code 2, no partial file, and the run resumes once there is room."""
    runs = tmp_path / "runs"
    code, output = _run("train", REPO / "configs/lenet.yaml", "--epochs", 2, "--runs-dir", runs,
                        "--data-dir", generated_data_dir, *SMALL, preexec_fn=_limit_file_size(2 << 20))
    assert code == 2, output
    assert "Traceback" not in output and "cannot write the file" in output and "best.keras" in output
    run_dir = _only_run(runs)
    assert not [p.name for p in run_dir.iterdir() if p.suffix == ".keras" or ".tmp" in p.name]
    assert _epochs(run_dir) == [1]

    code, output = _run("train", "--resume", run_dir, "--data-dir", generated_data_dir)
    assert code == 0, output
    assert _epochs(run_dir) == [1, 2] and (run_dir / "best.keras").is_file()


def test_free_space_is_checked_before_loading_data(tmp_path):
    check_free_space(tmp_path / "runs", needed=1)
    with pytest.raises(RunError, match="MiB free"):
        check_free_space(tmp_path / "runs", needed=1 << 60)


def test_the_checkpoint_writer_writes_what_model_save_writes(tmp_path):
    """After its first save (Keras' own), CheckpointWriter refills the weights layout it learnt: the weights file
    is byte for byte model.save's, the archive loads to the same weights and optimizer state (with a learning
    rate changed since), and learning the layout left the model's values as they were."""
    import keras

    from cnnzoo.training.checkpoint_writer import CheckpointWriter

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 1)), keras.layers.Conv1D(4, 3), keras.layers.BatchNormalization(),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dropout(0.1),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    x, y = np.random.default_rng(0).random((32, 16, 1), dtype=np.float32), np.arange(32) % 2
    def values(holder):  # a model's variables and its optimizer's, or an optimizer's
        found = [*holder.variables, *(holder.optimizer.variables if hasattr(holder, "optimizer") else [])]
        return [keras.ops.convert_to_numpy(v).copy() for v in found]

    model.fit(x, y, epochs=1, verbose=0)
    writer = CheckpointWriter()
    before = values(model)
    writer.save(model, tmp_path / "first.keras")
    assert writer.layout is not None
    for a, b in zip(values(model), before, strict=True):
        np.testing.assert_array_equal(a, b)

    model.fit(x, y, epochs=1, verbose=0)
    model.optimizer.learning_rate = 0.005
    writer.save(model, tmp_path / "fast.keras")
    model.save(tmp_path / "keras.keras")
    weights = [zipfile.ZipFile(tmp_path / name).read("model.weights.h5") for name in ("fast.keras", "keras.keras")]
    assert weights[0] == weights[1]
    fast = keras.models.load_model(tmp_path / "fast.keras")  # (a Dropout's seed state is not saved: EpochSeeds)
    for a, b in zip([*fast.get_weights(), *values(fast.optimizer)], [*model.get_weights(), *values(model.optimizer)],
                    strict=True):
        np.testing.assert_array_equal(a, b)
    config = json.loads(zipfile.ZipFile(tmp_path / "fast.keras").read("config.json"))
    assert config["compile_config"]["optimizer"]["config"]["learning_rate"] == pytest.approx(0.005)
