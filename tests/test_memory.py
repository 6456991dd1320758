"""The memory estimate (cnnzoo.model.memory) and what uses it: summary without weights, refusals before
any data is read, --force, and out-of-memory errors that name the phase and keep the run resumable."""

from __future__ import annotations

import csv
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cnnzoo.cli import app
from cnnzoo.config import config_from_document, parse_text
from cnnzoo.errors import DataError
from cnnzoo.host_memory import parse_bytes
from cnnzoo.model.builder import build_model
from cnnzoo.model.memory import estimate_training, optimizer_slots
from data_fixtures import FULL_SIZE_MNIST, write_generated_data

REPO = Path(__file__).resolve().parent.parent
LENET = REPO / "configs" / "lenet.yaml"
SUMMARY_ADDRESS_SPACE = 3 << 30  # README: "cnnzoo summary" runs within 3 GiB of address space
HUGE_DENSE = """\
name: huge_dense
input: {shape: [20000]}
model:
  layers:
    - Dense: {units: 10000}
    - Dense: {units: 10, activation: softmax}
"""


def _config(text: str):
    return config_from_document(parse_text(text, "memo.yaml"))


def _invoke(*args, env: dict | None = None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNZOO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNZOO_MEMORY_LIMIT", raising=False)


def test_parts_of_a_small_model_by_hand():
    config = _config("input: {shape: [20]}\nmodel: {layers: [Dense: {units: 10}]}\n"
                     "train: {batch_size: 8, optimizer: adam}\n")
    model = build_model(config, allocate=False).model
    parts = estimate_training(config, model).parts
    assert parts["weights"] == 210 * 4 and parts["gradients"] == 210 * 4
    assert parts["optimizer"] == 2 * 210 * 4  # Adam: two moments per weight
    assert parts["dataset"] == 0  # no data section
    doubled = estimate_training(config, model, batch_size=16).parts
    assert doubled["activations"] == 2 * parts["activations"] > 0
    assert doubled["input_pipeline"] == 2 * parts["input_pipeline"]


def test_no_batch_is_counted_larger_than_the_data_limit():
    config = _config("input: {shape: [20]}\nmodel: {layers: [Dense: {units: 10}]}\n"
                     "data: {dataset: mnist, limit: 200}\ntrain: {batch_size: 100000}\n")
    model = build_model(config, allocate=False).model
    estimate = estimate_training(config, model, with_data=False)
    assert estimate.batch_size == 200  # was 100,000: a 29.7 GB refusal for a 200-sample run
    assert estimate.parts == estimate_training(config, model, batch_size=200, with_data=False).parts
    assert estimate_training(config, model, batch_size=512, with_data=False).batch_size == 512  # bench's own


@pytest.mark.parametrize("optimizer, slots", [("sgd", 0), ("{name: sgd, momentum: 0.9}", 1), ("adam", 2),
                                              ("{name: adam, amsgrad: true}", 3), ("rmsprop", 1),
                                              ("{name: adamw, use_ema: true}", 3)])
def test_optimizer_slots(optimizer, slots):
    config = _config(f"input: {{shape: [4]}}\nmodel: {{layers: [Dense: {{units: 2}}]}}\n"
                     f"train: {{optimizer: {optimizer}}}\n")
    assert optimizer_slots(config) == slots


def test_memory_limit_sizes():
    assert parse_bytes("512MiB") == 512 << 20 and parse_bytes("8GB") == 8 * 10**9 and parse_bytes("1000") == 1000


def test_summary_json_has_the_estimate_by_part():
    result = _invoke("summary", LENET, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    parts = data["memory_parts"]
    assert set(parts) >= {"tensorflow", "weights", "gradients", "optimizer", "activations", "dataset",
                          "input_pipeline", "checkpoint"}
    assert parts["weights"] == 4 * data["params"] and parts["optimizer"] == 2 * parts["weights"]
    # uint8 MNIST: the file's arrays, the splits at the input size, and the pipelines' tensors of them
    assert parts["dataset"] == 3 * 70_000 * 28 * 28
    assert max(parts.values()) < data["training_memory_bytes"] < sum(parts.values())
    assert _invoke("summary", LENET).output.count("training memory estimate") == 1


def test_summary_of_a_huge_layer_allocates_no_weights(tmp_path):
    """A Dense of 200 M parameters (800 MB of weights) is summarised under a 3 GiB address-space limit,
    which building the real weights does not survive."""
    config = tmp_path / "huge.yaml"
    config.write_text(HUGE_DENSE)

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (SUMMARY_ADDRESS_SPACE, SUMMARY_ADDRESS_SPACE))

    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "cnnzoo", "summary", str(config), "--json"], capture_output=True,
                          text=True, preexec_fn=limit, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["params"] == 20000 * 10000 + 10000 + 10000 * 10 + 10
    assert data["memory_parts"]["weights"] == 4 * data["params"]
    assert time.perf_counter() - started < 90  # seconds of TensorFlow start-up, not of filling 800 MB


ISSUE_CASES = {  # the issue's three configs that ended in a traceback or the OOM killer
    "huge input": ["--set", "input.shape=[60000,60000,3]"],
    "2 M unit Dense after Flatten": ["--set", "model.layers[5].Dense.units=2000000"],
    "batch 65,536 of 224x224x3": ["--set", "input.shape=[224,224,3]", "--set", "train.batch_size=65536"],
}


