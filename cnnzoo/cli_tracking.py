"""The commands that look across runs: `cnnzoo runs`, `cnnzoo compare`, `cnnzoo sweep`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from cnnzoo.cli import _without_tensorflow, app


@app.command()
@_without_tensorflow
def runs(runs_dir: Annotated[Path, typer.Argument(help="A folder of run folders.")] = Path("runs"),
         sort: Annotated[Optional[str], typer.Option(
             "--sort", help="Column or metric to rank by, best first (e.g. test_accuracy, val_loss, date).")] = None,
         filter_: Annotated[Optional[list[str]], typer.Option(
             "--filter", help="Keep rows where KEY=VALUE (also !=, >, <, >=, <=); repeatable.")] = None,
         json_: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
         csv_: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False):
    """One row per run folder: status, epochs, best validation metric, test accuracy, params, speed, date."""
    from cnnzoo.runs_table import list_runs, parse_filter, render_runs, sort_rows, to_csv

    rows = list_runs(runs_dir)
    for predicate in map(parse_filter, filter_ or []):
        rows = [r for r in rows if predicate(r)]
    rows = sort_rows(rows, sort) if sort else rows
    if json_:
        typer.echo(json.dumps([r.to_json() for r in rows], indent=2))
    elif csv_:
        typer.echo(to_csv(rows), nl=False)
    else:
        from rich.console import Console

        Console().print(render_runs(rows, f"{runs_dir}: {len(rows)} run(s)"))


@app.command()
@_without_tensorflow
def compare(run_dirs: Annotated[list[Path], typer.Argument(help="Two or more run folders.")],
            metric: Annotated[Optional[list[str]], typer.Option(
                help="Curves to overlay (default accuracy, loss).")] = None,
            out: Annotated[Path, typer.Option(help="Curves PNG (with several metrics, <out>-<metric>.png).")]
            = Path("comparison.png"),
            json_: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False):
    """Config differences (dotted paths), metrics side by side, and the overlaid curves of several runs."""
    from cnnzoo.compare import compare_runs, render_comparison
    from cnnzoo.errors import RunError
    from cnnzoo.plots import plot_runs
    from cnnzoo.runs import RunFolder

    if len(run_dirs) < 2:
        raise RunError("compare needs at least two run folders, e.g. cnnzoo compare runs/a runs/b.")
    folders = [RunFolder.open(path) for path in run_dirs]
    comparison = compare_runs(folders)
    metrics = metric or ["accuracy", "loss"]
    plots = [plot_runs(folders, m, out if len(metrics) == 1 else out.with_name(f"{out.stem}-{m}.png"))
             for m in metrics]
    if json_:
        typer.echo(json.dumps({**comparison.to_json(), "plots": [str(p) for p in plots]}, indent=2))
        return
    from rich.console import Console

    console = Console()
    console.print(render_comparison(comparison))
    console.print("curves: " + ", ".join(str(p) for p in plots), highlight=False)
