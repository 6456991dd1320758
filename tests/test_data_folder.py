"""image_folder: a class-per-sub-folder tree of generated JPEG and PNG files."""

from __future__ import annotations

import numpy as np
import pytest
from data_fixtures import class_of, encode, image_for_class, isolated  # noqa: F401

from cnnzoo.data import DataSpec, load_dataset
from cnnzoo.errors import DataError

pytestmark = pytest.mark.usefixtures("isolated")
CLASSES = ["bird", "cat", "dog"]


@pytest.fixture
def root(tmp_path):
    for label, name in enumerate(CLASSES):
        (tmp_path / "pets" / name).mkdir(parents=True)
        for i in range(5):
            fmt = "png" if i % 2 else "jpeg"
            data = encode(image_for_class(label, size=(30 + i, 20), seed=i), fmt)
            (tmp_path / "pets" / name / f"{i}.{'png' if fmt == 'png' else 'JPG'}").write_bytes(data)
    return tmp_path / "pets"


def load(path, shape=(10, 10, 3), seed=0, **spec):
    return load_dataset(DataSpec("image_folder", path=str(path), **spec), input_shape=shape, data_dir=None,
                        seed=seed, progress=False)


def test_classes_shapes_and_splits(root):
    splits = load(root)
    assert splits.class_names == CLASSES
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (9, 3, 3)
    assert splits.x_val.shape == (3, 10, 10, 3) and splits.x_val.dtype == np.uint8
    for part in ("train", "val", "test"):
        assert np.array_equal(class_of(getattr(splits, f"x_{part}")), getattr(splits, f"y_{part}"))
    assert np.bincount(splits.y_test).tolist() == [1, 1, 1]


def test_seeded_and_cached(root, tmp_path):
    first, second = load(root, seed=2), load(root, seed=2)
    assert "from cache" in second.source and np.array_equal(first.x_train, second.x_train)
    assert not np.array_equal(first.x_test, load(root, seed=3).x_test)
    assert len(list((tmp_path / "cache").glob("folder-pets-10x10x3-*.npz"))) == 1


def test_limit(root):
    splits = load(root, limit=2)
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (2, 2, 2)


def test_empty_class_folder(root):
    (root / "emu").mkdir()
    with pytest.raises(DataError, match=r"pets/emu hold no images"):
        load(root)


def test_no_class_folders(tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.jpg").write_bytes(encode(image_for_class(0)))
    with pytest.raises(DataError, match="flat has no sub-folders"):
        load(tmp_path / "flat")


def test_undecodable_image_is_named(root):
    (root / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match=r"could not be decoded.*cat/broken.png"):
        load(root)


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load(tmp_path / "nowhere")
