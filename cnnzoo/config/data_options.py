"""The keys of `data:` and `train:` that go beyond image classification: table and array sources
(`features`, `target`, `header`, `train_path`/`test_path`, `standardize`, `missing`), the task,
class weights and cross-validation folds. Types only: columns and class names are checked against
the data when it is read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnnzoo.data.interface import STREAMABLE
from cnnzoo.errors import quote

MISSING = ("error", "zero", "interpolate")
BAD_FILES = ("fail", "skip")
FILE_SOURCES = ("csv", "npz", "npy")
ALL_BUT_TARGET = "all_but_target"


@dataclass(frozen=True)
class ClassWeightSpec:
    """mode: balanced or mapping; entries: (class name or index, weight, file, line) as written."""

    mode: str
    entries: tuple[tuple, ...] = ()


def data_options(section) -> dict[str, Any]:
    """DataSpec keyword arguments of the keys above (section: a config.sections.Section of `data:`)."""
    dataset = section.get("dataset")
    if dataset == "csv" and not (section.get("path") or section.get("train_path")):
        raise section.error("path", "a csv dataset needs `path:` (or `train_path:` and `test_path:`).")
    if dataset in ("npz", "npy") and not section.get("path"):
        raise section.error("path", f"a {dataset} dataset needs `path:` (the arrays by key: x_train, y_train, ...).")
    if dataset in ("npz", "npy") and (section.get("train_path") or section.get("test_path")):
        key = "train_path" if section.get("train_path") else "test_path"
        raise section.error(key, f"`{key}` is for csv files; a {dataset} dataset holds its splits by key in `path:`.")
    if dataset == "tfds" and not section.get("name"):
        raise section.error("name", "a tfds dataset needs `name`, a TensorFlow Datasets name, e.g. `name: mnist`.")
    if section.get("test_path") and not section.get("train_path"):
        raise section.error("test_path", "`test_path` needs `train_path` beside it.")
    header = section.get("header", section.declared_default("header"))
    if header not in (True, False, "auto"):
        raise section.error("header", f"`header` must be true, false or auto, received {quote(header)}.")
    return dict(in_memory=_in_memory(section, dataset), bad_files=section.value("bad_files"),
                image_key=section.value("image_key"), label_key=section.value("label_key"),
                classes=_classes(section),
                train_path=section.value("train_path"), test_path=section.value("test_path"),
                features=_columns(section, "features", section.declared_default("features"), allow_all=True),
                target=_columns(section, "target", None), header=header,
                standardize=section.value("standardize"), missing=section.value("missing"),
                fold=_fold(section), split=_splits(section))


def _in_memory(section, dataset: str) -> bool | str:
    value = section.get("in_memory", "auto")
    if value not in ("auto", True, False):
        raise section.error("in_memory", f"`in_memory` must be auto, true or false, received {quote(value)}.")
    if value is False and dataset not in STREAMABLE:
        raise section.error("in_memory", f"a {dataset} dataset is read into memory; streaming from disk is for "
                                         f"{', '.join(STREAMABLE)} sources (`cnnzoo pack` turns an image folder "
                                         f"into TFRecord shards). Leave `in_memory` out.")
    if value is True and dataset == "tfrecord":
        raise section.error("in_memory", "TFRecord shards are always streamed; leave `in_memory` out (or use "
                                         "the image folder they were packed from with `in_memory: true`).")
    return value


def _classes(section) -> tuple[str, ...] | str | None:
    """A list of class names, or (a string) the path of a text file of them, read with the data."""
    value = section.get("classes")
    if value is None or (isinstance(value, str) and 0 < len(value) <= 4096):
        return value
    if (not isinstance(value, list) or not 0 < len(value) <= 100_000
            or not all(isinstance(v, str) and 0 < len(v) <= 200 for v in value) or len(set(value)) != len(value)):
        raise section.error("classes", f"`classes` must be a list of distinct class names in label order, or "
                                       f"the path of a text file of them, received {quote(value)}.")
    return tuple(value)


def _columns(section, key: str, default: Any, allow_all: bool = False) -> Any:
    """A column name or index, a list of them, a range "first..last", or `all_but_target`."""
    value = section.get(key, default)
    if value is None or (allow_all and value == ALL_BUT_TARGET):
        return value
    items = value if isinstance(value, list) else [value]
    if not items or not all(_is_column(v) for v in items):
        raise section.error(key, f"`{key}` must be a column name, a 0-based column index, a list of them or a "
                                 f"range like \"x1..x4\"{' or all_but_target' if allow_all else ''}, "
                                 f"received {quote(value)}.")
    return tuple(items) if isinstance(value, list) else value


def _is_column(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return (isinstance(value, int) and 0 <= value < 1_000_000) or (isinstance(value, str) and 0 < len(value) <= 200)


def _fold(section) -> tuple[int, int] | None:
    value = section.get("fold")
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool)
                                                                  for v in value) or not 1 <= value[0] <= value[1]
            or value[1] < 2):
        raise section.error("fold", f"`fold` must be [i, K] with 1 <= i <= K and K >= 2 (written by --folds), "
                                    f"received {quote(value)}.")
    return tuple(value)


def _splits(section) -> tuple[str, str] | None:
    """tfds split names: `split: {train: train, test: test}`."""
    value = section.get("split")
    if value is None:
        return None
    if (not isinstance(value, dict) or set(value) - {"train", "test"}
            or not all(isinstance(v, str) and v for v in value.values())):
        raise section.error("split", f"`split` must map train and test to split names, e.g. "
                                     f"{{train: train, test: test}}, received {quote(value)}.")
    return value.get("train", "train"), value.get("test", "test")


def train_options(section) -> dict[str, Any]:
    """TrainSpec keyword arguments of `task`, `class_weight` and `folds`."""
    return dict(task=section.value("task"), class_weight=_class_weight(section), folds=section.value("folds"))


def _class_weight(section) -> ClassWeightSpec | None:
    value = section.get("class_weight")
    if value is None:
        return None
    if value == "balanced":
        return ClassWeightSpec("balanced")
    if not isinstance(value, dict) or not value:
        raise section.error("class_weight", f"`class_weight` must be balanced or a mapping of class name or index "
                                            f"to weight, received {quote(value)}.")
    entries = []
    for key, weight in value.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1e6:
            raise section.error("class_weight", f"the weight of class {quote(key)} must be a number from 0 to "
                                                f"1e6, received {quote(weight)}.")
        where = section.doc.origin(section.path + ("class_weight", key))
        entries.append((key if isinstance(key, (int, str)) else str(key), float(weight), where.file, where.line))
    return ClassWeightSpec("mapping", tuple(entries))


def anchored(spec, config_file: str, resolved: dict):
    """A csv/npz/npy path that does not exist as given but does next to the config file becomes that
    absolute path, in the spec and in the resolved config a run folder keeps (so `eval` finds it too)."""
    import dataclasses
    from pathlib import Path

    if spec is None or spec.dataset not in FILE_SOURCES:
        return spec
    changes = {}
    for key in ("path", "train_path", "test_path"):
        value = getattr(spec, key)
        beside = Path(config_file).parent / value if value else None
        if value and not Path(value).is_absolute() and not Path(value).exists() and beside.exists():
            changes[key] = str(beside.resolve())
    resolved.get("data", {}).update(changes)
    return dataclasses.replace(spec, **changes)
