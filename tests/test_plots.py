"""Training-curve and confusion-matrix PNGs from synthetic histories."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from data_fixtures import assert_drawn_png
from tiny_runs import invoke

from cnnzoo.errors import RunError
from cnnzoo.runs.folder import HistoryWriter, RunFolder
from cnnzoo.runs.plots import (available_metrics, plot_confusion_matrix, plot_metric, plot_run, plot_runs,
                               recorded_default_metrics)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def history(epochs: int, shift: float = 0.0, val: bool = True) -> pd.DataFrame:
    e = np.arange(1, epochs + 1)
    df = pd.DataFrame({"epoch": e, "loss": 2.0 / e + shift, "accuracy": 1 - 0.5 / e - shift,
                       "learning_rate": 0.01, "epoch_seconds": 1.5})
    if val:
        df["val_loss"] = 2.2 / e + shift + 0.01 * e  # minimum at epoch 15 of 20
        df["val_accuracy"] = 1 - 0.6 / e - shift
    return df


def make_run(tmp_path, name: str, df: pd.DataFrame, metrics: dict | None = None) -> RunFolder:
    run = RunFolder(tmp_path / name)
    run.path.mkdir()
    run.config.write_text(f"name: {name}\n")
    writer = HistoryWriter(run.history)
    for row in df.to_dict("records"):
        writer.append(row)
    if metrics is not None:
        run.metrics.write_text(json.dumps(metrics))
    return run


def assert_png(path, min_bytes: int = 5_000):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > min_bytes
    assert_drawn_png(path)
    assert not [p for p in path.parent.iterdir() if ".tmp-" in p.name]


def test_available_metrics():
    assert available_metrics(history(3)) == ["loss", "accuracy"]
    assert available_metrics(pd.DataFrame(columns=["epoch", "val_top_5_accuracy"])) == ["top_5_accuracy"]


def test_plot_metric_two_runs_overlaid(tmp_path):
    out = plot_metric({"a": history(20), "b": history(12, shift=0.1)}, "loss", tmp_path / "sub" / "loss.png",
                      best_epochs={"a": 15, "b": 12})
    assert out == tmp_path / "sub" / "loss.png"
    assert_png(out)
    assert plt.get_fignums() == []  # figures are closed after saving


def test_plot_metric_single_run_and_single_epoch(tmp_path):
    assert_png(plot_metric({"run": history(20)}, "accuracy", tmp_path / "acc.png", {"run": 20}))
    assert_png(plot_metric({"run": history(1, val=False)}, "loss", tmp_path / "one.png"), min_bytes=2_000)


def test_unknown_metric_names_available_ones(tmp_path):
    with pytest.raises(RunError, match="'f1' is in none of the histories.*Available metrics: accuracy, loss"):
        plot_metric({"a": history(3), "b": history(3)}, "f1", tmp_path / "f1.png")
    assert list(tmp_path.iterdir()) == []


def test_plot_run_writes_accuracy_and_loss(tmp_path):
    run = make_run(tmp_path, "lenet-20260102-030405", history(20), metrics={"best_epoch": 18})
    written = plot_run(run)
    assert written == [run.accuracy_png, run.loss_png]
    for path in written:
        assert_png(path)


def test_plot_run_skips_metrics_not_in_history_and_works_without_metrics_json(tmp_path):
    df = history(5).drop(columns=["accuracy", "val_accuracy"])
    run = make_run(tmp_path, "fcn-20260102-030405", df)
    assert plot_run(run) == [run.loss_png]
    assert not run.accuracy_png.exists()
    with pytest.raises(RunError, match="none of the metrics f1, accuracy was recorded.*Available metrics: loss"):
        plot_run(run, metrics=("f1", "accuracy"))


def test_best_epoch_fallback_and_metrics_json():
    from cnnzoo.runs.plots import _best_epoch

    assert _best_epoch(history(20)) == 15  # argmin val_loss
    assert _best_epoch(history(20).drop(columns=["val_loss"])) == 20  # argmax val_accuracy
    assert _best_epoch(history(20, val=False)) is None


def test_best_epoch_prefers_metrics_json(tmp_path):
    from cnnzoo.runs.plots import _best_epoch

    path = tmp_path / "metrics.json"
    path.write_text('{"epochs_completed": 20, "best_epoch": 7}')  # the keys every metrics.json has
    assert _best_epoch(history(20), path) == 7
    path.write_text('{"epochs_completed": 20, "best_epoch": null}')
    assert _best_epoch(history(20), path) == 15
    path.write_text("{corrupt")
    assert _best_epoch(history(20), path) == 15


def test_plot_runs_overlays_by_folder_name(tmp_path):
    runs = [make_run(tmp_path, "lenet-1", history(20)), make_run(tmp_path, "lenet-2", history(10, 0.05))]
    out = plot_runs(runs, "accuracy", tmp_path / "cmp.png")
    assert_png(out)


def regression_history(epochs: int) -> pd.DataFrame:
    e = np.arange(1, epochs + 1)
    return pd.DataFrame({"epoch": e, "loss": 1.0 / e, "mae": 0.8 / e, "r2": 1 - 1.0 / e,
                         "val_loss": 1.1 / e, "val_mae": 0.9 / e, "val_r2": 1 - 1.1 / e})


def test_recorded_default_metrics_are_those_some_run_has(tmp_path):
    regressions = [make_run(tmp_path, f"reg-{i}", regression_history(5)) for i in (1, 2)]
    assert recorded_default_metrics(regressions) == ["loss", "mae", "r2"]
    classifier = make_run(tmp_path, "cls", history(5))
    assert recorded_default_metrics([classifier, *regressions]) == ["accuracy", "loss", "mae", "r2"]
    odd = make_run(tmp_path, "odd", pd.DataFrame({"epoch": [1, 2], "hinge": [0.5, 0.4]}))
    with pytest.raises(RunError, match="--metric; recorded: hinge"):
        recorded_default_metrics([odd])


def test_plot_cli_several_regression_runs_and_one_run_with_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    regressions = [make_run(tmp_path, f"reg-{i}", regression_history(5)).path for i in (1, 2)]
    result = invoke("plot", *regressions)
    assert result.exit_code == 0, result.output  # was: "metric 'accuracy' is in none of the histories"
    for metric in ("loss", "mae", "r2"):
        assert_png(tmp_path / f"comparison-{metric}.png")
    assert not (tmp_path / "comparison-accuracy.png").exists()
    classifier = make_run(tmp_path, "cls", history(5)).path
    result = invoke("plot", classifier, "--out", tmp_path / "out" / "cls.png")
    assert result.exit_code == 0, result.output  # was: "metric 'mae' is in none of the histories"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["cls-accuracy.png", "cls-loss.png"]
    vector = invoke("plot", classifier, "--metric", "loss", "--out", tmp_path / "loss.svg")
    assert vector.exit_code == 0 and (tmp_path / "loss.svg").read_text().lstrip().startswith("<?xml")
    compared = invoke("compare", *regressions, "--out", tmp_path / "cmp.svg")  # compare overlays the same way
    assert compared.exit_code == 0, compared.output
    assert sorted(p.name for p in tmp_path.glob("cmp-*")) == ["cmp-loss.svg", "cmp-mae.svg", "cmp-r2.svg"]
    unknown = invoke("plot", classifier, "--out", tmp_path / "curves.xyz")  # was: curves-*.png, silently
    assert unknown.exit_code == 2 and "written as .png, .svg or .pdf" in unknown.output
    assert not list(tmp_path.glob("curves*"))


def test_plot_run_without_history_raises(tmp_path):
    run = RunFolder(tmp_path)
    run.config.write_text("name: x\n")
    with pytest.raises(RunError, match="history file is missing"):
        plot_run(run)


def test_confusion_matrix_png_for_17_classes(tmp_path):
    rng = np.random.default_rng(0)
    cm = np.diag(rng.integers(20, 40, 17)) + rng.integers(0, 3, (17, 17))
    names = [f"flower_class_{i:02d}" for i in range(17)]
    out = plot_confusion_matrix(cm, names, tmp_path / "confusion_matrix.png")
    assert_png(out, min_bytes=20_000)
    with pytest.raises(ValueError):
        plot_confusion_matrix(cm, names[:3], tmp_path / "bad.png")
    assert plt.get_fignums() == []
