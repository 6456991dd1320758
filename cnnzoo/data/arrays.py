"""npz and npy: NumPy arrays by key. `npz`: one .npz file (`data.path`) holding x_train and y_train, and
optionally x_val/y_val, x_test/y_test and class_names; `npy`: a folder (`data.path`) of <key>.npy files
with the same keys. Inputs keep their dtype (uint8 images or float), any shape matching `input.shape`."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

from cnnzoo.data.interface import DataSpec, DatasetSplits, LoadRequest
from cnnzoo.data.locate import explicit_path
from cnnzoo.data.npy_headers import check_npy, check_npz
from cnnzoo.data.splits import stratified_split, take_splits, three_way_split
from cnnzoo.data.targets import encode_targets
from cnnzoo.errors import DataError

KEYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "class_names")
PARTS = ("train", "val", "test")
HINT = "Save the arrays again with numpy.savez / numpy.save."


def load(spec: DataSpec, req: LoadRequest) -> DatasetSplits:
    arrays, where = read_arrays(spec, req.data_dir)
    parts = [p for p in PARTS if f"x_{p}" in arrays]
    for part in parts:
        _check_pair(arrays, part, req.input_shape, where)
    names = [str(n) for n in arrays["class_names"]] if "class_names" in arrays else None
    ys, class_names = encode_targets([arrays[f"y_{p}"] for p in parts], req.task, names=names,
                                     what=f"the targets (y_*) in {where}")
    x = {p: _inputs(arrays[f"x_{p}"]) for p in parts}
    y = dict(zip(parts, ys))
    source = f"arrays {where} ({', '.join(f'{p} {len(y[p])}' for p in parts)})"
    if "test" not in y:
        split = three_way_split(y["train"], spec.validation_split if "val" not in y else 0.0, spec.test_split,
                                req.seed)
        whole = take_splits(x["train"], y["train"], split, class_names, source)
        if "val" in y:
            whole.x_val, whole.y_val = x["val"], y["val"]
        return whole
    if "val" not in y:
        keep, held = stratified_split(y["train"], spec.validation_split, req.seed)
        x["train"], x["val"], y["train"], y["val"] = x["train"][keep], x["train"][held], y["train"][keep], y["train"][held]
    return DatasetSplits(x["train"], y["train"], x["val"], y["val"], x["test"], y["test"], class_names, source)


def class_names(spec: DataSpec, data_dir: Path | None) -> list[str]:
    arrays, where = read_arrays(spec, data_dir)
    ys = [arrays[f"y_{p}"] for p in PARTS if f"y_{p}" in arrays]
    names = [str(n) for n in arrays["class_names"]] if "class_names" in arrays else None
    return encode_targets(ys, None, names=names, what=f"the targets in {where}")[1]


def size(spec: DataSpec, shape: Sequence[int], data_dir: Path | None) -> tuple[int, int]:
    arrays, _ = read_arrays(spec, data_dir)
    rows = sum(len(arrays[f"x_{p}"]) for p in PARTS if f"x_{p}" in arrays)
    return rows, rows * math.prod(shape) * 4


def read_arrays(spec: DataSpec, data_dir: Path | None) -> tuple[dict[str, np.ndarray], Path]:
    """The arrays by key (no pickled objects: allow_pickle is off) and where they were read."""
    path = explicit_path(spec.path, data_dir)
    try:
        if spec.dataset == "npz":
            if not path.is_file():
                raise DataError(f"{path} is not a file; an npz dataset's `data.path` names a .npz file.")
            check_npz(path, HINT)
            with np.load(path, allow_pickle=False) as archive:
                arrays = {k: archive[k] for k in archive.files if k in KEYS}
        else:
            if not path.is_dir():
                raise DataError(f"{path} is not a folder; an npy dataset's `data.path` names a folder of "
                                f"x_train.npy, y_train.npy, ... files.")
            arrays = {k: _load_npy(path / f"{k}.npy") for k in KEYS if (path / f"{k}.npy").is_file()}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not readable as NumPy arrays ({str(exc).splitlines()[0]}); save them with "
                        "numpy.savez / numpy.save, without object arrays.") from None
    missing = [k for k in ("x_train", "y_train") if k not in arrays]
    if missing:
        raise DataError(f"{path} has no {' and no '.join(missing)}; it needs x_train and y_train (optionally "
                        f"x_val, y_val, x_test, y_test, class_names). It holds: {', '.join(arrays) or 'none of them'}.")
    return arrays, path


def _load_npy(path: Path) -> np.ndarray:
    check_npy(path, HINT)
    return np.load(path, allow_pickle=False)


def _check_pair(arrays: dict, part: str, input_shape, where: Path) -> None:
    x, y = arrays.get(f"x_{part}"), arrays.get(f"y_{part}")
    if y is None:
        raise DataError(f"{where} has x_{part} but no y_{part}; every x_ array needs its y_ array.")
    if len(x) != len(y):
        raise DataError(f"{where}: x_{part} has {len(x)} examples but y_{part} has {len(y)}.")
    if tuple(x.shape[1:]) != tuple(input_shape):
        raise DataError(f"{where}: x_{part} examples have shape {list(x.shape[1:])}, but the model input is "
                        f"{list(input_shape)}; set `input: {{shape: {list(x.shape[1:])}}}`.")
    if x.dtype.kind not in "biuf":
        raise DataError(f"{where}: x_{part} holds {x.dtype} values; inputs must be numbers (uint8 or float).")


def _inputs(x: np.ndarray) -> np.ndarray:
    return x if x.dtype == np.uint8 else x.astype(np.float32)
