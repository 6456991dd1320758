"""The commands that take a trained run elsewhere: `cnnzoo predict`, `cnnzoo export`, `cnnzoo serve`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from cnnzoo.cli.common import (CheckpointOption, RunDataDirOption, TtaOption, check_choice, choices, run_data_dir,
                               stderr, user_errors)
from cnnzoo.deploy.formats import EXPORT_FORMATS, QUANTIZATIONS
from cnnzoo.runs.folder import CHECKPOINTS


@user_errors
def predict(run_dir: Annotated[Path, typer.Argument(help="A run folder, or a .keras file (with --config).")],
            inputs: Annotated[list[str], typer.Argument(
                help="Image files, folders (recursive) or glob patterns; for 1D runs .tsv/.csv (UCR layout) or .npy.")],
            checkpoint: CheckpointOption = "best",
            config: Annotated[Optional[Path], typer.Option(
                "--config", help="The config of a .keras file (default: config.yaml beside it).")] = None,
            top_k: Annotated[int, typer.Option("--top-k", min=1, help="Classes shown per input.")] = 3,
            batch_size: Annotated[Optional[int], typer.Option(
                "--batch-size", min=1, help="Inputs per batch (default: train.batch_size).")] = None,
            json_: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
            csv_: Annotated[Optional[Path], typer.Option("--csv", help="Also write the predictions as CSV.")] = None,
            data_dir: RunDataDirOption = None, tta: TtaOption = "none"):
    """Classify new files with a run's checkpoint, prepared exactly as its training data was.

    Exit code 0: all inputs predicted; 1: some failed; 2: none could be read."""
    from cnnzoo.terminal import console

    from cnnzoo.deploy.predict import CHUNK as PREDICT_CHUNK, PredictResult, model_source, predict_inputs, \
        predictions_csv, render_predictions, report_outcome
    from cnnzoo.evaluation.tta import check_tta_name

    check_choice("--checkpoint", checkpoint, CHECKPOINTS)
    check_tta_name(tta)
    source = model_source(run_dir, checkpoint, config)
    out = console()

    def as_it_goes(entries: list[dict], done: int, total: int) -> None:
        """Many inputs: each chunk's table as soon as it is predicted, not one table at the end."""
        if json_ or total <= PREDICT_CHUNK:
            return
        ok = sum("top" in e for e in entries)
        part = PredictResult(entries, ok, len(entries) - ok, 0.0)
        out.print(render_predictions(part, top_k, title=f"inputs {done - len(entries) + 1:,} to {done:,} of {total:,}"))

    result = predict_inputs(source, inputs, top_k=top_k, batch_size=batch_size,
                            data_dir=run_data_dir(data_dir, _run_folder(run_dir, config)), tta=tta,
                            on_chunk=as_it_goes)
    shown = max((len(e["top"]) for e in result.entries if "top" in e), default=top_k)
    if json_:
        typer.echo(json.dumps(result.entries, indent=2))
    elif result.succeeded and len(result.entries) <= PREDICT_CHUNK:
        out.print(render_predictions(result, shown))
    if csv_ is not None:
        predictions_csv(result, csv_, shown)
    report_outcome(result, stderr())
    raise typer.Exit(result.exit_code)


ExportFormat = choices("ExportFormat", EXPORT_FORMATS)


Quantize = choices("Quantize", QUANTIZATIONS)


@user_errors
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
           checkpoint: CheckpointOption = "best",
           config: Annotated[Optional[Path], typer.Option(
               "--config", help="The config of a .keras file (default: config.yaml beside it).")] = None,
           samples: Annotated[int, typer.Option(min=1, help="Test samples the export is verified on.")] = 256,
           overwrite: Annotated[bool, typer.Option(
               "--overwrite", help="Replace an existing --out file (or SavedModel folder).")] = False,
           json_: Annotated[bool, typer.Option("--json", help="Print export.json instead of a table.")] = False,
           data_dir: RunDataDirOption = None):
    """Export a run's checkpoint (float32 graph) and verify it in its own runtime against the Keras model.

    Exit code 1 (file removed) when top-1 agreement is below 100% (float32) or 99% (quantised)."""
    from cnnzoo.terminal import console

    from cnnzoo.deploy.export import ExportRequest, export_run, export_title, render_export
    from cnnzoo.deploy.predict import model_source

    check_choice("--checkpoint", checkpoint, CHECKPOINTS)
    request = ExportRequest(format_.value, quantize.value, out, with_preprocessing, samples, overwrite)
    source = model_source(run_dir, checkpoint, config)
    report = export_run(source, request, data_dir=run_data_dir(data_dir, _run_folder(run_dir, config)))
    if json_:
        typer.echo(json.dumps(report, indent=2))
    else:
        out = console()
        out.print(export_title(report), soft_wrap=True, markup=False, highlight=False)
        out.print(render_export(report))


