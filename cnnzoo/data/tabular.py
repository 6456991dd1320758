"""csv: a CSV or TSV file (`data.path`, or `train_path` and `test_path`), `features:` columns as the
input vector and `target:` column(s) as what to predict. Every bad cell is an error naming the file,
row and column; nothing is guessed."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from cnnzoo.data.interface import DataSpec, DatasetSplits, LoadRequest
from cnnzoo.data.locate import explicit_path
from cnnzoo.data.splits import stratified_split, take_splits, three_way_split
from cnnzoo.data.targets import encode_targets
from cnnzoo.errors import DataError, suggest

MAX_BYTES = 1 << 30


@dataclass
class Table:
    path: Path
    columns: list[str]        # header names, or "0", "1", ... without a header
    rows: list[list[str]]
    first_row: int            # file row number of rows[0] (2 after a header)
    has_header: bool


def load(spec: DataSpec, req: LoadRequest) -> DatasetSplits:
    tables = [read_table(p, spec.header) for p in _paths(spec, req.data_dir)]
    _same_columns(tables)
    features, targets = _columns(tables[0], spec)
    xs = [_numbers(t, features) for t in tables]
    _check_shape(xs[0].shape[1], req.input_shape, tables[0], features)
    ys, class_names = encode_targets([_target(t, targets) for t in tables], req.task,
                                     names=[tables[0].columns[c] for c in targets] if len(targets) > 1 else None,
                                     what=f"the target column(s) {_listed(tables[0], targets)} of {tables[0].path}")
    source = f"CSV {', '.join(str(t.path) for t in tables)} ({len(features)} features)"
    if len(tables) == 1:
        parts = three_way_split(ys[0], spec.validation_split, spec.test_split, req.seed)
        return take_splits(xs[0], ys[0], parts, class_names, source)
    keep, held = stratified_split(ys[0], spec.validation_split, req.seed)
    return DatasetSplits(xs[0][keep], ys[0][keep], xs[0][held], ys[0][held], xs[1], ys[1], class_names, source)


def _same_columns(tables: list[Table]) -> None:
    """A test file must hold the training file's columns (its features and target are read by position)."""
    first = tables[0]
    for other in tables[1:]:
        if len(other.columns) != len(first.columns) or (first.has_header and other.has_header
                                                        and other.columns != first.columns):
            raise DataError(f"{other.path}: row 1 has the columns {other.columns[:8]}, but {first.path} has "
                            f"{first.columns[:8]}; `test_path` must hold the same columns in the same order as "
                            f"`train_path`. Fix the file's columns, or leave `test_path` out to split one file.")


def class_names(spec: DataSpec, data_dir: Path | None) -> list[str]:
    tables = [read_table(p, spec.header) for p in _paths(spec, data_dir)]
    _, targets = _columns(tables[0], spec)
    return encode_targets([_target(t, targets) for t in tables], None)[1]


def size(spec: DataSpec, shape: Sequence[int], data_dir: Path | None) -> tuple[int, int]:
    """(rows, bytes of the text held while reading), by counting lines."""
    paths = _paths(spec, data_dir)
    rows = sum(_lines(p) for p in paths)
    return rows, sum(p.stat().st_size for p in paths) * 4 + rows * math.prod(shape) * 4


def _paths(spec: DataSpec, data_dir: Path | None) -> list[Path]:
    if spec.train_path:
        paths = [spec.train_path] + ([spec.test_path] if spec.test_path else [])
    else:
        paths = [spec.path]
    return [explicit_path(p, data_dir) for p in paths]


def read_table(path: Path, header: bool | str = "auto") -> Table:
    """All rows as text, equally wide; DataError for an empty file or a ragged row."""
    if not path.is_file():
        raise DataError(f"{path} is not a file; `data.path` of a csv dataset names a .csv or .tsv file.")
    if path.stat().st_size > MAX_BYTES:
        raise DataError(f"{path} is over 1 GiB; convert it to .npz (dataset: npz) to load it as arrays.")
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle, delimiter=delimiter)]
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; save it as UTF-8 CSV.") from None
    except csv.Error as exc:
        raise DataError(f"{path}: not readable as CSV ({exc}).") from None
    numbered = [(n, r) for n, r in enumerate(rows, start=1) if any(cell.strip() for cell in r)]
    if not numbered:
        raise DataError(f"{path} is empty; a csv dataset needs rows of values (and optionally a header row).")
    has_header = _has_header(numbered[0][1]) if header == "auto" else bool(header)
    width = len(numbered[0][1])
    for number, row in numbered:
        if len(row) != width:
            raise DataError(f"{path}, row {number}: {len(row)} fields where row {numbered[0][0]} has {width}; every "
                            f"row needs the same number of {'tab' if delimiter == chr(9) else 'comma'}-separated "
                            f"fields (column {min(len(row), width) + 1} is where they differ).")
    body = numbered[1:] if has_header else numbered
    if not body:
        raise DataError(f"{path} has a header row but no data rows.")
    columns = [c.strip() for c in numbered[0][1]] if has_header else [str(k) for k in range(width)]
    return Table(path, columns, [r for _, r in body], body[0][0], has_header)


