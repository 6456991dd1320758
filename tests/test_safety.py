"""The security review's findings, each reproduced: config values that would run code or read files,
bombs (archives, IDX files, images, YAML merges) under a memory limit, terminal control, run names."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cnnzoo.cli import app
from data_fixtures import idx_bytes, ucr_rows, write_ucr

REPO = Path(__file__).resolve().parent.parent
SMALL = textwrap.dedent("""\
    name: small
    input: {shape: [24, 1]}
    model:
      layers:
        - Conv1D: {filters: 4, kernel_size: 3, activation: relu}
        - GlobalAveragePooling1D
        - Dense: {units: 2, activation: softmax}
    data: {dataset: ucr, name: Toy}
    train: {epochs: 3, batch_size: 16, optimizer: {name: sgd, learning_rate: 0.05}}
    """)


def run_limited(code: str, limit_mb: int = 1024, timeout: int = 60) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter whose address space is capped at `limit_mb`."""
    prelude = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({limit_mb} << 20, {limit_mb} << 20))\n"
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def toy_data(root: Path) -> Path:
    labels = [0, 1] * 40
    write_ucr(root / "ucr" / "Toy", "Toy", ucr_rows(labels, 24, seed=1), ucr_rows(labels[:20], 24, seed=2))
    return root


# --- 1. option values are plain data ------------------------------------------------------------

@pytest.mark.parametrize("value", [
    "{module: os, class_name: system, config: {command: 'touch PWNED'}}",   # a serialised object
    "[{module: os, class_name: system}]",                                   # a list of them
    "os.system",                                                            # a string naming a module
])
@pytest.mark.parametrize("key", ["train.optimizer.learning_rate", "train.schedule.drop",
                                 "train.early_stopping.patience", "train.checkpoint.mode"])
def test_serialised_objects_in_train_options_are_refused_before_training(tmp_path, key, value):
    config = tmp_path / "c.yaml"
    config.write_text(SMALL)
    sets = ["--set", f"{key}={value}"]
    if key.startswith("train.schedule"):
        sets += ["--set", "train.schedule.name=step"]
    result = CliRunner().invoke(app, ["train", str(config), "--runs-dir", str(tmp_path / "runs"), *sets])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and key.split(".", 1)[1] in result.output.replace("\n", "")
    assert not (tmp_path / "runs").exists() and not (REPO / "PWNED").exists()


