"""The commands that build and train a config's model: `cnnzoo summary`, `train`, `bench`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from cnnzoo.precision import PRECISIONS, mixed_policy

from cnnzoo.cli.common import (ConfigArg, DataDirOption, ForceOption, SetOption, choices, config_path, stderr,
                               user_errors)


@user_errors
def summary(config: ConfigArg, set_: SetOption = None, data_dir: DataDirOption = None,
            json_: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
            expand: Annotated[bool, typer.Option("--expand", help="Also list the layers inside blocks.")] = False,
            diagram: Annotated[Optional[Path], typer.Option(
                "--diagram", help="Also draw the network to FILE.png, FILE.svg or FILE.mmd (Mermaid); "
                                  "--expand opens blocks and branch groups.")] = None):
    """Layers, output shapes, parameters, FLOPs and the training-memory estimate of a config's model.

    No training, and no weight is allocated: any size of network is summarised in TensorFlow's baseline memory."""
    from cnnzoo.config import load_config
    from cnnzoo.data import resolve_data_dir
    from cnnzoo.model.builder import build_model
    from cnnzoo.model.summary import render_summary, summarize

    spec = load_config(config_path(config), set_ or [], data_dir=lambda: resolve_data_dir(data_dir))
    result = summarize(spec, build_model(spec, allocate=False), data_dir=resolve_data_dir(data_dir))
    if diagram is not None:
        from cnnzoo.model.diagram import write_diagram

        stderr().print(f"wrote {write_diagram(spec, result, diagram, expand=expand)}", highlight=False)
    if json_:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        from cnnzoo.terminal import console

        console().print(render_summary(result, expand=expand))


@user_errors
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
              "--distribute", help="none, mirrored or multi_worker: replaces train.distribute (docs/scaling.md)."
          )] = None,
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
    from cnnzoo.config.options import STRATEGIES
    from cnnzoo.errors import RunError
    from cnnzoo.terminal import console as make_console
    from cnnzoo.training import launch

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
        result = launch.start(config_path(config), overrides, runs_dir, context)
    if result is not None:  # None: a worker that is not the chief, which said so
        _render_train(result, console)


def _render_train(result, console) -> None:
    result.render(console)
    if result.interrupted:
        raise typer.Exit(130)


Precision = choices("Precision", PRECISIONS)


@user_errors
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
    from cnnzoo.config import load_config
    from cnnzoo.training.bench import bench_config, bench_report, render_bench

    if mixed_precision and precision:
        raise typer.BadParameter("give --precision or --mixed-precision, not both.", param_hint="--mixed-precision")
    spec = load_config(config_path(config), set_ or [])
    policy = mixed_policy() if mixed_precision else precision and precision.value
    rows = bench_config(spec, batch_size, steps, warmup, jit, precision=policy, per_layer=per_layer, force=force)
    report = bench_report(spec, rows, steps=steps, warmup=warmup)
    if json_:
        typer.echo(json.dumps(report, indent=2))
    else:
        from cnnzoo.terminal import console

        console().print(render_bench(report))
