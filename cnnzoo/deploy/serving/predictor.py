"""What `cnnzoo serve` runs: a run's model (its Keras checkpoint, or a file `cnnzoo export` wrote and
verified) behind predict's own preparation of inputs, class names and test-time augmentation.

`Predictor.probabilities` takes raw examples as `cnnzoo.data.inputs` reads them (uint8 pixels, float
series), prepares them as `cnnzoo predict` does (the run's standardization, float32 times data.scale),
runs one model call per view and returns (N, K) class probabilities. It is called from one thread only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np

from cnnzoo import data as datasets
from cnnzoo.data import standardize
from cnnzoo.data.inputs import READERS
from cnnzoo.deploy.export import FORMATS, scaled
from cnnzoo.deploy.predict import ModelSource, class_probabilities
from cnnzoo.errors import RunError
from cnnzoo.evaluation.tta import VIEWS, check_tta
from cnnzoo.runs.folder import EXPORT_JSON, RunFolder, load_checkpoint
from cnnzoo.runs.record import RunRecord


@dataclass
class Predictor:
    run: Callable[[np.ndarray], np.ndarray]       # one batch of model inputs -> model outputs
    prepare: Callable[[np.ndarray], np.ndarray]   # raw examples -> model inputs
    class_names: list[str]
    dataset: str
    input_shape: tuple[int, ...]
    tta: str = "none"
    metadata: dict[str, Any] = field(default_factory=dict)

    def probabilities(self, raw: np.ndarray) -> np.ndarray:
        x = self.prepare(raw)
        outputs = [self.run(np.ascontiguousarray(np.flip(x, axis=axes)) if axes else x) for axes in VIEWS[self.tta]]
        return class_probabilities(np.mean(np.asarray(outputs, np.float32), axis=0), len(self.class_names))

    def warm_up(self, batch_sizes: tuple[int, ...]) -> None:
        """Trace the model (and let a runtime allocate) before the first request pays for it."""
        zeros = np.zeros(self.input_shape, np.uint8 if len(self.input_shape) == 3 else np.float32)
        for size in batch_sizes:
            self.probabilities(np.stack([zeros] * size))


def load_predictor(source: ModelSource, *, data_dir: Path | None, tta: str = "none",
                   exported: Path | None = None) -> Predictor:
    """The checkpoint of `source` (or the `exported` file of it) with the preparation of its config."""
    from cnnzoo.config import load_config
    from cnnzoo.config.tasks import task_hint

    config = load_config(source.config, check_names=False)
    if config.data is None:
        raise RunError(f"{source.config}: has no `data:` section, so the inputs' preprocessing is unknown.")
    if config.data.dataset not in READERS:
        raise RunError(f"{source.config}: this run trained on `{config.data.dataset}` data, and cnnzoo serve reads "
                       f"image files (mnist, oxflower17, image_folder and tfrecord runs) and series (ucr runs), as "
                       f"cnnzoo predict does.")
    shape = tuple(config.input.shape)
    check_tta(tta, shape, task_hint(config.train) or "classification", False, source.checkpoint)
    statistics = RunFolder(source.checkpoint.parent).standardize
    scale = datasets.default_scale(config.data)
    prepare = lambda raw: scaled(standardize.for_new_inputs(raw, config.data, statistics), scale)  # noqa: E731
    if exported is None:
        run, served = _keras_runner(load_checkpoint(source.checkpoint), shape), {"checkpoint": source.checkpoint.name}
    else:
        run, raw_uint8, served = _exported_runner(exported)
        prepare = partial(np.asarray, dtype=np.uint8) if raw_uint8 else prepare
    names = datasets.class_names(config.data, data_dir)
    # names, not paths: a client learns which run answers, not where the server's files are
    metadata = {"config": config.name, "run": source.checkpoint.parent.name, "dataset": config.data.dataset, "classes": names, "input_shape": list(shape),
                **served, "tta": tta, "test_metrics": _test_metrics(source)}
    return Predictor(run, prepare, names, config.data.dataset, shape, tta, metadata)


def _keras_runner(model: Any, shape: tuple[int, ...]) -> Callable[[np.ndarray], np.ndarray]:
    """One graph for every batch size: model(x) in inference mode, float32 in, called as the concrete function
    (a tenth of a millisecond less per call than through tf.function's dispatch)."""
    import tensorflow as tf

    call = tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec([None, *shape], tf.float32)],
                       autograph=False).get_concrete_function()
    return lambda x: np.asarray(call(tf.constant(x, tf.float32)), np.float32)


def _exported_runner(path: Path) -> tuple[Callable[[np.ndarray], np.ndarray], bool, dict[str, Any]]:
    """The runtime `cnnzoo export` verified the file in, and whether the file takes raw uint8 images."""
    if not path.exists():
        raise RunError(f"--export {path}: no such file; give the file `cnnzoo export` wrote, e.g. "
                       f"RUN_DIR/export/tflite/model.tflite.")
    report_path = path.parent / EXPORT_JSON
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
        fmt, passed, written = report["format"], report["passed"], Path(report["file"]).name
        raw_uint8 = report["input"]["dtype"] == "uint8"
    except (OSError, ValueError, KeyError, TypeError):
        raise RunError(f"--export {path}: has no readable {EXPORT_JSON} beside it, so it is not a file `cnnzoo "
                       f"export` wrote and verified; export the run again (cnnzoo export RUN_DIR --format tflite).") from None
    if written != path.name:
        raise RunError(f"--export {path}: {report_path} describes {written}, another export in the same folder; "
                       f"export this one again into a folder of its own (cnnzoo export RUN_DIR --format ...).")
    if fmt not in FORMATS or not passed:
        raise RunError(f"--export {path}: {report_path} does not record a verified export (format {fmt!r}, passed "
                       f"{passed!r}); export the run again.")
    served = {"export": path.name, "export_format": fmt, "export_quantize": report.get("quantize", "none")}
    return FORMATS[fmt].runner(path), raw_uint8, served


def _test_metrics(source: ModelSource) -> dict[str, float]:
    """The run's metrics on its test split as training recorded them ({} for a .keras file or a damaged record)."""
    record = RunFolder(source.checkpoint.parent).metrics
    try:
        return RunRecord.read(record).test if record.is_file() else {}
    except (RunError, ValueError):
        return {}