def test_checkpoint_on_val_loss_keeps_the_epoch_with_the_lowest_val_loss(tmp_path):
    data = toy_data(tmp_path / "data")
    config = tmp_path / "c.yaml"
    config.write_text(SMALL.replace("train: {epochs: 3,", "train: {checkpoint: {monitor: val_loss}, epochs: 3,"))
    runner = CliRunner()
    trained = runner.invoke(app, ["train", str(config), "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(data)])
    assert trained.exit_code == 0, trained.output
    (run,) = (tmp_path / "runs").iterdir()
    history = pd.read_csv(run / "history.csv")
    assert history["val_loss"].nunique() == 3  # the epochs differ, so min and max pick different ones
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["best_epoch"] == int(history.loc[history["val_loss"].idxmin(), "epoch"])
    evaluated = runner.invoke(app, ["eval", str(run), "--split", "val", "--json", "--data-dir", str(data)])
    assert evaluated.exit_code == 0, evaluated.output
    loss = json.loads(evaluated.output)["metrics"]["loss"]
    assert loss == pytest.approx(history["val_loss"].min(), rel=1e-4)


# --- 2, 3. files named in a config ---------------------------------------------------------------

def test_lookup_vocabulary_path_is_refused_without_reading_it(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2\n")
    config = tmp_path / "c.yaml"
    config.write_text(f"name: v\ninput: {{shape: [4], dtype: int64}}\nmodel:\n  layers:\n"
                      f"    - StringLookup: {{vocabulary: {secret}}}\n    - Dense: {{units: 2}}\n")
    result = CliRunner().invoke(app, ["summary", str(config)])
    assert result.exit_code == 2 and "must be an inline list" in result.output
    assert "hunter2" not in result.output


def test_base_outside_the_config_folder_is_refused_and_not_quoted(tmp_path):
    (tmp_path / "outside.yaml").write_text("secret_key_line: 1\n")
    inside = tmp_path / "project"
    inside.mkdir()
    (inside / "link.yaml").symlink_to(tmp_path / "outside.yaml")
    for base in ("../outside.yaml", str(tmp_path / "outside.yaml"), "link.yaml"):
        (inside / "c.yaml").write_text(f"base: {base}\nname: x\n")
        result = CliRunner().invoke(app, ["summary", str(inside / "c.yaml")])
        assert result.exit_code == 2, result.output
        assert "secret_key_line" not in result.output and "base" in result.output


def test_base_inside_the_folder_tree_and_shipped_configs_still_work(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "lenet.yaml").write_text((REPO / "configs" / "lenet.yaml").read_text())
    (tmp_path / "sub" / "b.yaml").write_text("base: ../lenet.yaml\n")  # up, but inside the given config's folder
    (tmp_path / "c.yaml").write_text("base: sub/b.yaml\nname: child\n")
    assert CliRunner().invoke(app, ["summary", str(tmp_path / "c.yaml")]).exit_code == 0
    shipped = os.path.relpath(REPO / "configs" / "lenet.yaml", tmp_path)
    (tmp_path / "s.yaml").write_text(f"base: {shipped}\nname: s\n")
    assert CliRunner().invoke(app, ["summary", str(tmp_path / "s.yaml")]).exit_code == 0


# --- 4, 5. bombs, under a memory limit ------------------------------------------------------------

def test_image_bomb_is_refused_quickly_under_a_memory_limit(tmp_path):
    from PIL import Image

    bomb = tmp_path / "bomb.png"
    Image.new("L", (13000, 13000)).save(bomb, optimize=True)
    assert bomb.stat().st_size < 1_000_000
    done = run_limited(f"""
        from cnnzoo.data.images import decode_images
        from cnnzoo.errors import DataError
        try:
            decode_images([(0, "bomb.png", {str(bomb)!r})], 1, (32, 32, 1), progress=False, label="bombs")
        except DataError as exc:
            print("refused:", exc)
    """)
    assert "refused:" in done.stdout and "megapixels" in done.stdout, done.stderr


def _zeros(size: int):
    """A readable file object of `size` zero bytes that holds only a small buffer."""
    class Zeros:
        left = size

        def read(self, n=-1):
            n = self.left if n < 0 else min(n, self.left)
            self.left -= n
            return bytes(n)
    return Zeros()


def test_flowers_archive_with_a_huge_member_is_refused_under_a_memory_limit(tmp_path):
    archive = tmp_path / "17flowers.tgz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        info = tarfile.TarInfo("jpg/image_0001.jpg")
        info.size = 300 << 20
        tar.addfile(info, _zeros(info.size))
    assert archive.stat().st_size < 2_000_000
    done = run_limited(f"""
        from pathlib import Path
        from cnnzoo.data.flowers17 import _decode
        from cnnzoo.errors import DataError
        try:
            _decode(Path({str(archive)!r}), (16, 16, 3), progress=False)
        except DataError as exc:
            print("refused:", exc)
    """, limit_mb=700)
    assert "refused:" in done.stdout and "at most" in done.stdout, done.stderr


def test_flowers_archive_with_duplicate_members_is_refused(tmp_path):
    from cnnzoo.data.flowers17 import _archive_members
    from cnnzoo.errors import DataError

    archive = tmp_path / "17flowers.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        for _ in range(2):
            info = tarfile.TarInfo("jpg/image_0001.jpg")
            info.size = 3
            tar.addfile(info, _zeros(3))
    with pytest.raises(DataError, match="appears twice"):
        list(_archive_members(archive))


@pytest.mark.parametrize("dims, data_bytes", [
    ((100_000, 100, 100), 1 << 20),      # the header announces 1 GB
    ((60_000, 28, 28), 300 << 20),       # the header is right, the data goes on for 300 MB
])
def test_idx_gzip_bomb_is_refused_under_a_memory_limit(tmp_path, dims, data_bytes):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    header = idx_bytes(np.zeros((0,) * len(dims), np.uint8))[:4] + np.array(dims, ">u4").tobytes()
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(header)
        for _ in range(data_bytes >> 20):
            out.write(bytes(1 << 20))
    assert path.stat().st_size < 2_000_000
    done = run_limited(f"""
        from pathlib import Path
        from cnnzoo.data.mnist import read_idx
        from cnnzoo.errors import DataError
        try:
            read_idx(Path({str(path)!r}), 3)
        except DataError as exc:
            print("refused:", exc)
    """, limit_mb=700)
    assert "refused:" in done.stdout, done.stderr


def test_yaml_merge_key_bomb_is_refused_under_a_memory_limit():
    done = run_limited("""
        from pathlib import Path
        from cnnzoo.config.source import load_document
        from cnnzoo.errors import ConfigError
        try:
            load_document(Path("tests/broken_configs/merge_key_bomb.yaml"))
        except ConfigError as exc:
            print("refused:", exc)
    """, limit_mb=512)
    assert "refused:" in done.stdout and "merges expand" in done.stdout, done.stderr


# --- 10, 11, 12. printing, tracebacks, names ------------------------------------------------------

def test_control_characters_and_emoji_codes_are_not_sent_to_the_terminal(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text('name: x\n"\\e]0;title\\a\\e[2J:x:": 1\n')
    result = CliRunner().invoke(app, ["summary", str(config)])
    assert result.exit_code == 2
    assert "\x1b" not in result.output and "\x07" not in result.output and "❌" not in result.output
    assert "\\x1b]0;title\\x07" in result.output and ":x:" in result.output


def test_set_with_a_non_ascii_digit_is_an_error(tmp_path):
    result = CliRunner().invoke(app, ["summary", str(REPO / "configs" / "lenet.yaml"), "--set", "a.²=1"])
    assert result.exit_code == 2 and "unknown top-level key `a`" in result.output


def test_base_with_a_nul_byte_is_an_error(tmp_path):
    (tmp_path / "c.yaml").write_text('base: "a\\0b"\nname: x\n')
    result = CliRunner().invoke(app, ["summary", str(tmp_path / "c.yaml")])
    assert result.exit_code == 2 and "`base` must be a file name" in result.output


@pytest.mark.parametrize("command", [["train", "--resume"], ["eval"]])
def test_run_whose_config_lost_its_data_section_is_an_error(tmp_path, command):
    run = tmp_path / "runs" / "x-20260101-000000"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text((REPO / "configs" / "lenet.yaml").read_text().split("data:")[0])
    (run / "history.csv").write_text("epoch,loss\n")
    result = CliRunner().invoke(app, [*command, str(run)])
    assert result.exit_code == 2 and "no `data:` section" in result.output, result.output


# --- 8. one writer per run folder -------------------------------------------------------------------

def test_a_run_in_use_is_refused_and_a_dead_holders_lock_is_taken_over(tmp_path):
    import signal
    import time

    data = toy_data(tmp_path / "data")
    config = tmp_path / "c.yaml"
    config.write_text(SMALL.replace("epochs: 3", "epochs: 100000"))
    env = {**os.environ, "CNNZOO_CACHE_DIR": str(tmp_path / "cache")}
    first = subprocess.Popen([sys.executable, "-m", "cnnzoo", "train", str(config), "--runs-dir", str(tmp_path / "runs"),
                              "--data-dir", str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "runs").glob("*/last.keras")) and time.monotonic() < deadline:
            time.sleep(0.2)
        (run,) = (tmp_path / "runs").iterdir()
        assert (run / ".lock").read_text().strip() == str(first.pid)
        busy = CliRunner().invoke(app, ["train", "--resume", str(run), "--data-dir", str(data)])
        assert busy.exit_code == 2 and f"in use by another cnnzoo process (pid {first.pid})" in busy.output
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    resumed = CliRunner().invoke(app, ["train", "--resume", str(run), "--data-dir", str(data), "--epochs",
                                       str(len(pd.read_csv(run / "history.csv")) + 1)])
    assert resumed.exit_code == 0, resumed.output
    assert f"taking over the lock left by pid {first.pid}" in resumed.output
    assert (run / ".lock").read_text() == ""
