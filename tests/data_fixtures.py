"""Helpers for the data tests: tiny dataset files written on the fly (and the generated stand-in for the shared
datasets folder, `write_generated_data`), a local HTTP server."""

from __future__ import annotations

import functools
import gzip
import http.server
import io
import socket
import struct
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from cnnzoo.data.flowers17 import CLASS_NAMES as FLOWER_CLASSES


@pytest.fixture
def isolated(tmp_path, monkeypatch) -> Path:
    """Keras and array caches inside tmp_path, so no test sees or fills the user's caches."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("CNNZOO_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def image_for_class(label: int, size: tuple[int, int] = (40, 60), seed: int = 0) -> np.ndarray:
    """An RGB uint8 image whose red channel encodes the class: 20 + 12*label, plus mild noise."""
    rng = np.random.default_rng([label, seed])
    image = np.full((*size, 3), (20 + 12 * label, 128, 90), np.int16)
    return np.clip(image + rng.integers(-3, 4, image.shape), 0, 255).astype(np.uint8)


def class_of(images: np.ndarray) -> np.ndarray:
    """Recover image_for_class's label from decoded (N,H,W,3) images."""
    return np.round((images[..., 0].mean(axis=(1, 2)) - 20) / 12).astype(np.int64)


def encode(image: np.ndarray, fmt: str = "jpeg") -> bytes:
    import tensorflow as tf

    encoder = tf.io.encode_jpeg if fmt == "jpeg" else tf.io.encode_png
    return encoder(image, **({"quality": 95} if fmt == "jpeg" else {})).numpy()


