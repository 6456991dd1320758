"""`cnnzoo bench` as a user meets it: the JSON numbers, a batch-size sweep, per-entry timings, the
clean error for a broken config, and the cached matmul peak. Tiny step counts keep it fast."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnnzoo.cli import app

REPO = Path(__file__).resolve().parent.parent
LENET = str(REPO / "configs" / "lenet.yaml")
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


def cnnzoo(*args: str):
    return CliRunner().invoke(app, list(args), env=ENV)


def json_of(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def lenet_report() -> dict:
    return json_of(cnnzoo("bench", LENET, "--steps", "3", "--warmup", "1", "--json"))


def test_json_has_positive_timings_per_batch_size(lenet_report):
    [row] = lenet_report["rows"]
    assert row["batch_size"] == 128  # train.batch_size of lenet.yaml
    for kind in ("train", "infer"):
        assert 0 < row[f"{kind}_ms_min"] <= row[f"{kind}_ms_median"]
        assert row[f"{kind}_samples_per_s"] == pytest.approx(128 / (row[f"{kind}_ms_median"] / 1e3))
        assert row[f"{kind}_gflops"] > 0
        assert 0 < row[f"{kind}_peak_share"] < 1.5
    assert row["train_flops_per_sample"] == 3 * row["flops_per_sample"]
    assert row["train_gflops"] == pytest.approx(row["train_samples_per_s"] * 3 * row["flops_per_sample"] / 1e9)


def test_flops_match_summary(lenet_report):
    summary = json_of(cnnzoo("summary", LENET, "--json"))
    assert lenet_report["rows"][0]["flops_per_sample"] == summary["flops"] > 0


def test_report_names_peak_and_settings(lenet_report):
    assert lenet_report["matmul_peak_gflops"] > 0
    assert lenet_report["config"] == "lenet"
    assert lenet_report["steps"] == 3 and lenet_report["warmup"] == 1
    import tensorflow as tf

    # lenet.yaml leaves jit_compile at auto: Keras compiles with XLA only when a GPU is present
    assert lenet_report["jit_compile"] is bool(tf.config.list_physical_devices("GPU"))
    from cnnzoo.precision import resolve_precision

    assert lenet_report["dtype_policy"] == resolve_precision("auto")  # configs/lenet.yaml says auto
    assert lenet_report["device"]


def test_batch_size_sweep_gives_one_row_per_size():
    report = json_of(cnnzoo("bench", LENET, "--batch-size", "4", "--batch-size", "16", "--steps", "2",
                            "--warmup", "1", "--no-jit", "--json"))
    assert [r["batch_size"] for r in report["rows"]] == [4, 16]
    assert all(r["jit_compile"] is False for r in report["rows"])


def test_table_and_per_layer_entries():
    result = cnnzoo("bench", LENET, "--batch-size", "8", "--steps", "2", "--warmup", "1", "--per-layer")
    assert result.exit_code == 0, result.output
    for text in ("matmul peak", "training counted as 3x forward", "% of peak", "inference",
                 "forward time per config entry", "approximate", "conv2d_1", "whole model"):
        assert text in result.stdout


def test_per_layer_json_has_one_entry_per_config_entry():
    report = json_of(cnnzoo("bench", LENET, "--batch-size", "8", "--steps", "2", "--warmup", "1",
                            "--per-layer", "--json"))
    entries = report["rows"][0]["per_layer"]
    assert [e["type"] for e in entries] == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten",
                                            "Dense", "Dense"]
    assert all(e["ms_median"] > 0 for e in entries)
    assert sum(e["share"] for e in entries) == pytest.approx(1.0)


def test_binary_output_model_gets_binary_labels():
    report = json_of(cnnzoo("bench", str(REPO / "configs" / "cnn1d.yaml"), "--batch-size", "4", "--steps", "1",
                            "--warmup", "1", "--json"))
    assert report["rows"][0]["train_ms_median"] > 0


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_precision_is_reported_and_policy_restored(precision):
    import keras

    from cnnzoo.config import load_config
    from cnnzoo.training.bench import bench_config

    rows = bench_config(load_config(LENET), [4], steps=1, warmup=1, precision=precision, peak_gflops=1.0)
    assert rows[0]["dtype_policy"] == precision
    assert keras.mixed_precision.global_policy().name == "float32"


def test_bad_config_exits_2_naming_the_file(tmp_path):
    config = tmp_path / "broken_bench.yaml"
    config.write_text("name: x\ninput: {shape: [28, 28, 1]}\nmodel:\n  layers:\n    - Dense: {unitz: 3}\n")
    result = cnnzoo("bench", str(config), "--steps", "1")
    assert result.exit_code == 2
    assert "broken_bench.yaml:5" in result.output and "Traceback" not in result.output


def test_bad_option_is_a_usage_error():
    result = cnnzoo("bench", LENET, "--batch-size", "0")
    assert result.exit_code == 2 and "batch-size" in result.output


def test_matmul_peak_is_positive_and_cached():
    from cnnzoo.training.bench import measure_matmul_peak

    first = measure_matmul_peak()
    hits = measure_matmul_peak.cache_info().hits
    again = measure_matmul_peak()
    assert first == again > 0
    assert measure_matmul_peak.cache_info().hits == hits + 1  # the second call measured nothing


def test_mixed_precision_flag_picks_the_devices_mixed_policy():
    from cnnzoo.precision import mixed_policy

    report = json_of(cnnzoo("bench", LENET, "--set", "train.precision=float32", "--mixed-precision",
                            "--batch-size", "4", "--steps", "1", "--warmup", "1", "--json"))
    assert report["rows"][0]["dtype_policy"] == mixed_policy()
    both = cnnzoo("bench", LENET, "--mixed-precision", "--precision", "float32")
    assert both.exit_code == 2 and "not both" in both.output
