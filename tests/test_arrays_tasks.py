"""npz and npy sources, standardize, class weights, binary (ROC AUC) and multi-label classification,
end to end through the CLI on tiny arrays made here (train -> eval -> plot)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tiny_runs import invoke, train_tiny

CONFIG = """\
name: arrays
input: {{shape: [4]}}
model:
  layers:
    - Dense: {{units: 8, activation: relu}}
    - Dense: {{units: {units}, activation: {activation}}}
data: {{dataset: {dataset}, path: {path}{data}}}
train: {{epochs: 2, batch_size: 16, learning_rate: 0.01{train}}}
"""


def features(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(5.0, 3.0, size=(rows, 4)).astype(np.float32)
    return x, x[:, 0] - 5.0 + 0.3 * rng.normal(size=rows)


def write_config(folder: Path, **fields) -> Path:
    values = dict(units=3, activation="softmax", data="", train="") | fields
    path = folder / "arrays.yaml"
    path.write_text(CONFIG.format(**values))
    return path


@pytest.fixture(scope="module")
def multiclass_run(tmp_path_factory):
    """npz with class names, standardize and a class_weight mapping."""
    folder = tmp_path_factory.mktemp("npz")
    x, score = features(90, 1)
    y = np.digitize(score, [-1.0, 1.0])
    np.savez(folder / "data.npz", x_train=x[:70], y_train=y[:70], x_test=x[70:], y_test=y[70:],
             class_names=np.array(["low", "mid", "high"]))
    config = write_config(folder, dataset="npz", path=folder / "data.npz", data=", standardize: true",
                          train=", class_weight: {low: 2.0, high: 0.5}")
    run = train_tiny(config, folder / "runs", folder)
    result = invoke("eval", run, "--json")
    assert result.exit_code == 0, result.output
    return run, json.loads(result.stdout), x[:70]


def test_npz_classes_standardize_and_class_weight_are_recorded(multiclass_run):
    run, result, x_train = multiclass_run
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == "classification" and metrics["class_names"] == ["low", "mid", "high"]
    assert metrics["class_weight"] == {"low": 2.0, "mid": 1.0, "high": 0.5}
    assert metrics["train_samples"] + metrics["val_samples"] == 70 and metrics["test_samples"] == 20
    stats = json.loads((run / "standardize.json").read_text())
    assert np.all(np.abs(np.array(stats["mean"]) - x_train.mean(axis=0)) < 1.5)  # fitted on 56 of these 70 rows
    assert np.all(np.array(stats["std"]) > 1.0)  # fitted on raw values (std about 3), not on standardized ones
    assert [row["name"] for row in result["per_class"]] == ["low", "mid", "high"]


def test_new_inputs_are_standardized_with_the_recorded_numbers(multiclass_run, tmp_path):
    """What predict and explain apply to files they read for a run trained with data.standardize: true."""
    from cnnzoo.config import load_config
    from cnnzoo.data.standardize import for_new_inputs
    from cnnzoo.errors import RunError

    run, _, x_train = multiclass_run
    spec = load_config(run / "config.yaml").data
    stats = json.loads((run / "standardize.json").read_text())
    x = x_train[:5]
    expected = (x - np.array(stats["mean"])) / np.array(stats["std"])
    assert np.allclose(for_new_inputs(x, spec, run / "standardize.json"), expected, atol=1e-5)
    with pytest.raises(RunError, match="standardize.json is missing"):
        for_new_inputs(x, spec, tmp_path / "standardize.json")


def test_eval_reuses_the_recorded_standardization(multiclass_run):
    run, result, _ = multiclass_run
    stats_file = run / "standardize.json"
    saved = stats_file.read_text()
    stats = json.loads(saved)
    stats["mean"] = [m + 100.0 for m in stats["mean"]]
    stats_file.write_text(json.dumps(stats))
    try:
        shifted = invoke("eval", run, "--json")
    finally:
        stats_file.write_text(saved)
    assert shifted.exit_code == 0, shifted.output
    assert json.loads(shifted.stdout)["metrics"]["loss"] > result["metrics"]["loss"] + 1.0


def test_npy_binary_with_balanced_weights_reports_roc_auc(tmp_path):
    from cnnzoo.evaluation.regression_metrics import roc_auc

    x, score = features(80, 2)
    y = (score > 1.5).astype(np.int64)  # imbalanced: about 30% positive
    (tmp_path / "arrays").mkdir()
    for key, value in (("x_train", x), ("y_train", y)):
        np.save(tmp_path / "arrays" / f"{key}.npy", value)
    config = write_config(tmp_path, dataset="npy", path=tmp_path / "arrays", units=1, activation="sigmoid",
                          data=", standardize: true, test_split: 0.25", train=", class_weight: balanced")
    run = train_tiny(config, tmp_path / "runs", tmp_path)
    weights = json.loads((run / "metrics.json").read_text())["class_weight"]
    positives = y.mean()
    assert weights["1"] / weights["0"] == pytest.approx((1 - positives) / positives, rel=0.15)
    result = invoke("eval", run, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert 0.0 <= report["metrics"]["roc_auc"] <= 1.0 and len(report["per_class"]) == 2
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert roc_auc([0, 1, 1], [0.5, 0.5, 0.9]) == pytest.approx(0.75)  # a tie counts half
    plotted = invoke("plot", run)
    assert plotted.exit_code == 0 and (run / "accuracy.png").exists()


def test_multi_label_reports_each_label(tmp_path):
    x, _ = features(60, 3)
    y = np.stack([x[:, 0] > 5, x[:, 1] > 5, x[:, 2] > 7], axis=1).astype(np.int64)
    np.savez(tmp_path / "tags.npz", x_train=x, y_train=y, class_names=np.array(["a", "b", "c"]))
    config = write_config(tmp_path, dataset="npz", path=tmp_path / "tags.npz", activation="sigmoid",
                          train=", loss: binary_crossentropy")
    run = train_tiny(config, tmp_path / "runs", tmp_path)
    assert json.loads((run / "metrics.json").read_text())["multi_label"] is True
    result = invoke("eval", run, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["multi_label"] and [r["name"] for r in report["per_class"]] == ["a", "b", "c"]
    assert 0.0 <= report["averages"]["exact_match"] <= 1.0
    assert sum(r["support"] for r in report["per_class"]) > 0


def test_an_unknown_class_weight_name_is_a_located_config_error(tmp_path):
    x, score = features(30, 4)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=(score > 0).astype(int), class_names=np.array(["no", "yes"]))
    config = write_config(tmp_path, dataset="npz", path=tmp_path / "d.npz", units=2,
                          train=",\n        class_weight: {yess: 3}")
    result = invoke("train", config, "--runs-dir", tmp_path / "runs")
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and f"{config}:9 train.class_weight.yess" in text.replace(" ", " ")
    assert "Did you mean `yes`?" in text


def test_npz_input_shape_mismatch_is_a_data_error(tmp_path):
    np.savez(tmp_path / "d.npz", x_train=np.zeros((8, 5), np.float32), y_train=np.zeros(8, int))
    config = write_config(tmp_path, dataset="npz", path=tmp_path / "d.npz")
    result = invoke("train", config, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "set `input: {shape: [5]}`" in " ".join(result.output.split())
