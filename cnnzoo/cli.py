"""The `cnnzoo` command line: thin typed commands; user errors become one paragraph and exit code 2."""

from __future__ import annotations

import functools
import json
import os
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
ConfigArg = Annotated[Path, typer.Argument(
    help="A YAML config, e.g. configs/lenet.yaml, or the name of a shipped one (lenet; see `cnnzoo configs`).")]
Precision = Enum("Precision", {name: name for name in PRECISIONS}, type=str)
RunDirArg = Annotated[Path, typer.Argument(help="A run folder, e.g. runs/lenet-20260101-120000.")]
ForceOption = Annotated[bool, typer.Option(
    "--force", help="Go on even when the memory estimate exceeds the memory available.")]
TtaOption = Annotated[str, typer.Option(
    "--tta", help="Test-time augmentation: none, or flip (average with the mirrored image).")]


@app.callback()
def _root() -> None:
    """Train classic convolutional networks from declarative YAML configs."""


def _user_errors(command, needs_tensorflow: bool = True):
    """Turn CnnzooError into a clean message and exit code 2: never a traceback for a user mistake."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from cnnzoo.errors import CnnzooError
        from cnnzoo.memory_guard import out_of_memory

        try:
            from cnnzoo.tensorflow_import import import_tensorflow

            with out_of_memory(f"running `cnnzoo {command.__name__.rstrip('_')}`"):  # where no phase said more
                if needs_tensorflow:
                    import_tensorflow()
                return command(*args, **kwargs)
        except CnnzooError as exc:
            from cnnzoo.terminal import plain, printable  # user text: no markup, no control characters

            try:
                _stderr().print(f"[bold red]error:[/] {plain(exc)}", highlight=False, markup=True, soft_wrap=True)
            except MemoryError:  # too little memory left even for rich: plain text still fits
                sys.stderr.write(f"error: {printable(exc)}\n")
            if getattr(exc, "exit_now", False):  # skip interpreter teardown (see distribute.WorkerLost)
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(exc.exit_code)
            raise typer.Exit(exc.exit_code) from None
    return wrapper


def _config_path(arg: Path) -> Path:
    """``arg`` when it exists, else the shipped config of that name (`cnnzoo train lenet`); says which."""
    from cnnzoo.shipped import resolve_config

    choice = resolve_config(arg)
    if choice.shipped:
        _stderr().print(f"using the shipped config {choice.path}", highlight=False, soft_wrap=True)
    return choice.path


def _stderr():
    from cnnzoo.terminal import console

    return console(stderr=True)


@app.command()
@_user_errors
def summary(config: ConfigArg, set_: SetOption = None, data_dir: DataDirOption = None,
            json_: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
            expand: Annotated[bool, typer.Option("--expand", help="Also list the layers inside blocks.")] = False,
            diagram: Annotated[Optional[Path], typer.Option(
                "--diagram", help="Also draw the network to FILE.png, FILE.svg or FILE.mmd (Mermaid); "
                                  "--expand opens blocks and branch groups.")] = None):
    """Layers, output shapes, parameters, FLOPs and the training-memory estimate of a config's model.

    No training, and no weight is allocated: any size of network is summarised in TensorFlow's baseline memory."""
    from cnnzoo.builder import build_model
    from cnnzoo.config import load_config
    from cnnzoo.data import resolve_data_dir
    from cnnzoo.summary import render_summary, summarize

    spec = load_config(_config_path(config), set_ or [])
    result = summarize(spec, build_model(spec, allocate=False), data_dir=resolve_data_dir(data_dir))
    if diagram is not None:
        from cnnzoo.diagram import write_diagram

        _stderr().print(f"wrote {write_diagram(spec, result, diagram, expand=expand)}", highlight=False)
    if json_:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        from cnnzoo.terminal import console

        console().print(render_summary(result, expand=expand))


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
              "--deterministic", help="Enable TensorFlow's deterministic ops (slower, reproducible).")] = False,
          force: ForceOption = False,
          tensorboard: Annotated[bool, typer.Option(
              "--tensorboard", help="Log to RUN/tensorboard/ (same as train.tensorboard: true).")] = False,
          distribute: Annotated[Optional[str], typer.Option(
              "--distribute", help="none, mirrored or multi_worker: replaces train.distribute (README: Scaling "
                                   "out).")] = None,
          cluster: Annotated[Optional[Path], typer.Option(
              "--cluster", help="multi_worker: a YAML file `workers: \\[host:port, ...]` (else TF_CONFIG).")]
          = None,  # \\[: a literal bracket, not rich markup
          worker_index: Annotated[Optional[int], typer.Option(
              "--worker-index", help="multi_worker with --cluster: this process's place in `workers` (0: chief)."
          )] = None,
          folds: Annotated[Optional[int], typer.Option(
              "--folds", min=2, max=100, help="Cross-validate: K runs on stratified folds (same as train.folds: K).")]
          = None):
    """Build, train and checkpoint a config's model; write history, plots and metrics to a run folder."""
    from cnnzoo import launch
    from cnnzoo.config.options import STRATEGIES
    from cnnzoo.errors import RunError
    from cnnzoo.terminal import console as make_console

    if (config is None) == (resume is None):
        raise RunError("give either a CONFIG to start a run or --resume RUN_DIR to continue one.")
    if distribute is not None and distribute not in STRATEGIES:
        raise RunError(f"--distribute {distribute!r} is not a strategy; use one of {', '.join(STRATEGIES)}.")
    if resume is not None and (set_ or seed is not None or tensorboard or folds is not None):
        raise RunError("--set, --seed, --tensorboard and --folds cannot change a run being resumed; only "
                       "--epochs and --distribute can.")
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    console = make_console()
    placement = launch.Placement(distribute, cluster, worker_index)
    context = launch.LaunchContext(data_dir, console, force, placement)
    if resume is not None:
        result = launch.resume(resume, epochs, context)
    else:
        overrides = launch.new_run_overrides(set_ or [], epochs=epochs, seed=seed, folds=folds,
                                             tensorboard=tensorboard, placement=placement)
        result = launch.start(_config_path(config), overrides, runs_dir, context)
    if result is not None:  # None: a worker that is not the chief, which said so
        _render_train(result, console)


