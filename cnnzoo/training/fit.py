"""compile + fit + final evaluation, writing the run folder as it goes."""

from __future__ import annotations

import dataclasses
import io
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.markup import escape

from cnnzoo import __version__, data as datasets
from cnnzoo.atomic import atomic_write_text
from cnnzoo.config import load_config
from cnnzoo.config.options import CheckpointSpec
from cnnzoo.config.spec import ModelConfig
from cnnzoo.config.tasks import task_hint
from cnnzoo.data.stream_pipeline import stream_failures, write_skipped
from cnnzoo.data.streams import bad_files_of, is_stream
from cnnzoo.errors import RunError
from cnnzoo.training.batchnorm_check import check_training_sample
from cnnzoo.host_memory import human_bytes, out_of_memory, peak_rss
from cnnzoo.model.builder import build_model
from cnnzoo.model.finetune import init_weights, report_init
from cnnzoo.model.memory import optimizer_slots
from cnnzoo.model.memory_guard import check_run_memory
from cnnzoo.model.summary import render_summary, summarize
from cnnzoo.precision import dtype_policy, resolve_precision
from cnnzoo.runs.folder import HistoryWriter, RunFolder, check_free_space, create_run_dir, load_checkpoint
from cnnzoo.runs.lock import locked_run
from cnnzoo.runs.plots import plot_run
from cnnzoo.runs.record import RunRecord
from cnnzoo.terminal import console
from cnnzoo.training.callbacks import (AtomicModelCheckpoint, AveragedWeightsCheckpoint, BadFileStop, EpochSeeds,
                                       HistoryCSV, LocatedTerminateOnNaN, PhaseTracker, ReplayedEarlyStopping,
                                       RichProgress, StopOnRequest, StopRequest)
from cnnzoo.training.checkpoint_writer import CheckpointWriter
from cnnzoo.training.distribute import Distribution, announce_distribution, epochs_in_checkpoint, report_replica_change
from cnnzoo.training.distributed_loop import DistributedLoop
from cnnzoo.training.labels import LabelPlan, for_task, plan_labels, task_facts
from cnnzoo.training.result import TrainResult
from cnnzoo.training.schedules import schedule_callbacks
from cnnzoo.training.setup import Pipelines, compile_model, make_pipelines, require_data
from cnnzoo.training.small_data import validation_warning
from cnnzoo.training.tracking import finish_tracking, tracking_callbacks


def train_run(config: ModelConfig, *, data_dir: Path | None, runs_dir: Path, console,
              force: bool = False, distribution: Distribution | None = None,
              run_path: Path | None = None) -> TrainResult:
    """Everything `cnnzoo train CONFIG` does after the config is validated, inside the strategy's scope
    (`run_path`: a cross-validation fold's folder, else a new one in `runs_dir`)."""
    dist = distribution or Distribution("none")
    with dist.scope():
        return _start_run(dist.scaled(config), dist, data_dir=data_dir, runs_dir=runs_dir, console=console,
                          force=force, run_path=run_path)


def _start_run(config: ModelConfig, dist: Distribution, *, data_dir: Path | None, runs_dir: Path, console,
               force: bool, run_path: Path | None) -> TrainResult:
    import keras

    require_data(config)
    estimate = check_run_memory(config, what=f"training {config.name}", force=force, data_dir=data_dir,
                                console=console)
    keras.utils.set_random_seed(config.train.seed)
    with out_of_memory("building the model"):
        built = build_model(config)
        initialized = init_weights(built.model, config.init_from) if config.init_from else None
    check_free_space(runs_dir, checkpoint_bytes(built.model, config))
    with out_of_memory("loading data"):
        splits, plan = _load_data(config, built.model, data_dir)
    config = for_task(config, plan.task)
    run = RunFolder(run_path or create_run_dir(runs_dir, config.name))
    with locked_run(run.path):
        _write_run_header(run, config, built)
        run.record_data_dir(data_dir)  # eval, predict and --resume look there first
        if initialized is not None:
            report_init(initialized, config.init_from, run.init_from, console)
        compile_model(built.model, config, plan)
        return _train_and_report(run, config, built.model, splits, plan, console, prior_rows=[], estimate=estimate,
                                 dist=dist)


def resume_run(run_dir: Path, *, epochs: int | None, data_dir: Path | None, console,
               force: bool = False, distribution: Distribution | None = None,
               overrides: list[str] | None = None) -> TrainResult:
    """`cnnzoo train --resume RUN_DIR`: continue from the last complete epoch, from the folder alone,
    holding the folder's lock (two resumes of one run would overwrite each other's files)."""
    run = RunFolder.open(run_dir)
    dist = distribution or Distribution("none")
    overrides = (overrides or []) + ([f"train.epochs={epochs}"] if epochs else [])
    with locked_run(run.path, console), dist.scope():
        return _resume_locked(run, overrides=overrides, data_dir=data_dir, console=console, force=force, dist=dist)


