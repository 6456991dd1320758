"""`train.tensorboard` and `train.mlflow`: experiment-tracking options, validated into typed specs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cnnzoo.config.sections import Section

TENSORBOARD_KEYS = ("histogram_freq", "write_graph", "write_images", "write_steps_per_second")
MLFLOW_KEYS = ("tracking_uri", "experiment", "run_name", "log_artifacts")


@dataclass(frozen=True)
class TensorBoardSpec:
    """Options of Keras' TensorBoard callback that cnnzoo exposes (logs go to runs/<run>/tensorboard/)."""

    histogram_freq: int = 1  # weight histograms every N epochs; 0: none
    write_graph: bool = True
    write_images: bool = False
    write_steps_per_second: bool = False


@dataclass(frozen=True)
class MLflowSpec:
    """Where MLflow logging goes; tracking_uri None means MLflow's own default (MLFLOW_TRACKING_URI or ./mlruns)."""

    tracking_uri: str | None = None
    experiment: str = "cnnzoo"
    run_name: str | None = None
    log_artifacts: bool = True


def parse_tensorboard(section: "Section") -> TensorBoardSpec | None:
    options = section.mapping("tensorboard", TENSORBOARD_KEYS)
    if options is None:
        return None
    _check_bools(section, "tensorboard", options, ("write_graph", "write_images", "write_steps_per_second"))
    freq = options.get("histogram_freq", 1)
    if isinstance(freq, bool) or not isinstance(freq, int) or freq < 0:
        raise section.doc.error(section.path + ("tensorboard", "histogram_freq"),
                                f"`histogram_freq` must be an integer >= 0 (0: no histograms), received {freq!r}.")
    return TensorBoardSpec(**options)


def parse_mlflow(section: "Section") -> MLflowSpec | None:
    options = section.mapping("mlflow", MLFLOW_KEYS)
    if options is None:
        return None
    _check_bools(section, "mlflow", options, ("log_artifacts",))
    for key in ("tracking_uri", "experiment", "run_name"):
        if key in options and not isinstance(options[key], str):
            raise section.doc.error(section.path + ("mlflow", key),
                                    f"`{key}` must be a string, received {options[key]!r}.",
                                    hint="e.g. `mlflow: {tracking_uri: file:./mlruns, experiment: lenet}`.")
    return MLflowSpec(**options)


def _check_bools(section: "Section", name: str, options: dict, keys: tuple[str, ...]) -> None:
    for key in keys:
        if key in options and not isinstance(options[key], bool):
            raise section.doc.error(section.path + (name, key),
                                    f"`{key}` must be true or false, received {options[key]!r}.")
