"""`cnnzoo export`: every format loaded back in its own runtime and compared with the Keras model, for a
trained LeNet (all TFLite quantisations), the 1D CNN and a residual network; export.json read back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from run_fixtures import REPO, saved_run, train_run_folder
from typer.testing import CliRunner

from cnnzoo.cli import app

RESIDUAL = """
name: residual
input: {shape: [28, 28, 1]}
model:
  layers:
    - Conv2D: {filters: 8, kernel_size: 3, padding: same, activation: relu}
    - branches:
        - [Conv2D: {filters: 8, kernel_size: 3, padding: same, use_bias: false}, BatchNormalization, ReLU]
        - []
      merge: add
    - GlobalAveragePooling2D
    - Dense: {units: 10, activation: softmax}
data: {dataset: mnist, limit: 200}
"""
FLOAT_FORMATS = ("savedmodel", "tflite", "onnx", "keras")


@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory, generated_data_dir) -> Path:
    """LeNet trained for one epoch on the generated MNIST stand-in (`generated_data_dir`, conftest.py), at most
    2,000 digits (bfloat16 where the CPU has it: `precision: auto`)."""
    return train_run_folder(tmp_path_factory.mktemp("runs"), "lenet", generated_data_dir,
                            ["data.limit=2000", "train.batch_size=64"])


def export(run: Path, *args: str, data_dir: Path | None = None):
    extra = ["--data-dir", str(data_dir)] if data_dir else []
    return CliRunner().invoke(app, ["export", str(run), *args, "--json", *extra])


def check_report(result, run_or_out: Path, fmt: str, quantize: str = "none") -> dict:
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    path = Path(report["file"])
    assert path.exists() and report["size_bytes"] > 0
    assert json.loads((path.parent / "export.json").read_text()) == report
    assert (report["format"], report["quantize"], report["passed"]) == (fmt, quantize, True)
    assert report["agreement"] >= report["threshold"] and report["latency_ms_per_sample"] > 0
    return report


@pytest.mark.parametrize("fmt", FLOAT_FORMATS)
def test_lenet_float32_formats_agree_exactly(lenet_run, fmt, generated_data_dir):
    report = check_report(export(lenet_run, "--format", fmt, "--samples", "128", data_dir=generated_data_dir),
                          lenet_run, fmt)
    assert report["agreement"] == 1.0 and report["max_abs_diff"] < 1e-4
    assert report["samples"] == 128 and report["input"]["dtype"] == "float32"


@pytest.mark.parametrize("quantize, max_diff", [("float16", 0.01), ("dynamic", 0.1), ("int8", 0.2)])
def test_lenet_tflite_quantised(lenet_run, quantize, max_diff, generated_data_dir):
    report = check_report(export(lenet_run, "--format", "tflite", "--quantize", quantize, data_dir=generated_data_dir),
                          lenet_run, "tflite", quantize)
    assert report["samples"] == 256 and report["agreement"] >= 0.99 and report["max_abs_diff"] < max_diff
    float32_bytes = 4 * 1_256_080
    assert report["size_bytes"] < (0.55 if quantize == "float16" else 0.3) * float32_bytes


def test_int8_with_preprocessing_takes_raw_uint8(lenet_run, tmp_path, generated_data_dir):
    from ai_edge_litert.interpreter import Interpreter

    out = tmp_path / "digits.tflite"
    report = check_report(export(lenet_run, "--format", "tflite", "--quantize", "int8", "--with-preprocessing",
                                 "--out", str(out), data_dir=generated_data_dir), out, "tflite", "int8")
    assert report["input"]["dtype"] == "uint8"
    interpreter = Interpreter(model_path=str(out))
    assert interpreter.get_input_details()[0]["dtype"] == np.uint8


def test_savedmodel_serves_a_named_input(lenet_run, tmp_path, generated_data_dir):
    import tensorflow as tf

    out = tmp_path / "served"
    check_report(export(lenet_run, "--format", "savedmodel", "--with-preprocessing", "--samples", "16",
                        "--out", str(out), data_dir=generated_data_dir), out, "savedmodel")
    signature = tf.saved_model.load(str(out)).signatures["serving_default"]
    (name, spec), = signature.structured_input_signature[1].items()
    assert name == "image" and spec.dtype == tf.uint8 and spec.shape.as_list() == [None, 28, 28, 1]


@pytest.mark.parametrize("fmt", FLOAT_FORMATS)
def test_cnn1d_and_residual_formats(fmt, tmp_path, generated_data_dir):
    (tmp_path / "residual.yaml").write_text(RESIDUAL)
    for name, config, overrides in (("cnn1d", REPO / "configs" / "cnn1d.yaml", ["data.limit=100"]),
                                    ("residual", tmp_path / "residual.yaml", [])):
        run = saved_run(tmp_path / name, config, overrides)
        report = check_report(export(run, "--format", fmt, "--samples", "32", data_dir=generated_data_dir), run, fmt)
        assert report["agreement"] == 1.0 and report["max_abs_diff"] < 1e-4


def test_below_threshold_fails_and_removes_the_file(tmp_path, generated_data_dir, monkeypatch):
    from cnnzoo.deploy import export as exporting

    (tmp_path / "residual.yaml").write_text(RESIDUAL)
    run = saved_run(tmp_path / "run", tmp_path / "residual.yaml")
    monkeypatch.setitem(exporting.THRESHOLDS, "none", 1.01)  # no export can reach it
    result = export(run, "--format", "tflite", "--samples", "8", data_dir=generated_data_dir)
    assert result.exit_code == 1, result.output
    assert "below the 101% required" in result.stderr and "the file was removed" in result.stderr
    folder = run / "export" / "tflite"
    assert not (folder / "model.tflite").exists()
    assert json.loads((folder / "export.json").read_text())["passed"] is False


def test_quantize_is_for_tflite_only(tmp_path):
    (tmp_path / "residual.yaml").write_text(RESIDUAL)
    run = saved_run(tmp_path / "run", tmp_path / "residual.yaml")
    result = export(run, "--format", "onnx", "--quantize", "int8")
    assert result.exit_code == 2 and "is for --format tflite only" in result.stderr
