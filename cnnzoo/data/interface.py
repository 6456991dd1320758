"""What the data package takes and gives: the dataset names, the validated `data:` section (DataSpec),
what every loader receives besides it (LoadRequest) and returns (DatasetSplits). No loading code: the
config package imports this module alone (the data package imports no loader until one is used)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


# dataset name -> its module, which provides load(spec, request), size(spec, shape, data_dir) and
# class_names(spec, data_dir); a new dataset is one module and one entry here
DATASET_MODULES = {
    "mnist": "cnnzoo.data.mnist",
    "oxflower17": "cnnzoo.data.flowers17",
    "ucr": "cnnzoo.data.ucr",
    "uea": "cnnzoo.data.uea",
    "image_folder": "cnnzoo.data.folders",
    "csv": "cnnzoo.data.tabular",
    "npz": "cnnzoo.data.arrays",
    "npy": "cnnzoo.data.arrays",
    "tfds": "cnnzoo.data.tfds",
    "tfrecord": "cnnzoo.data.tfrecord",
}
STREAMABLE = ("image_folder", "tfrecord", "tfds")  # sources data.in_memory may stream; tfrecord always streams


@dataclass(frozen=True)
class DataSpec:
    """Which dataset to load and how to split and feed it.

    dataset:          registry key: "mnist", "oxflower17", "ucr" or "image_folder".
    name:             dataset-specific name, e.g. the UCR series "FordA".
    path:             explicit file or folder; looked at before the data directory.
    validation_split: fraction of the training set held out for validation (seeded, stratified).
    test_split:       fraction held out for test where the dataset has no official test split.
    limit:            keep at most this many examples of each split (seeded, stratified); for
                      quick runs and tests. None keeps everything.
    scale:            inputs are multiplied by this in the pipeline (1/255 for uint8 images);
                      None leaves them as they are.
    augment:          layer entries (raw config form) applied to training batches only.
    train_path, test_path: csv/npz/npy files of a source that comes already split.
    features, target: csv columns: names, 0-based indices, "first..last" ranges or all_but_target.
    header:           csv header row: true, false or auto (a first row with text in it).
    standardize:      inputs shifted and scaled by the training split's mean and std.
    missing:          NaN in UCR series: error, zero or interpolate.
    fold:             (i, K): fold i of K is the validation split (written by --folds).
    split:            tfds (train, test) split names.
    mix:              MixSpec (MixUp/CutMix of training batches, one-hot labels) or None.
    in_memory:        auto, True or False: decode images into one array, or stream them (data/streams.py).
    bad_files:        a streamed image that cannot be decoded: "fail" or "skip".
    image_key, label_key, classes: tfrecord features and class names.
    """

    dataset: str
    name: str | None = None
    path: str | None = None
    validation_split: float = 0.2
    test_split: float = 0.2
    limit: int | None = None
    scale: float | None = None
    augment: tuple[Any, ...] = field(default_factory=tuple)
    train_path: str | None = None
    test_path: str | None = None
    features: Any = "all_but_target"
    target: Any = None
    header: bool | str = "auto"
    standardize: bool = False
    missing: str = "error"
    fold: tuple[int, int] | None = None
    split: tuple[str, str] | None = None
    mix: Any = None
    in_memory: bool | str = "auto"
    bad_files: str = "fail"
    image_key: str = "image/encoded"
    label_key: str = "image/class/label"
    classes: tuple[str, ...] | str | None = None  # names, or a text file of them
    random_resized_crop: Any = None  # CropSpec: streamed training images cropped while decoding


@dataclass
class DatasetSplits:
    """Train/validation/test arrays: images uint8 (N,H,W,C), series float32 (N,L,1), labels int64
    (regression targets float32 with no class names; multi-label targets multi-hot rows)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str
    standardization: dict | None = None  # {"mean": [...], "std": [...]} fitted on x_train

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class LoadRequest:
    """The arguments of `load_dataset` that every loader needs besides the spec."""

    input_shape: tuple[int, ...]
    data_dir: Path | None
    seed: int
    cache_dir: Path | None = None
    progress: bool = True
    task: str | None = None  # what the config tells (train.task or a regression loss); None: the data decides
    stream: bool = False  # image sources: references decoded in the pipeline instead of one array
