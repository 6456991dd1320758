"""`train.distribute`: a strategy spec becomes a tf.distribute strategy, and a cluster file becomes TF_CONFIG.

    none          one device, no strategy: `model.fit` exactly as before
    mirrored      every local GPU (or `devices:`), one process: `model.fit` under MirroredStrategy
    multi_worker  one process per host, the cluster from TF_CONFIG or `--cluster FILE.yaml --worker-index I`:
                  MultiWorkerMirroredStrategy and cnnzoo's own train/eval step (distributed_loop.py), because
                  Keras 3.15 `fit` fails there (keras-team/keras#20585)

Worker 0 (or the task of type `chief`) is the chief: it alone writes the run folder; every other worker
trains in a temporary folder it deletes when it ends (the Keras multi-worker checkpoint rule).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

from cnnzoo.atomic import atomic_write_json
from cnnzoo.config.options import DistributeSpec, base_learning_rate
from cnnzoo.config.spec import ModelConfig
from cnnzoo.errors import CnnzooError, ConfigError, RunError, quote
from cnnzoo.runs.folder import RunFolder
from cnnzoo.safe_read import read_run_json
from cnnzoo.terminal import console as make_console

ADDRESS = re.compile(r"[A-Za-z0-9_.\-]{1,253}:[0-9]{1,5}")
MAX_CLUSTER_BYTES = 64 * 1024


class WorkerLost(CnnzooError):
    """Another worker of a multi_worker run died or stopped answering."""

    exit_code = 3
    # after a lost peer, TensorFlow's collective runtime and Keras' thread pools can fail (or hang) during
    # interpreter teardown; the run folder is already consistent, so the CLI exits at once
    exit_now = True


@dataclass
class Distribution:
    """The strategy a run trains under, and this process's place in it."""

    kind: str
    strategy: Any = None  # a tf.distribute.Strategy; None for `none`
    replicas: int = 1
    workers: int = 1
    worker_index: int = 0
    is_chief: bool = True
    scale_learning_rate: str = "none"

    @property
    def custom_loop(self) -> bool:
        return self.kind == "multi_worker"

    def scope(self):
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def steps_per_epoch(self, samples: int, batch_size: int) -> int:
        """multi_worker drops each epoch's last partial batch (see make_pipeline's drop_remainder)."""
        if self.custom_loop:
            if samples < batch_size:
                raise RunError(f"the training split has {samples} samples, fewer than one global batch of "
                               f"{batch_size}: multi_worker trains on whole batches only. Lower train.batch_size.")
            return samples // batch_size
        return math.ceil(samples / batch_size)

    def record(self, batch_size: int) -> dict:
        """What metrics.json keeps under `distribute`."""
        return {"strategy": self.kind, "replicas": self.replicas, "workers": self.workers,
                "global_batch": batch_size, "per_replica_batch": batch_size // self.replicas}

    def describe(self, batch_size: int) -> str:
        role = "" if self.workers == 1 else (f"; worker {self.worker_index} of {self.workers}, "
                                            + ("the chief: writes the run folder" if self.is_chief else
                                               "not the chief: writes only a temporary folder"))
        return (f"strategy {self.kind}: {self.replicas} replica(s), per-replica batch "
                f"{batch_size // self.replicas}, global batch {batch_size}{role}")

    def scaled(self, config: ModelConfig) -> ModelConfig:
        """The config with its learning rate times the replicas under `scale_learning_rate: linear`."""
        if self.scale_learning_rate != "linear" or self.replicas == 1:
            return config
        train = config.train
        base = base_learning_rate(train)
        return dataclasses.replace(config, train=dataclasses.replace(train, learning_rate=base * self.replicas))

    def console(self, console):
        """The chief prints progress bars; the other workers print only their one line per epoch."""
        if self.is_chief:
            return console
        import io

        return make_console(file=io.StringIO())

    @contextlib.contextmanager
    def runs_dir(self, runs_dir: Path) -> Iterator[Path]:
        """Where this process creates its run folder: `runs_dir` on the chief, a temporary one elsewhere."""
        if self.is_chief:
            yield runs_dir
            return
        with tempfile.TemporaryDirectory(prefix=f"cnnzoo-worker{self.worker_index}-") as scratch:
            yield Path(scratch)

    @contextlib.contextmanager
    def resume_dir(self, run_dir: Path) -> Iterator[Path]:
        """The folder to resume: the chief's itself, a temporary copy of it on the other workers (they
        load the same last.keras, so every replica starts from the same weights, and write nothing back)."""
        if self.is_chief or not Path(run_dir).is_dir():
            yield run_dir
            return
        with tempfile.TemporaryDirectory(prefix=f"cnnzoo-worker{self.worker_index}-") as scratch:
            copy = Path(scratch) / Path(run_dir).name
            shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("*.lock", ".lock*"))
            yield copy


