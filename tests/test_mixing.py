"""MixUp/CutMix of training batches (`data.mix`) and label smoothing (`train.label_smoothing`): the
mixed labels are the mixing weights of the images, and both options demand one-hot labels."""

from __future__ import annotations

import numpy as np
import pytest

from cnnzoo.config import load_config
from cnnzoo.config.options import MixSpec
from cnnzoo.data import make_pipeline
from cnnzoo.data.mixing import make_mixer
from cnnzoo.errors import ConfigError

CLASSES = 8


def mixed_batch(spec: MixSpec):
    """One batch of 8 constant 32x32 images, image k of class k with value k + 1, after mixing."""
    x = (np.arange(CLASSES, dtype=np.uint8) + 1).reshape(-1, 1, 1, 1) * np.ones((1, 32, 32, 1), np.uint8)
    ds = make_pipeline(x, np.arange(CLASSES), batch_size=CLASSES, num_classes=CLASSES, one_hot=True, scale=None,
                       shuffle=True, seed=3, mix=make_mixer(spec, seed=3))
    images, labels = next(iter(ds))
    return images.numpy(), labels.numpy(), np.arange(CLASSES, dtype=np.float32) + 1


def test_mixup_labels_are_the_blend_weights_of_the_images():
    images, labels, values = mixed_batch(MixSpec(mixup_alpha=0.4))
    np.testing.assert_allclose(labels.sum(axis=1), 1.0, rtol=1e-5)
    assert (labels.max(axis=1) < 1.0).any()  # something was mixed
    np.testing.assert_allclose(images[:, 0, 0, 0], labels @ values, rtol=1e-4)  # λ v_i + (1-λ) v_j


def test_cutmix_labels_are_the_pasted_area_fractions():
    images, labels, values = mixed_batch(MixSpec(mixup_alpha=0.0, cutmix_factor=1.0))
    np.testing.assert_allclose(labels.sum(axis=1), 1.0, rtol=1e-5)
    fractions = np.stack([(images[..., 0] == v).mean(axis=(1, 2)) for v in values], axis=1)
    # Keras weighs the labels by the exact area of a box with fractional corners; the pixels it pastes
    # are those whose grid position falls inside, so they differ by up to two pixel rows/columns
    np.testing.assert_allclose(fractions, labels, atol=2 / 32 + 1e-3)


def test_both_off_is_no_mixer():
    assert make_mixer(MixSpec(mixup_alpha=0.0, cutmix_factor=0.0), seed=0) is None


def write(tmp_path, data_extra: str = "", train_extra: str = "") -> str:
    path = tmp_path / "m.yaml"
    path.write_text(f"name: m\ninput: {{shape: [8, 8, 1]}}\nmodel:\n  layers:\n    - Flatten\n"
                    f"    - Dense: {{units: 10, activation: softmax}}\ndata:\n  dataset: mnist\n{data_extra}"
                    f"train:\n  epochs: 1\n{train_extra}")
    return str(path)


def test_mix_and_smoothing_options_are_typed(tmp_path):
    with pytest.raises(ConfigError, match=r"data.mix has no option `mixup`") as info:
        load_config(write(tmp_path, "  mix: {mixup: 0.2}\n"))
    assert info.value.path == "data.mix.mixup"
    with pytest.raises(ConfigError, match=r"`label_smoothing` must be a number in \[0.0, 0.5\]"):
        load_config(write(tmp_path, train_extra="  label_smoothing: 0.9\n"))


@pytest.mark.parametrize("data_extra, train_extra, what", [
    ("  mix: {mixup_alpha: 0.2}\n", "  loss: sparse_categorical_crossentropy\n", "data.mix"),
    ("", "  label_smoothing: 0.1\n  loss: sparse_categorical_crossentropy\n", "train.label_smoothing"),
])
def test_soft_labels_refuse_a_sparse_loss_and_default_to_one_hot(tmp_path, data_extra, train_extra, what):
    from cnnzoo.model.builder import build_model
    from cnnzoo.training.labels import plan_labels
    from cnnzoo.training.setup import compile_model

    config = load_config(write(tmp_path, data_extra, train_extra))
    model = build_model(config).model
    with pytest.raises(ConfigError, match=f"{what} needs one-hot labels") as info:
        plan_labels(config, model, 10)
    assert info.value.path == "train.loss"
    fixed = load_config(write(tmp_path, data_extra, train_extra.replace("  loss: sparse_categorical_crossentropy\n", "")))
    plan = plan_labels(fixed, model, 10)
    assert (plan.loss, plan.one_hot) == ("categorical_crossentropy", True)
    compile_model(model, fixed, plan)
    smoothing = getattr(model.loss, "label_smoothing", 0.0)
    assert smoothing == fixed.train.label_smoothing
