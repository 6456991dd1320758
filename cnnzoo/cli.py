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
              "--cluster", help="multi_worker: a YAML file `workers: [host:port, ...]` (else TF_CONFIG).")] = None,
          worker_index: Annotated[Optional[int], typer.Option(
              "--worker-index", help="multi_worker with --cluster: this process's place in `workers` (0: chief)."
          )] = None,
          folds: Annotated[Optional[int], typer.Option(
              "--folds", min=2, max=100, help="Cross-validate: K runs on stratified folds (same as train.folds: K).")]
          = None):
    """Build, train and checkpoint a config's model; write history, plots and metrics to a run folder."""
    from cnnzoo.config import load_config
    from cnnzoo.data import resolve_data_dir
    from cnnzoo.errors import RunError
    from cnnzoo.terminal import console as make_console
    from cnnzoo.config.options import STRATEGIES
    from cnnzoo.distribute import make_distribution
    from cnnzoo.runs import RunFolder
    from cnnzoo.folds import folds_of, is_cv_run, resume_folds, train_folds
    from cnnzoo.train import resume_run, train_run

    if (config is None) == (resume is None):
        raise RunError("give either a CONFIG to start a run or --resume RUN_DIR to continue one.")
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    console = make_console()
    if distribute is not None and distribute not in STRATEGIES:
        raise RunError(f"--distribute {distribute!r} is not a strategy; use one of {', '.join(STRATEGIES)}.")
    place = dict(cluster=cluster, worker_index=worker_index)
    strategy = [f"train.distribute={{strategy: {distribute}}}"] if distribute else []  # --set can refine it
    if resume is not None:
        if set_ or seed is not None or tensorboard or folds is not None:
            raise RunError("--set, --seed, --tensorboard and --folds cannot change a run being resumed; only "
                           "--epochs and --distribute can.")
        if is_cv_run(resume):
            if distribute not in (None, "none") or cluster or worker_index is not None:
                raise RunError(f"{resume} is a cross-validation run, whose folds train on one device; resume it "
                               "without --distribute, --cluster and --worker-index.")
            result = resume_folds(resume, epochs=epochs, data_dir=resolve_data_dir(data_dir), console=console,
                                  force=force)
            return _render_train(result, console)
        dist = make_distribution(load_config(RunFolder.open(resume).config, strategy), **place)
        with dist.resume_dir(resume) as folder:
            result = resume_run(folder, epochs=epochs, data_dir=resolve_data_dir(data_dir),
                                console=dist.console(console), force=force, distribution=dist, overrides=strategy)
    else:
        overrides = ["train.tensorboard=true"] if tensorboard else []  # before --set, so --set refines it
        overrides += strategy + list(set_ or [])
        overrides += [f"train.epochs={epochs}"] if epochs is not None else []
        overrides += [f"train.seed={seed}"] if seed is not None else []
        overrides += [f"train.folds={folds}"] if folds is not None else []
        spec = load_config(_config_path(config), overrides)
        dist = make_distribution(spec, **place)  # refuses --cluster and --worker-index outside multi_worker
        if folds_of(spec):  # config validation refuses folds under a distribute strategy
            result = train_folds(spec, folds_of(spec), data_dir=resolve_data_dir(data_dir), runs_dir=runs_dir,
                                 console=console, force=force)
            return _render_train(result, console)
        with dist.runs_dir(runs_dir) as where:
            result = train_run(spec, data_dir=resolve_data_dir(data_dir), runs_dir=where,
                               console=dist.console(console), force=force, distribution=dist)
    if not dist.is_chief:
        console.print(f"worker {dist.worker_index}: done, {result.epochs_completed} epoch(s); the chief holds the "
                      "run folder.", highlight=False)
        return
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

    if checkpoint not in ("best", "last") or split not in ("test", "val"):
        raise RunError("--checkpoint must be best or last, and --split test or val.")
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
    written = [run.path / name for name in plots] if plots is not None else [run.confusion_csv, run.confusion_png]
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
    from cnnzoo.predict import model_source, predict_inputs, predictions_csv, render_predictions
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
    views = f", {result.tta} test-time augmentation" if result.tta != "none" else ""
    err.print(f"{result.succeeded} predicted, {result.failed} failed; {result.seconds:.2f} s in the model "
              f"({rate:,.0f} inputs/s, first batch's tracing included{views})", highlight=False)


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
             help="Metric(s) to plot, any history column (default: those of accuracy, loss, mae, r2 it has).")] = None,
         out: Annotated[Optional[Path], typer.Option(help="Output PNG (several runs: required for one metric, "
                                                         "else used as a prefix).")] = None):
    """Accuracy and loss curves of one run, or several runs overlaid."""
    from cnnzoo.plots import DEFAULT_METRICS, plot_run, plot_runs
    from cnnzoo.runs import RunFolder

    runs = [RunFolder.open(path) for path in run_dirs]
    metrics = metric or list(DEFAULT_METRICS if len(runs) == 1 else ("accuracy", "loss"))
    if len(runs) == 1 and out is None:
        written = plot_run(runs[0], metrics=tuple(metrics))
    else:
        base = out or Path("comparison.png")
        written = [plot_runs(runs, m, base if len(metrics) == 1 else base.with_name(f"{base.stem}-{m}.png"))
                   for m in metrics]
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


