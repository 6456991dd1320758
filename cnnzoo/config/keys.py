"""Every key of the `input:`, `data:` and `train:` sections, declared once: its name, what it accepts
(type and bounds, or the JSON schema of a structured value), its default and a one-line description.

The validator (config/sections.py) checks a config against these declarations and the JSON Schema
(config/schema.py) is generated from them, so the two cannot disagree. A scalar key (`check`) is parsed
by `Section.value`; a structured one (`schema` or an option `group`) by its own function in sections.py
or data_options.py, which takes its default from here. A new train key is one `Key` in TRAIN, one field of
TrainSpec (config/spec.py) and one line of `parse_train`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnnzoo.config.data_options import ALL_BUT_TARGET, BAD_FILES, MISSING
from cnnzoo.config.options import (DEVICE_NAME, SCHEDULES, STRATEGIES, Check, CheckpointSpec, DistributeSpec,
                                   EarlyStoppingSpec, MixSpec, MLflowSpec, TensorBoardSpec, option_checks,
                                   CropSpec)
from cnnzoo.config.tasks import TASKS
from cnnzoo.data.interface import DATASET_MODULES
from cnnzoo.precision import PRECISIONS

INPUT_DTYPES = ("float32", "float16", "bfloat16", "uint8", "int32", "int64")
DATASETS = tuple(DATASET_MODULES)
MAX_DIMENSION = 100_000  # of one axis of input.shape
LAYERS = {"$ref": "#/definitions/layers"}  # a list of layer entries, as model.layers


@dataclass(frozen=True)
class Key:
    """One key of a section. Exactly one of `check` (a scalar), `group` (an option class: true/false or a
    mapping of its options) or `schema` (a structured value with its own parser) says what it accepts."""

    name: str
    description: str
    check: Check | None = None
    default: Any = None
    group: type | None = None
    schema: dict | None = None
    nullable: bool = True  # whether `key: null` (the same as leaving it out) is accepted

    def json_schema(self) -> dict:
        if self.check is not None:
            schema = self.check.json_schema()
        elif self.group is not None:
            schema = switch(self.group)
        else:
            schema = dict(self.schema)
        default = {} if self.default is None or self.group else {"default": self.default}
        return {**schema, "description": self.description, **default}


def options_schema(cls: type) -> dict[str, dict]:
    """JSON schemas of an option class's options, from the Checks the validator applies."""
    return {name: _device_list() if check.kind == "devices" else check.json_schema()
            for name, check in option_checks(cls).items()}


def _device_list() -> dict:
    return {"type": "array", "items": {"type": "string", "pattern": DEVICE_NAME.pattern}}


def switch(cls: type) -> dict:
    """true/false, or a mapping of the option class's keys, typed."""
    return {"anyOf": [{"type": "boolean"}, mapping(options_schema(cls))]}


def mapping(properties: dict, required: list[str] | None = None, description: str | None = None) -> dict:
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    if description:
        schema["description"] = description
    return schema


def _schedule() -> dict:
    names = list(SCHEDULES)
    options = {name: schema for cls in SCHEDULES.values() for name, schema in options_schema(cls).items()}
    return {"anyOf": [{"enum": names}, {"type": "object", "required": ["name"], "properties": {
        "name": {"enum": names}, **options}, "additionalProperties": False}]}


