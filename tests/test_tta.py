"""`cnnzoo eval --tta flip`: accuracy of the probabilities averaged over the image and its mirror."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cnnzoo.cli import app
from cnnzoo.errors import RunError
from cnnzoo.evaluation.tta import check_tta

REPO = Path(__file__).resolve().parent.parent


def test_flip_tta_averages_the_mirrored_view_and_keeps_the_single_view_scores(tmp_path, generated_data_dir,
                                                                               monkeypatch):
    import keras

    from cnnzoo import data as datasets
    from cnnzoo.config import load_config

    monkeypatch.setenv("CNNZOO_CACHE_DIR", str(tmp_path / "cache"))
    runs = tmp_path / "runs"
    trained = CliRunner().invoke(app, ["train", str(REPO / "configs" / "lenet.yaml"), "--epochs", "1", "--runs-dir",
                                       str(runs), "--data-dir", str(generated_data_dir), "--set", "data.limit=384"])
    assert trained.exit_code == 0, trained.output
    (run_dir,) = runs.iterdir()

    result = CliRunner().invoke(app, ["eval", str(run_dir), "--data-dir", str(generated_data_dir), "--tta", "flip",
                                      "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)

    config = load_config(run_dir / "config.yaml")
    splits = datasets.load_dataset(config.data, input_shape=config.input.shape, data_dir=generated_data_dir,
                                   seed=config.train.seed, progress=False)
    model = keras.models.load_model(run_dir / "best.keras")
    images = splits.x_test.astype("float32") / 255
    averaged = (model.predict(images, verbose=0) + model.predict(images[:, :, ::-1], verbose=0)) / 2
    expected = float(np.mean(averaged.argmax(axis=1) == splits.y_test))
    assert report["tta"] == "flip"
    assert report["metrics"]["accuracy"] == pytest.approx(expected, abs=1e-9)
    assert np.trace(np.array(report["confusion_matrix"])) == round(expected * len(splits.y_test))
    single = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert report["single_view"]["accuracy"] == pytest.approx(single["accuracy"], abs=1e-6)
    assert json.loads((run_dir / "eval.json").read_text())["tta"] == "flip"

    table = CliRunner().invoke(app, ["eval", str(run_dir), "--data-dir", str(generated_data_dir), "--tta", "flip"])
    assert table.exit_code == 0 and "flip test-time augmentation" in table.output and "single view:" in table.output


@pytest.mark.parametrize("shape, task, multi_label, wording", [
    ((500, 1), "classification", False, "mirrors images"),
    ((32, 32, 3), "regression", False, "a regression run"),
    ((32, 32, 3), "classification", True, "a multi-label run"),
])
def test_tta_refuses_what_a_mirror_cannot_serve(shape, task, multi_label, wording):
    with pytest.raises(RunError, match=wording):
        check_tta("flip", shape, task, multi_label, "runs/x")
    check_tta("none", shape, task, multi_label, "runs/x")  # without views everything evaluates


def test_an_unknown_view_is_refused_before_the_run_is_opened(tmp_path):
    result = CliRunner().invoke(app, ["eval", str(tmp_path / "no-such-run"), "--tta", "rotate"])
    assert result.exit_code == 2 and "--tta must be one of none, flip (got 'rotate')" in result.output
    assert "Traceback" not in result.output


def test_flip_view_mirrors_the_width_axis():
    import keras
    import tensorflow as tf

    from cnnzoo.evaluation.tta import predict_views

    inputs = keras.Input((2, 4, 1))
    first_row = keras.layers.Lambda(lambda x: x[:, 0, :, 0])(inputs)  # not mirror-invariant
    model = keras.Model(inputs, first_row)
    images = np.arange(3 * 2 * 4, dtype="float32").reshape(3, 2, 4, 1)
    pipe = tf.data.Dataset.from_tensor_slices((images, np.zeros(3))).batch(2)
    rows = images[:, 0, :, 0]
    np.testing.assert_allclose(predict_views(model, pipe, "flip"), (rows + rows[:, ::-1]) / 2)
    np.testing.assert_allclose(predict_views(model, pipe, "none"), rows)


def test_flip_views_trace_without_autograph_warnings(capfd, caplog):
    """The mirrored view is a traced tf.data map: it once made AutoGraph print the whole os.environ."""
    import keras
    import tensorflow as tf

    from cnnzoo.evaluation.tta import predict_views

    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    pipe = tf.data.Dataset.from_tensor_slices((np.ones((2, 4, 4, 1), "float32"), np.zeros(2))).batch(2)
    predict_views(model, pipe, "flip")
    logged = capfd.readouterr().err + caplog.text
    assert "AutoGraph" not in logged and "environ(" not in logged, logged[:500]
