"""dataset: tfds end to end through the CLI on a TensorFlow Datasets dataset built on disk by the test
(no download); an unknown name is one clear data error."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tiny_runs import invoke, train_tiny

tfds = pytest.importorskip("tensorflow_datasets")

CONFIG = """\
name: from_tfds
input: {{shape: [4]}}
model:
  layers: [Dense: {{units: 2, activation: softmax}}]
data: {{dataset: tfds, name: {name}, path: {path}, scale: 1.0, split: {{train: train, test: test}}}}
train: {{epochs: 1, batch_size: 8}}
"""


class CnnzooTinyPoints(tfds.core.GeneratorBasedBuilder):
    """Four numbers per example, two named classes; written to the test's folder by download_and_prepare."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, supervised_keys=("x", "label"), features=tfds.features.FeaturesDict({
            "x": tfds.features.Tensor(shape=(4,), dtype=np.float32),
            "label": tfds.features.ClassLabel(names=["left", "right"])}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(24, 0), "test": self._generate_examples(8, 1)}

    def _generate_examples(self, count, seed):
        rng = np.random.default_rng(seed)
        for i in range(count):
            yield i, {"x": rng.normal(size=4).astype(np.float32), "label": i % 2}


def test_a_tfds_dataset_built_on_disk_trains_evaluates_and_plots(tmp_path):
    folder = tmp_path / "tfds"
    CnnzooTinyPoints(data_dir=str(folder)).download_and_prepare()
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG.format(name="cnnzoo_tiny_points", path=folder))
    run = train_tiny(config, tmp_path / "runs", tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["class_names"] == ["left", "right"] and metrics["test_samples"] == 8
    assert metrics["train_samples"] + metrics["val_samples"] == 24
    result = invoke("eval", run, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["samples"] == 8
    assert invoke("plot", run).exit_code == 0


def test_an_unknown_tfds_name_is_a_data_error(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG.format(name="no_such_dataset_xyz", path=tmp_path))
    result = invoke("train", config, "--runs-dir", tmp_path / "runs")
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "TFDS dataset 'no_such_dataset_xyz' could not be loaded" in text
    assert "Traceback" not in result.output


class CnnzooTinyPictures(tfds.core.GeneratorBasedBuilder):
    """12x12 RGB images of three brightness classes, stored by TFDS as PNG in its TFRecord shards."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, supervised_keys=("image", "label"), features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(12, 12, 3)),
            "label": tfds.features.ClassLabel(names=["dark", "grey", "light"])}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(45, 0), "test": self._generate_examples(12, 1)}

    def _generate_examples(self, count, seed):
        rng = np.random.default_rng(seed)
        for i in range(count):
            pixels = np.clip(rng.normal(50 + 75 * (i % 3), 25, (12, 12, 3)), 0, 255).astype(np.uint8)
            yield i, {"image": pixels, "label": i % 3}


PICTURES = """\
name: tfds_pictures
input: {{shape: [12, 12, 3]}}
model:
  layers:
    - Conv2D: {{filters: 4, kernel_size: 3, activation: relu}}
    - GlobalAveragePooling2D
    - Dense: {{units: 3, activation: softmax}}
data: {{dataset: tfds, name: cnnzoo_tiny_pictures, path: {path}, in_memory: {in_memory}}}
train: {{epochs: 2, batch_size: 8, learning_rate: 0.01}}
"""


def test_an_image_tfds_dataset_streams_from_its_own_shards_like_it_trains_in_memory(tmp_path):
    import pandas as pd

    folder = tmp_path / "tfds"
    CnnzooTinyPictures(data_dir=str(folder)).download_and_prepare()
    runs = {}
    for in_memory in ("true", "false"):
        config = tmp_path / f"{in_memory}.yaml"
        config.write_text(PICTURES.format(path=folder, in_memory=in_memory))
        result = invoke("train", config, "--runs-dir", tmp_path / in_memory, "--deterministic")
        assert result.exit_code == 0, result.output
        (runs[in_memory],) = (tmp_path / in_memory).iterdir()
    columns = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    pd.testing.assert_frame_equal(pd.read_csv(runs["true"] / "history.csv")[columns],
                                  pd.read_csv(runs["false"] / "history.csv")[columns], rtol=1e-5)
    streamed = json.loads((runs["false"] / "metrics.json").read_text())
    assert streamed["class_names"] == ["dark", "grey", "light"] and streamed["test_samples"] == 12
    assert streamed["skipped_files"] == 0
    evaluated = invoke("eval", runs["false"], "--json")
    assert evaluated.exit_code == 0 and json.loads(evaluated.stdout)["samples"] == 12, evaluated.output
