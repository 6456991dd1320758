"""`cnnzoo sweep`: train one run folder per trial, rank them in sweep.csv, resume where it stopped.

The sweep folder (runs/<name>/) holds sweep.json (the search: config, overrides, space, trials),
sweep.csv (the ranking, rewritten after each trial) and one run folder per trial named after it.
Running the same command again skips finished trials and resumes an interrupted one in its folder.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnzoo.atomic import atomic_write_json, atomic_write_text
from cnnzoo.config import load_config
from cnnzoo.errors import RunError
from cnnzoo.runs.folder import RunFolder, SWEEP_CSV, SWEEP_JSON, read_json
from cnnzoo.runs.table import history_rows, read_row, seconds_text
from cnnzoo.terminal import csv_text
from cnnzoo.training.sweep_space import Param, SweepError, Trial

DONE = ("finished", "stopped early", "nan loss")


@dataclass
class Sweep:
    config: Path
    overrides: list[str]
    params: list[Param]
    trials: list[Trial]
    metric: str
    mode: str  # "max" or "min"
    folder: Path
    random_trials: int | None = None
    seed: int = 0

    def identity(self) -> dict[str, Any]:
        """What makes two sweep commands the same sweep (the ranking metric may change between them)."""
        return {"config": str(self.config), "overrides": self.overrides,
                "params": [p.to_json() for p in self.params], "random": self.random_trials, "seed": self.seed,
                "trials": [{"name": t.name, "assignment": t.assignment} for t in self.trials]}


@dataclass
class TrialResult:
    trial: Trial
    status: str = "not started"
    run: Path | None = None
    value: float | None = None
    row: Any = None
    note: str = ""


def prepare(sweep: Sweep) -> None:
    """Create the sweep folder and sweep.json, or check that an existing one holds this same search."""
    record = sweep.folder / SWEEP_JSON
    if record.exists():
        saved = read_json(record)
        if {k: saved.get(k) for k in sweep.identity()} != sweep.identity():
            raise SweepError(f"{sweep.folder}: this folder holds another sweep (different config, overrides or "
                             f"search space; see its sweep.json). Pass --name to start a new sweep, or repeat the "
                             f"original command to resume that one.")
        return
    sweep.folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(record, {**sweep.identity(), "metric": sweep.metric, "mode": sweep.mode})


def trial_folder(sweep: Sweep, trial: Trial) -> Path | None:
    """The run folder of ``trial`` (``<trial name>-<timestamp>``), if it was started."""
    found = [p for p in sorted(sweep.folder.glob(f"{trial.name}-2*")) if RunFolder(p).is_run()]
    return found[-1] if found else None


def run_sweep(sweep: Sweep, *, data_dir: Path | None, budget_minutes: float | None, console) -> list[TrialResult]:
    """Train the trials in order; stop early on Ctrl-C or when the budget is spent. Returns every trial's result."""
    import keras

    from cnnzoo.training.fit import resume_run, train_run

    specs = [load_config(sweep.config, [*sweep.overrides, *t.overrides, f"name={t.name}"]) for t in sweep.trials]
    prepare(sweep)  # only once every trial's config is known to be valid
    results = [TrialResult(t) for t in sweep.trials]
    started = time.monotonic()
    for index, (result, spec) in enumerate(zip(results, specs)):
        folder = trial_folder(sweep, result.trial)
        status = read_row(folder).status if folder else None
        if status in DONE:
            _record(sweep, result, folder, note="done before")
            continue
        if budget_minutes is not None and time.monotonic() - started >= budget_minutes * 60:
            result.note = "budget spent"
            continue
        console.rule(f"trial {index + 1}/{len(results)}: {result.trial.name}")
        try:
            if folder is not None:
                outcome = resume_run(folder, epochs=None, data_dir=data_dir, console=console)
            else:
                outcome = train_run(spec, data_dir=data_dir, runs_dir=sweep.folder, console=console)
        except RunError as exc:  # e.g. a damaged trial folder: reported in sweep.csv, the others still run
            result.status, result.run, result.note = "failed", folder, str(exc)[:200]
            continue
        finally:
            keras.backend.clear_session()
        _record(sweep, result, outcome.run.path)
        write_csv(sweep, results)
        if outcome.interrupted:
            break
    write_csv(sweep, results)
    return results


def _record(sweep: Sweep, result: TrialResult, folder: Path, note: str = "") -> None:
    row = read_row(folder)
    result.status, result.run, result.row, result.note = row.status, folder, row, note
    result.value = trial_value(folder, row, sweep.metric, sweep.mode)


def trial_value(folder: Path, row, metric: str, mode: str) -> float | None:
    """The trial's score: the best ``metric`` over its epochs (history.csv), or a ``test_*`` metric."""
    if metric.startswith("test_"):
        return row.value(metric)
    try:
        values = [r[metric] for r in history_rows(RunFolder(folder).history) if r.get(metric) is not None]
    except (OSError, ValueError, RunError):
        return None
    values = [v for v in values if v == v]
    return (max if mode == "max" else min)(values) if values else None


def ranked(sweep: Sweep, results: list[TrialResult]) -> list[TrialResult]:
    scored = sorted((r for r in results if r.value is not None), key=lambda r: r.value, reverse=sweep.mode == "max")
    return scored + [r for r in results if r.value is None]


def write_csv(sweep: Sweep, results: list[TrialResult]) -> Path:
    """sweep.csv: one row per trial, best first, with its values, score and run folder."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    keys = [p.key for p in sweep.params]
    writer.writerow(["rank", "trial", "status", *keys, sweep.metric, "best_epoch", "test_accuracy", "epochs",
                     "wall_seconds", "run", "note"])
    for rank, result in enumerate(ranked(sweep, results), start=1):
        row = result.row
        writer.writerow([rank if result.value is not None else "", result.trial.name, result.status,
                         *(result.trial.assignment[k] for k in keys), _cell(result.value),
                         *(_cell(getattr(row, k, None)) for k in ("best_epoch", "test_accuracy", "epochs",
                                                                    "wall_seconds")),
                         csv_text(result.run), csv_text(result.note)])
    return atomic_write_text(sweep.folder / SWEEP_CSV, buffer.getvalue())


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def render_ranking(sweep: Sweep, results: list[TrialResult]):
    from rich.table import Table

    table = Table(title=f"{sweep.folder}/sweep.csv (ranked by {sweep.metric}, {sweep.mode})", title_justify="left")
    for header in ("rank", "trial", "status", sweep.metric, "test acc", "epochs", "wall"):
        table.add_column(header, overflow="fold")
    for rank, result in enumerate(ranked(sweep, results), start=1):
        row = result.row
        table.add_row(str(rank) if result.value is not None else "", result.trial.name,
                      result.status + (f" ({result.note})" if result.note else ""),
                      _fmt(result.value), _fmt(getattr(row, "test_accuracy", None)),
                      _cell(getattr(row, "epochs", None)), seconds_text(getattr(row, "wall_seconds", None)))
    return table


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "" if value is None else format(value, spec)


def best_trial(sweep: Sweep, results: list[TrialResult]) -> TrialResult | None:
    top = ranked(sweep, results)
    return top[0] if top and top[0].value is not None else None
