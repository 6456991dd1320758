"""Flowers-17 from a tiny 17flowers-style archive of generated JPEGs (3 a class)."""

from __future__ import annotations

import numpy as np
import pytest
from data_fixtures import class_of, flower_entries, isolated, write_files, write_tgz  # noqa: F401

from cnnzoo.data import DataSpec, load_dataset
from cnnzoo.data.flowers17 import CLASS_NAMES
from cnnzoo.errors import DataError

pytestmark = pytest.mark.usefixtures("isolated")


@pytest.fixture(scope="module")
def entries():
    return flower_entries(per_class=3)


@pytest.fixture
def data_dir(tmp_path, entries):
    write_tgz(tmp_path / "data" / "17flowers.tgz", entries)
    return tmp_path / "data"


def load(data_dir, cache_dir, shape=(16, 16, 3), seed=0, progress=False, **spec):
    return load_dataset(DataSpec("oxflower17", **spec), input_shape=shape, data_dir=data_dir, seed=seed,
                        cache_dir=cache_dir, progress=progress)


def test_archive_shapes_labels_and_split_sizes(data_dir, tmp_path):
    splits = load(data_dir, tmp_path / "cache")
    assert splits.class_names == CLASS_NAMES and splits.num_classes == 17
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (31, 10, 10)
    assert splits.x_train.shape == (31, 16, 16, 3) and splits.x_train.dtype == np.uint8
    for part in ("train", "val", "test"):
        x, y = getattr(splits, f"x_{part}"), getattr(splits, f"y_{part}")
        assert np.array_equal(class_of(x), y)
    all_labels = np.concatenate([splits.y_train, splits.y_val, splits.y_test])
    assert np.bincount(all_labels).tolist() == [3] * 17


def test_split_is_seeded(data_dir, tmp_path):
    first, again = load(data_dir, tmp_path / "c", seed=4), load(data_dir, tmp_path / "c", seed=4)
    other = load(data_dir, tmp_path / "c", seed=5)
    assert np.array_equal(first.y_test, again.y_test) and np.array_equal(first.x_test, again.x_test)
    assert not np.array_equal(first.x_test, other.x_test)


def test_second_load_reads_the_cache(data_dir, tmp_path):
    cache = tmp_path / "cache"
    first = load(data_dir, cache)
    [cached] = cache.glob("oxflower17-16x16x3-*.npz")
    stamp = cached.stat().st_mtime_ns
    second = load(data_dir, cache)
    assert cached.stat().st_mtime_ns == stamp and "from cache" in second.source
    assert np.array_equal(first.x_train, second.x_train) and np.array_equal(first.y_val, second.y_val)
    assert [p.name for p in cache.iterdir()] == [cached.name]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "compressed"])
def test_damaged_cache_is_rebuilt_not_read(data_dir, tmp_path, damage):
    cache = tmp_path / "cache"
    first = load(data_dir, cache)
    [cached] = cache.glob("*.npz")
    if damage == "truncate":
        cached.write_bytes(cached.read_bytes()[:-500])
    elif damage == "garbage":
        cached.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 20)
    else:  # a valid .npz that cannot be memory-mapped
        with np.load(cached) as arrays:
            np.savez_compressed(cached.with_suffix(".tmp.npz"), **arrays)
        cached.with_suffix(".tmp.npz").replace(cached)
    second = load(data_dir, cache)
    assert "decoded, cached" in second.source
    assert np.array_equal(first.x_train, second.x_train) and np.array_equal(first.y_test, second.y_test)
    assert "from cache" in load(data_dir, cache).source


def test_cache_is_keyed_by_size_and_source(data_dir, tmp_path, entries):
    cache = tmp_path / "cache"
    load(data_dir, cache)
    load(data_dir, cache, shape=(8, 8, 1))
    write_tgz(data_dir / "17flowers.tgz", dict(list(entries.items())[1:]))
    load(data_dir, cache)
    assert len(list(cache.glob("*.npz"))) == 3


def test_grayscale(data_dir, tmp_path):
    splits = load(data_dir, tmp_path / "c", shape=(8, 12, 1), progress=True)
    assert splits.x_train.shape == (31, 8, 12, 1)


def test_extracted_folder_matches_archive(data_dir, tmp_path, entries):
    extracted = write_files(tmp_path / "other" / "17flowers", entries)
    a = load(data_dir, tmp_path / "c")
    b = load(tmp_path / "other", tmp_path / "c")
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert str(extracted / "jpg") in b.source


def test_undecodable_jpeg_is_named(tmp_path, entries):
    broken = dict(entries, **{"jpg/image_0082.jpg": entries["jpg/image_0082.jpg"][:200]})
    write_tgz(tmp_path / "17flowers.tgz", broken)
    with pytest.raises(DataError, match=r"1 image\(s\) in 17flowers.tgz could not be decoded.*jpg/image_0082.jpg"):
        load(tmp_path, tmp_path / "c")


def test_missing_class_is_reported(tmp_path, entries):
    write_tgz(tmp_path / "17flowers.tgz", {k: v for k, v in entries.items() if not k.startswith("jpg/image_128")})
    with pytest.raises(DataError, match="no images for class.*pansy"):
        load(tmp_path, tmp_path / "c")


def test_truncated_archive(data_dir, tmp_path):
    path = data_dir / "17flowers.tgz"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataError, match="17flowers.tgz is not a readable tar archive"):
        load(data_dir, tmp_path / "c")


def test_explicit_path_and_limit(data_dir, tmp_path):
    splits = load(None, tmp_path / "c", path=str(data_dir / "17flowers.tgz"), limit=4)
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (4, 4, 4)