def _columns() -> dict:
    column = {"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 0}]}
    return {"anyOf": [column, {"type": "array", "minItems": 1, "items": column}]}


def integer(low: int, high: int) -> Check:
    return Check("int", low, high)


def number(low: float, high: float, *, open_low: bool = False) -> Check:
    return Check("number", low, high, open_low=open_low)


def choice(*choices) -> Check:
    return Check("choice", choices=tuple(choices))


STRING = Check("string")
FLAG = Check("bool")

INPUT = (
    Key("shape", "input shape without the batch axis, e.g. [28, 28, 1]; `auto`: the series length and "
                 "channels of a ucr/uea dataset",
        schema={"oneOf": [{"type": "array", "minItems": 1, "maxItems": 4,
                           "items": {"type": "integer", "minimum": 1, "maximum": MAX_DIMENSION}},
                          {"const": "auto"}]}),
    Key("dtype", "dtype of the input tensor", choice(*INPUT_DTYPES), "float32"),
)

DATA = (
    Key("dataset", "where the data comes from", choice(*DATASETS)),
    Key("name", "the dataset's name within its source (a UCR or TFDS name)", STRING),
    Key("path", "a folder (image_folder), file (csv, npz, npy) or archive", STRING),
    Key("validation_split", "fraction of the training data held out for validation", number(0.0, 0.9), 0.2),
    Key("test_split", "fraction held out for testing when the source has no test split", number(0.0, 0.9), 0.2),
    Key("limit", "use at most this many samples of each split", integer(1, 10**9)),
    Key("scale", "divide the inputs by this (default: 255 for images, 1 otherwise)", number(0.0, 1e6, open_low=True)),
    Key("augment", "augmentation layers applied to training batches", schema=LAYERS),
    Key("mix", "MixUp / CutMix of training batches", group=MixSpec),
    Key("random_resized_crop", "streamed images: a random-resized crop of each training image, made while "
        "decoding the original file", group=CropSpec),
    Key("train_path", "csv: the training file (with test_path)", STRING),
    Key("test_path", "csv: the test file", STRING),
    Key("features", "csv: the input columns: names, 0-based indices, a range \"first..last\" or all_but_target",
        schema={"anyOf": [{"enum": [ALL_BUT_TARGET]}, _columns()]}, default=ALL_BUT_TARGET),
    Key("target", "csv: the target column(s)", schema=_columns()),
    Key("header", "csv: whether the first row names the columns", schema={"enum": [True, False, "auto"]},
        default="auto"),
    Key("standardize", "shift and scale inputs by the training split's mean and std", FLAG, False),
    Key("missing", "what empty cells become", choice(*MISSING), "error"),
    Key("fold", "[i, K]: fold i of K is the validation split (written by --folds)",
        schema={"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2, "maxItems": 2}),
    Key("split", "tfds split names", schema=mapping({"train": {"type": "string"}, "test": {"type": "string"}})),
    Key("in_memory", "auto: decode into memory when the images fit comfortably, else stream them from disk; "
        "true or false to choose", schema={"enum": ["auto", True, False]}, default="auto"),
    Key("bad_files", "a streamed image that cannot be decoded: fail (naming it) or skip (counted, listed)",
        choice(*BAD_FILES), "fail"),
    Key("image_key", "tfrecord: the feature holding the encoded image", STRING, "image/encoded"),
    Key("label_key", "tfrecord: the feature holding the class index", STRING, "image/class/label"),
    Key("classes", "tfrecord: the class names in label order, or a text file of them, one a line (default: the "
        "pack manifest's)", schema={"anyOf": [{"type": "array", "items": {"type": "string"}, "minItems": 1},
                                                {"type": "string"}]}),
)

TRAIN = (
    Key("epochs", "training epochs", integer(1, 100_000), 10),
    Key("batch_size", "samples per training step", integer(1, 1_000_000), 32),
    Key("optimizer", "a keras.optimizers name, or a mapping with `name:` and its arguments", default="adam",
        schema={"anyOf": [{"type": "string"}, {"type": "object", "required": ["name"],
                                               "properties": {"name": {"type": "string"}}}]}),
    Key("learning_rate", "the base learning rate (default: the optimizer's own)",
        number(0.0, 100.0, open_low=True)),
    Key("schedule", "the learning-rate schedule: a name or a mapping with `name:`", schema=_schedule(),
        default="constant"),
    Key("loss", "a Keras loss name (default: from the labels and the task)", STRING),
    Key("metrics", "Keras metric names logged each epoch", default=["accuracy"],
        schema={"type": ["string", "array"], "items": {"type": "string"}}),
    Key("early_stopping", "stop when the monitored metric stops improving", group=EarlyStoppingSpec),
    Key("checkpoint", "which epoch best.keras keeps", group=CheckpointSpec),
    Key("seed", "seed of weights, splits, shuffling and augmentation", integer(0, 2**31 - 1), 42),
    Key("steps_per_execution", "training steps per call into the compiled graph", integer(1, 100_000), 1),
    Key("jit_compile", "compile with XLA", schema={"enum": [True, False, "auto"]}, default="auto"),
    Key("precision", "the dtype policy; auto: mixed_bfloat16 on a CPU with bfloat16, else float32",
        choice(*PRECISIONS), "float32", nullable=False),
    Key("tensorboard", "log to RUN/tensorboard/", group=TensorBoardSpec),
    Key("mlflow", "log to MLflow", group=MLflowSpec),
    Key("freeze", "glob patterns of layer names not to train",
        schema={"type": "array", "items": {"type": "string"}}),
    Key("distribute", "the tf.distribute strategy, or a mapping with `strategy:`", default="none",
        schema={"anyOf": [{"enum": list(STRATEGIES)}, mapping(options_schema(DistributeSpec))]}),
    Key("label_smoothing", "label smoothing of the categorical crossentropy", number(0.0, 0.5), 0.0),
    Key("task", "classification or regression (default: told by the loss, else by the data)", choice(*TASKS)),
    Key("class_weight", "balanced, or class name or index -> weight",
        schema={"anyOf": [{"enum": ["balanced"]}, {"type": "object", "additionalProperties": {
            "type": "number", "minimum": 0, "maximum": 1e6}}]}),
    Key("folds", "cross-validate on K stratified folds", integer(2, 100)),
)


def by_name(keys: tuple[Key, ...]) -> dict[str, Key]:
    return {key.name: key for key in keys}


def default(keys: tuple[Key, ...], name: str) -> Any:
    """The declared default of one key (a copy, so a list default is never shared)."""
    value = by_name(keys)[name].default
    return list(value) if isinstance(value, list) else value

