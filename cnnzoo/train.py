"""compile + fit + final evaluation, writing the run folder as it goes."""

from __future__ import annotations

import io
import math
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cnnzoo import __version__
from cnnzoo.builder import build_model, output_node
from cnnzoo.config.spec import ModelConfig
from cnnzoo.errors import ConfigError, RunError
from cnnzoo.finetune import init_weights, report_init
from cnnzoo.precision import dtype_policy, resolve_precision
from cnnzoo.runs import (RunFolder, atomic_write_json, atomic_write_text, check_free_space, create_run_dir,
                         load_checkpoint)


@dataclass
class TrainResult:
    run: RunFolder
    metrics: dict[str, Any]


@dataclass
class LabelPlan:
    """How labels are fed, chosen from the loss (or the output width when no loss is given)."""

    loss: str
    one_hot: bool


def train_run(config: ModelConfig, *, data_dir: Path | None, runs_dir: Path, console) -> TrainResult:
    """Everything `cnnzoo train CONFIG` does after the config is validated."""
    import keras

    if config.data is None:
        raise ConfigError("the config has no `data:` section, so there is nothing to train on.",
                          file=config.file, path="data", hint="Add e.g. `data: {dataset: mnist}`.")
    keras.utils.set_random_seed(config.train.seed)
    built = build_model(config)
    initialized = init_weights(built.model, config.init_from) if config.init_from else None
    check_free_space(runs_dir, checkpoint_bytes(built.model))
    splits, plan = _load_data(config, built.model, data_dir)
    run = RunFolder(create_run_dir(runs_dir, config.name))
    _write_run_header(run, config, built)
    if initialized is not None:
        report_init(initialized, config.init_from, run.path / "init_from.json", console)
    compile_model(built.model, config, plan)
    return _train_and_report(run, config, built.model, splits, plan, console, prior_rows=[])


def resume_run(run_dir: Path, *, epochs: int | None, data_dir: Path | None, console) -> TrainResult:
    """`cnnzoo train --resume RUN_DIR`: continue from the last complete epoch, from the folder alone."""
    import keras

    from cnnzoo.config import load_config
    from cnnzoo.runs import HistoryWriter

    run = RunFolder.open(run_dir)
    config = load_config(run.config, [f"train.epochs={epochs}"] if epochs else [])
    history = HistoryWriter(run.history, resume=True)
    run.remove_partial_files()
    keras.utils.set_random_seed(config.train.seed + len(history.rows))  # reproducible per resume point
    built = build_model(config)
    with dtype_policy(resolve_precision(config.train.precision)):  # the model-level policy is not saved
        model = _load_last(run, built.model) if run.last.exists() else built.model
    splits, plan = _load_data(config, model, data_dir)
    done = _align_history(run, history, model, math.ceil(len(splits.x_train) / config.train.batch_size), console)
    if done >= config.train.epochs:
        raise RunError(f"{run.path}: all {done} of {config.train.epochs} epochs are done; nothing to resume. "
                       f"Pass --epochs N with N > {done} to train longer.")
    if done == 0:
        keras.utils.set_random_seed(config.train.seed)
        model = build_model(config).model
        if config.init_from:  # no epoch was kept: start from the source weights again
            init_weights(model, config.init_from)
        compile_model(model, config, plan)
    atomic_write_text(run.config, yaml.safe_dump(config.resolved, sort_keys=False))
    console.print(f"resuming after epoch {done} of {config.train.epochs}")
    return _train_and_report(run, config, model, splits, plan, console, prior_rows=history.rows)


def checkpoint_bytes(model: Any) -> int:
    """Room best.keras, last.keras and a temporary copy need: float32 weights plus up to two optimizer
    slots per weight (Adam's moments), with a margin for the archive's metadata."""
    return 3 * 3 * 4 * model.count_params() + (1 << 20)


def _align_history(run: RunFolder, history, model: Any, steps_per_epoch: int, console) -> int:
    """Complete epochs held by last.keras; history rows beyond them are dropped to be trained again.

    history.csv is written before last.keras, so a kill between the two writes leaves the history
    one epoch ahead of the checkpoint; the optimizer's step counter says which epoch it holds.
    """
    saved = int(model.optimizer.iterations.numpy()) // steps_per_epoch if run.last.exists() else 0
    if saved < len(history.rows):
        console.print(f"[yellow]history.csv has {len(history.rows)} epoch(s) but last.keras holds {saved}: the run "
                      f"was stopped between the two writes. Epochs after {saved} are trained again.[/]")
        history.keep(saved)
    return len(history.rows)


def _load_last(run: RunFolder, expected: Any) -> Any:
    """last.keras (weights + optimizer state), refused if the config now builds another network."""
    model = load_checkpoint(run.last)
    if _architecture(model) != _architecture(expected):
        raise RunError(f"{run.path}: config.yaml no longer builds the network saved in last.keras "
                       f"({model.count_params():,} vs {expected.count_params():,} parameters, or other layer "
                       "shapes). Restore the run's config.yaml, or start a new run.")
    return model


