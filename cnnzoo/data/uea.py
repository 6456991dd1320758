"""UEA multivariate time series in the `.ts` format of sktime and timeseriesclassification.com:
`<Name>/<Name>_TRAIN.ts` and `_TEST.ts`.

A file is `@` header lines (`@problemName`, `@timeStamps false`, `@missing`, `@univariate`,
`@equalLength`, `@seriesLength`, `@classLabel true a b c`), then `@data` and one case a line: its
dimensions separated by `:`, their values by `,`, the class label after the last `:`; `?` or `NaN` is a
missing value and `#` starts a comment line. The file is read line by line (nothing in it is evaluated),
each line at most MAX_LINE characters. Series come out (cases, length, channels) float32, a shorter one
padded at the end with NaN to the longest of both files, which `data.missing` then refuses or fills as
for UCR. Labels are 0..K-1 in the order of the TRAIN file's `@classLabel`, whose names are the class names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from cnnzoo.data.interface import DataSpec, DatasetSplits, LoadRequest
from cnnzoo.data.locate import PUT_HINT, Resource, locate
from cnnzoo.data.splits import stratified_split
from cnnzoo.data.ucr import fill_series
from cnnzoo.errors import DataError

ARCHIVE = "https://www.timeseriesclassification.com/"
ARCHIVE_FOLDERS = ("Multivariate_ts", "Multivariate2018_ts/Multivariate_ts")  # what the archive's zip unpacks to
PARTS = ("TRAIN", "TEST")
MAX_LINE = 1 << 24  # characters in one line: the archive's longest case (MotorImagery, 64 x 3,000) is ~3 MB
MAX_DIMENSIONS = 10_000  # channels of one case (the archive's most: DuckDuckGeese, 1,345)
MAX_CELLS = 1 << 31  # values of the padded (cases, length, channels) array of one file: 8 GiB of float32
FLOAT32_MAX = float(np.finfo(np.float32).max)
FORMAT = ("a .ts case is its dimensions separated by `:`, their values by `,`, and the class label after the "
          "last `:`, e.g. `1.0,2.0,3.0:4.0,5.0,6.0:walking`")
_FLAGS = ("timestamps", "missing", "univariate", "equallength", "classlabel", "targetlabel")
_NUMBERS = ("dimension", "dimensions", "serieslength")


def resource(name: str) -> Resource:
    def usable(path: Path) -> bool:
        return all((path / f"{name}_{part}.ts").is_file() for part in PARTS)

    archive = tuple(f"{folder}/{name}" for folder in ARCHIVE_FOLDERS)
    return Resource(what=f"UEA {name}", accept=usable,
                    names=(f"uea/{name}", name, *archive, *(f"uea/{path}" for path in archive)),
                    expect=f"{name}_TRAIN.ts and {name}_TEST.ts in a folder uea/{name}/ (or {name}/ in the "
                           f"unpacked archive folder {ARCHIVE_FOLDERS[0]}/)",
                    hint=f"There is no automatic download; get {name} (.ts format) from {ARCHIVE}, unpack it and "
                         f"copy its {name}/ folder to uea/{name}/, or put the whole {ARCHIVE_FOLDERS[0]}/ folder "
                         f"in the data directory (or point `data.path` at it). " + PUT_HINT)


@dataclass
class Header:
    """What a file's `@` lines declare; `data_line` is the line number of `@data`."""

    classes: list[str] | None = None
    equal_length: bool | None = None
    series_length: int | None = None
    dimensions: int | None = None
    univariate: bool | None = None
    data_line: int = 0


@dataclass
class TsFile:
    """One file's cases: per case its values (float32, channel after channel), the length of each
    channel, its label (an index into header.classes) and its line number."""

    path: Path
    header: Header
    values: list[np.ndarray] = field(default_factory=list)
    lengths: list[np.ndarray] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    @property
    def channels(self) -> int:
        return len(self.lengths[0])

    @property
    def longest(self) -> int:
        return max(int(lengths.max()) for lengths in self.lengths)


def load(spec: DataSpec, req: LoadRequest) -> DatasetSplits:
    folder = _folder(spec, req.data_dir)
    train, test = (read_ts(folder / f"{spec.name}_{part}.ts") for part in PARTS)
    names = train.header.classes
    y_test = _test_labels(train, test)
    length, channels = _shape(train, test, folder)
    if tuple(req.input_shape) != (length, channels):
        raise DataError(f"the series in {folder} have length {length} and {channels} channel(s), but the model "
                        f"input is {list(req.input_shape)}; set `--set input.shape=[{length},{channels}]` (or "
                        f"`input: {{shape: [{length}, {channels}]}}` in the config).")
    x_train, x_test = (padded(ts, length, spec.missing) for ts in (train, test))
    y_train = np.asarray(train.labels, np.int64)
    keep, held = stratified_split(y_train, spec.validation_split, req.seed)
    return DatasetSplits(x_train[keep], y_train[keep], x_train[held], y_train[held], x_test, y_test,
                         list(names), f"UEA {spec.name} in {folder}")


