"""UCR 2018 time series: `<Name>/<Name>_TRAIN.tsv` and `_TEST.tsv`, label first then the series."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from cnnzoo.data.interface import DataSpec, DatasetSplits, LoadRequest
from cnnzoo.data.locate import PUT_HINT, Resource, locate
from cnnzoo.data.splits import stratified_split
from cnnzoo.errors import DataError

_SEPARATED = {"\t": "tab-separated", ",": "comma-separated"}
ARCHIVE = "https://www.cs.ucr.edu/~eamonn/time_series_data_2018/"


def resource(name: str) -> Resource:
    def usable(path: Path) -> bool:
        return all((path / f"{name}_{part}.tsv").is_file() for part in ("TRAIN", "TEST"))

    return Resource(what=f"UCR {name}", names=(f"ucr/{name}", name), accept=usable,
                    expect=f"{name}_TRAIN.tsv and {name}_TEST.tsv in a folder ucr/{name}/",
                    hint=f"There is no automatic download (the UCR 2018 archive at {ARCHIVE} is a "
                         f"password-protected zip); unpack it and copy its {name}/ folder to ucr/{name}/. "
                         + PUT_HINT)


def load(spec: DataSpec, req: LoadRequest) -> DatasetSplits:
    if not spec.name:
        raise DataError("a UCR dataset needs `data.name`, e.g. `--set data.name=FordA`.")
    folder = locate(resource(spec.name), spec_path=spec.path, data_dir=req.data_dir, progress=req.progress)
    train, test = (read_tsv(folder / f"{spec.name}_{part}.tsv", missing=spec.missing) for part in ("TRAIN", "TEST"))
    _check_length(train, test, req.input_shape, folder)
    values = np.unique(np.concatenate([train[:, 0], test[:, 0]]))
    keep, held = stratified_split(np.searchsorted(values, train[:, 0]), spec.validation_split, req.seed)
    x_train, y_train = _xy(train, values)
    x_test, y_test = _xy(test, values)
    return DatasetSplits(x_train[keep], y_train[keep], x_train[held], y_train[held], x_test, y_test,
                         [_label_name(v) for v in values], f"UCR {spec.name} in {folder}")


def class_names(spec: DataSpec, data_dir: Path | None) -> list[str]:
    """The original labels of both files, sorted, as the loader names the classes."""
    folder = locate(resource(spec.name), spec_path=spec.path, data_dir=data_dir, progress=False)
    labels = [read_tsv(folder / f"{spec.name}_{part}.tsv", missing=spec.missing)[:, 0] for part in ("TRAIN", "TEST")]
    return [_label_name(v) for v in np.unique(np.concatenate(labels))]


def read_tsv(path: Path, sep: str = "\t", missing: str = "error") -> np.ndarray:
    """float64 rows (label, series...); DataError with the line number on any bad row. `sep=","` reads
    the same layout as CSV. NaN in a series (the archive's variable-length and missing-value datasets) is
    an error, or with `missing` zero or interpolate filled in, keeping the padded length."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, sep=sep, header=None, dtype=np.float64, na_filter=missing != "error")
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        frame = None
    rows = None if frame is None else frame.to_numpy()
    if rows is None or rows.shape[1] < 2 or np.isnan(rows[:, 0]).any() or (missing == "error" and np.isnan(rows).any()):
        _scan(path, sep)
    return fill_missing(rows, missing)


def fill_missing(rows: np.ndarray, missing: str) -> np.ndarray:
    """NaN values of each series (columns 1:) set to 0, or linearly interpolated between the known values
    (the first and last known values carried to the ends; an all-NaN series becomes 0)."""
    series = rows[:, 1:]
    gaps = np.isnan(series)
    if missing == "error" or not gaps.any():
        return rows
    if missing == "zero":
        series[gaps] = 0.0
        return rows
    positions = np.arange(series.shape[1])
    for row, gap in zip(series, gaps):
        if gap.all():
            row[:] = 0.0
        elif gap.any():
            row[gap] = np.interp(positions[gap], positions[~gap], row[~gap])
    return rows


def _scan(path: Path, sep: str) -> None:
    """Find the first bad line for the error message; raise for anything pandas rejected."""
    width = None
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            fields = line.rstrip("\r\n").split(sep)
            width = width or len(fields)
            if len(fields) != width or len(fields) < 2:
                raise DataError(f"{path}, line {number}: {len(fields)} {_SEPARATED[sep]} fields where the first line "
                                f"has {width}; every row must be a label followed by the same number of values "
                                f"(variable-length series are not supported).")
            for column, field in enumerate(fields, start=1):
                _number(path, number, column, field)
    raise DataError(f"{path} holds no rows of numbers; it must be a UCR .tsv file (label, then the series).")


def _number(path: Path, line: int, column: int, field: str) -> None:
    try:
        value = float(field)
    except ValueError:
        value = None
    if value is None or value != value:
        raise DataError(f"{path}, line {line}, column {column}: {field!r} is not a number; UCR files hold a "
                        f"numeric label then numeric values, tab-separated. For the archive's variable-length and missing-value "
                        f"series (NaN), set `data.missing: interpolate` (or zero).")


def _check_length(train: np.ndarray, test: np.ndarray, input_shape, folder: Path) -> None:
    length = train.shape[1] - 1
    if test.shape[1] - 1 != length:
        raise DataError(f"{folder}: the TRAIN series have length {length} but the TEST series "
                        f"{test.shape[1] - 1}; both files must come from the same UCR dataset.")
    if tuple(input_shape) != (length, 1):
        raise DataError(f"the series in {folder} have length {length}, but the model input is "
                        f"{list(input_shape)}; set `--set input.shape=[{length},1]` (or `input: {{shape: "
                        f"[{length}, 1]}}` in the config).")


def _xy(rows: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.searchsorted(values, rows[:, 0]).astype(np.int64)
    return rows[:, 1:, None].astype(np.float32), labels


def _label_name(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def size(spec: DataSpec, shape: Sequence[int], data_dir: Path | None) -> tuple[int, int]:
    """(samples, extra bytes held while loading), by counting lines: for the memory estimate."""
    folder = locate(resource(spec.name), spec_path=spec.path, data_dir=data_dir, progress=False)
    rows = sum(_lines(folder / f"{spec.name}_{part}.tsv") for part in ("TRAIN", "TEST"))
    length = math.prod(shape)
    return rows, rows * (length + 1) * 8 + rows * length * 4  # pandas' float64 rows, then float32 series


def _lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
