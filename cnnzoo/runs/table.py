"""`cnnzoo runs`: one row per run folder, read from metrics.json and history.csv only.

Nothing here imports TensorFlow, pandas or YAML: a row costs one small JSON read for a finished
run, so a folder of 1,000 runs lists in well under a second (benchmarks/runs_table.py).
A folder whose files cannot be read is listed as ``damaged`` with the reason, never raised.
"""

from __future__ import annotations

import csv
import io
import math
import operator
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cnnzoo.errors import RunError, suggest
from cnnzoo.runs.folder import SWEEP_JSON, RunFolder
from cnnzoo.safe_read import read_run_file, read_run_json
from cnnzoo.runs.lock import is_locked
from cnnzoo.runs.record import RunRecord
from cnnzoo.terminal import csv_text, plain

COLUMNS = ("name", "config", "dataset", "status", "epochs", "best_epoch", "monitor", "best_value",
           "test_accuracy", "params", "precision", "wall_seconds", "samples_per_second", "date")
ASCENDING = {"name", "config", "dataset", "status", "monitor", "precision", "wall_seconds"}
STATUSES = ("finished", "stopped early", "interrupted", "nan loss", "running", "damaged")
WIDE_TABLE_COLUMNS = 140  # narrower terminals get the compact table (`--wide` forces every column)
_STAMP = re.compile(r"-(\d{8}-\d{6})(?:-\d+)?$")
_FILTER = re.compile(r"^\s*([\w.]+)\s*(!=|>=|<=|=|>|<)\s*(.*)$")
_OPS = {"=": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt, ">=": operator.ge,
        "<=": operator.le}


@dataclass
class RunRow:
    """What `cnnzoo runs` shows of one run folder; ``metrics`` holds the best epoch's values and ``test_*``."""

    path: Path
    name: str
    config: str | None = None
    dataset: str | None = None
    status: str = "damaged"
    epochs: int | None = None
    best_epoch: int | None = None
    monitor: str | None = None
    best_value: float | None = None
    test_accuracy: float | None = None
    params: int | None = None
    precision: str | None = None
    wall_seconds: float | None = None
    samples_per_second: float | None = None
    date: str | None = None
    problem: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    def value(self, key: str) -> Any:
        """A column, or any metric of the best epoch (``val_loss``) or the test split (``test_loss``)."""
        if key in COLUMNS or key == "problem":
            return getattr(self, key)
        return self.metrics.get(key)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


def list_runs(runs_dir: Path | str) -> list[RunRow]:
    """A row for each run folder (a folder holding config.yaml) inside ``runs_dir``, and inside each sweep
    folder there (one holding sweep.json), named ``<sweep>/<trial run>``."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise RunError(f"{runs_dir}: no such runs directory. Pass the folder given to `cnnzoo train --runs-dir` "
                       f"(default: runs).")
    rows = []
    for child in sorted(runs_dir.iterdir()):
        if RunFolder(child).is_run():
            rows.append(read_row(child))
        elif (child / SWEEP_JSON).is_file():
            rows += [read_row(trial, name=f"{child.name}/{trial.name}") for trial in sorted(child.iterdir())
                     if RunFolder(trial).is_run()]
    return rows


def read_row(path: Path, name: str | None = None) -> RunRow:
    """The row of one run folder; a damaged folder gives a row with ``status='damaged'`` and ``problem``."""
    row = RunRow(path=path, name=name or path.name, date=_date(path))
    try:
        record = _record_if_current(RunFolder(path))
        if record is not None:
            _fill_from_record(row, record)
        else:
            _fill_from_history(row, RunFolder(path).history)
    except (ValueError, TypeError, KeyError, AttributeError, OSError, csv.Error, RunError) as exc:
        reason = str(exc).replace(f"{path}{os.sep}", "")  # the row names the run already
        row.status, row.problem = "damaged", f"{type(exc).__name__}: {reason}"[:120]
    if is_locked(path):  # a train or resume process holds the folder, whatever its files say so far
        row.status = "running"
    return row


def _record_if_current(run: RunFolder) -> RunRecord | None:
    """The run's record, unless a resumed run has written history since (then it is stale)."""
    if not os.path.lexists(run.metrics):  # a link or a FIFO in its place is read (and refused), not skipped
        return None
    if run.history.is_file() and run.history.lstat().st_mtime > run.metrics.lstat().st_mtime + 1:
        return None
    return RunRecord.from_json(read_run_json(run.metrics))


