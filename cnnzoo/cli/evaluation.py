"""The commands that read a trained run back: `cnnzoo eval`, `cnnzoo plot`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from cnnzoo.cli.common import (CheckpointOption, ForceOption, RunDataDirOption, RunDirArg, SplitOption, TtaOption,
                               check_choice, echo_paths, run_data_dir, user_errors)
from cnnzoo.evaluation import SPLITS
from cnnzoo.runs.folder import CHECKPOINTS


@user_errors
def eval_(run_dir: RunDirArg, data_dir: RunDataDirOption = None,
          checkpoint: CheckpointOption = "best", split: SplitOption = "test",
          json_: Annotated[bool, typer.Option("--json", help="Print eval.json instead of tables.")] = False,
          tta: TtaOption = "none",
          force: ForceOption = False):
    """Loss, accuracy, per-class precision/recall/F1 and confusion matrix of a run's checkpoint."""
    from cnnzoo.evaluation.evaluate import evaluate_run, render_eval
    from cnnzoo.evaluation.tta import check_tta_name
    from cnnzoo.runs.folder import RunFolder
    from cnnzoo.terminal import console as make_console, plain

    check_choice("--checkpoint", checkpoint, CHECKPOINTS)
    check_choice("--split", split, SPLITS)
    check_tta_name(tta)
    run = RunFolder.open(run_dir)
    result = evaluate_run(run, checkpoint=checkpoint, split=split, data_dir=run_data_dir(data_dir, run.path),
                          force=force, tta=tta)
    if json_:
        typer.echo(json.dumps(result, indent=2))
        return
    console = make_console()
    console.print(render_eval(result))
    plots = result.get("plots", [] if result.get("multi_label") else None)  # multi-label: no confusion matrix
    written = ([run.path / name for name in plots] if plots is not None
               else [run.confusion_csv, run.confusion_png, run.mistakes_png])
    console.print(plain(f"wrote {', '.join(map(str, [run.eval_json, *written]))}"))


@user_errors
def plot(run_dirs: Annotated[list[Path], typer.Argument(help="One or more run folders.")],
         metric: Annotated[Optional[list[str]], typer.Option(
             help="Metric(s) to plot, any history column (default: those of accuracy, loss, mae, r2 recorded).")]
         = None,
         out: Annotated[Optional[Path], typer.Option(
             help="Output .png, .svg or .pdf instead of the run folder (several metrics: STEM-METRIC.EXT beside "
                  "it); several runs default to comparison.png in the current folder.")] = None):
    """Accuracy and loss curves of one run, or several runs overlaid."""
    from cnnzoo.runs.folder import RunFolder
    from cnnzoo.runs.plots import DEFAULT_METRICS, plot_overlaid, plot_run

    runs = [RunFolder.open(path) for path in run_dirs]
    if len(runs) == 1 and out is None:
        written = plot_run(runs[0], metrics=tuple(metric or DEFAULT_METRICS))
    else:
        written = plot_overlaid(runs, metric, out or Path("comparison.png"))
    echo_paths(written)
