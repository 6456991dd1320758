"""`cnnzoo export`: a run's checkpoint as SavedModel, TFLite, ONNX or .keras, verified in its own runtime.

The exported graph is always float32: the config is rebuilt under the float32 policy and the
checkpoint's weights (float32 under every Keras policy) are loaded into it, so a mixed-precision run
exports the same network without 16-bit casts. Before the command returns, the file is loaded in its
runtime and run on test samples of the run, one at a time; the top-1 agreement with the Keras model,
the largest probability difference, the file size and the latency per sample go to `export.json`
beside the file. Below the format's agreement threshold the file is removed and the command fails.
"""

from __future__ import annotations

import dataclasses
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from cnnzoo import data as datasets
from cnnzoo.atomic import atomic_write_json, atomic_write_text
from cnnzoo.deploy import runtimes
from cnnzoo.deploy.formats import QUANTIZATIONS
from cnnzoo.errors import CnnzooError, RunError
from cnnzoo.evaluation.class_metrics import predictions_from_probs
from cnnzoo.runs.folder import CONFIG_YAML, EXPORT_JSON, load_checkpoint
from cnnzoo.terminal import printable

# top-1 agreement with the Keras model that an export must reach
THRESHOLDS = {"none": 1.0, "float16": 0.99, "dynamic": 0.99, "int8": 0.99}
CALIBRATION_SAMPLES = 300


class ExportMismatch(CnnzooError):
    """The exported model disagrees with the Keras model more than its format allows."""

    exit_code = 1


@dataclass(frozen=True)
class ExportRequest:
    format: str
    quantize: str = "none"
    out: Path | None = None
    with_preprocessing: bool = False
    samples: int = 256
    overwrite: bool = False  # replace an existing --out target (never a folder that is not an export)


@dataclass
class ExportData:
    """What writing and verifying need from the run: the float32 model and its samples."""

    model: Any
    verify: np.ndarray      # model inputs of the test split (raw uint8 with preprocessing baked in)
    calibrate: np.ndarray   # training samples for int8 calibration, prepared the same way
    config_file: Path


def _write_savedmodel(data: ExportData, path: Path, quantize: str) -> None:
    data.model.export(str(path), format="tf_saved_model", verbose=False)


def _write_keras(data: ExportData, path: Path, quantize: str) -> None:
    data.model.save(path)


def _write_onnx(data: ExportData, path: Path, quantize: str) -> None:
    runtimes.need("tf2onnx", "ONNX export")
    data.model.export(str(path), format="onnx", verbose=False)


def _write_tflite(data: ExportData, path: Path, quantize: str) -> None:
    import tensorflow as tf

    options: dict[str, Any] = {"target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}
    if quantize != "none":
        options["optimizations"] = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        options["target_spec"]["supported_types"] = [tf.float16]
    if quantize == "int8":
        samples = data.calibrate
        options["representative_dataset"] = lambda: ([s[None]] for s in samples)
        options["target_spec"] = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]}
        options["inference_output_type"] = tf.int8
        if samples.dtype != np.uint8:  # raw uint8 inputs (--with-preprocessing) stay uint8
            options["inference_input_type"] = tf.int8
    data.model.export(str(path), format="litert", verbose=False, **options)


@dataclass(frozen=True)
class Format:
    suffix: str
    write: Callable[[ExportData, Path, str], None]
    runner: Callable[[Path], runtimes.Runner]
    runtime: str
    quantizations: tuple[str, ...] = ("none",)


FORMATS = {
    "savedmodel": Format("", _write_savedmodel, runtimes.savedmodel_runner, "TensorFlow SavedModel"),
    "tflite": Format(".tflite", _write_tflite, runtimes.tflite_runner, "LiteRT interpreter", QUANTIZATIONS),
    "onnx": Format(".onnx", _write_onnx, runtimes.onnx_runner, "onnxruntime"),
    "keras": Format(".keras", _write_keras, runtimes.keras_runner, "Keras"),
}