Checkpoint = Enum("Checkpoint", {name: name for name in ("best", "last")}, type=str)
Split = Enum("Split", {name: name for name in ("test", "val")}, type=str)
LayerOption = Annotated[Optional[str], typer.Option(
    "--layer", help="A layer name as `cnnzoo summary --expand` prints it (default: see the command).")]
OutOption = Annotated[Optional[Path], typer.Option("--out", help="Folder for the PNGs (default: RUN_DIR/pictures).")]


@app.command()
@_user_errors
def explain(run_dir: RunDirArg, inputs: Annotated[Optional[list[Path]], typer.Argument(
                help="Image files or folders; without them, --split samples of the run's own data.")] = None,
            split: Annotated[Split, typer.Option(help="The run's split to explain when no INPUT is given.")] = Split.test,
            limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many split samples.")] = 16,
            class_: Annotated[Optional[str], typer.Option(
                "--class", help="Map the evidence for this class (default: the predicted one).")] = None,
            layer: LayerOption = None, out: OutOption = None, data_dir: DataDirOption = None,
            checkpoint: Annotated[Checkpoint, typer.Option(help="best or last.")] = Checkpoint.best):
    """Grad-CAM: where the network looks, as a heatmap over each input; one PNG each and a contact sheet.

    The default layer is the last convolution with spatial extent (--layer chooses another)."""
    from cnnzoo import inspection
    from cnnzoo.data import resolve_data_dir

    loaded = inspection.load_run(run_dir, checkpoint.value)
    given = inspection.file_inputs(loaded, inputs) if inputs else inspection.split_inputs(
        loaded, split.value, limit, resolve_data_dir(data_dir))
    written = inspection.explain(loaded, given, layer=layer, class_name=class_, out_dir=out or loaded.run.path / "pictures")
    _echo_paths(written)


@app.command()
@_user_errors
def filters(run_dir: RunDirArg, layer: LayerOption = None, out: OutOption = None,
            checkpoint: Annotated[Checkpoint, typer.Option(help="best or last.")] = Checkpoint.best):
    """The kernels of a convolutional layer (default: the first) as an image grid."""
    from cnnzoo import inspection
    from cnnzoo.explain import conv_kernels
    from cnnzoo.pictures import draw_filters

    loaded = inspection.load_run(run_dir, checkpoint.value)
    conv, kernels = conv_kernels(loaded.model, layer, loaded.run.path)
    folder = out or loaded.run.path / "pictures"
    _echo_paths([draw_filters(conv.name, kernels, folder / f"filters-{conv.name}.png")])


@app.command()
@_user_errors
def activations(run_dir: RunDirArg, inputs: Annotated[Optional[list[Path]], typer.Argument(
                    help="One image file; without it, the first sample of --split.")] = None,
                layer: Annotated[Optional[list[str]], typer.Option(
                    "--layer", help="Layer(s) to show, repeatable (default: every convolution and pooling).")] = None,
                split: Annotated[Split, typer.Option(help="The run's split to take the input from.")] = Split.test,
                out: OutOption = None, data_dir: DataDirOption = None,
                checkpoint: Annotated[Checkpoint, typer.Option(help="best or last.")] = Checkpoint.best):
    """The feature maps of one input at the chosen layers, one grid per layer (one tile per channel)."""
    from cnnzoo import inspection
    from cnnzoo.data import resolve_data_dir
    from cnnzoo.explain import default_map_layers, feature_maps
    from cnnzoo.pictures import draw_feature_maps

    loaded = inspection.load_run(run_dir, checkpoint.value)
    given = inspection.file_inputs(loaded, inputs[:1]) if inputs else inspection.split_inputs(
        loaded, split.value, 1, resolve_data_dir(data_dir))
    names = layer or default_map_layers(loaded.model)
    folder = out or loaded.run.path / "pictures"
    _echo_paths([draw_feature_maps(chosen.name, maps, folder / f"activations-{chosen.name}.png")
                 for chosen, maps in feature_maps(loaded.model, names, given.x, loaded.run.path)])


def _echo_paths(paths) -> None:
    from cnnzoo.terminal import printable

    for path in paths:
        typer.echo(printable(path))


def _without_tensorflow(command):
    """_user_errors for commands that only read files (runs, compare, configs): they start in well under a second."""
    return _user_errors(command, needs_tensorflow=False)


from cnnzoo import cli_configs, cli_tracking  # noqa: E402,F401  (register their commands)


def main() -> None:  # pragma: no cover - used by `python -m cnnzoo`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