def _fill_from_record(row: RunRow, record: RunRecord) -> None:
    best, test = record.best, record.test
    row.config, row.dataset, row.status = record.config, record.dataset, record.status
    row.epochs, row.best_epoch = record.epochs_completed, record.best_epoch
    row.monitor = record.monitor or _default_monitor(best)
    row.best_value = best.get(row.monitor)
    row.test_accuracy = test.get("accuracy")
    row.params, row.precision = record.params, record.precision
    row.wall_seconds, row.samples_per_second = record.wall_seconds, record.samples_per_second
    row.metrics = {**{k: v for k, v in best.items() if k != "epoch"}, **{f"test_{k}": v for k, v in test.items()}}


def _fill_from_history(row: RunRow, history: Path) -> None:
    """No metrics.json: a run still training (`read_row` sees its lock), or one killed (SIGKILL, power loss)
    before it wrote one."""
    row.config = _STAMP.sub("", row.path.name)
    rows = history_rows(history) if os.path.lexists(history) else []
    row.epochs = len(rows)
    row.status = "interrupted"
    row.monitor = _default_monitor(rows[0] if rows else {})
    scored = [r for r in rows if isinstance(r.get(row.monitor), float) and not math.isnan(r[row.monitor])]
    if scored:
        pick = min if "loss" in row.monitor else max
        best = pick(scored, key=lambda r: r[row.monitor])
        row.best_epoch, row.best_value = int(best["epoch"]), best[row.monitor]
        row.metrics = {k: v for k, v in best.items() if k != "epoch"}


def history_rows(path: Path) -> list[dict]:
    with io.StringIO(read_run_file(path), newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "epoch" not in reader.fieldnames:
            raise ValueError(f"{path.name} has no 'epoch' column")
        return [{k: float(v) if v not in ("", None) else None for k, v in r.items()} for r in reader]


def _default_monitor(best: dict) -> str:
    for key in ("val_accuracy", "val_loss", "accuracy", "loss"):
        if key in best:
            return key
    return "val_accuracy"


def _date(path: Path) -> str | None:
    """The UTC start time in the folder name, else the time config.yaml was written."""
    match = _STAMP.search(path.name)
    try:
        when = (datetime.strptime(match.group(1), "%Y%m%d-%H%M%S") if match
                else datetime.fromtimestamp(RunFolder(path).config.stat().st_mtime, timezone.utc))
    except (ValueError, OSError):
        return None
    return when.strftime("%Y-%m-%d %H:%M:%S")


# --- filtering and sorting -----------------------------------------------------------------------

def parse_filter(text: str):
    """``status=finished``, ``test_accuracy>0.9``, ``config!=lenet`` -> (the key, a predicate on RunRow)."""
    match = _FILTER.match(text)
    if not match:
        raise RunError(f"--filter {text!r}: expected KEY=VALUE (or !=, >, <, >=, <=), e.g. --filter status=finished "
                       f"or --filter test_accuracy>0.9. Keys: {', '.join(COLUMNS)} or a metric such as val_loss.")
    key, op, wanted = match.groups()
    wanted = wanted.strip()
    if key == "status":
        check_status(wanted)

    def predicate(row: RunRow) -> bool:
        value = row.value(key)
        if value is None:
            return op == "!="
        number = _number(wanted)
        if isinstance(value, (int, float)) and number is not None:
            return _OPS[op](value, number)
        return _OPS[op](str(value), wanted) if op in ("=", "!=") else False

    return key, predicate


def check_key(rows: list[RunRow], key: str, option: str) -> None:
    """``key`` must be a column or a metric some run recorded: a misspelt one would silently keep no row
    (--filter) or leave the order alone (--sort)."""
    recorded = sorted({name for row in rows for name in row.metrics})
    if not rows or key in COLUMNS or key == "problem" or key in recorded:
        return
    hint = suggest(key, [*COLUMNS, *recorded])
    raise RunError(f"{option}: no run here has a column or metric called {key!r}. Columns: {', '.join(COLUMNS)}; "
                   f"metrics: {', '.join(recorded) or 'none'}." + (f" {hint}" if hint else ""))


def check_status(wanted: str) -> None:
    if wanted not in STATUSES:
        hint = suggest(wanted, list(STATUSES))
        raise RunError(f"--filter status={wanted}: no run has this status; statuses are {', '.join(STATUSES)}."
                       + (f" {hint}" if hint else ""))


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def sort_rows(rows: list[RunRow], key: str) -> list[RunRow]:
    """Best first: descending, except names, losses and times; rows without the value go last."""
    descending = key not in ASCENDING and "loss" not in key
    present = [r for r in rows if r.value(key) is not None]
    missing = [r for r in rows if r.value(key) is None]
    return sorted(present, key=lambda r: r.value(key), reverse=descending) + missing


# --- output --------------------------------------------------------------------------------------

def to_csv(rows: list[RunRow]) -> str:
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*COLUMNS, "problem", "path"])
    for row in rows:
        writer.writerow([_cell(row.value(c)) for c in COLUMNS] + [_cell(row.problem), _cell(row.path)])
    return buffer.getvalue()


