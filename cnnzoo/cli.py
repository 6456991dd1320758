"""The `cnnzoo` command line: thin typed commands; user errors become one paragraph and exit code 2."""

from __future__ import annotations

import functools
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from cnnzoo.precision import PRECISIONS, mixed_policy

app = typer.Typer(help="Train classic convolutional networks from declarative YAML configs.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

SetOption = Annotated[Optional[list[str]], typer.Option(
    "--set", help="Override a config value: dotted.path=value (YAML-typed), repeatable.")]
DataDirOption = Annotated[Optional[Path], typer.Option(
    "--data-dir", help="Folder with datasets (else $CNNZOO_DATA_DIR, then ~/.keras/datasets, then download).")]
ConfigArg = Annotated[Path, typer.Argument(help="A YAML config, e.g. configs/lenet.yaml.")]
Precision = Enum("Precision", {name: name for name in PRECISIONS}, type=str)
RunDirArg = Annotated[Path, typer.Argument(help="A run folder, e.g. runs/lenet-20260101-120000.")]


@app.callback()
def _root() -> None:
    """Train classic convolutional networks from declarative YAML configs."""


def _user_errors(command):
    """Turn CnnzooError into a clean message and exit code 2: never a traceback for a user mistake."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from cnnzoo.errors import CnnzooError

        try:
            from cnnzoo.runtime import import_tensorflow

            import_tensorflow()
            return command(*args, **kwargs)
        except CnnzooError as exc:
            from rich.markup import escape  # the message quotes user text: "[/x]" must not be read as markup

            _stderr().print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
    return wrapper


def _stderr():
    from rich.console import Console

    return Console(stderr=True)


@app.command()
@_user_errors
def summary(config: ConfigArg, set_: SetOption = None,
            json_: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
            expand: Annotated[bool, typer.Option("--expand", help="Also list the layers inside blocks.")] = False):
    """Layers, output shapes, parameters and FLOPs of a config's model; no training."""
    from cnnzoo.builder import build_model
    from cnnzoo.config import load_config
    from cnnzoo.summary import render_summary, summarize

    spec = load_config(config, set_ or [])
    result = summarize(spec, build_model(spec))
    if json_:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        from rich.console import Console

        Console().print(render_summary(result, expand=expand))


@app.command()
@_user_errors
def train(config: Annotated[Optional[Path], typer.Argument(help="A YAML config, e.g. configs/lenet.yaml.")] = None,
          set_: SetOption = None, data_dir: DataDirOption = None,
          runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where run folders are created.")] = Path("runs"),
          epochs: Annotated[Optional[int], typer.Option("--epochs", min=1, help="Override train.epochs.")] = None,
          seed: Annotated[Optional[int], typer.Option("--seed", min=0, help="Override train.seed.")] = None,
          resume: Annotated[Optional[Path], typer.Option(
              "--resume", help="Continue an interrupted or finished run folder (no CONFIG needed).")] = None,
          deterministic: Annotated[bool, typer.Option(
              "--deterministic", help="Enable TensorFlow's deterministic ops (slower, reproducible).")] = False):
    """Build, train and checkpoint a config's model; write history, plots and metrics to a run folder."""
    from rich.console import Console

    from cnnzoo.config import load_config
    from cnnzoo.data import resolve_data_dir
    from cnnzoo.errors import RunError
    from cnnzoo.train import resume_run, train_run

    if (config is None) == (resume is None):
        raise RunError("give either a CONFIG to start a run or --resume RUN_DIR to continue one.")
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    console = Console()
    if resume is not None:
        if set_ or seed is not None:
            raise RunError("--set and --seed cannot change a run being resumed; only --epochs can.")
        result = resume_run(resume, epochs=epochs, data_dir=resolve_data_dir(data_dir), console=console)
    else:
        overrides = list(set_ or [])
        overrides += [f"train.epochs={epochs}"] if epochs is not None else []
        overrides += [f"train.seed={seed}"] if seed is not None else []
        spec = load_config(config, overrides)
        result = train_run(spec, data_dir=resolve_data_dir(data_dir), runs_dir=runs_dir, console=console)
    _print_train_result(console, result)
    if result.metrics["interrupted"]:
        raise typer.Exit(130)


def _print_train_result(console, result) -> None:
    from rich.table import Table

    metrics = result.metrics
    table = Table(title=f"{result.run.name}: best epoch {metrics['best_epoch']} of {metrics['epochs_completed']}",
                  title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics["test"].items():
        table.add_row(f"test {key}", f"{value:.4f}")
    for key in ("val_accuracy", "val_loss"):
        if key in metrics["best"]:
            table.add_row(f"best {key}", f"{metrics['best'][key]:.4f}")
    table.add_row("wall time", f"{metrics['wall_seconds']:.1f} s")
    table.add_row("samples/s", f"{metrics['samples_per_second']}")
    table.add_row("params", f"{metrics['params']:,}")
    console.print(table)
    if metrics["interrupted"]:
        console.print(f"[yellow]Stopped by {metrics['interrupted']} after {metrics['epochs_completed']} complete "
                      f"epoch(s).[/] The run folder is consistent: `cnnzoo eval {result.run.path}` and "
                      f"`cnnzoo plot {result.run.path}` work on it. Continue with:\n"
                      f"  cnnzoo train --resume {result.run.path}", highlight=False)
    if metrics["nan_loss"]:
        where = metrics["nan_loss"]
        console.print(f"[red]Training stopped: the loss became NaN or infinite at epoch {where['epoch']}, "
                      f"step {where['step']}.[/] The best checkpoint so far is kept. Check the learning rate "
                      "(try 10x lower), the input scaling (data.scale) and the loss.")
    console.print(f"run folder: [bold]{result.run.path}[/]")


@app.command("eval")
@_user_errors
def eval_(run_dir: RunDirArg, data_dir: DataDirOption = None,
          checkpoint: Annotated[str, typer.Option(help="best or last.")] = "best",
          split: Annotated[str, typer.Option(help="test or val.")] = "test",
          json_: Annotated[bool, typer.Option("--json", help="Print eval.json instead of tables.")] = False):
    """Loss, accuracy, per-class precision/recall/F1 and confusion matrix of a run's checkpoint."""
    from rich.console import Console

    from cnnzoo.data import resolve_data_dir
    from cnnzoo.errors import RunError
    from cnnzoo.evaluate import evaluate_run, render_eval
    from cnnzoo.runs import RunFolder

    if checkpoint not in ("best", "last") or split not in ("test", "val"):
        raise RunError("--checkpoint must be best or last, and --split test or val.")
    run = RunFolder.open(run_dir)
    result = evaluate_run(run, checkpoint=checkpoint, split=split, data_dir=resolve_data_dir(data_dir))
    if json_:
        typer.echo(json.dumps(result, indent=2))
        return
    console = Console()
    console.print(render_eval(result))
    console.print(f"wrote {run.eval_json}, {run.confusion_csv}, {run.confusion_png}")


@app.command()
@_user_errors
def predict(run_dir: Annotated[Path, typer.Argument(help="A run folder, or a .keras file (with --config).")],
            inputs: Annotated[list[str], typer.Argument(
                help="Image files, folders (recursive) or glob patterns; for 1D runs .tsv/.csv (UCR layout) or .npy.")],
            checkpoint: Annotated[str, typer.Option(help="best or last.")] = "best",
            config: Annotated[Optional[Path], typer.Option(
                "--config", help="The config of a .keras file (default: config.yaml beside it).")] = None,
            top_k: Annotated[int, typer.Option("--top-k", min=1, help="Classes shown per input.")] = 3,
            batch_size: Annotated[Optional[int], typer.Option(
                "--batch-size", min=1, help="Inputs per batch (default: train.batch_size).")] = None,
            json_: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
            csv_: Annotated[Optional[Path], typer.Option("--csv", help="Also write the predictions as CSV.")] = None,
            data_dir: DataDirOption = None):
    """Classify new files with a run's checkpoint, prepared exactly as its training data was.
    Exit code 0: all inputs predicted; 1: some failed; 2: none could be read."""
    from rich.console import Console

    from cnnzoo.data import resolve_data_dir
    from cnnzoo.errors import RunError
    from cnnzoo.predict import model_source, predict_inputs, predictions_csv, render_predictions

    if checkpoint not in ("best", "last"):
        raise RunError("--checkpoint must be best or last.")
    source = model_source(run_dir, checkpoint, config)
    result = predict_inputs(source, inputs, top_k=top_k, batch_size=batch_size,
                            data_dir=resolve_data_dir(data_dir))
    shown = max((len(e["top"]) for e in result.entries if "top" in e), default=top_k)
    if json_:
        typer.echo(json.dumps(result.entries, indent=2))
    elif result.succeeded:
        Console().print(render_predictions(result, shown))
    if csv_ is not None:
        predictions_csv(result, csv_, shown)
    _report_predict(result)
    raise typer.Exit(result.exit_code)


def _report_predict(result) -> None:
    from rich.markup import escape

    err = _stderr()
    for entry in result.entries:
        if "error" in entry:
            err.print(f"[bold red]error:[/] {escape(entry['file'])}: {escape(entry['error'])}", highlight=False,
                      soft_wrap=True)
    rate = result.succeeded / result.seconds if result.seconds > 0 else 0.0
    err.print(f"{result.succeeded} predicted, {result.failed} failed; {result.seconds:.2f} s in the model "
              f"({rate:,.0f} inputs/s, first batch's tracing included)", highlight=False)


ExportFormat = Enum("ExportFormat", {name: name for name in ("savedmodel", "tflite", "onnx", "keras")}, type=str)
Quantize = Enum("Quantize", {name: name for name in ("none", "float16", "dynamic", "int8")}, type=str)


@app.command()
@_user_errors
def export(run_dir: Annotated[Path, typer.Argument(help="A run folder, or a .keras file (with --config).")],
           format_: Annotated[ExportFormat, typer.Option("--format", help="What to write.")],
           quantize: Annotated[Quantize, typer.Option(help="TFLite only: float16, dynamic-range or int8 "
                                                           "(calibrated on the run's training samples).")]
           = Quantize.none,
           out: Annotated[Optional[Path], typer.Option(
               help="Output file (a folder for savedmodel); default RUN_DIR/export/<format>[-<quantize>]/.")] = None,
           with_preprocessing: Annotated[bool, typer.Option(
               "--with-preprocessing", help="Take raw uint8 images of the training size; scaling is in the graph.")]
           = False,
           checkpoint: Annotated[str, typer.Option(help="best or last.")] = "best",
           config: Annotated[Optional[Path], typer.Option(
               "--config", help="The config of a .keras file (default: config.yaml beside it).")] = None,
           samples: Annotated[int, typer.Option(min=1, help="Test samples the export is verified on.")] = 256,
           json_: Annotated[bool, typer.Option("--json", help="Print export.json instead of a table.")] = False,
           data_dir: DataDirOption = None):
    """Export a run's checkpoint (float32 graph) and verify it in its own runtime against the Keras model.
    Exit code 1 (file removed) when top-1 agreement is below 100% (float32) or 99% (quantised)."""
    from rich.console import Console

    from cnnzoo.data import resolve_data_dir
    from cnnzoo.errors import RunError
    from cnnzoo.export import ExportRequest, export_run, render_export
    from cnnzoo.predict import model_source

    if checkpoint not in ("best", "last"):
        raise RunError("--checkpoint must be best or last.")
    request = ExportRequest(format_.value, quantize.value, out, with_preprocessing, samples)
    report = export_run(model_source(run_dir, checkpoint, config), request, data_dir=resolve_data_dir(data_dir))
    if json_:
        typer.echo(json.dumps(report, indent=2))
    else:
        Console().print(render_export(report))


@app.command()
@_user_errors
def plot(run_dirs: Annotated[list[Path], typer.Argument(help="One or more run folders.")],
         metric: Annotated[Optional[list[str]], typer.Option(help="Metric(s) to plot (default accuracy, loss).")] = None,
         out: Annotated[Optional[Path], typer.Option(help="Output PNG (several runs: required for one metric, "
                                                         "else used as a prefix).")] = None):
    """Accuracy and loss curves of one run, or several runs overlaid."""
    from cnnzoo.plots import plot_run, plot_runs
    from cnnzoo.runs import RunFolder

    runs = [RunFolder.open(path) for path in run_dirs]
    metrics = metric or ["accuracy", "loss"]
    if len(runs) == 1 and out is None:
        written = plot_run(runs[0], metrics=tuple(metrics))
    else:
        base = out or Path("comparison.png")
        written = [plot_runs(runs, m, base if len(metrics) == 1 else base.with_name(f"{base.stem}-{m}.png"))
                   for m in metrics]
    for path in written:
        typer.echo(str(path))


@app.command()
@_user_errors
def bench(config: ConfigArg, set_: SetOption = None,
          batch_size: Annotated[Optional[list[int]], typer.Option(
              "--batch-size", min=1, help="Batch size to time; repeat to sweep (default: train.batch_size).")] = None,
          steps: Annotated[int, typer.Option("--steps", min=1, help="Timed steps per number (median).")] = 20,
          warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed steps first (tracing, XLA).")] = 3,
          jit: Annotated[Optional[bool], typer.Option(
              "--jit/--no-jit", help="Compile with XLA or not (default: train.jit_compile).")] = None,
          precision: Annotated[Optional[Precision], typer.Option(
              "--precision", help="Dtype policy (default: train.precision); auto = mixed_bfloat16 on a CPU "
                                  "with bfloat16 in hardware, else float32.")] = None,
          mixed_precision: Annotated[bool, typer.Option(
              "--mixed-precision", help="Shorthand for the device's mixed policy: --precision mixed_bfloat16 "
                                        "on a CPU, mixed_float16 on a GPU.")] = False,
          per_layer: Annotated[bool, typer.Option(
              "--per-layer", help="Also time the forward pass of each top-level entry (approximate).")] = False,
          json_: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False):
    """Time training and inference steps on synthetic data (like `caffe time`); FLOP/s against this machine's
    measured float32 matmul peak."""
    from cnnzoo.bench import bench_config, bench_report, render_bench
    from cnnzoo.config import load_config

    if mixed_precision and precision:
        raise typer.BadParameter("give --precision or --mixed-precision, not both.", param_hint="--mixed-precision")
    spec = load_config(config, set_ or [])
    policy = mixed_policy() if mixed_precision else precision and precision.value
    rows = bench_config(spec, batch_size, steps, warmup, jit, precision=policy, per_layer=per_layer)
    report = bench_report(spec, rows, steps=steps, warmup=warmup)
    if json_:
        typer.echo(json.dumps(report, indent=2))
    else:
        from rich.console import Console

        Console().print(render_bench(report))


def main() -> None:  # pragma: no cover - used by `python -m cnnzoo`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
