"""Training callbacks cnnzoo adds to the stock Keras ones: atomic checkpoints, history CSV,
rich progress and clean interruption."""

from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path

import keras

from cnnzoo.atomic import fsync_dir, fsync_file, temp_path, write_error
from cnnzoo.errors import DataError
from cnnzoo.runs.folder import HistoryWriter
from cnnzoo.training.checkpoint_writer import CheckpointWriter


class StopRequest:
    """SIGINT/SIGTERM set a flag that stops training after the current step; a second one aborts."""

    def __init__(self):
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if self.signal_name is not None:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    @property
    def requested(self) -> bool:
        return self.signal_name is not None


class StopOnRequest(keras.callbacks.Callback):
    def __init__(self, stop: StopRequest):
        super().__init__()
        self.stop = stop

    def on_train_batch_end(self, batch, logs=None):
        if self.stop.requested:
            self.model.stop_training = True


class EpochSeeds(keras.callbacks.Callback):
    """Re-seed the model's random layers (Dropout, GaussianNoise, ...) from (seed, epoch) as each
    epoch begins. Keras does not save their generator state in a checkpoint; deriving it from the
    epoch makes a resumed run draw the same masks as an uninterrupted one."""

    def __init__(self, seed: int):
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch, logs=None):
        states = [v for v in self.model.variables if v.path.endswith("seed_generator_state")]
        for index, state in enumerate(states):
            mixed = (self.seed * 1_000_003 + epoch * 7_919 + index) % 2**31
            state.assign(keras.ops.convert_to_tensor([mixed, 0], dtype=state.dtype))


class BadFileStop(keras.callbacks.Callback):
    """Stops fit when a streamed file failed under `data.bad_files: fail` in the validation pass, which
    Keras ends quietly as if the data had run out (a failure in a training step stops fit by itself)."""

    def __init__(self, bad):
        super().__init__()
        self.bad = bad

    def on_test_end(self, logs=None):
        if self.bad.fatal:
            raise DataError(self.bad.fatal)

    def on_epoch_end(self, epoch, logs=None):
        self.on_test_end()