def _cell(value: Any) -> str:
    return csv_text(value)


# header, justify, the cell of a row; `wide` adds the columns marked True
_TABLE = (("run", "left", False, lambda r: plain(r.name)),
          ("config", "left", True, lambda r: plain(r.config or "")),
          ("dataset", "left", True, lambda r: plain(r.dataset or "")),
          ("status", "left", False, lambda r: _status_markup(r.status)),
          ("epochs", "right", False, lambda r: _fmt(r.epochs)),
          ("best ep", "right", True, lambda r: _fmt(r.best_epoch)),
          ("best val", "right", False, lambda r: _best_text(r)),
          ("test acc", "right", False, lambda r: _fmt(r.test_accuracy, ".4f")),
          ("params", "right", True, lambda r: _fmt(r.params, ",")),
          ("precision", "left", True, lambda r: r.precision or ""),
          ("wall", "right", False, lambda r: seconds_text(r.wall_seconds)),
          ("samples/s", "right", True, lambda r: _fmt(r.samples_per_second, ",.0f")),
          ("date (UTC)", "left", True, lambda r: r.date or ""))


def render_runs(rows: list[RunRow], title: str, *, wide: bool = True):
    """A rich table, one line per run; damaged folders show their problem in place of metrics.
    Without `wide`, only run, status, epochs, best value, test accuracy and wall time (fits 80 columns)."""
    from rich.table import Table

    columns = [c for c in _TABLE if wide or not c[2]]
    table = Table(title=plain(title), title_justify="left")
    for header, justify, _, _ in columns:
        table.add_column(header, justify=justify, overflow="fold")
    for row in rows:
        if row.status == "damaged":
            cells = {"run": plain(row.name), "config": plain(row.config or ""), "status": "[red]damaged[/]"}
            table.add_row(*[cells.get(c[0], "") for c in columns[:-1]], plain(row.problem or ""))
            continue
        table.add_row(*[cell(row) for _, _, _, cell in columns])
    return table


def _best_text(row: RunRow) -> str:
    return f"{row.monitor} {row.best_value:.4f}" if row.best_value is not None else ""


def _status_markup(status: str) -> str:
    colour = {"finished": "green", "running": "cyan", "interrupted": "yellow"}.get(status, "magenta")
    return f"[{colour}]{status}[/]"


def _fmt(value: Any, spec: str = "") -> str:
    return "" if value is None else format(value, spec)


def seconds_text(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"
