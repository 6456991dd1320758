"""Helpers for the data tests: tiny dataset files written on the fly, a local HTTP server, real data."""

from __future__ import annotations

import functools
import gzip
import http.server
import io
import os
import socket
import struct
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from cnnzoo.data.flowers17 import CLASS_NAMES as FLOWER_CLASSES


@pytest.fixture
def real_data_dir() -> Path:
    """The shared read-only datasets, or a visible skip when CNNZOO_DATA_DIR is not set."""
    value = os.environ.get("CNNZOO_DATA_DIR")
    if not value:
        pytest.skip("CNNZOO_DATA_DIR not set: real-data tests need the shared datasets folder")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"CNNZOO_DATA_DIR={value} is not a folder")
    return path


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


def flower_entries(per_class: int = 3) -> dict[str, bytes]:
    """`jpg/image_NNNN.jpg` -> JPEG bytes: the first `per_class` images of each of the 17 classes."""
    entries = {}
    for label in range(len(FLOWER_CLASSES)):
        for i in range(per_class):
            number = label * 80 + i + 1
            entries[f"jpg/image_{number:04d}.jpg"] = encode(image_for_class(label, seed=i))
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