def _architecture(model: Any) -> list[tuple]:
    return [(type(layer).__name__, tuple(layer.output.shape), layer.count_params()) for layer in model.layers]


def _load_data(config: ModelConfig, model: Any, data_dir: Path | None):
    from cnnzoo import data as datasets

    splits = datasets.load_dataset(config.data, input_shape=config.input.shape, data_dir=data_dir,
                                   seed=config.train.seed)
    return splits, plan_labels(config, model, splits.num_classes)


def _train_and_report(run: RunFolder, config: ModelConfig, model: Any, splits, plan: "LabelPlan", console,
                      prior_rows: list[dict]) -> TrainResult:
    pipes = make_pipelines(config, splits, plan, first_epoch=len(prior_rows))
    console.print(f"run folder: [bold]{run.path}[/]  ({splits.source})", highlight=False)
    fit = _fit(model, config, pipes, run, console, len(splits.x_train), prior_rows)
    metrics = _final_metrics(config, model, run, pipes, fit, plan, splits)
    atomic_write_json(run.metrics, metrics)
    _plot(run)
    return TrainResult(run, metrics)


def plan_labels(config: ModelConfig, model: Any, num_classes: int) -> LabelPlan:
    width = model.output_shape[-1]
    last = output_node(config)
    if width == 1 and num_classes == 2:
        return LabelPlan(config.train.loss or "binary_crossentropy", one_hot=False)
    if width != num_classes:
        raise last.where.error(f"the model ends in {width} output(s) but the dataset has {num_classes} classes.",
                               hint=f"Make the last layer Dense with units: {num_classes}"
                                    + (" (or 1 with sigmoid for two classes)." if num_classes == 2 else "."))
    loss = config.train.loss or "sparse_categorical_crossentropy"
    return LabelPlan(loss, one_hot=loss.startswith("categorical"))


def compile_model(model: Any, config: ModelConfig, plan: LabelPlan) -> None:
    import keras

    args = dict(config.train.optimizer_args)
    if config.train.learning_rate is not None:
        args["learning_rate"] = config.train.learning_rate
    optimizer = keras.optimizers.get({"class_name": _optimizer_class(config.train.optimizer), "config": args})
    try:
        model.compile(optimizer=optimizer, loss=plan.loss, metrics=list(config.train.metrics),
                      steps_per_execution=config.train.steps_per_execution,
                      jit_compile=config.train.jit_compile)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"Keras rejected the training setup: {str(exc).splitlines()[0]}",
                          file=config.file, path="train", hint="Check train.loss and train.metrics.") from None


def _optimizer_class(name: str) -> str:
    import keras

    for attr in dir(keras.optimizers):
        if attr.lower() == name.lower():
            return attr
    return name


@dataclass
class Pipelines:
    train: Any
    val: Any | None
    test: Any | None


def make_pipelines(config: ModelConfig, splits, plan: LabelPlan, first_epoch: int = 0) -> Pipelines:
    """Validation and test passes, and the endless training stream from epoch ``first_epoch`` on."""
    from cnnzoo import data as datasets
    from cnnzoo.layers import create_layer

    scale = datasets.default_scale(config.data)
    augment = _augmenter([create_layer(n) for n in config.data.augment]) if config.data.augment else None
    common = dict(batch_size=config.train.batch_size, num_classes=splits.num_classes, one_hot=plan.one_hot,
                  scale=scale, seed=config.train.seed)

    def pipe(x, y, train=False):
        if len(x) == 0:
            return None
        return datasets.make_pipeline(x, y, shuffle=train, augment=augment if train else None,
                                      first_epoch=first_epoch, **common)

    return Pipelines(pipe(splits.x_train, splits.y_train, train=True), pipe(splits.x_val, splits.y_val),
                     pipe(splits.x_test, splits.y_test))


def _augmenter(layers: list[Any]) -> Any:
    import keras

    return keras.Sequential(layers, name="augment")


@dataclass
class FitOutcome:
    rows: list[dict]
    seconds: float
    interrupted: str | None
    stopped_early: bool
    nan_at: dict | None


