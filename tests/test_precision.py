"""train.precision: mixed policies build the same network, keep the output in float32, train, reload and resume."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cnnzoo.cli import app
from cnnzoo.config import load_config
from cnnzoo.errors import ConfigError
from cnnzoo.precision import BF16_CPU_FLAGS, cpu_flags, resolve_precision

REPO = Path(__file__).resolve().parent.parent
LENET = REPO / "configs" / "lenet.yaml"
SUBSET = ["--set", "data.limit=384"]


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNZOO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16\n\nprocessor\t: 1\nflags\t: fpu\n")
    assert cpu_flags(cpuinfo) == {"fpu", "sse2", "avx512f", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") == set()


def test_auto_is_bfloat16_only_where_the_cpu_has_it():
    import tensorflow as tf

    native = bool(cpu_flags() & BF16_CPU_FLAGS) and not tf.config.list_physical_devices("GPU")
    assert resolve_precision("auto") == ("mixed_bfloat16" if native else "float32")
    assert resolve_precision("mixed_float16") == "mixed_float16"


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_build_keeps_parameters_and_a_float32_output(policy):
    import keras

    from cnnzoo.model.builder import build_model

    plain = build_model(load_config(LENET)).model
    mixed = build_model(load_config(LENET, [f"train.precision={policy}"])).model
    assert mixed.count_params() == plain.count_params()
    assert mixed.dtype_policy.name == policy
    compute = policy.removeprefix("mixed_")
    assert [l.compute_dtype for l in mixed.layers[1:-1]] == [compute] * (len(mixed.layers) - 2)
    assert mixed.layers[-1].compute_dtype == "float32" and mixed.output.dtype == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"


def test_unknown_precision_is_a_config_error():
    with pytest.raises(ConfigError, match=r"train.precision: `precision` must be one of float32, mixed_bfloat16"):
        load_config(LENET, ["train.precision=bf16"])


def _train(runs_dir: Path, data_dir: Path, *extra: str) -> Path:
    result = CliRunner().invoke(app, ["train", str(LENET), "--epochs", "2", "--runs-dir", str(runs_dir),
                                      "--data-dir", str(data_dir), *SUBSET, *extra])
    assert result.exit_code == 0, result.output
    (run_dir,) = runs_dir.iterdir()
    return run_dir


def test_bfloat16_run_trains_like_float32_and_reloads_resumes_and_evaluates(tmp_path, generated_data_dir):
    import keras

    plain = _train(tmp_path / "f32", generated_data_dir, "--set", "train.precision=float32")
    mixed = _train(tmp_path / "bf16", generated_data_dir, "--set", "train.precision=mixed_bfloat16")
    plain_metrics = json.loads((plain / "metrics.json").read_text())
    metrics = json.loads((mixed / "metrics.json").read_text())
    assert (plain_metrics["precision"], metrics["precision"]) == ("float32", "mixed_bfloat16")
    assert metrics["test"]["accuracy"] == pytest.approx(plain_metrics["test"]["accuracy"], abs=0.1)

    best = keras.models.load_model(mixed / "best.keras")
    assert best.layers[1].compute_dtype == "bfloat16" and best.layers[-1].compute_dtype == "float32"
    result = CliRunner().invoke(app, ["eval", str(mixed), "--data-dir", str(generated_data_dir), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["metrics"]["accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=1e-6)

    result = CliRunner().invoke(app, ["train", "--resume", str(mixed), "--epochs", "3", "--data-dir",
                                      str(generated_data_dir)])
    assert result.exit_code == 0, result.output
    assert list(pd.read_csv(mixed / "history.csv")["epoch"]) == [1, 2, 3]
    assert json.loads((mixed / "metrics.json").read_text())["precision"] == "mixed_bfloat16"