def export_run(source, request: ExportRequest, *, data_dir: Path | None) -> dict[str, Any]:
    """Write, load back, compare; the report (also in export.json beside the file)."""
    fmt = FORMATS[request.format]
    if request.quantize not in fmt.quantizations:
        raise RunError(f"--quantize {request.quantize} is for --format tflite only; {request.format} exports "
                       f"float32 (use --quantize none).")
    path = _output_path(source, request, fmt)
    _check_target(path, request, fmt)
    data = _export_data(source, request, data_dir)
    owned = request.out is None or not path.parent.exists()  # a folder cnnzoo makes (or its own export/)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove(path)  # only an export: the default target, or --out with --overwrite (checked above)
    fmt.write(data, path, request.quantize)
    report = _verify(data, path, fmt, request)
    _write_beside(path, data, report, owned)
    if not report["passed"]:
        _remove(path)
        details = f" (details in {path.parent / EXPORT_JSON})" if EXPORT_JSON in report["side_files"] else ""
        raise ExportMismatch(f"{path}: the {request.format} export agrees with the Keras model on "
                             f"{report['agreement']:.2%} of {report['samples']} test samples, below the "
                             f"{report['threshold']:.0%} required for --quantize {request.quantize}; the file was "
                             f"removed{details}.")
    return report


def _write_beside(path: Path, data: ExportData, report: dict[str, Any], owned: bool) -> None:
    """export.json, and for a .keras file the config.yaml predict reads beside it: all of them in a folder
    cnnzoo created, else only those not there yet (a file of the user's is never overwritten)."""
    names = [EXPORT_JSON] + ([CONFIG_YAML] if report["format"] == "keras" else [])
    report["side_files"] = [name for name in names if owned or not (path.parent / name).exists()]
    for name in report["side_files"]:
        if name == EXPORT_JSON:
            atomic_write_json(path.parent / name, report)
        else:
            atomic_write_text(path.parent / name, Path(data.config_file).read_text(encoding="utf-8"))


def _check_target(path: Path, request: ExportRequest, fmt: Format) -> None:
    """An --out target of the format's kind, and nothing replaced that the user did not ask to replace."""
    if fmt.suffix and not path.name.endswith(fmt.suffix):
        raise RunError(f"--out {path}: a {request.format} export is one {fmt.suffix} file; give a name ending in "
                       f"{fmt.suffix}, e.g. --out {path.name}{fmt.suffix}.")
    if request.out is None or not (path.exists() or path.is_symlink()):
        return
    if not request.overwrite:
        raise RunError(f"--out {path}: exists; cnnzoo replaces it only when asked: pass --overwrite, or choose "
                       f"another name.")
    if path.is_dir() and not path.is_symlink() and not (fmt.suffix == "" and _is_savedmodel(path)):
        raise RunError(f"--out {path}: is a folder that holds no {request.format} export; cnnzoo never replaces "
                       f"it, even with --overwrite. Choose another name.")


def _is_savedmodel(path: Path) -> bool:
    return (path / "saved_model.pb").is_file()


def _output_path(source, request: ExportRequest, fmt: Format) -> Path:
    if request.out is not None:
        return request.out
    tag = request.format + ("" if request.quantize == "none" else f"-{request.quantize}")
    tag += "-preprocessing" if request.with_preprocessing else ""
    return source.checkpoint.parent / "export" / tag / f"model{fmt.suffix}"


