"""The run folder: naming, its files, reading a run back. Every file in it is written with
cnnzoo.atomic, so a kill at any moment leaves each file either old or new."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cnnzoo.atomic import atomic_write_json, atomic_write_text
from cnnzoo.config.source import MAX_FILE_BYTES, parse_text
from cnnzoo.errors import ConfigError, RunError
from cnnzoo.host_memory import MemoryRefused, available_memory, human_bytes
from cnnzoo.safe_read import read_run_file, read_run_json

CHECKPOINTS = ("best", "last")
# every file name cnnzoo writes into a run folder (or a sweep folder, or beside an export) is here
CONFIG_YAML, HISTORY_CSV, METRICS_JSON = "config.yaml", "history.csv", "metrics.json"
SWEEP_JSON, SWEEP_CSV = "sweep.json", "sweep.csv"  # a sweep folder: its search, its ranking
EXPORT_JSON = "export.json"  # beside an exported file: its verification report


# --- creating a run folder -----------------------------------------------------------------------

def _check_writable(runs_dir: Path) -> None:
    if runs_dir.exists() and not runs_dir.is_dir():
        raise RunError(f"{runs_dir}: the runs directory is a file, not a directory. "
                       f"Move the file away or pass --runs-dir with a directory you can write to.")
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(
            f"{runs_dir}: cannot create the runs directory ({exc.strerror or exc}). Create it yourself, "
            f"fix its permissions, or pass --runs-dir with a directory you can write to.") from exc
    try:
        fd, probe = tempfile.mkstemp(prefix=".cnnzoo-write-test-", dir=runs_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise RunError(
            f"{runs_dir}: the runs directory is not writable ({exc.strerror or exc}). Fix its permissions "
            f"(e.g. chmod u+w {runs_dir}) or pass --runs-dir with a directory you can write to.") from exc


def check_free_space(runs_dir: Path | str, needed: int) -> None:
    """Before any data is loaded: ``runs_dir`` is a writable directory with ``needed`` bytes free."""
    runs_dir = Path(runs_dir)
    _check_writable(runs_dir)
    free = shutil.disk_usage(runs_dir).free
    if free < needed:
        raise RunError(f"{runs_dir}: only {free / 2**20:,.0f} MiB free, but this run's checkpoints need about "
                       f"{needed / 2**20:,.0f} MiB. Free disk space or pass --runs-dir on a larger disk.")


def create_run_dir(runs_dir: Path | str, name: str, now: datetime | None = None) -> Path:
    """Create and return ``runs_dir/<name>-<UTC YYYYmmdd-HHMMSS>[-N]/``; never reuses a folder."""
    runs_dir = Path(runs_dir)
    _check_writable(runs_dir)
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is not None:
        now = now.astimezone(timezone.utc)
    base = f"{name}-{now:%Y%m%d-%H%M%S}"
    for n in range(1, 10_000):
        path = runs_dir / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir(exist_ok=False)
        except FileExistsError:
            continue
        except OSError as exc:
            raise RunError(f"{path}: cannot create the run folder ({exc.strerror or exc}). "
                           f"Pass --runs-dir with a directory you can write to.") from exc
        return path
    raise RunError(f"{runs_dir}: too many run folders named {base}-N; remove old runs or rename the config.")


# --- reading a run back --------------------------------------------------------------------------

def _file(filename: str) -> property:
    return property(lambda self: self.path / filename, doc=f"Path of {filename} in this run folder.")


@dataclass(frozen=True)
class RunFolder:
    """Paths of the files in one run folder."""

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    @classmethod
    def open(cls, path: Path | str) -> "RunFolder":
        """An existing run folder; RunError unless ``path`` is a directory holding config.yaml."""
        path = Path(path)
        if not path.exists():
            raise RunError(f"{path}: no such run folder. Pass a folder created by `cnnzoo train`, "
                           f"e.g. runs/<config>-<YYYYmmdd-HHMMSS>.")
        if not path.is_dir():
            raise RunError(f"{path}: is a file, not a run folder. Pass the folder created by "
                           f"`cnnzoo train`, e.g. runs/<config>-<YYYYmmdd-HHMMSS>.")
        run = cls(path)
        if run.config.is_symlink():
            raise RunError(f"{run.config}: is a symbolic link; a run folder's config.yaml is read only as a regular "
                           f"file, since a link could point at any file. Replace the link by the file itself.")
        if not run.config.is_file():
            raise RunError(f"{path}: is not a cnnzoo run folder (it has no config.yaml). Pass a folder "
                           f"created by `cnnzoo train`, e.g. runs/<config>-<YYYYmmdd-HHMMSS>.")
        return run

    @property
    def name(self) -> str:
        return self.path.name

    config = _file(CONFIG_YAML)
    history = _file(HISTORY_CSV)
    best = _file("best.keras")
    last = _file("last.keras")
    metrics = _file(METRICS_JSON)  # the run record (runs.record.RunRecord)
    summary = _file("summary.txt")
    eval_json = _file("eval.json")
    accuracy_png = _file("accuracy.png")
    loss_png = _file("loss.png")
    confusion_csv = _file("confusion_matrix.csv")
    confusion_png = _file("confusion_matrix.png")
    mistakes_png = _file("mistakes.png")
    scatter_png = _file("predicted_vs_true.png")  # regression reports
    residuals_png = _file("residuals.png")
    standardize = _file("standardize.json")  # data.standardize: the training split's statistics
    init_from = _file("init_from.json")  # model.init_from: which layers were copied from where
    distribute_json = _file("distribute.json")  # train.distribute: the replicas of each session
    mlflow_json = _file("mlflow.json")  # the MLflow run this run logs to
    cv_csv = _file("cv.csv")  # --folds: one row per fold, and the summary
    cv_json = _file("cv.json")
    pictures = _file("pictures")  # explain, filters, activations
    skipped_files = _file("skipped_files.csv")  # data.bad_files: skip: the streamed files left out
    tensorboard = _file("tensorboard")
    data_dir_json = _file("data_dir.json")  # the data folder training read (eval, predict, --resume default to it)

    def fold(self, index: int) -> "RunFolder":
        """The run folder of fold ``index`` of a cross-validation run."""
        return RunFolder(self.path / f"fold-{index}")

    def is_run(self) -> bool:
        """A folder holding config.yaml: a run folder, finished or not."""
        return self.path.is_dir() and self.config.is_file()

    def remove_partial_files(self) -> None:
        """Delete temporary files a killed writer left behind (none of them is ever read)."""
        for path in self.path.glob(".*.tmp*"):
            with contextlib.suppress(OSError):
                path.unlink()

    def config_data(self) -> Any:
        """config.yaml as plain data, read by the config reader's bounded parser (size, values, depth, aliases):
        the folder may come from someone else. RunError when it is missing or damaged."""
        try:
            return parse_text(read_run_file(self.config, limit=MAX_FILE_BYTES), str(self.config)).data
        except FileNotFoundError as exc:
            reason = exc.strerror
        except ConfigError as exc:
            reason = exc.message
        raise RunError(f"{self.config}: cannot read the run's resolved config ({reason}). "
                       f"Restore the file; cnnzoo writes it when the run starts.")

    def record_data_dir(self, data_dir: Path | None) -> None:
        """Keep the data folder this training session read, as an absolute path (none: the record stays)."""
        if data_dir is not None:
            atomic_write_json(self.data_dir_json, {"data_dir": os.path.abspath(data_dir)})

    def recorded_data_dir(self):
        """The data folder training recorded (a cross-validation run: its first fold's), as a
        cnnzoo.data.RecordedDataDir; None when there is no record. The folder may come from someone else:
        the file is read by the bounded reader, and its value is only a folder to look for the dataset in."""
        from cnnzoo.data import RecordedDataDir

        path = next((f.data_dir_json for f in (self, self.fold(1)) if os.path.lexists(f.data_dir_json)), None)
        if path is None:
            return None
        try:
            value = read_run_json(path)
        except (OSError, RunError) as exc:
            return RecordedDataDir(None, str(path), str(getattr(exc, "message", None) or exc))
        value = value.get("data_dir") if isinstance(value, dict) else None
        if not (isinstance(value, str) and os.path.isabs(value) and len(value) <= 4096 and "\0" not in value):
            return RecordedDataDir(None, str(path), f"{path}: does not hold an absolute folder path as `data_dir`")
        return RecordedDataDir(value, str(path))

    def checkpoint(self, which: str) -> Path:
        """Path of the ``best`` or ``last`` checkpoint; RunError if unknown or missing."""
        if which not in CHECKPOINTS:
            raise RunError(f"{self.path}: unknown checkpoint {which!r}; expected one of {', '.join(CHECKPOINTS)}.")
        path = self.path / f"{which}.keras"
        if path.is_file():
            return path
        present = [c for c in CHECKPOINTS if (self.path / f"{c}.keras").is_file()]
        there = (f"This run has only {', '.join(f'{c}.keras' for c in present)}; use --checkpoint {present[0]}."
                 if present else "This run has no checkpoint at all (training may have stopped before "
                                 "the first epoch ended); train it again.")
        raise RunError(f"{path}: the {which} checkpoint is missing. {there}")


def read_json(path: Path | str) -> Any:
    """Parse a JSON file of a run folder; RunError if missing or corrupt."""
    try:
        return read_run_json(path)
    except FileNotFoundError:
        raise RunError(f"{path}: file is missing. The run may be incomplete; "
                       f"re-run the command that writes it.") from None


def load_checkpoint(path: Path | str, into: Any = None) -> Any:
    """A saved .keras model, or its weights (and optimizer state) loaded into `into`, a model of the
    same network; RunError instead of a Keras traceback when the file is truncated or corrupt."""
    import keras

    import cnnzoo.layers.applications  # noqa: F401  (registers the Application entry's preprocessing layer)
    import cnnzoo.layers.custom  # noqa: F401  (registers cnnzoo's own layers, e.g. LeNet-5's RBFOutput)

    path = Path(path)
    try:
        if not zipfile.is_zipfile(path):  # Keras would call a truncated archive "file not found"
            raise ValueError("it is not a complete .keras (zip) archive")
        check_weights_fit(path)
        if into is not None:
            into.load_weights(path)
            return into
        return keras.models.load_model(path)
    except MemoryRefused:
        raise
    except Exception as exc:  # zipfile, h5py, JSON and Keras errors all mean "this file is damaged"
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise RunError(f"{path}: cannot load this checkpoint ({reason}). cnnzoo renames a checkpoint into "
                       f"place only once it is complete, so the file was damaged afterwards; use the run's "
                       f"other checkpoint (--checkpoint best|last) or train the run again.") from None


def check_weights_fit(path: Path) -> None:
    """Before Keras reads a .keras or .weights.h5 file, which may come from someone else: its unpacked
    members (by the zip directory) and the weights its HDF5 datasets declare must fit in memory (a 350 KB
    file can declare 21.6 GB of weights, which Keras would allocate)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            _refuse_beyond(path, sum(info.file_size for info in archive.infolist()), "unpacked")
            for info in archive.infolist():
                if info.filename.endswith(".h5"):
                    with archive.open(info) as member:  # Keras stores it uncompressed: seeking is cheap
                        _refuse_beyond(path, _declared_weight_bytes(member), "of weights")
    else:
        _refuse_beyond(path, _declared_weight_bytes(path), "of weights")


def _declared_weight_bytes(source: Any) -> int:
    """The bytes the datasets of an HDF5 file declare, read from its metadata only."""
    import h5py
    import numpy as np

    total = 0

    def add(_, item):
        nonlocal total
        if isinstance(item, h5py.Dataset):
            total += int(np.prod(item.shape, dtype=np.float64)) * item.dtype.itemsize

    with h5py.File(source, "r") as store:
        store.visititems(add)
    return total


def _refuse_beyond(path: Path, nbytes: int, what: str) -> None:
    available, source = available_memory()
    if nbytes > available:
        raise MemoryRefused(f"{path}: declares {human_bytes(nbytes)} {what}, but {human_bytes(available)} is "
                            f"available ({source}); cnnzoo does not load it. A checkpoint of a network this "
                            f"machine can hold is smaller; the file may be crafted.")


# --- history CSV ---------------------------------------------------------------------------------

class HistoryWriter:
    """One CSV row per epoch; the whole file is rewritten atomically on each append (from the text of the
    rows before, kept, so a long run does not format every row again each epoch)."""

    def __init__(self, path: Path | str, resume: bool = False):
        self.path = Path(path)
        self.rows: list[dict] = []
        self._text, self._header = "", []  # the file as last written, and its columns
        if resume and self.path.exists():
            self.rows = read_history(self.path, allow_empty=True).to_dict("records")

    @property
    def columns(self) -> list[str]:
        seen = {"epoch": None}
        for row in self.rows:
            seen.update(dict.fromkeys(row))
        return list(seen)

    def append(self, row: dict) -> None:
        """Add one epoch's values and rewrite the file."""
        self.rows.append(dict(row))
        if self._text and self._header and set(row) <= set(self._header):  # no new column: one more line
            self._text += self._format([self.rows[-1]], header=False)
            atomic_write_text(self.path, self._text)
        else:
            self._write()

    def keep(self, epochs: int) -> None:
        """Drop the rows after the first ``epochs`` and rewrite the file."""
        self.rows = self.rows[:epochs]
        self._write()

    def _write(self) -> None:
        self._header = self.columns
        self._text = self._format(self.rows, header=True)
        atomic_write_text(self.path, self._text)

    def _format(self, rows: list[dict], header: bool) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self._header, restval="", lineterminator="\n")
        if header:
            writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()


