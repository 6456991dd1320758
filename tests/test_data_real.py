"""The shared real datasets (CNNZOO_DATA_DIR, read-only): formats as published, sizes as documented."""

from __future__ import annotations

import time

import numpy as np
import pytest
from data_fixtures import isolated  # noqa: F401

from cnnzoo.data import DataSpec, load_dataset

pytestmark = pytest.mark.usefixtures("isolated")


def load(spec, data_dir, shape, **kw):
    return load_dataset(spec, input_shape=shape, data_dir=data_dir, seed=0, progress=False, **kw)


def sizes(splits):
    return len(splits.y_train), len(splits.y_val), len(splits.y_test)


def test_mnist_npz_and_idx_files_agree(real_data_dir):
    npz = load(DataSpec("mnist", path=str(real_data_dir / "mnist.npz")), None, (28, 28, 1))
    idx = load(DataSpec("mnist", path=str(real_data_dir / "mnist")), None, (28, 28, 1))
    assert sizes(npz) == sizes(idx) == (48000, 12000, 10000)
    for key in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert np.array_equal(getattr(npz, key), getattr(idx, key))
    assert np.bincount(npz.y_test).tolist()[:3] == [980, 1135, 1032]


def test_mnist_from_the_data_dir_padded_for_lenet(real_data_dir):
    splits = load(DataSpec("mnist"), real_data_dir, (32, 32, 1))
    assert splits.x_train.shape == (48000, 32, 32, 1)


@pytest.mark.parametrize("name, train, test, length", [("FordA", 3601, 1320, 500), ("ECG200", 100, 100, 96)])
def test_ucr(real_data_dir, name, train, test, length):
    splits = load(DataSpec("ucr", name=name), real_data_dir, (length, 1))
    assert len(splits.y_train) + len(splits.y_val) == train and len(splits.y_test) == test
    assert len(splits.y_val) == round(train * 0.2)
    assert splits.x_train.shape[1:] == (length, 1) and splits.class_names == ["-1", "1"]


def test_flowers17_archive(real_data_dir, tmp_path):
    start = time.perf_counter()
    first = load(DataSpec("oxflower17"), real_data_dir, (32, 32, 3), cache_dir=tmp_path)
    decode = time.perf_counter() - start
    start = time.perf_counter()
    second = load(DataSpec("oxflower17"), real_data_dir, (32, 32, 3), cache_dir=tmp_path)
    hit = time.perf_counter() - start
    print(f"flowers 32x32: decode {decode:.2f}s, cache hit {hit:.3f}s")
    assert sizes(first) == (816, 272, 272)
    labels = np.concatenate([first.y_train, first.y_val, first.y_test])
    assert np.bincount(labels).tolist() == [80] * 17
    assert "from cache" in second.source and np.array_equal(first.x_test, second.x_test)
    assert str(tmp_path) in second.source