def class_names(spec: DataSpec, data_dir: Path | None) -> list[str]:
    """The TRAIN file's `@classLabel` names, in their order, as the loader names the classes (its header only)."""
    path = _folder(spec, data_dir) / f"{spec.name}_TRAIN.ts"
    return list(read_header(path, _lines(path)).classes)


def input_shape(spec: DataSpec, data_dir: Path | None) -> tuple[int, int]:
    """(series length, channels) as the loader shapes the series: the longest series of both files, and
    the channels of the first TRAIN case. Counts separators without parsing the values; an equal-length
    file is read only up to its first case."""
    folder = _folder(spec, data_dir)
    shapes = [_peek(folder / f"{spec.name}_{part}.ts") for part in PARTS]
    return max(length for length, _ in shapes), shapes[0][1]


def size(spec: DataSpec, shape: Sequence[int], data_dir: Path | None) -> tuple[int, int]:
    """(samples, extra bytes held while loading), by counting lines: for the memory estimate."""
    folder = _folder(spec, data_dir)
    cases = 0
    for part in PARTS:
        path = folder / f"{spec.name}_{part}.ts"
        cases += max(_line_count(path) - read_header(path, _lines(path)).data_line, 0)
    return cases, cases * math.prod(shape) * 4  # each case's float32 values, before they are padded into place


def _folder(spec: DataSpec, data_dir: Path | None) -> Path:
    if not spec.name:
        raise DataError("a UEA dataset needs `data.name`, e.g. `--set data.name=BasicMotions`.")
    return locate(resource(spec.name), spec_path=spec.path, data_dir=data_dir, progress=False)


def read_ts(path: Path) -> TsFile:
    """Every case of a .ts file; DataError naming the file, the line and what is wrong."""
    lines = _lines(path)
    header = read_header(path, lines)
    ts = TsFile(path, header)
    index = {name: i for i, name in enumerate(header.classes)}
    for number, text in lines:
        values, lengths, label = _case(path, number, text, ts, index)
        ts.values.append(values)
        ts.lengths.append(lengths)
        ts.labels.append(label)
        ts.lines.append(number)
    if not ts.values:
        raise DataError(f"{path}: no cases after @data (line {header.data_line}); {FORMAT}.")
    return ts


def read_header(path: Path, lines: Iterator[tuple[int, str]]) -> Header:
    """The `@` lines up to `@data`, from `lines` (left at the first case)."""
    header = Header()
    for number, text in lines:
        if not text.startswith("@"):
            raise DataError(f"{path}, line {number}: a case before @data; a .ts file starts with its @ header lines "
                            f"(@problemName, @classLabel true ..., ...), then @data, then one case a line.")
        written, *words = text.split()
        key = written[1:].lower()
        if key == "data":
            if header.classes is None:
                raise DataError(f"{path}, line {number}: @data before any `@classLabel true <labels>` line; cnnzoo "
                                f"reads .ts classification files, whose header names the class labels.")
            header.data_line = number
            return header
        _header_line(f"{path}, line {number}: {written}", key, words, header)
    raise DataError(f"{path}: no @data line; a .ts file is its @ header lines (@problemName, @classLabel true "
                    f"..., ...), then @data, then one case a line.")


def _header_line(where: str, key: str, words: list[str], header: Header) -> None:
    """Check one `@key words...` line (`where` names the file, line and key as written) into `header`."""
    if key == "problemname":
        return
    if key in _NUMBERS:
        most = MAX_LINE if key == "serieslength" else MAX_DIMENSIONS
        whole = len(words) == 1 and len(words[0]) <= 12 and words[0].isascii() and words[0].isdigit()
        if not whole or not 1 <= int(words[0]) <= most:
            raise DataError(f"{where} takes one whole number from 1 to {most:,}, received {' '.join(words)[:80]!r}.")
        if key == "serieslength":
            header.series_length = int(words[0])
        else:
            header.dimensions = int(words[0])
        return
    if key not in _FLAGS:
        raise DataError(f"{where} is not a .ts header cnnzoo knows (@problemName, @timeStamps, @missing, "
                        f"@univariate, @dimensions, @equalLength, @seriesLength, @classLabel, @data).")
    flag = words[0].lower() if words else ""
    if flag not in ("true", "false") or (words[1:] and key != "classlabel"):
        raise DataError(f"{where} takes true or false, received {' '.join(words)[:80]!r}.")
    value = flag == "true"
    if key == "timestamps" and value:
        raise DataError(f"{where} true: series with time stamps are not supported; write the values alone.")
    if key == "targetlabel" and value:
        raise DataError(f"{where} true: a regression file; cnnzoo reads .ts classification files (@classLabel true).")
    if key == "univariate":
        header.univariate = value
    elif key == "equallength":
        header.equal_length = value
    elif key == "classlabel":
        header.classes = _class_labels(where, value, words[1:])