def _remove(path: Path) -> None:
    """Remove an export this command wrote or was told to replace: a link itself, never what it points to."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _export_data(source, request: ExportRequest, data_dir: Path | None) -> ExportData:
    from cnnzoo.config import load_config
    from cnnzoo.model.builder import build_model

    config = load_config(source.config, check_names=False)
    if config.data is None:
        raise RunError(f"{source.config}: has no `data:` section, so there are no samples to verify the export on.")
    float32 = dataclasses.replace(config, train=dataclasses.replace(config.train, precision="float32"))
    model = load_checkpoint(source.checkpoint, into=build_model(float32).model)
    splits = datasets.load_dataset(config.data, input_shape=config.input.shape, data_dir=data_dir,
                                   seed=config.train.seed, progress=False)
    verify = splits.x_test if len(splits.x_test) else splits.x_val
    scale = datasets.default_scale(config.data)
    if request.with_preprocessing:
        model = with_preprocessing(model, config, scale)
        prepare = np.asarray
    else:
        prepare = lambda x: scaled(x, scale)  # noqa: E731
    data = ExportData(model, prepare(verify[:request.samples]), prepare(splits.x_train[:CALIBRATION_SAMPLES]),
                      source.config)
    model(data.verify[:1])  # Keras' ONNX export refuses a model that was never called
    return data


def scaled(x: np.ndarray, scale: float | None) -> np.ndarray:
    """The pipeline's per-batch preparation: float32, times `scale`."""
    x = x.astype(np.float32)
    return x * np.float32(scale) if scale is not None else x


def with_preprocessing(model: Any, config, scale: float | None) -> Any:
    """A model that takes raw uint8 images of the training size and casts and scales them itself."""
    import keras

    if len(config.input.shape) != 3:
        raise RunError("--with-preprocessing bakes in image preprocessing (uint8 -> float32 x data.scale); this run "
                       "feeds series, which are exported as they are; leave the option out.")
    inputs = keras.Input(shape=config.input.shape, dtype="uint8", name="image")
    x = keras.layers.Rescaling(scale if scale is not None else 1.0, name="scale")(inputs)
    return keras.Model(inputs, model(x), name=f"{model.name}_uint8")


def _verify(data: ExportData, path: Path, fmt: Format, request: ExportRequest) -> dict[str, Any]:
    run = fmt.runner(path)
    expected = np.asarray(data.model.predict(data.verify, batch_size=64, verbose=0), np.float32)
    outputs, seconds = [], []
    run(data.verify[:1])  # warm-up: the first call builds the runtime's kernels
    for sample in data.verify:
        started = time.perf_counter()
        outputs.append(run(sample[None]))
        seconds.append(time.perf_counter() - started)
    got = np.concatenate(outputs).reshape(expected.shape)
    agreement = float((predictions_from_probs(got) == predictions_from_probs(expected)).mean())
    threshold = THRESHOLDS[request.quantize]
    return {
        "format": request.format, "quantize": request.quantize, "with_preprocessing": request.with_preprocessing,
        "file": str(path), "size_bytes": _size(path), "runtime": fmt.runtime, "samples": len(got),
        "agreement": agreement, "threshold": threshold, "passed": agreement >= threshold,
        "max_abs_diff": float(np.abs(got - expected).max()),
        "latency_ms_per_sample": round(1000 * statistics.median(seconds), 4),
        "input": {"dtype": str(data.verify.dtype), "shape": [None, *data.verify.shape[1:]]},
    }


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


def export_title(report: dict[str, Any]) -> str:
    """The exported file and its runtime, as plain text: the CLI prints it unwrapped (it is copied as it is)."""
    return f"{printable(report['file'])} ({report['runtime']})"


def render_export(report: dict[str, Any]):
    from rich.table import Table

    table = Table()
    table.add_column("check")
    table.add_column("value", justify="right")
    table.add_row("top-1 agreement",
                  f"{report['agreement']:.2%} of {report['samples']} (needs {report['threshold']:.0%})")
    table.add_row("max |probability difference|", f"{report['max_abs_diff']:.2e}")
    table.add_row("file size", f"{report['size_bytes'] / 2**20:,.2f} MiB")
    table.add_row("latency per sample", f"{report['latency_ms_per_sample']:.3f} ms")
    return table