def _fit(model: Any, config: ModelConfig, pipes: Pipelines, run: RunFolder, console, n_train: int,
         prior_rows: list[dict]) -> FitOutcome:
    import math

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from cnnzoo.callbacks import (EpochSeeds, HistoryCSV, LocatedTerminateOnNaN, RichProgress, StopOnRequest,
                                  StopRequest)
    from cnnzoo.schedules import schedule_callbacks

    steps = math.ceil(n_train / config.train.batch_size)
    columns = (TextColumn("{task.description:>9}"), BarColumn(bar_width=24), MofNCompleteColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
    with StopRequest() as stop, Progress(*columns, console=console, transient=False) as progress:
        history = HistoryCSV(run.history, stop, resume=bool(prior_rows))
        nan_guard = LocatedTerminateOnNaN()
        early = _early_stopping(config, has_val=pipes.val is not None, prior_rows=prior_rows)
        # history.csv is written before the checkpoints: a kill between the writes leaves the history
        # ahead of last.keras, which --resume detects and repairs (see _align_history)
        callbacks = [StopOnRequest(stop), EpochSeeds(config.train.seed), nan_guard, *early,
                     *schedule_callbacks(config.train, has_val=pipes.val is not None, prior_rows=prior_rows),
                     history, *_checkpoints(config, run, stop, has_val=pipes.val is not None, prior_rows=prior_rows),
                     RichProgress(progress, config.train.epochs, steps, done=len(prior_rows))]
        started = time.perf_counter()
        model.fit(pipes.train, validation_data=pipes.val, epochs=config.train.epochs, initial_epoch=len(prior_rows),
                  steps_per_epoch=steps, callbacks=callbacks, verbose=0, shuffle=False)  # the pipeline shuffles
        seconds = time.perf_counter() - started
    stopped_early = bool(early and early[0].stopped_epoch > 0)
    return FitOutcome(history.rows, seconds, stop.signal_name, stopped_early, nan_guard.where)


def _checkpoints(config: ModelConfig, run: RunFolder, stop, has_val: bool, prior_rows: list[dict]) -> list[Any]:
    """best.keras (on the monitored metric, its best value restored on resume) and last.keras."""
    from cnnzoo.callbacks import AtomicModelCheckpoint

    monitor = monitored(config.train.checkpoint["monitor"], has_val)
    best = AtomicModelCheckpoint(run.best, stop, monitor=monitor, mode=config.train.checkpoint["mode"],
                                 save_best_only=True)
    best_row = _best_row(prior_rows, config.train.checkpoint, has_val)
    if best_row is not None:
        best.best = best_row[monitor]
    return [best, AtomicModelCheckpoint(run.last, stop, save_best_only=False)]


def _early_stopping(config: ModelConfig, has_val: bool, prior_rows: list[dict]) -> list[Any]:
    from cnnzoo.callbacks import ReplayedEarlyStopping

    if config.train.early_stopping is None:
        return []
    options = {"monitor": "val_loss", "patience": 5, **config.train.early_stopping}
    options["monitor"] = monitored(options["monitor"], has_val)
    return [ReplayedEarlyStopping(prior_rows, **options)]


def monitored(metric: str, has_val: bool) -> str:
    """Without a validation split, monitor the training metric of the same name."""
    return metric if has_val else metric.removeprefix("val_")


def _final_metrics(config, model, run: RunFolder, pipes: Pipelines, fit: FitOutcome, plan, splits) -> dict:
    import keras
    import tensorflow as tf

    best_row = _best_row(fit.rows, config.train.checkpoint, pipes.val is not None)
    test = {}
    checkpoint = run.best if run.best.exists() else run.last if run.last.exists() else None
    if checkpoint is not None and pipes.test is not None:
        load_checkpoint(checkpoint, into=model)  # reuses the compiled model and its traced test step
        test = {k: float(v) for k, v in model.evaluate(pipes.test, verbose=0, return_dict=True).items()}
    throughput = [len(splits.x_train) / r["epoch_seconds"] for r in fit.rows[1:] or fit.rows
                  if r.get("epoch_seconds", 0) > 0]
    return {
        "config": config.name,
        "epochs_completed": len(fit.rows),
        "interrupted": fit.interrupted,
        "stopped_early": fit.stopped_early,
        "nan_loss": fit.nan_at,
        "best_epoch": best_row["epoch"] if best_row else None,
        "best": best_row or {},
        "test": test,
        "checkpoint_evaluated": checkpoint.name if checkpoint else None,
        "wall_seconds": round(fit.seconds, 3),
        "epoch_seconds_total": round(sum(r.get("epoch_seconds", 0.0) for r in fit.rows), 3),
        "samples_per_second": round(statistics.median(throughput), 1) if throughput else None,
        "train_samples": len(splits.x_train), "val_samples": len(splits.x_val), "test_samples": len(splits.x_test),
        "params": model.count_params(),
        "precision": model.dtype_policy.name,
        "loss": plan.loss,
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__,
                     "keras": keras.__version__, "cnnzoo": __version__},
    }


def _best_row(rows: list[dict], checkpoint: dict, has_val: bool) -> dict | None:
    monitor = monitored(checkpoint["monitor"], has_val)
    scored = [r for r in rows if monitor in r and r[monitor] == r[monitor]]
    if not scored:
        return None
    pick = max if checkpoint.get("mode", "max") == "max" else min
    return pick(scored, key=lambda r: r[monitor])


def _write_run_header(run: RunFolder, config: ModelConfig, built) -> None:
    from rich.console import Console

    from cnnzoo.summary import render_summary, summarize

    atomic_write_text(run.config, yaml.safe_dump(config.resolved, sort_keys=False))
    buffer = io.StringIO()
    Console(file=buffer, width=120).print(render_summary(summarize(config, built), expand=True))
    atomic_write_text(run.summary, buffer.getvalue())


def _plot(run: RunFolder) -> None:
    from cnnzoo.plots import plot_run

    if run.history.exists():
        plot_run(run)
