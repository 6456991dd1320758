"""Regression and CSV tables end to end through the CLI: a tiny Dense model trained on a CSV made here,
then `eval` (MAE/RMSE/R² exact over the split, scatter and residual pictures) and `plot`; bad CSVs are
exit code 2 naming the file, row and column; the shipped linear_regression config learns w = 3."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tiny_runs import invoke, train_tiny

REGRESSION = """\
name: table
input: {{shape: [2]}}
model:
  layers:
    - Dense: {{units: 1}}
data: {{dataset: csv, path: {path}, features: [x1, x2], target: y, validation_split: 0.2, test_split: 0.2}}
train: {{epochs: 3, batch_size: 8, optimizer: sgd, learning_rate: 0.1, loss: mse{extra}}}
"""


def write_table(path: Path, rows: int = 60, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(rows, 2))
    y = 2 * x[:, 0] - x[:, 1] + rng.normal(0, 0.05, rows)
    lines = ["x1,x2,y"] + [f"{a:.5f},{b:.5f},{c:.5f}" for (a, b), c in zip(x, y)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("regression")
    table = write_table(folder / "table.csv")
    config = folder / "table.yaml"
    config.write_text(REGRESSION.format(path="table.csv", extra=""))  # relative: found next to the config
    run = train_tiny(config, folder / "runs", folder)
    result = invoke("eval", run, "--json")
    assert result.exit_code == 0, result.output
    return run, json.loads(result.stdout), table


def test_regression_run_records_its_task_and_monitors_val_loss(regression_run):
    run, _, table = regression_run
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == "regression" and metrics["monitor"] == "val_loss" and metrics["class_names"] == []
    assert set(metrics["test"]) == {"loss", "mae", "rmse", "r2"}
    assert metrics["train_samples"] + metrics["val_samples"] + metrics["test_samples"] == 60
    assert len(metrics["learned_weights"]["dense/kernel"]) == 2  # a 3-parameter model records its weights
    history = (run / "history.csv").read_text().splitlines()[0].split(",")
    assert {"mae", "rmse", "r2", "val_mae", "val_rmse", "val_r2"} <= set(history)
    config = (run / "config.yaml").read_text()
    assert str(table.resolve()) in config  # the run folder names the file, so eval finds it from anywhere


def test_eval_gives_exact_regression_metrics_and_pictures(regression_run):
    import keras

    from cnnzoo import data as datasets
    from cnnzoo.config import load_config

    run, result, _ = regression_run
    assert result["task"] == "regression" and {"mae", "rmse", "r2"} <= set(result["metrics"])
    config = load_config(run / "config.yaml")
    splits = datasets.load_dataset(config.data, input_shape=config.input.shape, data_dir=None, seed=config.train.seed,
                                   task="regression")
    predicted = keras.saving.load_model(run / "best.keras").predict(splits.x_test, verbose=0).reshape(-1)
    y = splits.y_test.astype(np.float64)
    r2 = 1 - ((y - predicted) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert result["metrics"]["r2"] == pytest.approx(r2, rel=1e-4)
    assert result["metrics"]["rmse"] == pytest.approx(np.sqrt(((y - predicted) ** 2).mean()), rel=1e-4)
    assert result["metrics"]["mae"] == pytest.approx(np.abs(y - predicted).mean(), rel=1e-4)
    for name in ("predicted_vs_true.png", "residuals.png", "eval.json"):
        assert (run / name).stat().st_size > 1000 or name == "eval.json"
    assert not (run / "confusion_matrix.png").exists()


def test_plot_draws_regression_metrics(regression_run):
    run, _, _ = regression_run
    result = invoke("plot", run)
    assert result.exit_code == 0, result.output
    assert {"loss.png", "mae.png", "r2.png"} <= {Path(line).name for line in result.output.split()}
    other = invoke("plot", run, "--metric", "rmse")
    assert other.exit_code == 0 and (run / "rmse.png").exists()


def test_predict_and_explain_on_a_table_run_say_what_they_read(regression_run):
    run, _, table = regression_run
    for command in ("predict", "explain"):
        result = invoke(command, run, table)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert "trained on `csv` data" in result.output and "cnnzoo eval" in result.output


@pytest.mark.parametrize("content, where", [
    ("x1,x2,y\n1,2,3\n4,5\n", "row 3: 2 fields where row 1 has 3"),
    ("x1,x2,y\n1,2,3\n4,abc,6\n", "row 3, column 2 ('x2')"),
    ("x1,x2,y\n1,,3\n", "row 2, column 2 ('x2'): the cell is empty"),
    ("x1,x2,z\n1,2,3\n", "row 1: no column 'y' for `data.target`"),
    ("", "is empty"),
    ("x1,x2,y\n1,2,3\n4,5,nan\n", "row 3, column 3 ('y'): the target cell holds 'nan', a missing or infinite value"),
    ("x1,x2,y\n1,2,cat\n4,5,-inf\n", "row 3, column 3 ('y'): the target cell holds '-inf'"),
    ("x1,x2,y\n1,2,\n", "row 2, column 3 ('y'): the target cell is empty"),
])
def test_a_bad_csv_is_exit_2_naming_file_row_and_column(tmp_path, content, where):
    (tmp_path / "bad.csv").write_text(content)
    config = tmp_path / "bad.yaml"
    config.write_text(REGRESSION.format(path=tmp_path / "bad.csv", extra=""))
    result = invoke("train", config, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "Traceback" not in result.output
    text = " ".join(result.output.split())
    assert f"{tmp_path / 'bad.csv'}" in text.replace(" ", "") or str(tmp_path / "bad.csv") in text
    assert where in text, text
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("target", ["class", "value"])
def test_reading_a_csv_holds_no_more_than_the_memory_check_counts(tmp_path, target):
    """The file is read row by row into float32: the peak stays under size()'s estimate (it held every
    cell as a Python string, ~24x the file, while the check counted 4x)."""
    import tracemalloc

    from cnnzoo.data import tabular
    from cnnzoo.data.interface import DataSpec

    rng = np.random.default_rng(0)
    rows = 50_000
    ys = rng.choice(["cat", "dog", "bird"], rows) if target == "class" else [f"{v:.6f}" for v in rng.random(rows)]
    lines = ["f0,f1,f2,f3,f4,f5,f6,f7,y"] + [",".join(map(str, r)) + f",{y}"
                                             for r, y in zip(rng.integers(0, 10, (rows, 8)), ys)]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    spec = DataSpec(dataset="csv", path=str(path), target="y")
    _, counted = tabular.size(spec, [8], None)
    table = tabular.read_table(path)
    tracemalloc.start()
    try:
        x, y = tabular.read_values(table, list(range(8)), [8])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert x.shape == (rows, 8) and x.dtype == np.float32 and len(y) == rows
    assert peak <= counted, (peak, counted)
    assert peak < 6 * path.stat().st_size  # the cell-by-cell reader held ~24x


def test_a_config_cannot_have_any_file_quoted_as_a_table(tmp_path):
    """`test_path: ~/.ssh/id_rsa` was read, and its first line quoted back as the file's "columns"."""
    write_table(tmp_path / "train.csv", rows=20)
    secret = tmp_path / "id_rsa"
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY-----,b3BlbnNzaC1rZXktdjE\n")
    config = tmp_path / "t.yaml"
    config.write_text(REGRESSION.format(path="x", extra="").replace(
        "path: x,", f"train_path: {tmp_path / 'train.csv'}, test_path: {secret},"))
    result = invoke("train", config, "--runs-dir", tmp_path / "runs")
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "data.test_path" in text and "is not a .csv, .tsv or .tab file" in text, text
    assert "PRIVATE" not in text and "b3Blbn" not in text


