"""csv: a CSV or TSV file (`data.path`, or `train_path` and `test_path`), `features:` columns as the
input vector and `target:` column(s) as what to predict. Every bad cell is an error naming the file,
row and column; nothing is guessed."""

from __future__ import annotations

import contextlib
import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from cnnzoo.data.interface import DataSpec, DatasetSplits, LoadRequest
from cnnzoo.data.locate import explicit_path
from cnnzoo.data.splits import stratified_split, take_splits, three_way_split
from cnnzoo.data.targets import encode_targets
from cnnzoo.errors import DataError, suggest
from cnnzoo.terminal import printable

MAX_BYTES = 1 << 30
SUFFIXES = (".csv", ".tsv", ".tab")


TARGET_CELL_BYTES = 96  # one target cell held as text while reading: a str, its list slot, numpy's copy
SHARED_TEXTS = 4096  # distinct target texts held once each; past that they are values, each its own


@dataclass
class Table:
    """A CSV file's layout, from its first row; the values are read by `read_values`, row by row."""

    path: Path
    columns: list[str]        # header names, or "0", "1", ... without a header
    has_header: bool
    delimiter: str
    first_row: int            # the record number of the first non-blank row (the header, if there is one)


def load(spec: DataSpec, req: LoadRequest) -> DatasetSplits:
    tables = [read_table(p, spec.header) for p in _paths(spec, req.data_dir)]
    _same_columns(tables)
    features, targets = _columns(tables[0], spec)
    _check_shape(len(features), req.input_shape, tables[0], features)
    values = [read_values(t, features, targets) for t in tables]
    xs = [x for x, _ in values]
    ys, class_names = encode_targets([y for _, y in values], req.task,
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
    return encode_targets([read_values(t, [], targets)[1] for t in tables], None)[1]


def size(spec: DataSpec, shape: Sequence[int], data_dir: Path | None) -> tuple[int, int]:
    """(rows, bytes held while reading), by counting lines: the float32 features, the target cells as text
    and one row of text at a time (read_values keeps nothing else)."""
    paths = _paths(spec, data_dir)
    rows = sum(count_lines(p) for p in paths)
    _, targets = _columns(read_table(paths[0], spec.header), spec)
    return rows, rows * (math.prod(shape) * 4 + len(targets) * TARGET_CELL_BYTES)


def _paths(spec: DataSpec, data_dir: Path | None) -> list[Path]:
    """The table files, each with a table's suffix: a config naming `~/.ssh/id_rsa` as its `test_path`
    would otherwise have that file's first line quoted back as "columns" in an error."""
    named = ({"train_path": spec.train_path, "test_path": spec.test_path} if spec.train_path
             else {"path": spec.path})
    paths = []
    for key, given in named.items():
        if given is None:
            continue
        if Path(given).suffix.lower() not in SUFFIXES:
            raise DataError(f"data.{key} {printable(given)} is not a .csv, .tsv or .tab file; a csv dataset reads "
                            f"comma-separated (.csv) or tab-separated (.tsv, .tab) text. Name a table file "
                            f"(rename it if it is one).")
        paths.append(explicit_path(given, data_dir))
    return paths


def read_table(path: Path, header: bool | str = "auto") -> Table:
    """The file's columns from its first non-blank row; DataError for a missing, huge, empty or non-UTF-8 file."""
    if not path.is_file():
        raise DataError(f"{path} is not a file; `data.path` of a csv dataset names a .csv or .tsv file.")
    if path.stat().st_size > MAX_BYTES:
        raise DataError(f"{path} is over 1 GiB; convert it to .npz (dataset: npz) to load it as arrays.")
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    with _records(path, delimiter) as records:
        first = next(records, None)
    if first is None:
        raise DataError(f"{path} is empty; a csv dataset needs rows of values (and optionally a header row).")
    has_header = _has_header(first[1]) if header == "auto" else bool(header)
    columns = [c.strip() for c in first[1]] if has_header else [str(k) for k in range(len(first[1]))]
    return Table(path, columns, has_header, delimiter, first[0])


def read_values(table: Table, features: list[int], targets: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(float32 features (rows, len(features)), target cells), read row by row: only one row's text is held
    at a time. DataError naming the row (and column) of a ragged row or a bad cell."""
    capacity = count_lines(table.path) + 1  # an upper bound of the records: blank lines and quoted newlines are fewer
    x = np.empty((capacity, len(features)), np.float32)
    cells: list[str] = []  # row after row, len(targets) a row
    known: dict[str, str] = {}  # one str object per distinct text: a class name repeated on every row is held once
    rows = 0
    with _records(table.path, table.delimiter) as records:
        if table.has_header:
            next(records)
        for number, row in records:
            if len(row) != len(table.columns):
                raise DataError(f"{table.path}, row {number}: {len(row)} fields where row {table.first_row} "
                                f"has {len(table.columns)}; every row needs the same number of "
                                f"{'tab' if table.delimiter == chr(9) else 'comma'}-separated fields (column "
                                f"{min(len(row), len(table.columns)) + 1} is where they differ).")
            for j, column in enumerate(features):
                x[rows, j] = _cell(table, number, column, row[column])
            for column in targets:
                text = _target_cell(table, number, column, row[column])
                cells.append(known.setdefault(text, text) if len(known) < SHARED_TEXTS else text)
            rows += 1
    if not rows:
        raise DataError(f"{table.path} has a header row but no data rows.")
    return x[:rows], _target_array(cells, rows)


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


@contextlib.contextmanager
def _records(path: Path, delimiter: str) -> Iterator[Iterator[tuple[int, list[str]]]]:
    """(record number from 1, fields) of each non-blank record, read lazily; DataError for bad text."""
    def numbered(handle) -> Iterator[tuple[int, list[str]]]:
        try:
            for number, row in enumerate(csv.reader(handle, delimiter=delimiter), start=1):
                if any(cell.strip() for cell in row):
                    yield number, row
        except UnicodeDecodeError:
            raise DataError(f"{path} is not UTF-8 text; save it as UTF-8 CSV.") from None
        except csv.Error as exc:
            raise DataError(f"{path}: not readable as CSV ({exc}).") from None

    with open(path, newline="", encoding="utf-8-sig") as handle:
        yield numbered(handle)


def _cell(table: Table, number: int, column: int, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value):
        problem = "is empty (a missing value)" if not text.strip() else f"holds {text[:40]!r}, which is not a number"
        raise DataError(f"{table.path}, row {number}, column {column + 1} ({table.columns[column]!r}): "
                        f"the cell {problem}; feature cells must be numbers. Fill or drop that row, or leave the "
                        f"column out of `data.features`.")
    return value


def _target_cell(table: Table, number: int, column: int, text: str) -> str:
    """A target cell's text; never blank, and never a number that is not finite (`nan` marks a missing value
    in most exports: read as a number it would turn a table of classes or values into nonsense)."""
    cell = text.strip()
    problem = "is empty" if not cell else (f"holds {cell[:40]!r}, a missing or infinite value"
                                            if _is_number(cell) and not math.isfinite(float(cell)) else None)
    if problem:
        raise DataError(f"{table.path}, row {number}, column {column + 1} ({table.columns[column]!r}): the target "
                        f"cell {problem}; every row needs a target value (a finite number, or a class name). "
                        "Fill or drop that row.")
    return cell


def _target_array(cells: list[str], rows: int) -> np.ndarray:
    """The target cells, (rows,) or (rows, columns): numbers where every one is a number, else text (classes)."""
    if all(_is_number(cell) for cell in cells):
        array = np.fromiter((float(cell) for cell in cells), np.float64, len(cells))
    else:
        array = np.array(cells, dtype=str)
    array = array.reshape(rows, -1)
    return array[:, 0] if array.shape[1] == 1 else array


def _check_shape(width: int, input_shape, table: Table, features: list[int]) -> None:
    if tuple(input_shape) != (width,):
        raise DataError(f"{table.path} gives {width} feature column(s) ({_listed(table, features)}), but the model "
                        f"input is {list(input_shape)}; set `input: {{shape: [{width}]}}` (or choose other "
                        f"`data.features`).")


def _listed(table: Table, columns: list[int]) -> str:
    return _shown([table.columns[c] for c in columns])


def _shown(names: list[str], limit: int = 12) -> str:
    return ", ".join(repr(n) for n in names[:limit]) + (", ..." if len(names) > limit else "")


def count_lines(path: Path) -> int:
    """Line ends, whichever kind the file uses (\n, \r\n, or \r alone as old Mac exports do)."""
    newlines = returns = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            newlines, returns = newlines + block.count(b"\n"), returns + block.count(b"\r")
    return max(newlines, returns)