def _has_header(row: list[str]) -> bool:
    return any(not _is_number(cell) for cell in row)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _columns(table: Table, spec: DataSpec) -> tuple[list[int], list[int]]:
    """(feature column indices, target column indices) of `features:` and `target:`."""
    if spec.target is None:
        raise DataError(f"{table.path}: a csv dataset needs `data.target`: the column to predict "
                        f"(columns: {_shown(table.columns)}).")
    targets = _select(table, spec.target, "target")
    if spec.features == "all_but_target":
        features = [k for k in range(len(table.columns)) if k not in targets]
    else:
        features = _select(table, spec.features, "features")
    if not features:
        raise DataError(f"{table.path}: no feature columns are left beside the target {_listed(table, targets)}.")
    both = set(features) & set(targets)
    if both:
        raise DataError(f"{table.path}: column {_listed(table, sorted(both))} is both a feature and the target; "
                        "take it out of `data.features`.")
    return features, targets


def _select(table: Table, value: Any, key: str) -> list[int]:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    picked: list[int] = []
    for item in items:
        if isinstance(item, str) and ".." in item and item not in table.columns:
            first, last = (_index(table, part.strip(), key) for part in item.split("..", 1))
            picked += list(range(first, last + 1)) if first <= last else []
        else:
            picked.append(_index(table, item, key))
    return list(dict.fromkeys(picked))


def _index(table: Table, item: Any, key: str) -> int:
    if isinstance(item, str) and item in table.columns:
        return table.columns.index(item)
    if isinstance(item, int) or (isinstance(item, str) and item.isdigit() and not table.has_header):
        if 0 <= int(item) < len(table.columns):
            return int(item)

    hint = suggest(str(item), table.columns) if table.has_header else "The file has no header row: use 0-based indices."
    raise DataError(f"{table.path}, row 1: no column {item!r} for `data.{key}` (columns: {_shown(table.columns)}). "
                    f"{hint or ''}".rstrip())


def _numbers(table: Table, columns: list[int]) -> np.ndarray:
    """float32 (rows, len(columns)); DataError naming the row and column of a missing or non-numeric cell."""
    out = np.empty((len(table.rows), len(columns)), np.float32)
    for i, row in enumerate(table.rows):
        for j, column in enumerate(columns):
            out[i, j] = _cell(table, i, column, row[column])
    return out


def _cell(table: Table, i: int, column: int, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value):
        problem = "is empty (a missing value)" if not text.strip() else f"holds {text[:40]!r}, which is not a number"
        raise DataError(f"{table.path}, row {_row(table, i)}, column {column + 1} ({table.columns[column]!r}): "
                        f"the cell {problem}; feature cells must be numbers. Fill or drop that row, or leave the "
                        f"column out of `data.features`.")
    return value


def _row(table: Table, i: int) -> int:
    return table.first_row + i  # blank lines aside, which read_table skips


def _target(table: Table, columns: list[int]) -> np.ndarray:
    """The target cells: numbers where every one is a number, else text (classes); never a blank."""
    for i, row in enumerate(table.rows):
        for column in columns:
            if not row[column].strip():
                raise DataError(f"{table.path}, row {_row(table, i)}, column {column + 1} ({table.columns[column]!r}): "
                                "the target cell is empty; every row needs a target value.")
    cells = np.array([[row[c].strip() for c in columns] for row in table.rows])
    if all(_is_number(v) for v in cells.ravel()):
        cells = cells.astype(np.float64)
    return cells[:, 0] if len(columns) == 1 else cells


def _check_shape(width: int, input_shape, table: Table, features: list[int]) -> None:
    if tuple(input_shape) != (width,):
        raise DataError(f"{table.path} gives {width} feature column(s) ({_listed(table, features)}), but the model "
                        f"input is {list(input_shape)}; set `input: {{shape: [{width}]}}` (or choose other "
                        f"`data.features`).")


def _listed(table: Table, columns: list[int]) -> str:
    return _shown([table.columns[c] for c in columns])


def _shown(names: list[str], limit: int = 12) -> str:
    return ", ".join(repr(n) for n in names[:limit]) + (", ..." if len(names) > limit else "")


def _lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
