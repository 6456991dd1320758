"""TensorBoard logs of real tiny runs, read back with TensorBoard's own event reader."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cnnzoo.training.tracking import prune_events
from tiny_runs import invoke, tiny_setup, train_tiny

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNZOO_CACHE_DIR", str(tmp_path / "cache"))


def scalars(log_dir, tag: str) -> dict[int, float]:
    """step -> value of a TF2 scalar summary, as TensorBoard reads it (several event files merged)."""
    acc = event_accumulator.EventAccumulator(str(log_dir), size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    events = acc.Tensors(tag)
    steps = [e.step for e in events]
    assert len(steps) == len(set(steps)), f"duplicate steps in {tag}: {steps}"
    import tensorflow as tf

    return {e.step: float(tf.make_ndarray(e.tensor_proto)) for e in events}


def tags(log_dir) -> list[str]:
    acc = event_accumulator.EventAccumulator(str(log_dir), size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    return acc.Tags()["tensors"]


def test_tensorboard_logs_epoch_scalars_lr_histograms_and_resume_appends(tmp_path):
    import pandas as pd

    config, data_dir = tiny_setup(tmp_path)
    run = train_tiny(config, tmp_path / "runs", data_dir, "--tensorboard")
    logs = run / "tensorboard"
    history = pd.read_csv(run / "history.csv")
    loss = scalars(logs / "train", "epoch_loss")
    assert sorted(loss) == [0, 1]
    np.testing.assert_allclose([loss[0], loss[1]], history["loss"], rtol=1e-5)
    val = scalars(logs / "validation", "epoch_accuracy")
    np.testing.assert_allclose([val[0], val[1]], history["val_accuracy"], rtol=1e-5)
    assert scalars(logs / "train", "epoch_learning_rate") == {0: pytest.approx(0.01), 1: pytest.approx(0.01)}
    train_tags = tags(logs / "train")
    assert any(t.endswith("/histogram") and "kernel" in t for t in train_tags)
    assert "keras" in train_tags  # the model graph (Keras' model summary at step 0)

    resumed = invoke("train", "--resume", run, "--epochs", "3", "--data-dir", data_dir)
    assert resumed.exit_code == 0, resumed.output
    loss = scalars(logs / "train", "epoch_loss")
    assert sorted(loss) == [0, 1, 2]
    np.testing.assert_allclose([loss[e] for e in range(3)], pd.read_csv(run / "history.csv")["loss"], rtol=1e-5)
    assert sorted(scalars(logs / "validation", "epoch_loss")) == [0, 1, 2]


def test_prune_events_drops_epochs_that_will_be_trained_again(tmp_path):
    config, data_dir = tiny_setup(tmp_path)
    run = train_tiny(config, tmp_path / "runs", data_dir, "--set", "train.tensorboard={histogram_freq: 0}")
    logs = run / "tensorboard"
    assert prune_events(logs, keep_epochs=1) > 0
    assert sorted(scalars(logs / "train", "epoch_loss")) == [0]
    assert sorted(scalars(logs / "validation", "epoch_accuracy")) == [0]
    assert not any(t.endswith("/histogram") for t in tags(logs / "train"))
    assert prune_events(logs, keep_epochs=1) == 0
    assert not list(logs.rglob(".*tmp*"))


def test_tensorboard_option_errors_point_at_the_key(tmp_path):
    config, data_dir = tiny_setup(tmp_path)
    result = invoke("summary", config, "--set", "train.tensorboard={histogram_freq: -1}")
    assert result.exit_code == 2
    assert "train.tensorboard.histogram_freq" in result.output and "an integer in [0, 100000]" in result.output
    result = invoke("summary", config, "--set", "train.tensorboard={write_grap: true}")
    assert result.exit_code == 2 and "has no option `write_grap`" in result.output


def test_mlflow_logs_params_epochs_test_metrics_and_artifacts_to_a_file_store(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    import pandas as pd

    monkeypatch.chdir(tmp_path)
    store = f"file:{tmp_path / 'mlruns'}"
    config, data_dir = tiny_setup(tmp_path)
    run = train_tiny(config, tmp_path / "runs", data_dir,
                     "--set", f"train.mlflow={{tracking_uri: '{store}', experiment: tiny-exp}}")
    client = mlflow.tracking.MlflowClient(store)
    (experiment,) = [e for e in client.search_experiments() if e.name == "tiny-exp"]
    (logged,) = client.search_runs([experiment.experiment_id])
    assert logged.info.run_name == run.name and logged.info.status == "FINISHED"
    params = logged.data.params
    assert params["train.learning_rate"] == "0.01" and params["model.layers.0.Conv2D.filters"] == "4"
    assert params["data.dataset"] == "mnist" and params["name"] == "tiny"
    history = pd.read_csv(run / "history.csv")
    losses = client.get_metric_history(logged.info.run_id, "val_loss")
    assert [m.step for m in losses] == [1, 2]
    np.testing.assert_allclose([m.value for m in losses], history["val_loss"], rtol=1e-6)
    rates = [m.value for m in client.get_metric_history(logged.info.run_id, "learning_rate")]
    np.testing.assert_allclose(rates, [0.01, 0.01])
    test = json.loads((run / "metrics.json").read_text())["test"]
    assert logged.data.metrics["test_accuracy"] == pytest.approx(test["accuracy"])
    artifacts = {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert {"config.yaml", "history.csv", "metrics.json", "summary.txt", "loss.png", "mlflow.json"} <= artifacts
    assert not {a for a in artifacts if a.endswith(".keras")}

    resumed = invoke("train", "--resume", run, "--epochs", "3", "--data-dir", data_dir)
    assert resumed.exit_code == 0, resumed.output
    (again,) = client.search_runs([experiment.experiment_id])  # the same MLflow run, continued
    assert [m.step for m in client.get_metric_history(again.info.run_id, "val_loss")] == [1, 2, 3]