def _class_labels(where: str, value: bool, names: list[str]) -> list[str]:
    if not value or not names:
        raise DataError(f"{where} {'true' if value else 'false'} declares no class labels; cnnzoo reads .ts "
                        f"classification files: `@classLabel true <label> <label> ...`.")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataError(f"{where} names {repeated[0]!r} more than once; each class label is declared once.")
    return names


def _case(path: Path, number: int, text: str, ts: TsFile, index: dict[str, int]) -> tuple[np.ndarray, np.ndarray, int]:
    """(float32 values, channel lengths, label index) of one case line."""
    where = f"{path}, line {number}"
    if text.startswith("@"):
        raise DataError(f"{where}: a header line after @data; the @ lines all come before @data.")
    if text.count(":") > MAX_DIMENSIONS:
        raise DataError(f"{where}: more than {MAX_DIMENSIONS:,} dimensions; {FORMAT}.")
    *parts, label = text.split(":")
    if not parts:
        raise DataError(f"{where}: no `:` before the class label; {FORMAT}.")
    expected, first = _expected_dimensions(ts)
    if expected is not None and len(parts) != expected:
        raise DataError(f"{where}: {len(parts)} dimension(s) where {first} has {expected}; every case must have "
                        f"the same number of dimensions ({FORMAT}).")
    label = label.strip()
    if label not in index:
        declared = ", ".join(ts.header.classes[:20]) + (", ..." if len(ts.header.classes) > 20 else "")
        raise DataError(f"{where}: the class label {label[:80]!r} is not declared in @classLabel ({declared}).")
    values = _values(where, parts)
    lengths = np.array([part.count(",") + 1 for part in parts], np.int64)
    if ts.header.equal_length:
        _check_equal(where, lengths, ts)
    return values, lengths, index[label]


def _expected_dimensions(ts: TsFile) -> tuple[int | None, str]:
    if ts.values:
        return ts.channels, f"line {ts.lines[0]}"
    if ts.header.dimensions is not None:
        return ts.header.dimensions, "@dimensions"
    if ts.header.univariate:
        return 1, "@univariate true"
    return None, ""


def _check_equal(where: str, lengths: np.ndarray, ts: TsFile) -> None:
    """@equalLength true: every series of the file as long as the first (and as @seriesLength)."""
    if ts.header.series_length:
        expected, source = ts.header.series_length, "@seriesLength"
    elif ts.lengths:
        expected, source = int(ts.lengths[0][0]), f"line {ts.lines[0]}"
    else:
        expected, source = int(lengths[0]), "its first dimension"
    if (lengths != expected).any():
        raise DataError(f"{where}: a series of length {int(lengths[lengths != expected][0])} where {source} has "
                        f"{expected}, but the header says @equalLength true.")


def _values(where: str, parts: list[str]) -> np.ndarray:
    """The case's values, channel after channel, as float32; `?` and NaN become NaN."""
    try:  # a `?` inside a value ("1?2") fails here too, and _bad_value names the value as written
        values = np.array(",".join(parts).replace("?", "nan").split(","), dtype=np.float64)
    except ValueError:
        values = None
    if values is None or (np.abs(values) > FLOAT32_MAX).any():
        _bad_value(where, parts)
    return values.astype(np.float32)


def _bad_value(where: str, parts: list[str]) -> None:
    for dimension, part in enumerate(parts, start=1):
        for position, text in enumerate(part.split(","), start=1):
            if text.strip() == "?":
                continue
            try:
                value = float(text)
            except ValueError:
                value = None
            if value is None or abs(value) > FLOAT32_MAX:  # NaN compares False: a missing value
                raise DataError(f"{where}, dimension {dimension}, value {position}: {text[:40]!r} is not a finite "
                                f"number (float32); values are numbers, `?` or NaN for a missing one ({FORMAT}).")
    raise DataError(f"{where}: a value is not a number; {FORMAT}.")


