"""`train.mlflow`: log a run to MLflow (the optional `cnnzoo[mlflow]` extra).

Params: the resolved config flattened to dotted paths. Metrics: every epoch's history row (step =
epoch number, as in history.csv) and the final test metrics. Artifacts: the run folder's files, except
the checkpoints (large; the run folder's path is logged as the tag ``cnnzoo.run_dir``). A resumed run
continues the same MLflow run: its id is kept in the run folder's ``mlflow.json``.
"""

from __future__ import annotations

import math
import os
from typing import Any

import keras

from cnnzoo.atomic import atomic_write_json
from cnnzoo.errors import ConfigError
from cnnzoo.runs.folder import RunFolder, read_json
from cnnzoo.runs.record import RunRecord
SKIPPED_ARTIFACTS = (".keras",)


def _mlflow(config) -> Any:
    try:
        import mlflow
    except ImportError:
        raise ConfigError("`train.mlflow` is set but MLflow is not installed.", file=config.file,
                          path="train.mlflow", hint="Install it with `pip install 'cnnzoo[mlflow]'`, or remove "
                                                    "`mlflow:` from the config.") from None
    return mlflow


class MLflowEpochs(keras.callbacks.Callback):
    """Starts (or resumes) the MLflow run when training starts and logs each complete epoch."""

    def __init__(self, config, run: RunFolder, stop):
        super().__init__()
        self.config, self.run, self.stop = config, run, stop
        self.mlflow = _mlflow(config)

    def on_train_begin(self, logs=None):
        start_run(self.mlflow, self.config, self.run)

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        if self.stop.requested or not math.isfinite(logs.get("loss", 0.0)):
            return  # as in history.csv: this epoch is trained again on resume
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self.mlflow.log_metrics({k: v for k, v in logs.items() if math.isfinite(v)}, step=epoch + 1)


def start_run(mlflow, config, run: RunFolder) -> None:
    from cnnzoo.runs.compare import flatten

    spec = config.train.mlflow
    if spec.tracking_uri:
        if spec.tracking_uri.startswith("file:") or "://" not in spec.tracking_uri:
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # the config asks for a file store
        mlflow.set_tracking_uri(spec.tracking_uri)
    record = run.mlflow_json
    if record.exists():
        mlflow.start_run(run_id=read_json(record)["run_id"])
        return
    mlflow.set_experiment(spec.experiment)
    active = mlflow.start_run(run_name=spec.run_name or run.name)
    atomic_write_json(record, {"run_id": active.info.run_id, "experiment_id": active.info.experiment_id,
                               "tracking_uri": mlflow.get_tracking_uri()})
    mlflow.set_tags({"cnnzoo.run_dir": str(run.path.resolve()), "cnnzoo.config": config.name})
    mlflow.log_params({_param_key(k): str(v)[:6000] for k, v in flatten(config.resolved).items()})


def _param_key(path: str) -> str:
    """``model.layers[5].Dense.units`` -> ``model.layers.5.Dense.units`` (MLflow refuses brackets)."""
    return path.replace("[", ".").replace("]", "")


def finish(config, run: RunFolder, record: RunRecord) -> None:
    """After metrics.json and the plots are written: test metrics, artifacts, and the run's end status."""
    mlflow = _mlflow(config)
    if mlflow.active_run() is None:
        return
    mlflow.log_metrics({f"test_{k}": float(v) for k, v in record.test.items()})
    if config.train.mlflow.log_artifacts:
        for path in sorted(run.path.iterdir()):
            if path.is_file() and not path.name.startswith(".") and path.suffix not in SKIPPED_ARTIFACTS:
                mlflow.log_artifact(str(path))
    mlflow.end_run(status="KILLED" if record.interrupted else "FINISHED")
