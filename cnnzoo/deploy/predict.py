"""`cnnzoo predict`: a run's checkpoint on new files, with the run's own preprocessing; top-k classes."""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np

from cnnzoo import data as datasets
from cnnzoo.atomic import atomic_write_text
from cnnzoo.data import standardize
from cnnzoo.data.inputs import Example, Failure, input_items, read_items
from cnnzoo.data.progress import progress_bar
from cnnzoo.errors import RunError
from cnnzoo.evaluation.tta import VIEWS, check_tta, view
from cnnzoo.runs.folder import CONFIG_YAML, RunFolder, load_checkpoint
from cnnzoo.terminal import csv_text, plain


CHUNK = 1024  # inputs read and predicted at a time


@dataclass(frozen=True)
class ModelSource:
    """The checkpoint to load and the config that says how its inputs were prepared."""

    checkpoint: Path
    config: Path


def model_source(path: Path, checkpoint: str, config: Path | None) -> ModelSource:
    """A run folder's best/last checkpoint, or a `.keras` file with `--config` (else the config.yaml beside it)."""
    if path.is_file() and path.suffix == ".keras":
        config = config or path.parent / CONFIG_YAML
        if not config.is_file():
            raise RunError(f"{path}: a .keras file needs the config it was trained with, to prepare inputs the "
                           f"same way; pass --config CONFIG (no {config} found).")
        return ModelSource(path, config)
    run = RunFolder.open(path)
    return ModelSource(run.checkpoint(checkpoint), config or run.config)


@dataclass
class PredictResult:
    entries: list[dict[str, Any]]
    succeeded: int
    failed: int
    seconds: float
    tta: str = "none"

    @property
    def exit_code(self) -> int:
        """0 when every input was predicted, 1 when some failed, 2 when none could be read."""
        return 2 if self.succeeded == 0 else 1 if self.failed else 0


def predict_inputs(source: ModelSource, arguments: list[str], *, top_k: int, batch_size: int | None,
                   data_dir: Path | None, progress: bool = True, tta: str = "none",
                   on_chunk: Callable[[list[dict], int, int], None] | None = None) -> PredictResult:
    """Top-k classes of each input; `tta` averages the probabilities over its views (cnnzoo/evaluation/tta.py).
    Inputs are read and predicted CHUNK at a time; `on_chunk(entries, done, total)` sees each chunk's results."""
    from cnnzoo.config import load_config
    from cnnzoo.config.tasks import task_hint

    config = load_config(source.config, check_names=False)
    if config.data is None:
        raise RunError(f"{source.config}: has no `data:` section, so the inputs' preprocessing is unknown.")
    # predict reads only single-label image and series datasets; an explicit train.task still counts
    check_tta(tta, config.input.shape, task_hint(config.train) or "classification", False, source.checkpoint)
    model = load_checkpoint(source.checkpoint)
    names = datasets.class_names(config.data, data_dir)
    items = input_items(arguments, config.data.dataset)
    statistics_file = RunFolder(source.checkpoint.parent).standardize
    prepare = partial(standardize.for_new_inputs, spec=config.data, path=statistics_file)
    views = {"tta": tta} if tta != "none" else {}  # the saved predictions say how they were made
    entries, succeeded, seconds = [], 0, 0.0
    for start in range(0, len(items), CHUNK):  # a chunk's images at a time: memory does not grow with the inputs
        read = read_items(items[start:start + CHUNK], config.data.dataset, config.input.shape,
                          progress=progress and len(items) <= CHUNK)
        examples = [item for item in read if isinstance(item, Example)]
        started = time.perf_counter()
        probs = _run(model, examples, prepare, datasets.default_scale(config.data),
                     batch_size or config.train.batch_size, len(names), progress and len(items) <= CHUNK, tta)
        seconds += time.perf_counter() - started
        tops = iter(top_classes(probs, names, top_k))
        chunk = [{"file": item.name, "error": item.reason} if isinstance(item, Failure)
                 else {"file": item.name, "top": next(tops)} | views for item in read]
        entries += chunk
        succeeded += len(examples)
        if on_chunk is not None:
            on_chunk(chunk, start + len(read) if start + CHUNK >= len(items) else start + CHUNK, len(items))
    return PredictResult(entries, succeeded, len(entries) - succeeded, seconds, tta)