def make_distribution(config: ModelConfig, *, cluster: Path | None = None,
                      worker_index: int | None = None) -> Distribution:
    """The strategy of `config.train.distribute`; call before TensorFlow runs any op (multi_worker
    configures the collective runtime, which must happen first)."""
    spec = config.train.distribute
    if spec.strategy != "multi_worker" and (cluster is not None or worker_index is not None):
        raise RunError(f"--cluster and --worker-index need the multi_worker strategy, but the run uses "
                       f"`{spec.strategy}`. Add --distribute multi_worker.")
    if spec.strategy == "none":
        return Distribution("none")
    if spec.strategy == "mirrored":
        dist = _mirrored(config, spec)
    else:
        _check_loop_support(config)
        dist = _multi_worker(spec, cluster, worker_index)
    _check_batch(config, dist)
    return dist


def _mirrored(config: ModelConfig, spec: DistributeSpec) -> Distribution:
    import tensorflow as tf

    devices = list(spec.devices) or [d.name for d in tf.config.list_logical_devices("GPU")] or None
    present = [d.name.removeprefix("/device:") for d in tf.config.list_logical_devices()]
    for index, name in enumerate(spec.devices):
        if name not in present:
            raise ConfigError(f"device {quote(name)} does not exist on this machine (it has: {', '.join(present)}).",
                              file=config.file, path=f"train.distribute.devices[{index}]",
                              hint="Leave `devices` out to use every local GPU.")
    strategy = tf.distribute.MirroredStrategy(devices=devices)
    return Distribution("mirrored", strategy, replicas=strategy.num_replicas_in_sync,
                        scale_learning_rate=spec.scale_learning_rate)


def _multi_worker(spec: DistributeSpec, cluster: Path | None, worker_index: int | None) -> Distribution:
    import tensorflow as tf

    if cluster is not None:
        workers = read_cluster(cluster)
        if worker_index is None or not 0 <= worker_index < len(workers):
            raise RunError(f"--worker-index {worker_index if worker_index is not None else '(missing)'}: "
                           f"{cluster} lists {len(workers)} workers, so give --worker-index 0 to "
                           f"{len(workers) - 1} (0 is the chief).")
        os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": workers},
                                              "task": {"type": "worker", "index": worker_index}})
    elif worker_index is not None:
        raise RunError("--worker-index needs --cluster FILE.yaml (or leave both out and set TF_CONFIG).")
    task_type, index, total = _tf_config_task()
    warn_server_exposure(_tf_config()["cluster"][task_type][index])
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=spec.timeout_seconds)
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    chief = task_type == "chief" or (task_type == "worker" and index == 0 and not _has_chief_job())
    return Distribution("multi_worker", strategy, replicas=strategy.num_replicas_in_sync, workers=total,
                        worker_index=index, is_chief=chief, scale_learning_rate=spec.scale_learning_rate)


def warn_server_exposure(address: str) -> None:
    """TensorFlow's gRPC server binds `0.0.0.0:port` whatever host the cluster names (grpc_server_lib.cc
    hard-codes it), without authentication: say so before it starts, since cnnzoo cannot narrow it."""
    port = address.rsplit(":", 1)[1]
    make_console(stderr=True).print(
        f"[yellow]warning:[/] this worker's TensorFlow server listens on port {port} of every network interface "
        f"(not only {address.rsplit(':', 1)[0]}) and does not authenticate: anyone who can reach the "
        f"port can run TensorFlow operations as this user. Train multi_worker only on a private network, or "
        f"firewall port {port} to the cluster's hosts (docs/scaling.md, Safety).", highlight=False)


def is_address(address: Any) -> bool:
    """host:port with a port from 1 to 65535."""
    return isinstance(address, str) and ADDRESS.fullmatch(address) is not None and 0 < int(address.rsplit(":")[1]) < 65536