class LocatedTerminateOnNaN(keras.callbacks.TerminateOnNaN):
    """Stock TerminateOnNaN that also remembers the epoch and step where the loss went bad."""

    def __init__(self):
        super().__init__()
        self.epoch = 0
        self.where: dict | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        super().on_batch_end(batch, logs)
        if self.model.stop_training and self.where is None and logs and "loss" in logs:
            if not math.isfinite(float(logs["loss"])):
                self.where = {"epoch": self.epoch + 1, "step": batch + 1}


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """Stock ModelCheckpoint (its monitor and best value) writing with a CheckpointWriter to a temporary
    file that is renamed into place when complete, so a kill mid-save never leaves a truncated checkpoint.
    Partial (interrupted) epochs are not saved."""

    def __init__(self, path: Path, stop: StopRequest, writer: CheckpointWriter | None = None, **kwargs):
        self.final_path = Path(path)
        self.temp_path = temp_path(self.final_path)
        self.stop = stop
        self.writer = writer or CheckpointWriter()
        super().__init__(str(self.temp_path), **kwargs)

    def on_epoch_end(self, epoch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        if self.stop.requested or not math.isfinite(loss):
            return
        if self.monitor_op is None:
            self._set_monitor_op()  # as ModelCheckpoint.on_epoch_end does
        try:
            if self._should_save_model(epoch, None, logs, str(self.final_path)):
                self.writer.save(self.model, self.temp_path)
            if self.temp_path.exists():
                fsync_file(self.temp_path)
                os.replace(self.temp_path, self.final_path)
                fsync_dir(self.final_path.parent)
        except OSError as exc:  # disk full, permissions: the previous checkpoint stays as it was
            self.temp_path.unlink(missing_ok=True)
            raise write_error(self.final_path, exc) from None


class AveragedWeightsCheckpoint(AtomicModelCheckpoint):
    """best.keras of a run whose optimizer keeps a moving average of the weights (`use_ema`). Around
    each validation Keras' SwapEMAWeights swaps the average in, so validation scores it; for the save
    it is swapped in and out again, so last.keras, written next, keeps the raw weights and the average
    in its optimizer state (an exact resume), and a kill between the two writes finds best.keras
    written first, as without EMA."""

    def __init__(self, path: Path, stop: StopRequest, writer: CheckpointWriter | None = None, **kwargs):
        super().__init__(path, stop, writer, **kwargs)
        self.swap = keras.callbacks.SwapEMAWeights()  # its swap handles distribution strategies

    def set_model(self, model):
        super().set_model(model)
        self.swap.set_model(model)

    def on_test_begin(self, logs=None):
        self.swap.on_test_begin(logs)

    def on_test_end(self, logs=None):
        self.swap.on_test_end(logs)

    def on_epoch_end(self, epoch, logs=None):
        self.swap._swap_variables()
        try:
            super().on_epoch_end(epoch, logs)
        finally:
            self.swap._swap_variables()


class _ReplaysHistory:
    """Mixin for stock callbacks with state (best value, patience counter): on resume, the epochs
    already in history.csv are replayed through the callback, so its bookkeeping is exactly that of
    an uninterrupted run. The learning rate and stop flag are restored after the replay."""

    def __init__(self, prior_rows: list[dict], **kwargs):
        super().__init__(**kwargs)
        self.prior_rows = prior_rows

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        for row in self.prior_rows:
            super().on_epoch_end(int(row["epoch"]) - 1, dict(row))
        self.model.optimizer.learning_rate = rate
        self.model.stop_training = False
        if hasattr(self, "stopped_epoch"):
            self.stopped_epoch = 0


class ReplayedEarlyStopping(_ReplaysHistory, keras.callbacks.EarlyStopping):
    pass


class ReplayedReduceLROnPlateau(_ReplaysHistory, keras.callbacks.ReduceLROnPlateau):
    pass


class HistoryCSV(keras.callbacks.Callback):
    """One row per complete epoch: epoch, train and validation metrics, learning rate, seconds."""

    def __init__(self, path: Path, stop: StopRequest, resume: bool = False):
        super().__init__()
        self.writer = HistoryWriter(path, resume=resume)
        self.stop = stop
        self.rows: list[dict] = list(self.writer.rows)
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if self.stop.requested:
            return
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"}}
        row["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row["epoch_seconds"] = round(time.perf_counter() - self._started, 3)
        self.rows.append(row)
        self.writer.append(row)


class RichProgress(keras.callbacks.Callback):
    """An epoch bar and a step bar with live loss and accuracy."""

    def __init__(self, progress, epochs: int, steps: int, done: int = 0):
        super().__init__()
        self.progress = progress
        self.steps = steps
        self.epoch_task = progress.add_task("epochs", total=epochs, completed=done, info="")
        self.step_task = progress.add_task("epoch 1", total=steps, info="")
        self.last_epoch_info = ""

    def on_epoch_begin(self, epoch, logs=None):
        self.progress.reset(self.step_task, total=self.steps, description=f"epoch {epoch + 1}", info="")

    def on_train_batch_end(self, batch, logs=None):
        self.progress.update(self.step_task, completed=batch + 1, info=_format_logs(logs))

    def on_epoch_end(self, epoch, logs=None):
        self.progress.update(self.epoch_task, advance=1, info=_format_logs(logs, validation=True))


def _format_logs(logs, validation: bool = False) -> str:
    keys = ("loss", "accuracy", "val_loss", "val_accuracy") if validation else ("loss", "accuracy")
    return "  ".join(f"{k} {float(logs[k]):.4f}" for k in keys if logs and k in logs)


class PhaseTracker(keras.callbacks.Callback):
    """Knows the epoch and step being trained, for `out_of_memory`; first in the callback list, so its hooks
    run before the others'."""

    epoch = step = 0
    doing = "training"

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.step, self.doing = epoch + 1, 0, "training"

    def on_train_batch_begin(self, batch, logs=None):
        self.step = batch + 1

    def on_test_begin(self, logs=None):
        self.doing = "validating"

    def on_epoch_end(self, epoch, logs=None):
        self.doing = "saving"

    def describe(self) -> str:
        return {"training": f"training epoch {self.epoch} step {self.step}",
                "validating": f"validating after training epoch {self.epoch}",
                "saving": f"writing the history and checkpoints of epoch {self.epoch}"}[self.doing]
