"""MNIST from a tiny mnist.npz and tiny IDX files written by the tests."""

from __future__ import annotations

import dataclasses
import gzip

import numpy as np
import pytest
from data_fixtures import closed_port_url, idx_bytes, isolated, tiny_mnist, write_idx_folder, write_npz  # noqa: F401

from cnnzoo.data import DataSpec, load_dataset, mnist
from cnnzoo.errors import DataError

pytestmark = pytest.mark.usefixtures("isolated")


@pytest.fixture
def arrays():
    return tiny_mnist()


def load(data_dir, shape=(28, 28, 1), seed=0, **spec):
    return load_dataset(DataSpec("mnist", **spec), input_shape=shape, data_dir=data_dir, seed=seed,
                        progress=False)


def test_npz_gives_official_test_set_and_stratified_validation(tmp_path, arrays):
    write_npz(tmp_path / "data" / "mnist.npz", arrays)
    splits = load(tmp_path / "data", validation_split=0.5)
    assert splits.x_train.shape == (30, 28, 28, 1) and splits.x_train.dtype == np.uint8
    assert splits.x_val.shape == (30, 28, 28, 1)
    assert np.bincount(splits.y_val).tolist() == [3] * 10
    assert splits.y_train.dtype == np.int64
    assert np.array_equal(splits.x_test[..., 0], arrays["x_test"])
    assert splits.class_names == [str(d) for d in range(10)]
    assert "mnist.npz" in splits.source


def test_idx_folder_matches_npz(tmp_path, arrays):
    write_npz(tmp_path / "a" / "mnist.npz", arrays)
    write_idx_folder(tmp_path / "b" / "mnist", arrays)
    a, b = load(tmp_path / "a", seed=3), load(tmp_path / "b", seed=3)
    for key in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert np.array_equal(getattr(a, key), getattr(b, key))
    assert "IDX" in b.source


def test_explicit_path_to_the_idx_folder(tmp_path, arrays):
    folder = write_idx_folder(tmp_path / "digits", arrays)
    assert len(load(None, path=str(folder)).y_test) == 20


def test_split_depends_on_the_seed(tmp_path, arrays):
    write_npz(tmp_path / "mnist.npz", arrays)
    first, again, other = load(tmp_path, seed=1), load(tmp_path, seed=1), load(tmp_path, seed=2)
    assert np.array_equal(first.x_val, again.x_val)
    assert not np.array_equal(first.x_val, other.x_val)


def test_larger_input_is_zero_padded_centred(tmp_path, arrays):
    write_npz(tmp_path / "mnist.npz", arrays)
    splits = load(tmp_path, shape=(32, 32, 1))
    assert splits.x_test.shape == (20, 32, 32, 1)
    assert np.array_equal(splits.x_test[:, 2:30, 2:30, 0], arrays["x_test"])
    assert splits.x_test[:, :2].max() == 0 and splits.x_test[:, 30:].max() == 0


def test_other_sizes_are_resized_and_grey_repeated(tmp_path, arrays):
    write_npz(tmp_path / "mnist.npz", arrays)
    splits = load(tmp_path, shape=(14, 14, 3))
    assert splits.x_test.shape == (20, 14, 14, 3) and splits.x_test.dtype == np.uint8
    assert np.array_equal(splits.x_test[..., 0], splits.x_test[..., 2])


def test_non_image_input_shape_is_rejected(tmp_path, arrays):
    write_npz(tmp_path / "mnist.npz", arrays)
    with pytest.raises(DataError, match=r"\[height, width, channels\]"):
        load(tmp_path, shape=(784,))


def test_idx_with_fewer_bytes_than_its_header_says(tmp_path, arrays):
    folder = write_idx_folder(tmp_path / "mnist", arrays)
    raw = idx_bytes(arrays["x_train"])[:-100]
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz is truncated"):
        load(tmp_path)


def test_truncated_gzip_stream(tmp_path, arrays):
    folder = write_idx_folder(tmp_path / "mnist", arrays)
    path = folder / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz is a damaged gzip file"):
        load(tmp_path)


def test_bad_magic_number(tmp_path, arrays):
    folder = write_idx_folder(tmp_path / "mnist", arrays)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x0d\x01" + bytes(64)))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz is not an IDX file.*00000d01"):
        load(tmp_path)


def test_npz_without_the_expected_arrays(tmp_path):
    write_npz(tmp_path / "mnist.npz", {"images": np.zeros(3)})
    with pytest.raises(DataError, match="lacks x_train"):
        load(tmp_path)


def test_corrupt_npz(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="mnist.npz could not be read"):
        load(tmp_path)


def test_missing_everywhere_and_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "RESOURCE", dataclasses.replace(mnist.RESOURCE, url=closed_port_url("mnist.npz")))
    (tmp_path / "data").mkdir()
    with pytest.raises(DataError) as err:
        load(tmp_path / "data")
    text = str(err.value)
    assert "mnist.npz" in text and str(tmp_path / "data" / "mnist.npz") in text
    assert str(tmp_path / "keras" / "datasets" / "mnist.npz") in text
    assert "downloading http://127.0.0.1" in text and "--data-dir" in text