def read_cluster(path: Path) -> list[str]:
    """`workers: [host:port, ...]` from a cluster file, every address checked."""
    try:
        text = Path(path).read_text(encoding="utf-8") if Path(path).stat().st_size <= MAX_CLUSTER_BYTES else None
        data = yaml.safe_load(text) if text is not None else None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunError(f"{path}: cannot read the cluster file ({exc.strerror or exc}).") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"not valid YAML ({getattr(exc, 'problem', None) or 'syntax error'}).", file=where,
                          hint="A cluster file is `workers: [host:port, host:port]`.") from None
    workers = data.get("workers") if isinstance(data, dict) else None
    if not isinstance(workers, list) or not workers or set(data) != {"workers"}:
        raise ConfigError(f"a cluster file holds exactly one key, `workers:`, a list of host:port addresses; "
                          f"received {quote(data)}.", file=str(path), path="workers",
                          hint="e.g. `workers: [10.0.0.1:2222, 10.0.0.2:2222]`; the first is the chief.")
    for index, address in enumerate(workers):
        if not is_address(address):
            raise ConfigError(f"worker address {quote(address)} is not host:port (port 1 to 65535).", file=str(path),
                              path=f"workers[{index}]", hint="e.g. `10.0.0.1:2222` or `node3.cluster:2222`.")
    if len(set(workers)) != len(workers):
        raise ConfigError("the same host:port is listed twice.", file=str(path), path="workers",
                          hint="Give each worker its own port.")
    return workers


def _tf_config() -> dict:
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise RunError("the multi_worker strategy needs a cluster: pass --cluster FILE.yaml --worker-index I, "
                       "or set TF_CONFIG (see docs/scaling.md, Scaling out).")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunError(f"TF_CONFIG is not valid JSON ({exc.msg} at character {exc.pos}).") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict) or not isinstance(
            config.get("task"), dict):
        raise RunError("TF_CONFIG must be a JSON object with `cluster` and `task`, e.g. "
                       '{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", "index": 0}}.')
    return config


def _tf_config_task() -> tuple[str, int, int]:
    """(task type, index, number of worker processes) of TF_CONFIG, checked."""
    config = _tf_config()
    cluster, task = config["cluster"], config["task"]
    task_type, index = task.get("type"), task.get("index")
    jobs = {job: addresses for job, addresses in cluster.items() if job in ("chief", "worker")}
    for job, addresses in jobs.items():  # TensorFlow's own parser would fail on these with a traceback
        bad = next((a for a in addresses if not is_address(a)), None) if isinstance(addresses, list) else addresses
        if not isinstance(addresses, list) or bad is not None:
            raise RunError(f"TF_CONFIG cluster job `{job}` holds {quote(bad)}, not a list of host:port addresses "
                           f"(port 1 to 65535), e.g. [\"10.0.0.1:2222\", \"10.0.0.2:2222\"].")
    if task_type not in jobs or not isinstance(jobs[task_type], list):
        raise RunError(f"TF_CONFIG task type {quote(task_type)} is not a job of its cluster "
                       f"({', '.join(map(str, cluster)) or 'none'}); multi_worker uses `worker` (and `chief`).")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(jobs[task_type]):
        raise RunError(f"TF_CONFIG task index {quote(index)} is out of range: the `{task_type}` job has "
                       f"{len(jobs[task_type])} task(s).")
    return task_type, index, sum(len(a) for a in jobs.values() if isinstance(a, list))


def _has_chief_job() -> bool:
    return "chief" in _tf_config()["cluster"]


def _check_loop_support(config: ModelConfig) -> None:
    """What the multi_worker loop (distributed_loop.py) cannot do yet, refused before anything starts."""
    import keras
    from keras.src.metrics import ALL_OBJECTS_DICT  # classes by name: no metric object (and no TF op) is made

    if config.train.tensorboard is not None:
        raise ConfigError("the TensorBoard callback is not supported with the multi_worker strategy yet.",
                          file=config.file, path="train.tensorboard", hint="Leave it off, or use mirrored.")
    for index, name in enumerate(config.train.metrics):
        cls = ALL_OBJECTS_DICT.get(name)
        per_sample = isinstance(cls, type) and issubclass(cls, keras.metrics.MeanMetricWrapper)
        if name not in ("accuracy", "acc") and not per_sample:
            raise ConfigError(f"metric `{name}` keeps state across batches, which the multi_worker loop does not "
                              "aggregate.", file=config.file, path=f"train.metrics[{index}]",
                              hint="Use a per-sample metric (accuracy, mae, top_k_categorical_accuracy, ...) or "
                                   "the mirrored strategy.")