def test_the_input_shape_must_match_the_feature_columns(tmp_path):
    write_table(tmp_path / "t.csv", rows=10)
    config = tmp_path / "t.yaml"
    config.write_text(REGRESSION.format(path=tmp_path / "t.csv", extra="").replace("[x1, x2]", "all_but_target")
                      .replace("shape: [2]", "shape: [3]"))
    result = invoke("train", config, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "set `input: {shape: [2]}`" in " ".join(result.output.split())


def test_shipped_linear_regression_learns_w_3(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the CSV is found next to the shipped config, not in the working directory
    result = invoke("train", "linear_regression", "--epochs", "30", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "runs").iterdir()
    weights = json.loads((run / "metrics.json").read_text())["learned_weights"]
    assert weights["dense/kernel"][0] == pytest.approx(3.0, abs=0.1)
    assert weights["dense/bias"][0] == pytest.approx(0.0, abs=0.1)
    assert "learned dense/kernel: " in result.output


@pytest.mark.parametrize("extra, where, message", [
    (["--set", "train.label_smoothing=0.1"], "train.label_smoothing",
     "needs one-hot class labels (a softmax over the classes), but this is a regression run"),
    (["--set", "data.mix={mixup_alpha: 0.2}"], "data.mix", "mixes images, but this model's input has shape [2]"),
])
def test_label_mixing_on_a_table_regression_is_refused(tmp_path, extra, where, message):
    write_table(tmp_path / "t.csv", rows=20)
    config = tmp_path / "t.yaml"
    config.write_text(REGRESSION.format(path=tmp_path / "t.csv", extra=""))
    result = invoke("train", config, "--runs-dir", tmp_path / "runs", *extra)
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "Traceback" not in text and where in text and message in text, text


def test_a_test_file_with_other_columns_is_exit_2(tmp_path):
    write_table(tmp_path / "train.csv", rows=20)
    (tmp_path / "test.csv").write_text("x1,y\n0.5,1.0\n")
    config = tmp_path / "t.yaml"
    config.write_text(REGRESSION.format(path="x", extra="").replace(
        "path: x,", f"train_path: {tmp_path / 'train.csv'}, test_path: {tmp_path / 'test.csv'},"))
    result = invoke("train", config, "--runs-dir", tmp_path / "runs")
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "Traceback" not in text, text
    assert "must hold the same columns in the same order as `train_path`" in text


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_every_kind_of_line_end_reads_the_same_rows(tmp_path, newline):
    """Old Mac exports end lines with a lone \\r: the rows are the same as with \\n or \\r\\n."""
    from cnnzoo.data import tabular

    text = write_table(tmp_path / "t.csv", rows=7).read_text()
    path = tmp_path / "ends.csv"
    path.write_bytes(text.replace("\n", newline).encode())
    x, y = tabular.read_values(tabular.read_table(path), [0, 1], [2])
    expected = np.loadtxt(tmp_path / "t.csv", delimiter=",", skiprows=1, dtype=np.float32)
    np.testing.assert_array_equal(x, expected[:, :2])
    assert len(y) == 7
