"""`cnnzoo explain`, `filters` and `activations`: a run's checkpoint, its inputs (files, or its own data
split) prepared exactly as in training, and the pictures cnnzoo.explain.maps and cnnzoo.runs.pictures make."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnzoo import data as datasets
from cnnzoo.config import load_config
from cnnzoo.data import default_scale
from cnnzoo.data.inputs import Failure, read_inputs
from cnnzoo.data.standardize import for_new_inputs
from cnnzoo.errors import DataError, RunError, suggest
from cnnzoo.explain.maps import cam_layer, grad_cam
from cnnzoo.runs.folder import RunFolder, load_checkpoint
from cnnzoo.runs.pictures import draw_cam, draw_contact_sheet
from cnnzoo.runs.record import RunRecord
from cnnzoo.training.setup import require_data

@dataclass
class Inputs:
    """Model inputs (float32, scaled as in training), what to draw for each, and their names."""

    x: np.ndarray
    shown: np.ndarray
    names: list[str]
    labels: list[int | None]


@dataclass
class LoadedRun:
    run: RunFolder
    config: Any
    model: Any
    class_names: list[str]


def load_run(run_dir: Path, checkpoint: str = "best") -> LoadedRun:
    run = RunFolder.open(run_dir)
    config = load_config(run.config, check_names=False)
    model = load_checkpoint(run.checkpoint(checkpoint))
    record = RunRecord.read(run.metrics) if run.metrics.exists() else RunRecord()
    width = model.output_shape[-1]
    names = record.class_names or [str(i) for i in range(max(width, 2))]
    return LoadedRun(run, config, model, list(names))


def split_inputs(loaded: LoadedRun, split: str, limit: int, data_dir: Path | None) -> Inputs:
    """`limit` samples spread evenly over the run's own test or validation split (all classes show)."""
    config = require_data(loaded.config)
    splits = datasets.load_dataset(config.data, input_shape=config.input.shape, data_dir=data_dir,
                                   seed=config.train.seed, progress=False)
    loaded.class_names = splits.class_names
    x, y = (splits.x_test, splits.y_test) if split == "test" else (splits.x_val, splits.y_val)
    if len(x) == 0:
        raise RunError(f"{loaded.run.path}: the {split} split of this run is empty.")
    picked = np.unique(np.linspace(0, len(x) - 1, min(limit, len(x))).round().astype(int))  # across the split
    return Inputs(_scaled(x[picked], config), x[picked], [f"{split}[{i}]" for i in picked], [int(y[i]) for i in picked])


def file_inputs(loaded: LoadedRun, paths: list[Path]) -> Inputs:
    """Files, folders or globs read exactly as `cnnzoo predict` reads them (the run's own decode, resize,
    padding or series layout); any input that cannot be read is an error here, with its reason."""
    config = require_data(loaded.config)
    read = read_inputs([str(p) for p in paths], config.data.dataset, tuple(config.input.shape), progress=False)
    failed = [item for item in read if isinstance(item, Failure)]
    if failed:
        raise DataError(f"{len(failed)} input(s) could not be read: "
                        + "; ".join(f"{f.name}: {f.reason}" for f in failed[:5]) + ".")

    x = np.stack([example.array for example in read])
    prepared = _scaled(for_new_inputs(x, config.data, loaded.run.standardize), config)
    return Inputs(prepared, x, [Path(example.name).name for example in read], [None] * len(read))


def _scaled(x: np.ndarray, config: Any) -> np.ndarray:
    scale = default_scale(config.data) if config.data is not None else None
    x = x.astype(np.float32)
    return x * scale if scale is not None else x


def explain(loaded: LoadedRun, inputs: Inputs, *, layer: str | None, class_name: str | None,
            out_dir: Path) -> list[Path]:
    """Grad-CAM PNG per input, plus `contact_sheet.png` when there are several."""
    target = cam_layer(loaded.model, layer, loaded.run.path)
    class_index = _class_index(loaded, class_name)
    results = []
    for start in range(0, len(inputs.x), 64):
        results += grad_cam(loaded.model, target, inputs.x[start:start + 64], class_index)
    items = []
    written = []
    for name, shown, label, cam in zip(inputs.names, inputs.shown, inputs.labels, results):
        title = _cam_title(loaded.class_names, cam, label)
        items.append((shown, cam.heatmap, title))
        written.append(draw_cam(shown, cam.heatmap, f"{name}: {title}", out_dir / f"gradcam-{Path(name).stem}.png"))
    if len(items) > 1:
        written.append(draw_contact_sheet(items, out_dir / "contact_sheet.png"))
    return written


def _class_index(loaded: LoadedRun, class_name: str | None) -> int | None:
    if class_name is None:
        return None
    if class_name not in loaded.class_names:
        raise RunError(f"{loaded.run.path}: no class `{class_name}` in this run. "
                       + (suggest(class_name, loaded.class_names) or f"Classes: {', '.join(loaded.class_names)}."))
    return loaded.class_names.index(class_name)


def _cam_title(class_names: list[str], cam, label: int | None) -> str:
    name = class_names[cam.predicted] if cam.predicted < len(class_names) else str(cam.predicted)
    title = f"{name} ({cam.probability:.2f})"
    if cam.explained != cam.predicted:
        title += f", map of {class_names[cam.explained]}"
    if label is not None and label != cam.predicted:
        title += f", true {class_names[label]}"
    return title