def _check_batch(config: ModelConfig, dist: Distribution) -> None:
    if config.train.batch_size % dist.replicas:
        raise ConfigError(f"the global batch {config.train.batch_size} does not split evenly over {dist.replicas} "
                          "replicas.", file=config.file, path="train.batch_size",
                          hint=f"Use a multiple of {dist.replicas}, e.g. "
                               f"{max(1, config.train.batch_size // dist.replicas) * dist.replicas}.")


def lost_worker_message(exc: Exception, dist: Distribution, timeout: int) -> str:
    """Which worker a collective failure names, in one sentence with what to do."""
    found = sorted({int(i) for i in re.findall(r"/job:(?:worker|chief)/(?:replica:\d+/)?task:(\d+)", str(exc))}
                   - {dist.worker_index})
    who = (f"worker {', '.join(map(str, found))}" if found else
           "another worker (" + ", ".join(str(i) for i in range(dist.workers) if i != dist.worker_index) + ")")
    return (f"{who} of the multi_worker run stopped answering (it died, or was silent for more than "
            f"train.distribute.timeout_seconds = {timeout} s): {type(exc).__name__}. This worker stops too; every "
            "complete epoch is kept in the chief's run folder: restart every worker with `cnnzoo train --resume "
            "RUN_DIR` and the same --cluster.")


def announce_distribution(run_dir: Path, dist: Distribution, batch_size: int, console, *, first_epoch: int = 0,
                          optimizer_steps: int = 0) -> None:
    """Print the strategy, replicas and per-replica batch; keep them in distribute.json (a resume compares),
    with the epoch and optimizer step this training session starts from (`epochs_in_checkpoint`)."""
    console.print(dist.describe(batch_size), highlight=False)
    atomic_write_json(RunFolder(run_dir).distribute_json, {**dist.record(batch_size), "first_epoch": first_epoch,
                                               "optimizer_steps": optimizer_steps})


def report_replica_change(run_dir: Path, dist: Distribution, batch_size: int, console) -> None:
    """On resume: say what a different number of replicas changes (the split of each batch only)."""
    try:
        before = read_run_json(RunFolder(run_dir).distribute_json)
        replicas, strategy = int(before["replicas"]), str(before["strategy"])
    except (OSError, ValueError, KeyError, TypeError, RunError):
        replicas, strategy = 1, "none"  # runs from before train.distribute trained on one device
    if replicas == dist.replicas:
        return
    console.print(f"[yellow]The run trained with {strategy} on {replicas} replica(s), per-replica batch "
                  f"{batch_size // replicas}; it continues with {dist.kind} on {dist.replicas}, per-replica batch "
                  f"{batch_size // dist.replicas}.[/] The global batch, steps per epoch, optimizer state and the "
                  "learning rate saved in last.keras stay as they were; only how each batch is split changes"
                  + (" (multi_worker drops each epoch's last partial batch)." if dist.custom_loop != (
                      strategy == "multi_worker") else "."), highlight=False)


def epochs_in_checkpoint(run_dir: Path, optimizer_steps: int, samples: int, batch_size: int) -> int:
    """Complete epochs held by a checkpoint whose optimizer has taken `optimizer_steps` steps.

    Counted from where the last training session started (distribute.json), at that session's steps
    per epoch: multi_worker drops each epoch's partial batch, the other strategies keep it, so a run
    resumed under another strategy counts each session its own way."""
    try:
        record = read_run_json(RunFolder(run_dir).distribute_json)
    except (OSError, ValueError, RunError):
        record = {}
    record = record if isinstance(record, dict) else {}
    strategy, first, before = record.get("strategy"), record.get("first_epoch", 0), record.get("optimizer_steps", 0)
    if not (isinstance(first, int) and isinstance(before, int) and 0 <= before <= optimizer_steps):
        first, before = 0, 0
    session = Distribution("multi_worker" if strategy == "multi_worker" else "none")
    steps = session.steps_per_epoch(samples, batch_size)
    return first + (optimizer_steps - before) // steps
