"""What `cnnzoo train` starts: a new run, its cross-validation folds, or a resumed run, each under
the distribution strategy its config (or --distribute) names; the CLI only parses and renders."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnzoo.config import load_config
from cnnzoo.data import resolve_data_dir
from cnnzoo.errors import RunError
from cnnzoo.runs.folder import RunFolder
from cnnzoo.training.distribute import make_distribution
from cnnzoo.training.fit import resume_run, train_run
from cnnzoo.training.folds import folds_of, is_cv_run, resume_folds, train_folds

if TYPE_CHECKING:
    from cnnzoo.training.folds import CVResult
    from cnnzoo.training.result import TrainResult


@dataclass(frozen=True)
class Placement:
    """Where this process trains: its strategy override (--distribute) and multi-worker place."""
    distribute: str | None = None
    cluster: Path | None = None
    worker_index: int | None = None

    @property
    def overrides(self) -> list[str]:  # before --set, so --set can refine the strategy
        return [f"train.distribute={{strategy: {self.distribute}}}"] if self.distribute else []

    @property
    def place(self) -> dict[str, Any]:
        return dict(cluster=self.cluster, worker_index=self.worker_index)


@dataclass(frozen=True)
class LaunchContext:
    """What every launch shares: the --data-dir option, the console and the memory-check override."""
    data_option: Path | None
    console: Any
    force: bool = False
    placement: Placement = field(default_factory=Placement)

    def data_dir(self, run_dir: Path | None = None) -> Path | None:
        """The data folder (resuming `run_dir`: else the one its training recorded, said), checked only once
        the config and the run are known good, so that their errors come first."""
        if run_dir is None:
            return resolve_data_dir(self.data_option)
        from cnnzoo.terminal import plain

        return resolve_data_dir(self.data_option, RunFolder(run_dir).recorded_data_dir(),
                                say=lambda text: self.console.print(plain(text), highlight=False))


def new_run_overrides(set_: list[str], *, epochs: int | None, seed: int | None, folds: int | None,
                      tensorboard: bool, placement: Placement) -> list[str]:
    """The --set list a new run's config is loaded with: the flags first, so --set refines them, then
    --epochs/--seed/--folds, which win over --set."""
    overrides = ["train.tensorboard=true"] if tensorboard else []
    overrides += placement.overrides + list(set_)
    overrides += [f"train.epochs={epochs}"] if epochs is not None else []
    overrides += [f"train.seed={seed}"] if seed is not None else []
    return overrides + ([f"train.folds={folds}"] if folds is not None else [])


def start(config: Path, overrides: list[str], runs_dir: Path, context: LaunchContext) -> TrainResult | CVResult | None:
    """Train a new run (or K folds when the config asks); None on a non-chief worker, which says so."""
    spec = load_config(config, overrides, data_dir=context.data_dir)
    dist = make_distribution(spec, **context.placement.place)  # refuses a cluster outside multi_worker
    folds = folds_of(spec)
    if folds:  # config validation refuses folds under a distribute strategy
        return train_folds(spec, folds, data_dir=context.data_dir(), runs_dir=runs_dir,
                           console=context.console, force=context.force)
    with dist.runs_dir(runs_dir) as where:
        result = train_run(spec, data_dir=context.data_dir(), runs_dir=where, console=dist.console(context.console),
                           force=context.force, distribution=dist)
    return _chief_result(result, dist, context.console)


def resume(run_dir: Path, epochs: int | None, context: LaunchContext) -> TrainResult | CVResult | None:
    """Continue a run or a cross-validation run; None on a non-chief worker, which says so."""
    placement = context.placement
    if is_cv_run(run_dir):
        if placement.distribute not in (None, "none") or placement.cluster or placement.worker_index is not None:
            raise RunError(f"{run_dir} is a cross-validation run, whose folds train on one device; resume it "
                           "without --distribute, --cluster and --worker-index.")
        return resume_folds(run_dir, epochs=epochs, data_dir=context.data_dir(run_dir), console=context.console,
                            force=context.force)
    dist = make_distribution(load_config(RunFolder.open(run_dir).config, placement.overrides), **placement.place)
    with dist.resume_dir(run_dir) as folder:
        result = resume_run(folder, epochs=epochs, data_dir=context.data_dir(run_dir),
                            console=dist.console(context.console), force=context.force, distribution=dist,
                            overrides=placement.overrides)
    return _chief_result(result, dist, context.console)


def _chief_result(result: TrainResult, dist, console) -> TrainResult | None:
    if dist.is_chief:
        return result
    console.print(f"worker {dist.worker_index}: done, {result.epochs_completed} epoch(s); the chief holds the "
                  "run folder.", highlight=False)
    return None
