"""`input.shape: auto` and the output layer's `units: auto`: values a config leaves to its dataset.

A time-series recipe is the same network for every UCR/UEA set but for the series length, the channels and
the classes; with these two left to the data, a user changes only `data.name`. They are filled in the
document before it is parsed, so everything after (the model, the memory estimate, the run's config.yaml)
sees the numbers, and a run folder never holds `auto`. The output layer is the last entry of
`model.layers`, a layer with `units` (Dense); its number of classes is what `data.class_names` gives.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

from cnnzoo.config.source import Document
from cnnzoo.errors import DataError

AUTO = "auto"


def needs_data(doc: Document) -> bool:
    return _shape_auto(doc.data) or _auto_units(doc.data) is not None


def fill_from_data(doc: Document, data_dir: Path | None) -> Document:
    """`doc` with its `auto` input shape and output units replaced by the dataset's."""
    shape_auto, units_at = _shape_auto(doc.data), _auto_units(doc.data)
    if not shape_auto and units_at is None:
        return doc
    spec = _data_spec(doc, ("input", "shape") if shape_auto else units_at)
    data = copy.deepcopy(doc.data)
    if shape_auto:
        data["input"]["shape"] = list(_input_shape(doc, spec, data_dir))
    if units_at is not None:
        _, _, index, layer = units_at
        data["model"]["layers"][index][layer]["units"] = _classes(doc, spec, data_dir, units_at)
    return dataclasses.replace(doc, data=data)


def _shape_auto(data) -> bool:
    return isinstance(data, dict) and isinstance(data.get("input"), dict) and data["input"].get("shape") == AUTO


def _auto_units(data) -> tuple | None:
    """The key path of `units: auto` in the last entry of model.layers, if it is there."""
    model = data.get("model") if isinstance(data, dict) else None
    layers = model.get("layers") if isinstance(model, dict) else None
    if not isinstance(layers, list) or not layers or not isinstance(layers[-1], dict) or len(layers[-1]) != 1:
        return None
    (layer, options), = layers[-1].items()
    if isinstance(options, dict) and options.get("units") == AUTO:
        return ("model", "layers", len(layers) - 1, layer)
    return None


def _data_spec(doc: Document, where: tuple):
    from cnnzoo.config.data_options import anchored
    from cnnzoo.config.sections import parse_data

    spec = parse_data(doc)
    if spec is None:
        raise doc.error(where, "`auto` takes its value from the dataset, and this config has no `data` section.",
                        hint="Give the number, or add a `data:` section.")
    return anchored(spec, doc.file, copy.deepcopy(doc.data))  # anchored also rewrites the dict it is given


def _input_shape(doc: Document, spec, data_dir: Path | None) -> tuple[int, ...]:
    from cnnzoo.data.registry import dataset_module

    reader = getattr(dataset_module(spec.dataset), "input_shape", None)
    if reader is None:
        raise doc.error(("input", "shape"), f"`input.shape: auto` is filled from time-series data (ucr, uea); "
                                            f"a {spec.dataset} dataset is resized or read to the shape you give.",
                        hint="Give the shape, e.g. `shape: [224, 224, 3]`.")
    try:
        return tuple(int(d) for d in reader(spec, data_dir))
    except DataError as exc:
        raise doc.error(("input", "shape"), f"`input.shape: auto` reads the dataset, which failed: {exc}") from None


def _classes(doc: Document, spec, data_dir: Path | None, where: tuple) -> int:
    from cnnzoo.data import class_names

    try:
        names = class_names(spec, data_dir)
    except DataError as exc:
        raise doc.error(where + ("units",), f"`units: auto` reads the dataset's classes, which failed: {exc}") from None
    if len(names) < 2:
        raise doc.error(where + ("units",), f"`units: auto` is the number of classes, and this {spec.dataset} "
                                            f"dataset names {len(names)}.",
                        hint="Give the number of outputs (a regression's target columns).")
    return len(names)
