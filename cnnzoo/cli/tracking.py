"""The commands that look across runs: `cnnzoo runs`, `cnnzoo compare`, `cnnzoo sweep`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from cnnzoo.cli.common import ConfigArg, DataDirOption, SetOption, config_path, user_errors, without_tensorflow


@without_tensorflow
def runs(runs_dir: Annotated[Path, typer.Argument(help="A folder of run folders.")] = Path("runs"),
         sort: Annotated[Optional[str], typer.Option(
             "--sort", help="Column or metric to rank by, best first (e.g. test_accuracy, val_loss, date).")] = None,
         filter_: Annotated[Optional[list[str]], typer.Option(
             "--filter", help="Keep rows where KEY=VALUE (also !=, >, <, >=, <=); repeatable.")] = None,
         json_: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
         csv_: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False,
         wide: Annotated[bool, typer.Option(
             "--wide", help="Every column even on a narrow terminal (default: all of them from 140 columns).")]
         = False):
    """One row per run folder: status, epochs, best validation metric, test accuracy, params, speed, date."""
    from cnnzoo.runs.table import WIDE_TABLE_COLUMNS, check_key, list_runs, parse_filter, render_runs, sort_rows, to_csv

    rows = every_row = list_runs(runs_dir)
    for text in filter_ or []:
        key, predicate = parse_filter(text)
        check_key(every_row, key, f"--filter {text}")
        rows = [r for r in rows if predicate(r)]
    if sort:
        check_key(every_row, sort, f"--sort {sort}")
        rows = sort_rows(rows, sort)
    if json_:
        typer.echo(json.dumps([r.to_json() for r in rows], indent=2))
    elif csv_:
        typer.echo(to_csv(rows), nl=False)
    else:
        from cnnzoo.terminal import console as make_console

        console = make_console()
        wide = wide or console.width >= WIDE_TABLE_COLUMNS
        console.print(render_runs(rows, f"{runs_dir}: {len(rows)} run(s)", wide=wide))


@without_tensorflow
def compare(run_dirs: Annotated[list[Path], typer.Argument(help="Two or more run folders.")],
            metric: Annotated[Optional[list[str]], typer.Option(
                help="Curves to overlay (default: those of accuracy, loss, mae, r2 recorded).")] = None,
            out: Annotated[Path, typer.Option(help="Curves .png, .svg or .pdf (with several metrics, "
                                                   "<out stem>-<metric>.<ext>).")] = Path("comparison.png"),
            json_: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False):
    """Config differences (dotted paths), metrics side by side, and the overlaid curves of several runs."""
    from cnnzoo.errors import RunError
    from cnnzoo.runs.compare import compare_runs, render_comparison
    from cnnzoo.runs.folder import RunFolder
    from cnnzoo.runs.plots import plot_overlaid

    if len(run_dirs) < 2:
        raise RunError("compare needs at least two run folders, e.g. cnnzoo compare runs/a runs/b.")
    folders = [RunFolder.open(path) for path in run_dirs]
    comparison = compare_runs(folders)
    plots = plot_overlaid(folders, metric, out)
    if json_:
        typer.echo(json.dumps({**comparison.to_json(), "plots": [str(p) for p in plots]}, indent=2))
        return
    from cnnzoo.terminal import console as make_console

    console = make_console()
    console.print(render_comparison(comparison))
    console.print("curves: " + ", ".join(str(p) for p in plots), highlight=False)


@user_errors
def sweep(config: ConfigArg,
          grid: Annotated[Optional[list[str]], typer.Option(
              "--grid", help="KEY=\\[v1,v2,...]: try each value (cartesian product over --grid keys); "
                           "repeatable.")]  # \\[: a literal bracket, not rich markup
          = None,
          sample: Annotated[Optional[list[str]], typer.Option(
              "--sample", help="KEY=uniform(a,b) | loguniform(a,b) | choice(v1,v2,...), drawn with --random N; "
                               "repeatable.")] = None,
          random_trials: Annotated[Optional[int], typer.Option(
              "--random", min=1, help="Draw N random trials (--grid lists act as choices) instead of the grid.")]
          = None,
          metric: Annotated[str, typer.Option(help="Rank trials by the best value of this metric over epochs "
                                                   "(or a test_ metric).")] = "val_accuracy",
          mode: Annotated[Optional[str], typer.Option(help="max or min (default: min for losses, else max).")]
          = None,
          name: Annotated[Optional[str], typer.Option(help="Sweep folder name (default <config>-sweep).")] = None,
          seed: Annotated[int, typer.Option(help="Seed of the random draws.")] = 0,
          budget_minutes: Annotated[Optional[float], typer.Option(
              "--budget-minutes", min=0, help="Start no new trial after this many minutes.")] = None,
          set_: SetOption = None, data_dir: DataDirOption = None,
          runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where the sweep folder is created.")]
          = Path("runs")):
    """Grid or random search: one run folder per trial, sweep.csv ranked by --metric; rerun to resume."""
    from cnnzoo.terminal import console as make_console

    from cnnzoo.data import resolve_data_dir
    from cnnzoo.training.sweep import Sweep, best_trial, render_ranking, run_sweep
    from cnnzoo.training.sweep_space import SweepError, make_trials, parse_grid, parse_sample

    if mode not in (None, "max", "min"):
        raise SweepError(f"--mode must be max or min, received {mode!r}.")
    params = [*map(parse_grid, grid or []), *map(parse_sample, sample or [])]
    path = config_path(config).resolve()
    plan = Sweep(config=path, overrides=list(set_ or []), params=params,
                 trials=make_trials(params, random_trials, seed), metric=metric,
                 mode=mode or ("min" if "loss" in metric else "max"),
                 folder=runs_dir / (name or f"{path.stem}-sweep"), random_trials=random_trials, seed=seed)
    console = make_console()
    results = run_sweep(plan, data_dir=resolve_data_dir(data_dir), budget_minutes=budget_minutes, console=console)
    console.print(render_ranking(plan, results))
    best = best_trial(plan, results)
    if best is not None:
        values = ", ".join(f"{k}={v}" for k, v in best.trial.assignment.items())
        console.print(f"best trial: [bold]{best.trial.name}[/] {plan.metric} {best.value:.4f} ({values})  "
                      f"run folder: {best.run}", highlight=False)
    pending = [r for r in results if r.status not in ("finished", "stopped early", "nan loss", "failed")]
    if pending:
        console.print(f"{len(pending)} trial(s) not finished; run the same command again to continue.")
    if any(r.status == "interrupted" for r in results):
        raise typer.Exit(130)