def _run(model: Any, examples: list[Example], prepare: Callable[[np.ndarray], np.ndarray], scale: float | None,
         batch_size: int, num_classes: int, progress: bool, tta: str) -> np.ndarray:
    """Class probabilities through the training pipeline's own batching and scaling (no augmentation),
    averaged over the views of `tta`."""
    if not examples:
        return np.zeros((0, num_classes), np.float32)
    x = prepare(np.stack([example.array for example in examples]))
    pipe = datasets.make_pipeline(x, np.zeros(len(x), np.int64), batch_size=batch_size, num_classes=num_classes,
                                  one_hot=False, scale=scale, shuffle=False, seed=0)
    out = []
    with progress_bar("predicting", len(x), enabled=progress) as advance:
        for images, _ in pipe:
            views = [model.predict_on_batch(view(images, axes)) for axes in VIEWS[tta]]
            out.append(np.mean(np.asarray(views, np.float32), axis=0))
            advance(len(images))
    return class_probabilities(np.concatenate(out), num_classes)


def class_probabilities(outputs: np.ndarray, num_classes: int) -> np.ndarray:
    """(N, K) probabilities; a single sigmoid output on two classes becomes (1 - p, p)."""
    outputs = outputs.reshape(len(outputs), -1)
    if outputs.shape[1] == 1 and num_classes == 2:
        return np.concatenate([1.0 - outputs, outputs], axis=1)
    return outputs


def top_classes(probs: np.ndarray, names: list[str], k: int) -> list[list[dict[str, Any]]]:
    """The k most probable classes of each row, most probable first."""
    k = min(k, probs.shape[1]) if probs.ndim == 2 else k
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [[{"class": names[j], "probability": float(row[j])} for j in picks] for row, picks in zip(probs, order)]


def render_predictions(result: PredictResult, top_k: int, title: str | None = None):
    """The predictions as a table; file and class names are data, shown as text, never as markup."""
    from rich.table import Table

    table = Table(title=title or f"{result.succeeded} input(s) predicted", title_justify="left")
    table.add_column("input", overflow="fold")
    top_k = max((len(e["top"]) for e in result.entries if "top" in e), default=top_k)
    for rank in range(1, top_k + 1):
        table.add_column(f"top {rank}" if top_k > 1 else "class")
    for entry in result.entries:
        if "top" in entry:
            cells = [f"{plain(t['class'])} ({t['probability']:.3f})" for t in entry["top"]]
            table.add_row(plain(entry["file"]), *cells)
    return table


def report_outcome(result: PredictResult, err) -> None:
    """On stderr: each input that failed, then what was predicted, how fast and with which views."""
    for entry in result.entries:
        if "error" in entry:
            err.print(f"[bold red]error:[/] {plain(entry['file'])}: {plain(entry['error'])}", highlight=False,
                      soft_wrap=True)
    rate = result.succeeded / result.seconds if result.seconds > 0 else 0.0
    views = f", {result.tta} test-time augmentation" if result.tta != "none" else ""
    err.print(f"{result.succeeded} predicted, {result.failed} failed; {result.seconds:.2f} s in the model "
              f"({rate:,.0f} inputs/s, first batch's tracing included{views})", highlight=False)


def predictions_csv(result: PredictResult, path: Path, top_k: int) -> Path:
    """One row per input: file, class_1, probability_1, ..., error (and tta, under a test-time augmentation)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    ranks = range(1, top_k + 1)
    views = ["tta"] if result.tta != "none" else []
    writer.writerow(["file", *[f"{c}_{r}" for r in ranks for c in ("class", "probability")], "error", *views])
    for entry in result.entries:
        top = entry.get("top", [])
        cells = [v for t in top for v in (csv_text(t["class"]), f"{t['probability']:.6g}")]
        writer.writerow([csv_text(entry["file"]), *cells, *[""] * (2 * top_k - len(cells)),
                         csv_text(entry.get("error")),
                         *([entry.get("tta", "")] if views else [])])
    return atomic_write_text(path, buffer.getvalue())
