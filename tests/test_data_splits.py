"""Registry, split helpers, data-dir resolution and the cheap import of cnnzoo.data."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnzoo.data import (DATASETS, DatasetSplits, DataSpec, default_scale, load_dataset, resolve_data_dir,
                         stratified_split)
from cnnzoo.data.splits import limit_splits, stratified_pick, three_way_split
from cnnzoo.errors import DataError


def labels(per_class: list[int]) -> np.ndarray:
    return np.repeat(np.arange(len(per_class)), per_class)


def test_stratified_split_holds_out_each_class_in_proportion():
    y = labels([50, 30, 20])
    keep, held = stratified_split(y, 0.2, seed=0)
    assert np.bincount(y[held]).tolist() == [10, 6, 4]
    assert sorted(np.concatenate([keep, held]).tolist()) == list(range(100))


def test_stratified_split_is_deterministic_under_its_seed():
    y = labels([40, 40])
    same = [stratified_split(y, 0.25, seed=7)[1] for _ in range(2)]
    other = stratified_split(y, 0.25, seed=8)[1]
    assert np.array_equal(*same)
    assert not np.array_equal(same[0], other)


def test_stratified_split_total_is_exact_when_classes_round_unevenly():
    y = labels([7, 7, 7])
    assert len(stratified_split(y, 0.5, seed=0)[1]) == 11


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=6), st.floats(0, 1), st.integers(0, 2**31))
def test_stratified_pick_is_proportional(per_class, fraction, seed):
    y = labels(per_class)
    n = int(round(len(y) * fraction))
    picked = stratified_pick(y, n, np.random.default_rng(seed))
    assert len(picked) == n == len(set(picked.tolist()))
    expected = np.array(per_class) * n / len(y)
    assert np.all(np.abs(np.bincount(y[picked], minlength=len(per_class)) - expected) < 1)


def test_three_way_split_gives_flowers_sizes():
    train, val, test = three_way_split(labels([80] * 17), 0.2, 0.2, seed=0)
    assert (len(train), len(val), len(test)) == (816, 272, 272)
    assert len(set(train) | set(val) | set(test)) == 1360


def test_three_way_split_rejects_no_training_data():
    with pytest.raises(DataError, match="leave no training data"):
        three_way_split(labels([10, 10]), 0.5, 0.5, seed=0)


def test_limit_keeps_at_most_limit_per_split_stratified():
    y = labels([30, 30])
    x = np.arange(60)
    splits = DatasetSplits(x, y, x[:5], y[:5], x, y, ["a", "b"], "test")
    limited = limit_splits(splits, 10, seed=0)
    assert np.bincount(limited.y_train).tolist() == [5, 5]
    assert len(limited.y_val) == 5
    assert np.array_equal(limited.x_test, limit_splits(splits, 10, seed=0).x_test)


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DataError) as err:
        load_dataset(DataSpec("cifar"), input_shape=(32, 32, 3), data_dir=None, seed=0)
    for name in DATASETS:
        assert name in str(err.value)


def test_resolve_data_dir_prefers_option_then_env(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.setenv("CNNZOO_DATA_DIR", str(tmp_path / "b"))
    assert resolve_data_dir(tmp_path / "a") == tmp_path / "a"
    assert resolve_data_dir(None) == tmp_path / "b"
    monkeypatch.delenv("CNNZOO_DATA_DIR")
    assert resolve_data_dir(None) is None


def test_resolve_data_dir_rejects_a_missing_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNZOO_DATA_DIR", str(tmp_path / "nope"))
    with pytest.raises(DataError, match="CNNZOO_DATA_DIR"):
        resolve_data_dir(None)


def test_default_scale():
    assert default_scale(DataSpec("mnist")) == pytest.approx(1 / 255)
    assert default_scale(DataSpec("ucr", name="FordA")) is None
    assert default_scale(DataSpec("ucr", name="FordA", scale=0.5)) == 0.5


def test_importing_cnnzoo_data_does_not_import_tensorflow():
    code = "import sys, cnnzoo.data; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
