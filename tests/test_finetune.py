"""Starting from trained weights: init_from (loaded, new and mismatched layers; run folders, .keras and
.weights.h5), `trainable: false` through blocks and branches, train.freeze, frozen BatchNormalization."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from run_fixtures import REPO, saved_run
from typer.testing import CliRunner

from cnnzoo.cli import app
from cnnzoo.config import load_config
from cnnzoo.errors import ConfigError
from cnnzoo.model.builder import build_model
from cnnzoo.model.finetune import init_weights

SOURCE = """
name: source
input: {shape: [28, 28, 1]}
model:
  layers:
    - Conv2D: {filters: 4, kernel_size: 3, name: conv}
    - Flatten
    - Dense: {units: 10, activation: softmax, name: head}
data: {dataset: mnist, limit: 64}
"""
TARGET = """
name: target
input: {shape: [28, 28, 1]}
model:
  init_from: {path: PATH, skip_mismatch: SKIP}
  layers:
    - Conv2D: {filters: 4, kernel_size: 3, name: conv}
    - Flatten
    - Dense: {units: 8, name: extra}
    - Dense: {units: 17, activation: softmax, name: head}
"""
BLOCKS = """
name: frozen
input: {shape: [16, 16, 3]}
model:
  blocks:
    conv_bn:
      params: [filters]
      layers:
        - Conv2D: {filters: $filters, kernel_size: 3, padding: same, use_bias: false}
        - BatchNormalization
        - ReLU
  layers:
    - conv_bn: {filters: 4}
      name: stem
      trainable: false
    - branches:
        - [Conv2D: {filters: 4, kernel_size: 1, name: side}]
        - []
      merge: add
      name: res
      trainable: false
    - conv_bn: {filters: 4}
      name: body
    - GlobalAveragePooling2D
    - Dense: {units: 3, activation: softmax, name: head}
train:
  freeze: [body.conv*]
