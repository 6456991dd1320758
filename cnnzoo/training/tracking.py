"""Experiment tracking during training: TensorBoard event files in the run folder (and MLflow, see
cnnzoo.training.mlflow_logging). Only complete epochs are logged, with the epoch number as the step, so a
resumed run appends to the same logs without repeating a step."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import keras

from cnnzoo.atomic import atomic_save
from cnnzoo.runs.folder import RunFolder
from cnnzoo.runs.record import RunRecord


class EpochTensorBoard(keras.callbacks.TensorBoard):
    """Stock TensorBoard that skips the partial epoch of an interrupted run and an epoch whose loss is
    not finite, as history.csv does: those epochs are trained again on resume and must not be logged twice."""

    def __init__(self, stop, **kwargs):
        super().__init__(update_freq="epoch", **kwargs)
        self.stop = stop

    def on_epoch_end(self, epoch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        if self.stop.requested or not math.isfinite(loss):
            return
        super().on_epoch_end(epoch, logs)


def tracking_callbacks(config, run: RunFolder, stop, prior_rows: list[dict]) -> list[Any]:
    """The callbacks for ``train.tensorboard`` and ``train.mlflow``; none when neither is set."""
    callbacks = []
    spec = config.train.tensorboard
    if spec is not None:
        log_dir = run.tensorboard
        if prior_rows:
            prune_events(log_dir, keep_epochs=len(prior_rows))
        callbacks.append(EpochTensorBoard(
            stop, log_dir=str(log_dir), histogram_freq=spec.histogram_freq,
            write_graph=spec.write_graph and not prior_rows,  # the first session wrote it at step 0
            write_images=spec.write_images, write_steps_per_second=spec.write_steps_per_second))
    if config.train.mlflow is not None:
        from cnnzoo.training.mlflow_logging import MLflowEpochs

        callbacks.append(MLflowEpochs(config, run, stop))
    return callbacks


def prune_events(log_dir: Path, keep_epochs: int) -> int:
    """Drop summaries at steps >= ``keep_epochs`` from the event files under ``log_dir``.

    A run killed after an epoch's TensorBoard write but before its checkpoint trains that epoch
    again on resume; without this, TensorBoard would show the epoch twice. Returns the number of
    events dropped. Each changed file is rewritten atomically.
    """
    dropped = 0
    for path in sorted(Path(log_dir).glob("*/events.out.tfevents.*")):
        records, removed = _kept_records(path, keep_epochs)
        if removed:
            atomic_save(path, lambda tmp, records=records: _write_records(tmp, records))
            dropped += removed
    return dropped


def _kept_records(path: Path, keep_epochs: int) -> tuple[list[bytes], int]:
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    kept, removed = [], 0
    for record in tf.data.TFRecordDataset(str(path)):
        data = record.numpy()
        event = event_pb2.Event.FromString(data)
        if event.HasField("summary") and event.step >= keep_epochs:
            removed += 1
        else:
            kept.append(data)
    return kept, removed


def _write_records(tmp: Path, records: list[bytes]) -> None:
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(tmp)) as writer:
        for record in records:
            writer.write(record)


def finish_tracking(config, run: RunFolder, record: RunRecord) -> None:
    """After the run's files are written: MLflow's test metrics and artifacts (nothing for TensorBoard)."""
    if config.train.mlflow is not None:
        from cnnzoo.training.mlflow_logging import finish

        finish(config, run, record)