def tiny_mnist(train_per_class: int = 6, test_per_class: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {}
    for part, per in (("train", train_per_class), ("test", test_per_class)):
        y = np.tile(np.arange(10, dtype=np.uint8), per)
        arrays[f"x_{part}"] = rng.integers(0, 256, (len(y), 28, 28), dtype=np.uint8)
        arrays[f"y_{part}"] = y
    return arrays


def idx_bytes(array: np.ndarray) -> bytes:
    return struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_idx_folder(folder: Path, arrays: dict[str, np.ndarray]) -> Path:
    from cnnzoo.data.mnist import IDX_FILES

    folder.mkdir(parents=True, exist_ok=True)
    for key, stem in IDX_FILES.items():
        (folder / f"{stem}.gz").write_bytes(gzip.compress(idx_bytes(arrays[key])))
    return folder


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def digit_like(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N, 28, 28) uint8 MNIST-shaped images that a small CNN learns over a few epochs, as it does MNIST:
    each class is a fixed pattern of 4x4 blocks on a dark background, drawn shifted by up to 2 pixels,
    at a random brightness, over noise."""
    patterns = np.random.default_rng(1234).random((10, 7, 7)) < 0.3
    prototypes = np.kron(patterns, np.ones((4, 4))).astype(np.float32)  # (10, 28, 28) of 0 and 1
    rng = np.random.default_rng(seed)
    images = np.empty((len(labels), 28, 28), np.uint8)
    for i, label in enumerate(labels):
        shifted = np.roll(prototypes[label], tuple(rng.integers(-2, 3, 2)), axis=(0, 1))
        pixels = shifted * rng.uniform(120, 255) + rng.normal(0, 50, (28, 28))
        images[i] = np.clip(pixels, 0, 255).astype(np.uint8)
    return images


def digit_like_mnist(train: int, test: int, unique: int = 1000) -> dict[str, np.ndarray]:
    """mnist.npz's four arrays, classes in turn (as balanced as MNIST), drawn by `digit_like`; past `unique`
    images a split repeats itself (a full-size file, 60,000 + 10,000, is written in a fraction of a second)."""
    arrays = {}
    for part, count, seed in (("train", train, 1), ("test", test, 2)):
        y = (np.arange(count) % 10).astype(np.uint8)
        drawn = digit_like(y[:unique], seed)  # `unique` is a multiple of 10: the repeats keep their labels
        arrays[f"x_{part}"], arrays[f"y_{part}"] = np.resize(drawn, (count, 28, 28)), y
    return arrays


# The stand-in for the shared data folder (see `generated_data_dir` in conftest.py): the real files' names and
# formats, a few hundred examples each. MNIST has 2,000 training digits (what test_export's LeNet trains on, and
# the first 2,000 that benchmarks/compare_keras.py takes) and 300 test digits (`cnnzoo export` verifies on 256);
# FordA keeps its series length and its labels -1 and 1; Flowers-17 keeps its image numbering (80 a class).
GENERATED_MNIST = {"train": 2000, "test": 300}
FULL_SIZE_MNIST = {"train": 60_000, "test": 10_000}  # what the memory estimate counts for MNIST (data/mnist.py)
GENERATED_FORDA = {"train": 400, "test": 160, "length": 500}
GENERATED_FLOWERS_PER_CLASS = 5


def forda_like_rows(count: int, length: int, seed: int) -> np.ndarray:
    """UCR rows (label, series) with FordA's labels -1 and 1: a noisy sine whose frequency is the class."""
    rng = np.random.default_rng(seed)
    labels = np.where(np.arange(count) % 2, 1.0, -1.0)
    t = np.arange(length)
    phase = rng.uniform(0, 2 * np.pi, (count, 1))
    series = np.sin(t * np.where(labels > 0, 0.2, 0.1)[:, None] + phase) + rng.normal(0, 1.0, (count, length))
    return np.column_stack([labels, series])


def write_generated_data(folder: Path, mnist: dict[str, int] = GENERATED_MNIST) -> Path:
    """`folder` laid out as CNNZOO_DATA_DIR is (mnist.npz, ucr/FordA/FordA_{TRAIN,TEST}.tsv,
    17flowers.tgz), with small generated data in the real files' formats; `mnist`: its split sizes."""
    write_npz(folder / "mnist.npz", digit_like_mnist(mnist["train"], mnist["test"]))
    forda = folder / "ucr" / "FordA"
    forda.mkdir(parents=True, exist_ok=True)
    for part, seed in (("TRAIN", 3), ("TEST", 4)):
        rows = forda_like_rows(GENERATED_FORDA[part.lower()], GENERATED_FORDA["length"], seed)
        np.savetxt(forda / f"FordA_{part}.tsv", rows, fmt="%.6g", delimiter="\t")
    write_tgz(folder / "17flowers.tgz", flower_entries(GENERATED_FLOWERS_PER_CLASS, encoder=pillow_jpeg))
    return folder


def pillow_jpeg(image: np.ndarray) -> bytes:
    """`encode` without starting TensorFlow (the generated data folder is written before any test runs)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def flower_entries(per_class: int = 3, encoder=encode) -> dict[str, bytes]:
    """`jpg/image_NNNN.jpg` -> JPEG bytes: the first `per_class` images of each of the 17 classes."""
    entries = {}
    for label in range(len(FLOWER_CLASSES)):
        for i in range(per_class):
            number = label * 80 + i + 1
            entries[f"jpg/image_{number:04d}.jpg"] = encoder(image_for_class(label, seed=i))
    return entries


def write_tgz(path: Path, entries: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def write_files(root: Path, entries: dict[str, bytes]) -> Path:
    for name, data in entries.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def write_ucr(folder: Path, name: str, train: list[list], test: list[list]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for part, rows in (("TRAIN", train), ("TEST", test)):
        text = "".join("\t".join(str(v) for v in row) + "\n" for row in rows)
        (folder / f"{name}_{part}.tsv").write_text(text)
    return folder


def ucr_rows(labels: list, length: int, seed: int = 0) -> list[list]:
    rng = np.random.default_rng(seed)
    return [[label, *np.round(rng.normal(size=length) + float(label), 4)] for label in labels]


@pytest.fixture
def http_server(tmp_path):
    """(base_url, folder): a threaded HTTP server on 127.0.0.1 serving files from `folder`."""
    folder = tmp_path / "served"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()
    server.server_close()


def closed_port_url(name: str) -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"


def assert_drawn_png(path: Path, min_size: tuple[int, int] = (300, 200), min_colours: int = 20) -> None:
    """`path` is a PNG of at least `min_size` pixels with something drawn on it: a chart has axes,
    lines and text in many anti-aliased shades; a blank or failed figure has a handful."""
    from PIL import Image

    with Image.open(path) as picture:
        assert picture.format == "PNG", path
        assert picture.width >= min_size[0] and picture.height >= min_size[1], (path, picture.size)
        colours = picture.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) >= min_colours, f"{path} looks blank ({len(colours)} colours)"


# Shipped configs whose input shape and classes come from their dataset (`auto`): the values ECG200
# gives them (96 steps, 1 channel, 2 classes), for the tests that build them without the data.
FROM_DATA = {name: ["input.shape=[96,1]", "model.layers[-1].Dense.units=2"]
             for name in ("cnn1d_fcn_wang", "cnn1d_resnet_wang")}