@pytest.mark.parametrize("case", ISSUE_CASES)
def test_train_refuses_what_cannot_fit_before_reading_data(case, tmp_path):
    runs, empty = tmp_path / "runs", tmp_path / "no-data-here"
    empty.mkdir()
    env = {"CNNZOO_MEMORY_LIMIT": "24GiB", "CNNZOO_DATA_DIR": str(empty)}
    started = time.perf_counter()
    result = _invoke("train", LENET, *ISSUE_CASES[case], "--runs-dir", runs, env=env)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert text.startswith("error: training lenet needs an estimated") and "Traceback" not in text
    assert "is available (CNNZOO_MEMORY_LIMIT)" in text and "Estimate by part: " in text
    assert "lower train.batch_size (" in text and "`dense` (" in text and "--force" in text
    assert not runs.exists() or not any(runs.iterdir())  # no run folder, and the data was never looked for
    assert time.perf_counter() - started < 60


def test_bench_refuses_a_batch_that_cannot_fit():
    result = _invoke("bench", LENET, "--set", "input.shape=[224,224,3]", "--batch-size", 65536,
                     env={"CNNZOO_MEMORY_LIMIT": "24GiB"})
    assert result.exit_code == 2 and "benchmarking lenet at batch size 65536 needs" in " ".join(result.output.split())


def test_bench_reports_estimate_and_peak_rss():
    """In a fresh process: the suite's own process has held far larger models by now."""
    done = subprocess.run([sys.executable, "-m", "cnnzoo", "bench", str(LENET), "--batch-size", "8", "--steps", "1",
                           "--warmup", "1", "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)["rows"][0]
    assert 0.3 < row["memory_estimate_bytes"] / row["peak_rss_bytes"] < 3


def test_force_goes_past_the_check_for_train_and_eval(tmp_path, generated_data_dir):
    runs = tmp_path / "runs"
    small = ["--set", "data.limit=64", "--set", "train.batch_size=32", "--epochs", 1, "--runs-dir", runs,
             "--data-dir", generated_data_dir]
    tight = {"CNNZOO_MEMORY_LIMIT": "300MB"}
    refused = _invoke("train", LENET, *small, env=tight)
    assert refused.exit_code == 2 and "needs an estimated" in refused.output and not runs.exists()
    forced = _invoke("train", LENET, *small, "--force", env=tight)
    assert forced.exit_code == 0, forced.output
    assert "Going on (--force)" in " ".join(forced.output.split())
    (run_dir,) = runs.iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["memory_estimate_bytes"] > 0 and metrics["peak_rss_bytes"] > 0
    assert _invoke("eval", run_dir, "--data-dir", generated_data_dir, env=tight).exit_code == 2
    assert _invoke("eval", run_dir, "--data-dir", generated_data_dir, "--force", env=tight).exit_code == 0


def test_out_of_memory_mid_epoch_keeps_a_resumable_run(tmp_path, generated_data_dir, monkeypatch):
    import tensorflow as tf

    from cnnzoo.training.callbacks import EpochSeeds

    def exhausted(self, batch, logs=None):
        if self.epoch_now == 2 and batch == 1:
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[64,500]")

    def remember(original):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_now = epoch + 1
            return original(self, epoch, logs)
        return on_epoch_begin

    runs = tmp_path / "runs"
    args = ["--set", "data.limit=128", "--set", "train.batch_size=32", "--runs-dir", runs,
            "--data-dir", generated_data_dir]
    with monkeypatch.context() as patch:  # injected into a real run, as TensorFlow would raise it
        patch.setattr(EpochSeeds, "on_epoch_begin", remember(EpochSeeds.on_epoch_begin))
        patch.setattr(EpochSeeds, "on_train_batch_begin", exhausted, raising=False)
        result = _invoke("train", LENET, *args, "--epochs", 3)
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "error: ran out of memory while training epoch 2 step 2 (ResourceExhaustedError: OOM" in text
    assert "Traceback" not in text
    (run_dir,) = runs.iterdir()
    assert f"cnnzoo train --resume {run_dir}" in text
    assert (run_dir / "history.csv").read_text().count("\n") == 2  # header and the complete epoch 1
    resumed = _invoke("train", "--resume", run_dir, "--data-dir", generated_data_dir)
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_completed"] == 3


def test_resizing_checks_its_array_before_allocating():
    from cnnzoo.data.images import fit_images

    with pytest.raises(DataError, match=r"resizing 1,000 images from 28x28x1 .* needs 10.8 TB"):
        fit_images(np.zeros((1000, 28, 28), np.uint8), (60000, 60000, 3))


def test_estimate_within_30_percent_of_measured_peak(tmp_path):
    """benchmarks/memory.py on two small models, each a real `cnnzoo train` subprocess. The generated MNIST
    stand-in is full-size here (60,000 + 10,000 digits, as the estimate counts them); FordA's is counted by line."""
    data_dir = write_generated_data(tmp_path / "data", mnist=FULL_SIZE_MNIST)
    out = tmp_path / "memory.csv"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks/memory.py"), "lenet", "cnn1d", "--limit", "128",
                           "--data-dir", str(data_dir), "--out", str(out)], capture_output=True, text=True,
                          cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = list(csv.DictReader(out.open()))
    assert [r["case"] for r in rows] == ["lenet", "cnn1d"]
    for row in rows:
        assert 0.7 <= float(row["ratio"]) <= 1.3, row
        assert int(row["measured_peak_rss_mb"]) > 300


def test_peak_rss_of_a_child_does_not_inherit_its_parents_peak():
    """Linux keeps ru_maxrss across exec: a child of a big process would report the parent's peak."""
    ballast = np.ones(1024**3 // 8)  # 1 GiB resident in this process before the fork
    code = "from cnnzoo.host_memory import peak_rss; print(peak_rss())"
    child_peak = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                    check=True).stdout)
    assert ballast.sum() > 0 and child_peak < 512 * 1024**2
