"""Cross-validation: `cnnzoo train CONFIG --folds K` (or `train.folds: K`) trains K runs on stratified,
seeded folds of the training data (validation split included), each in a sub-folder fold-<i>/ of one
run folder, each with `data.fold: [i, K]` in its config.yaml so `eval` and `--resume` work on it alone.
Every fold's best checkpoint is evaluated on the test split; cv.csv holds one row per fold and cv.json
the mean and standard deviation of every validation and test metric."""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cnnzoo.atomic import atomic_write_json, atomic_write_text
from cnnzoo.errors import RunError
from cnnzoo.runs.folder import RunFolder, create_run_dir
from cnnzoo.runs.record import RunRecord
from cnnzoo.terminal import plain


@dataclass
class CVResult:
    run: RunFolder
    rows: list[dict[str, Any]]
    summary: dict[str, dict[str, float]]
    interrupted: str | None

    def render(self, console) -> None:
        from rich.table import Table

        table = Table(title=f"{plain(self.run.name)}: {len(self.rows)} fold(s)", title_justify="left")
        for header in ("metric", "mean", "std"):
            table.add_column(header, justify="left" if header == "metric" else "right")
        for key, stats in self.summary.items():
            table.add_row(key, f"{stats['mean']:.4f}", f"{stats['std']:.4f}")
        console.print(table)
        console.print(f"run folder: [bold]{plain(self.run.path)}[/] ({self.run.cv_csv.name}, "
                      f"{self.run.cv_json.name}, fold-1 ... fold-{len(self.rows)})")


def folds_of(config) -> int | None:
    """K when the config asks for cross-validation and is not itself one fold of it."""
    return config.train.folds if config.data is not None and config.data.fold is None else None


def train_folds(config, folds: int, *, data_dir: Path | None, runs_dir: Path, console, force: bool) -> CVResult:
    """A new cross-validation run folder, its K folds trained in turn."""
    resolved = dict(config.resolved)
    resolved["train"] = {**(resolved.get("train") or {}), "folds": folds}
    parent = RunFolder(create_run_dir(runs_dir, config.name))
    atomic_write_text(parent.config, yaml.safe_dump(resolved, sort_keys=False))
    return _run_folds(parent, folds, epochs=None, data_dir=data_dir, console=console, force=force)


def is_cv_run(path: Path) -> bool:
    return RunFolder(path).fold(1).path.is_dir() or _parent_folds(Path(path)) is not None


def resume_folds(path: Path, *, epochs: int | None, data_dir: Path | None, console, force: bool) -> CVResult:
    """Finished folds are kept, an interrupted one resumed, missing ones trained."""
    parent = RunFolder.open(path)
    folds = _parent_folds(parent.path)
    if folds is None:
        raise RunError(f"{parent.path}: its config.yaml has no train.folds, so it is not a cross-validation run.")
    return _run_folds(parent, folds, epochs=epochs, data_dir=data_dir, console=console, force=force)


def _parent_folds(path: Path) -> int | None:
    try:
        data = RunFolder(path).config_data()
    except RunError:
        return None
    folds = (data.get("train") or {}).get("folds") if isinstance(data, dict) else None
    return folds if isinstance(folds, int) and not (data.get("data") or {}).get("fold") else None


def _run_folds(parent: RunFolder, folds: int, *, epochs, data_dir, console, force) -> CVResult:
    rows = []
    for i in range(1, folds + 1):
        console.print(f"[bold]fold {i}/{folds}[/]", highlight=False)
        record = _one_fold(parent, i, folds, epochs, data_dir, console, force)
        if record.interrupted:
            return CVResult(parent, rows, {}, record.interrupted)
        rows.append(_row(i, record))
    summary = summarize(rows)
    _write(parent, rows, summary)
    return CVResult(parent, rows, summary, None)


def _one_fold(parent: RunFolder, i: int, folds: int, epochs, data_dir, console, force) -> RunRecord:
    from cnnzoo.config import load_config
    from cnnzoo.training.fit import resume_run, train_run

    folder = parent.fold(i)
    overrides = [f"data.fold=[{i}, {folds}]"] + ([f"train.epochs={epochs}"] if epochs else [])
    config = load_config(parent.config, overrides)
    done = _finished(folder, config.train.epochs)
    if done is not None:
        console.print(f"fold {i}/{folds} is complete; kept", highlight=False)
        return done
    if folder.config.is_file() and folder.history.is_file():
        return resume_run(folder.path, epochs=epochs, data_dir=data_dir, console=console, force=force).record
    folder.path.mkdir(exist_ok=True)
    return train_run(config, data_dir=data_dir, runs_dir=parent.path, console=console, force=force,
                     run_path=folder.path).record


def _finished(folder: RunFolder, epochs: int) -> RunRecord | None:
    try:
        record = RunRecord.read(folder.metrics)
    except RunError:
        return None
    complete = record.epochs_completed >= epochs or record.stopped_early or record.nan_loss
    return record if complete and not record.interrupted else None


def _row(i: int, record: RunRecord) -> dict[str, Any]:
    best = {k: v for k, v in record.best.items() if k.startswith("val_")}
    test = {f"test_{k}": v for k, v in record.test.items()}
    return {"fold": i, "best_epoch": record.best_epoch, **best, **test}


def summarize(rows: list[dict]) -> dict[str, dict[str, float]]:
    """mean and (sample) std of every validation and test metric over the folds."""
    keys = [k for k in dict.fromkeys(k for row in rows for k in row) if k not in ("fold", "best_epoch")]
    summary = {}
    for key in keys:
        values = [float(row[key]) for row in rows if isinstance(row.get(key), (int, float))]
        if values:
            summary[key] = {"mean": statistics.fmean(values),
                            "std": statistics.stdev(values) if len(values) > 1 else 0.0}
    return summary


def _write(parent: RunFolder, rows: list[dict], summary: dict) -> None:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(parent.cv_csv, buffer.getvalue())
    atomic_write_json(parent.cv_json, {"folds": len(rows), "summary": summary, "rows": rows})