def _test_labels(train: TsFile, test: TsFile) -> np.ndarray:
    """The TEST labels as indices into the TRAIN file's @classLabel."""
    index = {name: i for i, name in enumerate(train.header.classes)}
    codes = []
    for label, number in zip(test.labels, test.lines):
        name = test.header.classes[label]
        if name not in index:
            raise DataError(f"{test.path}, line {number}: the class label {name[:80]!r} is not declared in the "
                            f"@classLabel of {train.path}; both files must use the same classes.")
        codes.append(index[name])
    return np.asarray(codes, np.int64)


def _shape(train: TsFile, test: TsFile, folder: Path) -> tuple[int, int]:
    """(length, channels) of both files: the longest series; equal-length files must agree."""
    if train.channels != test.channels:
        raise DataError(f"{folder}: the TRAIN cases have {train.channels} dimension(s) but the TEST cases "
                        f"{test.channels}; both files must come from the same UEA dataset.")
    if _equal(train) and _equal(test) and train.longest != test.longest:
        raise DataError(f"{folder}: the TRAIN series have length {train.longest} but the TEST series "
                        f"{test.longest}; both files must come from the same UEA dataset.")
    return max(train.longest, test.longest), train.channels


def _equal(ts: TsFile) -> bool:
    first = int(ts.lengths[0][0])
    return all((lengths == first).all() for lengths in ts.lengths)


def padded(ts: TsFile, length: int, missing: str) -> np.ndarray:
    """(cases, length, channels) float32: each series padded at the end with NaN, then `missing` applied."""
    channels = ts.channels
    cells = len(ts.values) * length * channels
    if cells > MAX_CELLS:
        raise DataError(f"{ts.path}: {len(ts.values):,} cases of {channels} channel(s) padded to the longest series "
                        f"({length:,} values) would be {cells:,} values, more than {MAX_CELLS:,}; a file with one "
                        f"very long series among short ones cannot be padded into one array.")
    if missing == "error":
        _refuse_gaps(ts, length)
    out = np.full((len(ts.values), length, channels), np.nan, np.float32)
    for case, (values, lengths) in enumerate(zip(ts.values, ts.lengths)):
        if (lengths == lengths[0]).all():
            out[case, :lengths[0]] = values.reshape(channels, -1).T
        else:
            for channel, series in enumerate(np.split(values, np.cumsum(lengths)[:-1])):
                out[case, :len(series), channel] = series
    return fill_series(out, missing)


def _refuse_gaps(ts: TsFile, length: int) -> None:
    short = next((n for n, lengths in zip(ts.lines, ts.lengths) if (lengths < length).any()), None)
    gap = next((n for n, values in zip(ts.lines, ts.values) if np.isnan(values).any()), None)
    if short is None and gap is None:
        return
    what = []
    if short is not None:
        what.append(f"is variable-length (line {short} has a series shorter than the longest, {length}, so it is "
                    f"padded at the end with NaN)")
    if gap is not None:
        what.append(f"has missing values (`?` or NaN, first on line {gap})")
    raise DataError(f"{ts.path} {' and '.join(what)}; set `data.missing: interpolate` (linear between the known "
                    f"values) or `zero` to fill them.")


def _peek(path: Path) -> tuple[int, int]:
    """(longest series, channels of the first case), counting `,` and `:` only."""
    lines = _lines(path)
    header = read_header(path, lines)
    longest, channels = 0, None
    for number, text in lines:
        if text.count(":") > MAX_DIMENSIONS:
            raise DataError(f"{path}, line {number}: more than {MAX_DIMENSIONS:,} dimensions; {FORMAT}.")
        parts = text.split(":")[:-1]
        if not parts:
            raise DataError(f"{path}, line {number}: no `:` before the class label; {FORMAT}.")
        channels = channels or len(parts)
        longest = max(longest, max(part.count(",") + 1 for part in parts))
        if header.equal_length:
            break
    if channels is None:
        raise DataError(f"{path}: no cases after @data (line {header.data_line}); {FORMAT}.")
    return longest, channels


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, stripped text) of each line that is not blank or a `#` comment; DataError for a line
    longer than MAX_LINE characters (read no further than that)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        number = 0
        while line := handle.readline(MAX_LINE + 1):
            number += 1
            if len(line) > MAX_LINE:
                raise DataError(f"{path}, line {number}: longer than {MAX_LINE:,} characters; a .ts file holds one "
                                f"case a line, and no case of the UEA archive comes near that.")
            text = line.strip()
            if text and not text.startswith("#"):
                yield number, text


def _line_count(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
