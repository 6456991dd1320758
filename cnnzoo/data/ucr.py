"""UCR 2018 time series: `<Name>/<Name>_TRAIN.tsv` and `_TEST.tsv`, label first then the series.

The label is a number or a text (`abnormal`); the class names are the labels, sorted (as numbers when
every label is one). `fill_series` is shared with the UEA loader (data/uea.py)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from cnnzoo.data.interface import DataSpec, DatasetSplits, LoadRequest
from cnnzoo.data.locate import PUT_HINT, Resource, locate
from cnnzoo.data.splits import stratified_split
from cnnzoo.data.tabular import count_lines
from cnnzoo.errors import DataError

_SEPARATED = {"\t": "tab-separated", ",": "comma-separated"}
ARCHIVE = "https://www.cs.ucr.edu/~eamonn/time_series_data_2018/"
ARCHIVE_FOLDER = "UCRArchive_2018"  # what the archive's zip unpacks to: UCRArchive_2018/<Name>/
MAX_LINE = 1 << 26  # characters read for a first line (input_shape): far above the archive's longest series


def resource(name: str) -> Resource:
    def usable(path: Path) -> bool:
        return all((path / f"{name}_{part}.tsv").is_file() for part in ("TRAIN", "TEST"))

    return Resource(what=f"UCR {name}", accept=usable,
                    names=(f"ucr/{name}", name, f"{ARCHIVE_FOLDER}/{name}", f"ucr/{ARCHIVE_FOLDER}/{name}"),
                    expect=f"{name}_TRAIN.tsv and {name}_TEST.tsv in a folder ucr/{name}/ (or {name}/ in the "
                           f"unpacked archive folder {ARCHIVE_FOLDER}/)",
                    hint=f"There is no automatic download (the UCR 2018 archive at {ARCHIVE} is a "
                         f"password-protected zip); unpack it and copy its {name}/ folder to ucr/{name}/, or put "
                         f"the whole {ARCHIVE_FOLDER}/ folder in the data directory (or point `data.path` at it). "
                         + PUT_HINT)


def load(spec: DataSpec, req: LoadRequest) -> DatasetSplits:
    folder = _folder(spec, req.data_dir)
    parts = (read_labelled(folder / f"{spec.name}_{part}.tsv", missing=spec.missing) for part in ("TRAIN", "TEST"))
    (train_labels, train), (test_labels, test) = parts
    _check_length(train, test, req.input_shape, folder)
    names, (y_train, y_test) = encode_labels(train_labels, test_labels)
    keep, held = stratified_split(y_train, spec.validation_split, req.seed)
    x_train, x_test = (series[:, :, None].astype(np.float32) for series in (train, test))
    return DatasetSplits(x_train[keep], y_train[keep], x_train[held], y_train[held], x_test, y_test,
                         names, f"UCR {spec.name} in {folder}")


def _folder(spec: DataSpec, data_dir: Path | None) -> Path:
    if not spec.name:
        raise DataError("a UCR dataset needs `data.name`, e.g. `--set data.name=FordA`.")
    return locate(resource(spec.name), spec_path=spec.path, data_dir=data_dir, progress=False)


def class_names(spec: DataSpec, data_dir: Path | None) -> list[str]:
    """The original labels of both files, sorted, as the loader names the classes."""
    folder = _folder(spec, data_dir)
    labels = [read_labelled(folder / f"{spec.name}_{part}.tsv", missing=spec.missing)[0] for part in ("TRAIN", "TEST")]
    return encode_labels(*labels)[0]


def input_shape(spec: DataSpec, data_dir: Path | None) -> tuple[int, int]:
    """(series length, channels = 1) from the first row of the TRAIN file alone, without reading the rest."""
    path = _folder(spec, data_dir) / f"{spec.name}_TRAIN.tsv"
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(iter(lambda: handle.readline(MAX_LINE + 1), ""), start=1):
            if len(line) > MAX_LINE:
                raise DataError(f"{path}, line {number}: longer than {MAX_LINE:,} characters; a UCR .tsv row is a "
                                f"label then the series, one row a line.")
            if line.strip():
                if line.count("\t") < 1:
                    _scan(path, "\t", text_labels=True)
                return line.count("\t"), 1
    raise DataError(f"{path} holds no rows; it must be a UCR .tsv file (label, then the series).")


def read_labelled(path: Path, sep: str = "\t", missing: str = "error") -> tuple[np.ndarray, np.ndarray]:
    """(labels, float64 series (N, L)) of a UCR file: the labels float64 where all are numbers, else their
    texts (stripped). NaN in a series as `read_tsv` treats it; DataError with the line on any bad row."""
    rows = _numbers(path, sep, missing, skip_label=False)
    if rows is not None and rows.shape[1] >= 2 and not np.isnan(rows[:, 0]).any():
        labels, series = rows[:, 0], rows[:, 1:]
    else:  # text labels (or a bad row, which _scan finds)
        series = _numbers(path, sep, missing, skip_label=True)
        labels = _label_texts(path, sep)
        if series is None or series.shape[1] < 1 or len(labels) != len(series) or not all(map(_is_label, labels)):
            _scan(path, sep, text_labels=True)
    if missing == "error" and np.isnan(series).any():
        _scan(path, sep, text_labels=True)
    return labels, fill_series(series, missing)


def encode_labels(*label_sets: np.ndarray) -> tuple[list[str], list[np.ndarray]]:
    """(class names, int64 codes of each set): the labels of all sets sorted, as numbers when all are."""
    every = np.concatenate([np.asarray(labels, dtype=object) for labels in label_sets])
    try:
        numbers = every.astype(np.float64)
    except ValueError:
        numbers = None
    if numbers is not None and np.isfinite(numbers).all():
        values, codes = np.unique(numbers, return_inverse=True)
        names = [_label_name(v) for v in values]
    else:
        texts = [_label_name(v) if isinstance(v, float) else v for v in every]  # a numeric file beside a text one
        values, codes = np.unique(np.array(texts, dtype=str), return_inverse=True)
        names = [str(v) for v in values]
    bounds = np.cumsum([len(labels) for labels in label_sets])[:-1]
    return names, [part.astype(np.int64) for part in np.split(codes.reshape(-1), bounds)]


def read_tsv(path: Path, sep: str = "\t", missing: str = "error") -> np.ndarray:
    """float64 rows (label, series...); DataError with the line number on any bad row. `sep=","` reads
    the same layout as CSV. NaN in a series (the archive's variable-length and missing-value datasets) is
    an error, or with `missing` zero or interpolate filled in, keeping the padded length."""
    rows = _numbers(path, sep, missing, skip_label=False)
    if rows is None or rows.shape[1] < 2 or np.isnan(rows[:, 0]).any() or (missing == "error" and np.isnan(rows).any()):
        _scan(path, sep)
    fill_series(rows[:, 1:], missing)
    return rows


def _numbers(path: Path, sep: str, missing: str, skip_label: bool) -> np.ndarray | None:
    """Every cell (or every cell but the first column's) as float64 rows; None where pandas refuses."""
    import pandas as pd

    typed = {"converters": {0: str}} if skip_label else {"dtype": np.float64}
    try:
        frame = pd.read_csv(path, sep=sep, header=None, na_filter=missing != "error", **typed)
        return (frame.iloc[:, 1:] if skip_label else frame).to_numpy(np.float64)
    except (ValueError, TypeError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return None


def _label_texts(path: Path, sep: str) -> np.ndarray:
    """The first field of each non-blank line, stripped (pandas skips blank lines too)."""
    with open(path, encoding="utf-8", errors="replace") as lines:
        return np.array([line.split(sep, 1)[0].strip() for line in lines if line.strip()], dtype=object)


def _is_label(text: str) -> bool:
    """A class label: any text but an empty one or a NaN."""
    try:
        return bool(text) and float(text) == float(text)
    except ValueError:
        return True


def fill_series(series: np.ndarray, missing: str) -> np.ndarray:
    """NaN values of each series, (N, L) or each channel of (N, L, C), set to 0 in place, or linearly
    interpolated between the known values (the first and last known values carried to the ends; an
    all-NaN series becomes 0). `missing: error` leaves them; the array is returned."""
    gaps = np.isnan(series)
    if missing == "error" or not gaps.any():
        return series
    if missing == "zero":
        series[gaps] = 0.0
        return series
    channels, holes = (series, gaps) if series.ndim == 3 else (series[..., None], gaps[..., None])
    positions = np.arange(series.shape[1])
    for case, channel in np.argwhere(holes.any(axis=1)):
        row, gap = channels[case, :, channel], holes[case, :, channel]
        row[gap] = 0.0 if gap.all() else np.interp(positions[gap], positions[~gap], row[~gap])
    return series


def _scan(path: Path, sep: str, text_labels: bool = False) -> None:
    """Find the first bad line for the error message; raise for anything pandas rejected. With
    `text_labels` the first field may be any label, else it must be a number too."""
    width = None
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            fields = line.rstrip("\r\n").split(sep)
            width = width or len(fields)
            if len(fields) != width or len(fields) < 2:
                raise DataError(f"{path}, line {number}: {len(fields)} {_SEPARATED[sep]} fields where the first line "
                                f"has {width}; every row must be a label followed by the same number of values "
                                f"(variable-length series are not supported).")
            if text_labels and not _is_label(fields[0].strip()):
                raise DataError(f"{path}, line {number}, column 1: {fields[0]!r} is not a class label; each UCR row "
                                f"starts with its label (a number or a text such as `abnormal`).")
            for column, field in enumerate(fields[1:] if text_labels else fields, start=2 if text_labels else 1):
                _number(path, number, column, field)
    raise DataError(f"{path} holds no rows of numbers; it must be a UCR .tsv file (label, then the series).")


def _number(path: Path, line: int, column: int, field: str) -> None:
    try:
        value = float(field)
    except ValueError:
        value = None
    if value is None or value != value:
        raise DataError(f"{path}, line {line}, column {column}: {field!r} is not a number; UCR files hold a "
                        f"label then numeric values, tab-separated. For the archive's variable-length and "
                        f"missing-value series (NaN), set `data.missing: interpolate` (or zero).")


def _check_length(train: np.ndarray, test: np.ndarray, input_shape, folder: Path) -> None:
    length = train.shape[1]
    if test.shape[1] != length:
        raise DataError(f"{folder}: the TRAIN series have length {length} but the TEST series "
                        f"{test.shape[1]}; both files must come from the same UCR dataset.")
    if tuple(input_shape) != (length, 1):
        raise DataError(f"the series in {folder} have length {length}, but the model input is "
                        f"{list(input_shape)}; set `--set input.shape=[{length},1]` (or `input: {{shape: "
                        f"[{length}, 1]}}` in the config).")


def _label_name(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def size(spec: DataSpec, shape: Sequence[int], data_dir: Path | None) -> tuple[int, int]:
    """(samples, extra bytes held while loading), by counting lines: for the memory estimate."""
    folder = _folder(spec, data_dir)
    rows = sum(count_lines(folder / f"{spec.name}_{part}.tsv") for part in ("TRAIN", "TEST"))
    length = math.prod(shape)
    return rows, rows * (length + 1) * 8 + rows * length * 4  # pandas' float64 rows, then float32 series