def _resume_locked(run: RunFolder, *, overrides: list[str], data_dir: Path | None, console,
                   force: bool, dist: Distribution) -> TrainResult:
    import keras

    config = require_data(load_config(run.config, overrides))
    history = HistoryWriter(run.history, resume=True)
    run.remove_partial_files()
    estimate = check_run_memory(config, what=f"resuming {run.path}", force=force, data_dir=data_dir,
                                console=console)
    keras.utils.set_random_seed(config.train.seed + len(history.rows))  # reproducible per resume point
    with out_of_memory("building the model and loading last.keras"):
        built = build_model(config)
        with dtype_policy(resolve_precision(config.train.precision)):  # the model-level policy is not saved
            model = _load_last(run, built.model) if run.last.exists() else built.model
    with out_of_memory("loading data"):
        splits, plan = _load_data(config, model, data_dir)
    config = for_task(config, plan.task)
    done = _align_history(run, history, model, len(splits.x_train), config.train.batch_size, console)
    if done >= config.train.epochs:
        raise RunError(f"{run.path}: {done} epoch(s) are done and the run is set to {config.train.epochs}; nothing "
                       f"to resume. Pass --epochs N with N > {done} to train longer.")
    if done == 0:
        keras.utils.set_random_seed(config.train.seed)
        model = build_model(config).model
        if config.init_from:  # no epoch was kept: start from the source weights again
            init_weights(model, config.init_from)
        compile_model(model, dist.scaled(config), plan)
    atomic_write_text(run.config, yaml.safe_dump(config.resolved, sort_keys=False))
    run.record_data_dir(data_dir)
    console.print(f"resuming after epoch {done} of {config.train.epochs}")
    report_replica_change(run.path, dist, config.train.batch_size, console)
    return _train_and_report(run, config, model, splits, plan, console, prior_rows=history.rows, estimate=estimate,
                             dist=dist)


def checkpoint_bytes(model: Any, config: ModelConfig) -> int:
    """Room best.keras, last.keras and a temporary copy need: float32 weights plus the optimizer's slots
    per weight (at least Adam's two moments), with a margin for the archive's metadata."""
    return 3 * (1 + max(2, optimizer_slots(config))) * 4 * model.count_params() + (1 << 20)


def _align_history(run: RunFolder, history, model: Any, samples: int, batch_size: int, console) -> int:
    """Complete epochs held by last.keras; history rows beyond them are dropped to be trained again.

    history.csv is written before last.keras, so a kill between the two writes leaves the history
    one epoch ahead of the checkpoint; the optimizer's step counter says which epoch it holds.
    """
    saved = (epochs_in_checkpoint(run.path, int(model.optimizer.iterations.numpy()), samples, batch_size)
             if run.last.exists() else 0)
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
    splits = datasets.load_dataset(config.data, input_shape=config.input.shape, data_dir=data_dir,
                                   seed=config.train.seed, task=task_hint(config.train))
    return splits, plan_labels(config, model, splits.num_classes, splits)