def _run_folder(path: Path, config: Path | None) -> Path | None:
    """The run folder whose recorded data folder applies: RUN_DIR, or the folder of a .keras file read with the
    config.yaml beside it; None for a .keras file with its own --config."""
    return path if path.is_dir() else path.parent if config is None else None


@user_errors
def serve(run_dir: Annotated[Path, typer.Argument(help="A run folder, or a .keras file (with --config).")],
          host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 reaches other machines.")]
          = "127.0.0.1",
          port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0: a free one).")] = 8000,
          checkpoint: CheckpointOption = "best",
          config: Annotated[Optional[Path], typer.Option(
              "--config", help="The config of a .keras file (default: config.yaml beside it).")] = None,
          exported: Annotated[Optional[Path], typer.Option(
              "--export", help="Serve this file `cnnzoo export` wrote (tflite, onnx, savedmodel, keras) instead "
                               "of the checkpoint.")] = None,
          max_batch: Annotated[int, typer.Option(min=1, max=4096, help="Inputs per model call at most.")] = 32,
          max_wait_ms: Annotated[float, typer.Option(
              min=0, max=1000, help="How long a batch waits for requests being read (0: never).")] = 5.0,
          top_k: Annotated[int, typer.Option("--top-k", min=1, help="Classes per input (default of ?top_k=).")] = 3,
          tta: TtaOption = "none",
          max_body_mb: Annotated[float, typer.Option(min=0.001, help="Largest request body, in MiB.")] = 16.0,
          max_instances: Annotated[int, typer.Option(min=1, help="Inputs per request at most.")] = 64,
          max_connections: Annotated[int, typer.Option(min=1, help="Open connections at most (then 503).")] = 256,
          read_timeout: Annotated[float, typer.Option(
              min=0.1, help="Seconds a request's body may take to arrive (then 408).")] = 30.0,
          graceful_seconds: Annotated[int, typer.Option(
              min=0, help="On SIGTERM, how long requests in flight may take to finish.")] = 30,
          access_log: Annotated[bool, typer.Option("--access-log", help="Log every request.")] = False,
          data_dir: RunDataDirOption = None):
    """Serve a run's model over HTTP: POST /predict, GET /health, /metadata, /metrics; API page at /docs.

    Inputs are prepared exactly as `cnnzoo predict` prepares them; concurrent requests share model calls."""
    from cnnzoo.deploy.predict import model_source
    from cnnzoo.deploy.runtimes import need
    from cnnzoo.evaluation.tta import check_tta_name

    check_choice("--checkpoint", checkpoint, CHECKPOINTS)
    check_tta_name(tta)
    for module in ("fastapi", "uvicorn", "python_multipart", "prometheus_client"):
        need(module, "cnnzoo serve", extra="serve")
    from cnnzoo.deploy.serving.app import Limits
    from cnnzoo.deploy.serving.predictor import load_predictor
    from cnnzoo.deploy.serving.server import Listen, bind, serve as run_server

    source = model_source(run_dir, checkpoint, config)
    sock = bind(host, port)
    predictor = load_predictor(source, data_dir=run_data_dir(data_dir, _run_folder(run_dir, config)), tta=tta,
                               exported=exported)
    limits = Limits(max_batch, max_wait_ms, int(max_body_mb * 2**20), max_instances, top_k, read_timeout)
    err = stderr()
    run_server(predictor, limits, Listen(host, max_connections, graceful_seconds, access_log), sock,
               say=lambda text: err.print(text, highlight=False, markup=False, soft_wrap=True))