"""


def write(folder: Path, text: str, **values) -> Path:
    for key, value in values.items():
        text = text.replace(key, str(value))
    path = folder / f"{len(list(folder.glob('*.yaml')))}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def source_run(tmp_path) -> Path:
    return saved_run(tmp_path / "runs" / "source-20260101-000000", write(tmp_path, SOURCE))


def test_loaded_new_and_skipped_layers(source_run, tmp_path):
    import keras

    config = load_config(write(tmp_path, TARGET, PATH=source_run, SKIP="true"))
    model = build_model(config).model
    rows = {row.layer: (row.status, row.detail) for row in init_weights(model, config.init_from)}
    assert rows["conv"] == ("loaded", "3x3x1x4 4")
    assert rows["extra"] == ("new", "not in best.keras")
    assert rows["head"] == ("skipped", "shapes 2704x10 10 in best.keras, 8x17 17 here")
    source = keras.models.load_model(source_run / "best.keras")
    for mine, theirs in zip(model.get_layer("conv").get_weights(), source.get_layer("conv").get_weights()):
        np.testing.assert_array_equal(mine, theirs)


def test_a_mismatch_without_skip_mismatch_is_an_error(source_run, tmp_path):
    config = load_config(write(tmp_path, TARGET, PATH=source_run, SKIP="false"))
    with pytest.raises(ConfigError, match=r"model.init_from: layer `head`: shapes 2704x10 10 in best.keras, "
                                          r"8x17 17 here.*skip_mismatch: true"):
        init_weights(build_model(config).model, config.init_from)


def test_layers_globs_select_and_a_glob_source_picks_the_newest_run(source_run, tmp_path):
    newer = saved_run(tmp_path / "runs" / "source-20260202-000000", write(tmp_path, SOURCE), seed=5)
    text = TARGET.replace("skip_mismatch: SKIP", "layers: [co*]")
    config = load_config(write(tmp_path, text, PATH=tmp_path / "runs" / "source-2*"))
    model = build_model(config).model
    rows = {row.layer: row.status for row in init_weights(model, config.init_from)}
    assert rows == {"conv": "loaded", "extra": "new", "head": "new"}
    import keras

    expected = keras.models.load_model(newer / "best.keras").get_layer("conv").get_weights()[0]
    np.testing.assert_array_equal(model.get_layer("conv").get_weights()[0], expected)


def test_weights_h5_file_matches_layers_per_class(tmp_path):
    config = load_config(write(tmp_path, SOURCE))
    source = build_model(config).model
    source.save_weights(tmp_path / "source.weights.h5")
    target_config = load_config(write(tmp_path, SOURCE.replace("model:", f"model:\n  init_from: "
                                                                         f"{tmp_path / 'source.weights.h5'}")))
    target = build_model(target_config).model
    rows = init_weights(target, target_config.init_from)
    assert [(r.layer, r.status) for r in rows] == [("conv", "loaded"), ("head", "loaded")]
    for mine, theirs in zip(target.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("text, where, message", [
    (TARGET.replace("skip_mismatch: SKIP", "layers: [cnv*]"), "model.init_from.layers[0]",
     "`cnv*` matches no layer of the model"),
    (BLOCKS.replace("body.conv*", "bdy.conv*"), "train.freeze[0]", "`bdy.conv*` matches no layer"),
    (TARGET.replace("skip_mismatch: SKIP", "skip_mismatch: maybe"), "model.init_from.skip_mismatch",
     "must be true or false"),
])
def test_pattern_and_option_mistakes_are_config_errors(tmp_path, text, where, message):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text, PATH="runs/x"))
    assert info.value.path == where and message in info.value.message


def test_missing_source_names_the_path(tmp_path):
    config = load_config(write(tmp_path, TARGET, PATH=tmp_path / "nowhere", SKIP="true"))
    with pytest.raises(ConfigError, match="nowhere: no such run folder, .keras or .weights.h5 file"):
        init_weights(build_model(config).model, config.init_from)


def test_trainable_false_through_blocks_and_branches_and_freeze_globs(tmp_path):
    import keras

    model = build_model(load_config(write(tmp_path, BLOCKS))).model
    frozen = sorted(layer.name for layer in model.layers if not layer.trainable)
    assert frozen == ["body.conv2d", "res.b0.side", "stem.batch_normalization", "stem.conv2d", "stem.re_lu"]
    assert sorted(w.path for w in model.trainable_weights) == [
        "body.batch_normalization/beta", "body.batch_normalization/gamma", "head/bias", "head/kernel"]
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = np.random.default_rng(0).random((8, 16, 16, 3), np.float32), np.arange(8) % 3
    before = {w.path: np.array(w) for w in model.weights}
    model.train_on_batch(x, y)
    changed = {w.path for w in model.weights if not np.array_equal(before[w.path], np.array(w))}
    assert {"head/kernel", "body.batch_normalization/gamma", "body.batch_normalization/moving_mean"} <= changed
    assert not {p for p in changed if p.startswith(("stem.", "res.", "body.conv2d"))}
    # frozen BatchNormalization runs in inference mode: training=True gives the inference output
    stem = keras.Model(model.input, model.get_layer("stem.re_lu").output)
    np.testing.assert_allclose(stem(x, training=True), stem(x, training=False), atol=1e-6)


def test_train_from_a_run_writes_the_table_and_keeps_frozen_weights(source_run, tmp_path, generated_data_dir,
                                                                     monkeypatch):
    import keras

    monkeypatch.setenv("CNNZOO_CACHE_DIR", str(tmp_path / "cache"))
    text = TARGET.replace("name: target", "name: target\ndata: {dataset: mnist, limit: 64}\n"
                                          "train: {freeze: [conv], epochs: 1, batch_size: 32}")
    text = text.replace("units: 17", "units: 10")  # MNIST; the head still differs: it follows `extra`
    config = write(tmp_path, text, PATH=source_run, SKIP="true")
    result = CliRunner().invoke(app, ["train", str(config), "--runs-dir", str(tmp_path / "out"),
                                      "--data-dir", str(generated_data_dir)])
    assert result.exit_code == 0, result.output
    assert "1 loaded, 1 new, 1 skipped" in result.output
    (run,) = (tmp_path / "out").iterdir()
    report = json.loads((run / "init_from.json").read_text())
    assert [row["status"] for row in report["layers"]] == ["loaded", "new", "skipped"]
    trained = keras.models.load_model(run / "last.keras")
    source = keras.models.load_model(source_run / "best.keras")
    np.testing.assert_array_equal(trained.get_layer("conv").get_weights()[0], source.get_layer("conv").get_weights()[0])


def test_shipped_finetune_config_freezes_the_convolutions():
    config = load_config(REPO / "configs" / "lenet_finetune.yaml")
    model = build_model(config).model
    assert config.init_from.path == "runs/lenet-2*" and config.init_from.skip_mismatch
    assert [layer.name for layer in model.layers if layer.weights and not layer.trainable] == ["conv2d", "conv2d_1"]


def test_summary_shows_trainable_and_frozen_rows(tmp_path):
    config = write(tmp_path, BLOCKS)
    table = CliRunner().invoke(app, ["summary", str(config)], env={"COLUMNS": "160"})
    assert table.exit_code == 0, table.output
    lines = {line.split()[1]: line for line in table.output.splitlines() if line.startswith("│")}
    assert lines["stem"].rstrip(" │").endswith("frozen") and lines["head"].rstrip(" │").endswith("yes")
    assert "16 of 160" in lines["body"]  # the conv (144) is frozen, BatchNormalization (16) is not
    data = json.loads(CliRunner().invoke(app, ["summary", str(config), "--json"]).stdout)
    rows = {row["name"]: row for row in data["layers"]}
    assert rows["res"]["frozen_params"] == rows["res"]["params"] == 20 and rows["head"]["frozen_params"] == 0