def _train_and_report(run: RunFolder, config: ModelConfig, model: Any, splits, plan: LabelPlan, console,
                      prior_rows: list[dict], estimate, dist: Distribution) -> TrainResult:
    sharded = dist.custom_loop and is_stream(splits.x_train)  # each worker decodes only its share
    shard = (dist.worker_index, dist.workers, dist.replicas // dist.workers) if sharded else None
    pipes = make_pipelines(config, splits, plan, first_epoch=len(prior_rows), drop_remainder=dist.custom_loop,
                           shard=shard)
    runner = DistributedLoop(model, dist, config, plan, presharded=sharded) if dist.custom_loop else model
    console.print(f"run folder: [bold]{run.path}[/]  ({splits.source})", highlight=False)
    announce_distribution(run.path, dist, config.train.batch_size, console, first_epoch=len(prior_rows),
                          optimizer_steps=int(model.optimizer.iterations.numpy()))
    console.print(f"memory estimate: {human_bytes(estimate.total)} of {human_bytes(estimate.available or 0)} "
                  "available (`cnnzoo summary` shows it by part)", highlight=False)
    warnings = [w for w in [validation_warning(config, splits, plan)] if w]
    _warn(console, warnings)
    with stream_failures(splits):
        fit = _fit(runner, config, pipes, run, console, dist.steps_per_epoch(len(splits.x_train),
                                                                            config.train.batch_size), prior_rows,
                   bad_files_of(splits))
        with out_of_memory("evaluating the best checkpoint on the test split", _resume_hint(run)):
            record = _final_record(config, model, run, pipes, fit, plan, splits, runner)
            check = None if dist.custom_loop else check_training_sample(model, config, splits, plan)
    batchnorm_warning = check.warning(f"{record.checkpoint_evaluated or 'the model'}") if check else None
    if batchnorm_warning:
        warnings.append(batchnorm_warning)
        _warn(console, [batchnorm_warning])
    skipped = write_skipped(bad_files_of(splits), run.skipped_files)
    if skipped:
        console.print(f"[yellow]{skipped} file(s) could not be decoded and were skipped (data.bad_files: skip); "
                      f"listed in {run.skipped_files}[/]", highlight=False)
    record = dataclasses.replace(record, memory_estimate_bytes=estimate.total, memory_parts=estimate.parts,
                                 peak_rss_bytes=peak_rss(), distribute=dist.record(config.train.batch_size),
                                 skipped_files=skipped if bad_files_of(splits) else None,
                                 batchnorm=check.to_json() if check else None, warnings=warnings,
                                 **task_facts(run, model, plan, splits, pipes))
    record.write(run.metrics)
    _plot(run)

    finish_tracking(config, run, record)
    return TrainResult(run, record)


def _warn(console, warnings: list[str]) -> None:
    for warning in warnings:
        console.print(f"[yellow]warning: {escape(warning)}[/]", highlight=False)


def _resume_hint(run: RunFolder) -> str:
    return f"Every complete epoch is kept in {run.path}: continue with `cnnzoo train --resume {run.path}`."


@dataclass
class FitOutcome:
    rows: list[dict]
    seconds: float
    interrupted: str | None
    stopped_early: bool
    nan_at: dict | None
    first_epoch: int = 0  # epochs done before this session (a resume)


def _fit(model: Any, config: ModelConfig, pipes: Pipelines, run: RunFolder, console, steps: int,
         prior_rows: list[dict], bad_files=None) -> FitOutcome:
    """`model` is the Keras model, or the DistributedLoop standing in for its fit under multi_worker."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description:>9}"), BarColumn(bar_width=24), MofNCompleteColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
    with StopRequest() as stop, Progress(*columns, console=console, transient=False) as progress:
        history = HistoryCSV(run.history, stop, resume=bool(prior_rows))
        tracker = PhaseTracker()
        nan_guard = LocatedTerminateOnNaN()
        early = _early_stopping(config, has_val=pipes.val is not None, prior_rows=prior_rows)
        # history.csv is written before the checkpoints: a kill between the writes leaves the history
        # ahead of last.keras, which --resume detects and repairs (see _align_history)
        callbacks = [tracker, StopOnRequest(stop), EpochSeeds(config.train.seed), nan_guard, *early,
                     *schedule_callbacks(config.train, has_val=pipes.val is not None, prior_rows=prior_rows),
                     history, *_checkpoints(config, run, stop, has_val=pipes.val is not None, prior_rows=prior_rows),
                     *tracking_callbacks(config, run, stop, prior_rows),
                     RichProgress(progress, config.train.epochs, steps, done=len(prior_rows)),
                     *([BadFileStop(bad_files)] if bad_files else [])]
        started = time.perf_counter()
        with out_of_memory(tracker.describe, _resume_hint(run)):
            model.fit(pipes.train, validation_data=pipes.val, epochs=config.train.epochs,
                      initial_epoch=len(prior_rows), steps_per_epoch=steps, callbacks=callbacks, verbose=0,
                      shuffle=False, class_weight=pipes.class_weight)  # the pipeline shuffles
        seconds = time.perf_counter() - started
    stopped_early = bool(early and early[0].stopped_epoch > 0)
    return FitOutcome(history.rows, seconds, stop.signal_name, stopped_early, nan_guard.where, len(prior_rows))


def _checkpoints(config: ModelConfig, run: RunFolder, stop, has_val: bool, prior_rows: list[dict]) -> list[Any]:
    """best.keras (on the monitored metric, its best value restored on resume) and last.keras."""
    monitor = monitored(config.train.checkpoint.monitor, has_val)
    kind = AveragedWeightsCheckpoint if config.train.optimizer_args.get("use_ema") else AtomicModelCheckpoint
    writer = CheckpointWriter()  # one for both: it learns the model's weights layout once
    best = kind(run.best, stop, writer, monitor=monitor, mode=config.train.checkpoint.mode, save_best_only=True)
    best_row = _best_row(prior_rows, config.train.checkpoint, has_val)
    if best_row is not None:
        best.best = best_row[monitor]
    return [best, AtomicModelCheckpoint(run.last, stop, writer, save_best_only=False)]


def _early_stopping(config: ModelConfig, has_val: bool, prior_rows: list[dict]) -> list[Any]:
    if config.train.early_stopping is None:
        return []
    options = dataclasses.asdict(config.train.early_stopping)
    options["monitor"] = monitored(options["monitor"], has_val)
    return [ReplayedEarlyStopping(prior_rows, **options)]


def monitored(metric: str, has_val: bool) -> str:
    """Without a validation split, monitor the training metric of the same name."""
    return metric if has_val else metric.removeprefix("val_")


def _final_record(config, model, run: RunFolder, pipes: Pipelines, fit: FitOutcome, plan, splits,
                  runner) -> RunRecord:
    import keras
    import tensorflow as tf

    best_row = _best_row(fit.rows, config.train.checkpoint, pipes.val is not None)
    test = {}
    checkpoint = run.best if run.best.exists() else run.last if run.last.exists() else None
    if checkpoint is not None and pipes.test is not None:
        load_checkpoint(checkpoint, into=model)  # reuses the compiled model and its traced test step
        test = {k: float(v) for k, v in runner.evaluate(pipes.test, verbose=0, return_dict=True).items()}
    throughput = [len(splits.x_train) / r["epoch_seconds"] for r in fit.rows[1:] or fit.rows
                  if r.get("epoch_seconds", 0) > 0]
    return RunRecord(
        config=config.name,
        dataset=_dataset_label(config),
        monitor=monitored(config.train.checkpoint.monitor, pipes.val is not None),
        epochs_completed=len(fit.rows),
        interrupted=fit.interrupted,
        stopped_early=fit.stopped_early,
        nan_loss=fit.nan_at,
        best_epoch=best_row["epoch"] if best_row else None,
        best=best_row or {},
        test=test,
        checkpoint_evaluated=checkpoint.name if checkpoint else None,
        wall_seconds=round(_earlier_sessions_seconds(run, fit.rows, fit.first_epoch) + fit.seconds, 3),
        session_seconds=round(fit.seconds, 3),
        epoch_seconds_total=round(sum(r.get("epoch_seconds", 0.0) for r in fit.rows), 3),
        samples_per_second=round(statistics.median(throughput), 1) if throughput else None,
        train_samples=len(splits.x_train), val_samples=len(splits.x_val), test_samples=len(splits.x_test),
        class_names=list(splits.class_names),
        params=model.count_params(),
        precision=model.dtype_policy.name,
        loss=plan.loss,
        versions={"python": platform.python_version(), "tensorflow": tf.__version__,
                  "keras": keras.__version__, "cnnzoo": __version__},
    )


def _earlier_sessions_seconds(run: RunFolder, rows: list[dict], first_epoch: int) -> float:
    """Wall time before a resume: the last metrics.json's, plus the epoch_seconds of epochs logged after it
    by a session that was killed before writing one. Read before this session's metrics.json replaces it."""
    if not first_epoch:
        return 0.0
    try:
        earlier = RunRecord.read(run.metrics) if run.metrics.exists() else RunRecord()
    except RunError:
        earlier = RunRecord()
    seconds, counted = (earlier.wall_seconds, earlier.epochs_completed) if earlier.wall_seconds is not None else (0.0, 0)
    return float(seconds) + sum(r.get("epoch_seconds", 0.0) for r in rows[counted:first_epoch])


def _dataset_label(config: ModelConfig) -> str | None:
    """``mnist``, ``ucr/FordA``: what `cnnzoo runs` shows in its dataset column."""
    data = config.data
    return None if data is None else "/".join(filter(None, (data.dataset, data.name)))


def _best_row(rows: list[dict], checkpoint: CheckpointSpec, has_val: bool) -> dict | None:
    monitor = monitored(checkpoint.monitor, has_val)
    scored = [r for r in rows if monitor in r and r[monitor] == r[monitor]]
    if not scored:
        return None
    pick = max if checkpoint.mode == "max" else min
    return pick(scored, key=lambda r: r[monitor])


def _write_run_header(run: RunFolder, config: ModelConfig, built) -> None:
    atomic_write_text(run.config, yaml.safe_dump(config.resolved, sort_keys=False))
    buffer = io.StringIO()
    console(file=buffer, width=120).print(render_summary(summarize(config, built), expand=True))
    atomic_write_text(run.summary, buffer.getvalue())


def _plot(run: RunFolder) -> None:
    if run.history.exists():
        plot_run(run)