def _render_train(result, console) -> None:
    result.render(console)
    if result.interrupted:
        raise typer.Exit(130)


@app.command("eval")
@_user_errors
def eval_(run_dir: RunDirArg, data_dir: DataDirOption = None,
          checkpoint: Annotated[str, typer.Option(help="best or last.")] = "best",
          split: Annotated[str, typer.Option(help="test or val.")] = "test",
          json_: Annotated[bool, typer.Option("--json", help="Print eval.json instead of tables.")] = False,
          tta: TtaOption = "none",
          force: ForceOption = False):
    """Loss, accuracy, per-class precision/recall/F1 and confusion matrix of a run's checkpoint."""
    from cnnzoo.data import resolve_data_dir
    from cnnzoo.errors import RunError
    from cnnzoo.evaluate import evaluate_run, render_eval
    from cnnzoo.runs import RunFolder
    from cnnzoo.terminal import console as make_console, plain
    from cnnzoo.tta import check_tta_name

    if checkpoint not in ("best", "last"):
        raise RunError(f"--checkpoint must be best or last (got {checkpoint!r}).")
    if split not in ("test", "val"):
        raise RunError(f"--split must be test or val (got {split!r}).")
    check_tta_name(tta)
    run = RunFolder.open(run_dir)
    result = evaluate_run(run, checkpoint=checkpoint, split=split, data_dir=resolve_data_dir(data_dir), force=force,
                          tta=tta)
    if json_:
        typer.echo(json.dumps(result, indent=2))
        return
    console = make_console()
    console.print(render_eval(result))
    plots = result.get("plots", [] if result.get("multi_label") else None)  # multi-label: no confusion matrix
    written = ([run.path / name for name in plots] if plots is not None
               else [run.confusion_csv, run.confusion_png, run.mistakes_png])
    console.print(plain(f"wrote {', '.join(map(str, [run.eval_json, *written]))}"))


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
            data_dir: DataDirOption = None, tta: TtaOption = "none"):
    """Classify new files with a run's checkpoint, prepared exactly as its training data was.

    Exit code 0: all inputs predicted; 1: some failed; 2: none could be read."""
    from rich.console import Console

    from cnnzoo.data import resolve_data_dir
    from cnnzoo.errors import RunError
    from cnnzoo.predict import model_source, predict_inputs, predictions_csv, render_predictions, report_outcome
    from cnnzoo.tta import check_tta_name

    if checkpoint not in ("best", "last"):
        raise RunError("--checkpoint must be best or last.")
    check_tta_name(tta)
    source = model_source(run_dir, checkpoint, config)
    result = predict_inputs(source, inputs, top_k=top_k, batch_size=batch_size,
                            data_dir=resolve_data_dir(data_dir), tta=tta)
    shown = max((len(e["top"]) for e in result.entries if "top" in e), default=top_k)
    if json_:
        typer.echo(json.dumps(result.entries, indent=2))
    elif result.succeeded:
        Console().print(render_predictions(result, shown))
    if csv_ is not None:
        predictions_csv(result, csv_, shown)
    report_outcome(result, _stderr())
    raise typer.Exit(result.exit_code)


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
         metric: Annotated[Optional[list[str]], typer.Option(
             help="Metric(s) to plot, any history column (default: those of accuracy, loss, mae, r2 recorded).")]
         = None,
         out: Annotated[Optional[Path], typer.Option(
             help="Output .png, .svg or .pdf instead of the run folder (several metrics: STEM-METRIC.EXT beside "
                  "it); several runs default to comparison.png in the current folder.")] = None):
    """Accuracy and loss curves of one run, or several runs overlaid."""
    from cnnzoo.plots import DEFAULT_METRICS, plot_overlaid, plot_run
    from cnnzoo.runs import RunFolder

    runs = [RunFolder.open(path) for path in run_dirs]
    if len(runs) == 1 and out is None:
        written = plot_run(runs[0], metrics=tuple(metric or DEFAULT_METRICS))
    else:
        written = plot_overlaid(runs, metric, out or Path("comparison.png"))
    _echo_paths(written)


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
          json_: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
          force: ForceOption = False):
    """Time training and inference steps on synthetic data (like `caffe time`), against the matmul peak.

    FLOP/s are compared with this machine's measured float32 matmul peak."""
    from cnnzoo.bench import bench_config, bench_report, render_bench
    from cnnzoo.config import load_config

    if mixed_precision and precision:
        raise typer.BadParameter("give --precision or --mixed-precision, not both.", param_hint="--mixed-precision")
    spec = load_config(_config_path(config), set_ or [])
    policy = mixed_policy() if mixed_precision else precision and precision.value
    rows = bench_config(spec, batch_size, steps, warmup, jit, precision=policy, per_layer=per_layer, force=force)
    report = bench_report(spec, rows, steps=steps, warmup=warmup)
    if json_:
        typer.echo(json.dumps(report, indent=2))
    else:
        from cnnzoo.terminal import console

        console().print(render_bench(report))


def _echo_paths(paths) -> None:
    from cnnzoo.terminal import printable

    for path in paths:
        typer.echo(printable(path))


def _without_tensorflow(command):
    """_user_errors for commands that only read files (runs, compare, configs): they start in well under a second."""
    return _user_errors(command, needs_tensorflow=False)


from cnnzoo import cli_pictures  # noqa: E402,F401  (registers its commands, listed after predict..bench)
from cnnzoo import cli_configs, cli_tracking  # noqa: E402,F401  (register theirs)


def main() -> None:  # pragma: no cover - used by `python -m cnnzoo`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
