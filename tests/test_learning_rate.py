"""One base learning rate (config.options.base_learning_rate) for the compiled optimizer, the schedules and
the distributed scaling: a config without a learning rate starts at its optimizer's own default."""

from __future__ import annotations

import dataclasses

import pytest

from cnnzoo.config import load_config
from cnnzoo.config.options import base_learning_rate
from cnnzoo.model.builder import build_model
from cnnzoo.training.labels import LabelPlan
from cnnzoo.training.schedules import epoch_rate
from cnnzoo.training.setup import compile_model

CONFIG = """\
input: {shape: [4]}
model:
  layers:
    - Dense: {units: 2, activation: softmax}
train:
  optimizer: %s
  schedule: {name: step, drop: 0.5, every: 2}
"""


def _config(tmp_path, optimizer: str, *overrides: str):
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG % optimizer)
    return load_config(path, list(overrides))


@pytest.mark.parametrize("optimizer, overrides, expected", [
    ("sgd", (), 0.01),                                   # SGD's own default, as Keras compiles it
    ("adam", (), 0.001),
    ("{name: sgd, learning_rate: 0.05}", (), 0.05),      # the optimizer mapping's rate
    ("{name: sgd, learning_rate: 0.05}", ("train.learning_rate=0.2",), 0.2),  # train.learning_rate wins
])
def test_the_schedule_starts_where_the_compiled_optimizer_does(tmp_path, optimizer, overrides, expected):
    config = _config(tmp_path, optimizer, *overrides)
    model = build_model(config).model
    compile_model(model, config, LabelPlan("sparse_categorical_crossentropy", one_hot=False))
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(expected)
    assert base_learning_rate(config.train) == pytest.approx(expected)
    rate = epoch_rate(config.train)
    assert [rate(epoch) for epoch in range(5)] == pytest.approx([expected, expected, expected / 2, expected / 2,
                                                                 expected / 4])


def test_replica_scaling_multiplies_the_same_base(tmp_path):
    from cnnzoo.training.distribute import Distribution

    config = _config(tmp_path, "sgd")
    dist = dataclasses.replace(Distribution("none"), replicas=4, scale_learning_rate="linear")
    assert dist.scaled(config).train.learning_rate == pytest.approx(0.04)