def read_history(path: Path | str, allow_empty: bool = False):
    """The history CSV as a DataFrame with an ``epoch`` column; RunError if missing, corrupt or
    (unless ``allow_empty``) without any epoch rows."""
    import pandas as pd

    path = Path(path)
    try:
        text = read_run_file(path)
    except FileNotFoundError:
        raise RunError(f"{path}: history file is missing. The run may have stopped before its first "
                       f"epoch ended; train it again.") from None
    try:
        df = pd.read_csv(io.StringIO(text))
    except pd.errors.EmptyDataError:
        raise RunError(f"{path}: history file is empty; the run recorded no epochs. Train it again.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise RunError(f"{path}: history file cannot be parsed as CSV ({exc}). "
                       f"It is corrupt; train the run again.") from exc
    if "epoch" not in df.columns:
        raise RunError(f"{path}: history file has no 'epoch' column (columns: {', '.join(map(str, df.columns))}). "
                       f"It is not a cnnzoo history; train the run again.")
    _check_history_values(path, df)
    if df.empty and not allow_empty:
        raise RunError(f"{path}: history file has a header but no epochs; the run stopped before its first "
                       f"epoch ended. Train it again.")
    return df


def _check_history_values(path: Path, df) -> None:
    """Epochs numbered 1, 2, ... and numbers in every other column (empty cells allowed)."""
    import pandas as pd

    for column in df.columns:
        values = pd.to_numeric(df[column], errors="coerce")
        bad = values.isna() & df[column].notna()
        if bad.any():
            row = int(bad.idxmax()) + 2  # 1-based, after the header
            raise RunError(f"{path}:{row}: column {column!r} holds {df[column][bad].iloc[0]!r}, not a number. "
                           f"The history is corrupt; restore it or train the run again.")
    if list(df["epoch"]) != list(range(1, len(df) + 1)):
        raise RunError(f"{path}: epochs are {list(df['epoch'])[:10]}, not 1, 2, 3, ... in order. The history "
                       f"is corrupt; restore it or train the run again.")
