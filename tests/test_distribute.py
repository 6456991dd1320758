"""train.distribute: mirrored over two logical CPU devices, a two-process multi_worker cluster on loopback
(a worker killed mid-epoch, then the chief's folder resumed), and every bad strategy or cluster input.

Training runs in subprocesses: logical devices and the collective runtime are set once per process and
must not leak into the pytest process. The data is the generated stand-in for the shared datasets
(`generated_data_dir`, conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cnnzoo.cli import app
from cnnzoo.config import load_config
from cnnzoo.errors import ConfigError
from cnnzoo.training.labels import LabelPlan

REPO = Path(__file__).resolve().parent.parent
LENET = REPO / "configs" / "lenet.yaml"
CNN1D = REPO / "configs" / "cnn1d.yaml"
RUN_FILES = {"config.yaml", "summary.txt", "history.csv", "best.keras", "last.keras", "metrics.json",
             "distribute.json", "loss.png", "accuracy.png"}
# the same global batch over 1 or 2 replicas: only the order of float32 sums differs
LOSS_TOLERANCE = 2e-3
# a killed worker is seen at the next collective or by the coordination service's heartbeat: 20-35 s here,
# more on a loaded machine; below train.distribute.timeout_seconds (120 s) plus a margin
DETECTION_SECONDS = 150

TWO_CPUS = textwrap.dedent("""
    import sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from cnnzoo.cli import app
    common = sys.argv[1:]
    codes = [app(["train", *common, "--distribute", "mirrored", "--set", "train.distribute.devices=[CPU:0, CPU:1]"],
                 standalone_mode=False),
             app(["train", *common], standalone_mode=False),
             app(["train", *common, "--distribute", "mirrored", "--set", "train.batch_size=25"], standalone_mode=False)]
    print("CODES", codes)
""")


def _env(**extra) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "2",
           "COLUMNS": "200"}
    env.update(extra)
    return env


def _folders(runs: Path) -> list[Path]:
    return sorted(p for p in runs.iterdir() if p.is_dir())


def test_mirrored_two_logical_cpus_matches_one_device(generated_data_dir, tmp_path):
    runs = tmp_path / "runs"
    args = [str(LENET), "--data-dir", str(generated_data_dir), "--runs-dir", str(runs), "--epochs", "2",
            "--set", "data.limit=1000", "--set", "train.batch_size=100", "--set", "train.precision=float32"]
    done = subprocess.run([sys.executable, "-c", TWO_CPUS, *args], capture_output=True, text=True, timeout=600,
                          env=_env(), cwd=tmp_path)
    assert "CODES [None, None, 2]" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    assert "strategy mirrored: 2 replica(s), per-replica batch 50, global batch 100" in done.stdout
    assert "train.batch_size: the global batch 25 does not split evenly over 2 replicas" in done.stderr
    assert "Traceback" not in done.stderr
    mirrored, single = (json.loads((folder / "metrics.json").read_text()) for folder in _folders(runs))
    assert {p.name for p in _folders(runs)[0].iterdir()} >= RUN_FILES
    assert mirrored["distribute"] == {"strategy": "mirrored", "replicas": 2, "workers": 1, "global_batch": 100,
                                      "per_replica_batch": 50}
    assert single["distribute"]["replicas"] == 1 and mirrored["epochs_completed"] == 2
    assert mirrored["best"]["loss"] == pytest.approx(single["best"]["loss"], abs=LOSS_TOLERANCE)
    assert mirrored["test"]["loss"] == pytest.approx(single["test"]["loss"], abs=LOSS_TOLERANCE)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _cluster(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_text("workers: [" + ", ".join(f"127.0.0.1:{p}" for p in _free_ports(2)) + "]\n")
    return path


def _start_workers(args: list[str], cluster: Path, scratch: list[Path], cwd: Path) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-m", "cnnzoo", "train", *args, "--distribute", "multi_worker",
                              "--cluster", str(cluster), "--worker-index", str(index)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                             env=_env(TMPDIR=str(scratch[index])))
            for index in range(2)]


def _listening_hosts(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on `port`, from /proc/net/tcp and tcp6."""
    hosts = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # little-endian words
                hosts.add(socket.inet_ntop(family, words))
    return hosts


def _epochs_kept(runs: Path) -> int:
    """Complete epochs in the chief's folder: history rows, once last.keras (written after them) exists."""
    histories = list(runs.glob("*/history.csv"))
    if not histories or not (histories[0].parent / "last.keras").exists():
        return 0
    return len(histories[0].read_text().splitlines()) - 1


def test_multi_worker_cluster_survives_a_killed_worker_and_resumes(generated_data_dir, tmp_path):
    runs = tmp_path / "runs"
    scratch = [tmp_path / "tmp0", tmp_path / "tmp1"]
    for folder in scratch:
        folder.mkdir()
    args = [str(CNN1D), "--data-dir", str(generated_data_dir), "--runs-dir", str(runs), "--epochs", "2",
            "--set", "data.limit=300", "--set", "train.batch_size=16", "--set", "train.precision=float32",
            "--set", "train.optimizer={name: adam, use_ema: true, ema_momentum: 0.9}"]  # the loop's test hooks
    chief, worker = _start_workers(args, _cluster(tmp_path, "first.yaml"), scratch, tmp_path)
    try:
        deadline = time.monotonic() + 400
        while _epochs_kept(runs) < 1 and chief.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _epochs_kept(runs) == 1, chief.communicate(timeout=60)
        chief_port = int(yaml.safe_load((tmp_path / "first.yaml").read_text())["workers"][0].rsplit(":")[1])
        # the warning below is true: TensorFlow listens on every interface though the cluster says 127.0.0.1
        assert _listening_hosts(chief_port) <= {"0.0.0.0", "::"} and _listening_hosts(chief_port)
        worker.send_signal(signal.SIGKILL)  # in epoch 2
        killed = time.monotonic()
        _, err = chief.communicate(timeout=DETECTION_SECONDS + 60)
    finally:
        for process in (chief, worker):
            process.kill()
    assert chief.returncode == 3 and time.monotonic() - killed < DETECTION_SECONDS, err[-3000:]
    assert "error: worker 1 of the multi_worker run stopped answering" in err and "Traceback" not in err
    assert f"listens on port {chief_port} of every network interface (not only 127.0.0.1)" in " ".join(err.split())
    run = _folders(runs)[0]
    assert not (run / "metrics.json").exists() and (run / "last.keras").exists()

    scratch = [tmp_path / "resume0", tmp_path / "resume1"]  # the killed worker could not clean its own
    for folder in scratch:
        folder.mkdir()
    resumed = _start_workers(["--resume", str(run), "--data-dir", str(generated_data_dir)],
                             _cluster(tmp_path, "second.yaml"), scratch, tmp_path)
    outputs = [process.communicate(timeout=400) for process in resumed]
    assert [p.returncode for p in resumed] == [0, 0], [o[1][-3000:] for o in outputs]
    assert "resuming after epoch 1 of 2" in outputs[0][0] and "worker 1: epoch 2/2" in outputs[1][0]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 2 and metrics["distribute"]["replicas"] == 2
    assert {p.name for p in run.iterdir()} >= RUN_FILES and _folders(runs) == [run]
    validated = CliRunner().invoke(app, ["eval", str(run), "--split", "val", "--json",
                                         "--data-dir", str(generated_data_dir)])
    best_row = metrics["best"]  # the loop validated the moving average that best.keras keeps
    assert json.loads(validated.output)["metrics"]["loss"] == pytest.approx(best_row["val_loss"], rel=1e-4)
    assert not list(scratch[1].glob("cnnzoo-*"))  # the worker's temporary copy is gone (TMPDIR also holds
    # TensorFlow's autograph files)


@pytest.fixture
def place(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    Path("bad_yaml.yaml").write_text("workers: [a:1\n")
    Path("no_workers.yaml").write_text("hosts: [127.0.0.1:2222]\n")
    Path("bad_address.yaml").write_text("workers: [127.0.0.1:2222, 'localhost']\n")
    Path("two.yaml").write_text("workers: [127.0.0.1:2222, 127.0.0.1:2223]\n")
    return tmp_path


BAD = [
    (["--distribute", "horovod"], {}, "--distribute 'horovod' is not a strategy; use one of none, mirrored"),
    (["--distribute", "mirrored", "--set", "train.distribute.devices=[GPU:7]"], {},
     "lenet.yaml train.distribute.devices[0]: device 'GPU:7' does not exist on this machine"),
    (["--distribute", "multi_worker", "--cluster", "bad_yaml.yaml", "--worker-index", "0"], {},
     "bad_yaml.yaml:2: not valid YAML"),
    (["--distribute", "multi_worker", "--cluster", "no_workers.yaml", "--worker-index", "0"], {},
     "no_workers.yaml workers: a cluster file holds exactly one key, `workers:`"),
    (["--distribute", "multi_worker", "--cluster", "bad_address.yaml", "--worker-index", "0"], {},
     "bad_address.yaml workers[1]: worker address 'localhost' is not host:port"),
    (["--distribute", "multi_worker", "--cluster", "two.yaml", "--worker-index", "2"], {},
     "--worker-index 2: two.yaml lists 2 workers, so give --worker-index 0 to 1"),
    (["--distribute", "multi_worker", "--cluster", "missing.yaml", "--worker-index", "0"], {},
     "missing.yaml: cannot read the cluster file"),
    (["--distribute", "multi_worker"], {}, "the multi_worker strategy needs a cluster"),
    (["--distribute", "multi_worker"], {"TF_CONFIG": "{not json"}, "TF_CONFIG is not valid JSON"),
    (["--distribute", "multi_worker"], {"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1"]},
                                                                "task": {"type": "worker", "index": 3}})},
     "TF_CONFIG task index 3 is out of range"),
    (["--cluster", "two.yaml", "--worker-index", "0"], {}, "--cluster and --worker-index need the multi_worker"),
    (["--distribute", "multi_worker", "--set", "train.metrics=[auc]", "--set", "train.checkpoint.monitor=val_auc"], {},
     "lenet.yaml train.metrics[0]: metric `auc` keeps state across batches"),
    (["--distribute", "multi_worker", "--tensorboard"], {}, "train.tensorboard: the TensorBoard callback"),
]


@pytest.mark.parametrize("args, env, reason", BAD, ids=[" ".join(a)[:60] for a, _, _ in BAD])
def test_bad_strategy_or_cluster_exits_2(place, monkeypatch, args, env, reason):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(app, ["train", str(LENET), *args])
    assert result.exit_code == 2, result.output
    assert reason in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output


def test_gpu_check_runs_in_cpu_mode(generated_data_dir, tmp_path):
    out = tmp_path / "check"
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--cpu", "--no-install", "--data-dir",
                           str(generated_data_dir), "--out", str(out)], capture_output=True, text=True, timeout=600,
                          env=_env(), cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "gpu_check: cpu mode" in done.stdout and "measured float32 matmul peak" in done.stdout
    bench = json.loads((out / "bench-lenet-float32.json").read_text())
    assert bench["rows"][0]["train_samples_per_s"] > 0
    trained = [line.split() for line in done.stdout.splitlines() if line.startswith("lenet ")]
    assert trained and trained[-1][1] == "1" and float(trained[-1][2].replace(",", "")) > 0  # 1 replica, samples/s


def test_linear_scaling_multiplies_the_learning_rate_by_the_replicas():
    from cnnzoo.config import load_config
    from cnnzoo.training.distribute import Distribution

    config = load_config(LENET, ["train.distribute={strategy: mirrored, scale_learning_rate: linear}"])
    assert config.train.distribute.scale_learning_rate == "linear"
    scaled = Distribution("mirrored", replicas=4, scale_learning_rate="linear").scaled(config)
    assert scaled.train.learning_rate == pytest.approx(0.004)  # lenet.yaml: adam at 0.001
    assert Distribution("mirrored", replicas=4).scaled(config) is config  # off by default
    sgd = load_config(LENET, ["train.optimizer=sgd"])
    assert Distribution("mirrored", replicas=2, scale_learning_rate="linear").scaled(sgd).train.learning_rate == \
        pytest.approx(0.02)  # SGD's own default, 0.01, times 2


def test_a_resume_on_fewer_replicas_says_what_changes(tmp_path):
    import io

    from cnnzoo.terminal import console
    from cnnzoo.training.distribute import (Distribution, announce_distribution, epochs_in_checkpoint,
                                            report_replica_change)

    shown = io.StringIO()
    announce_distribution(tmp_path, Distribution("none"), 64, console(file=shown))
    assert epochs_in_checkpoint(tmp_path, 3 * 16, 1000, 64) == 3  # one device keeps the partial batch: 16 steps
    # a resume after epoch 3 under multi_worker, which drops the partial batch: 15 steps an epoch from there on
    announce_distribution(tmp_path, Distribution("multi_worker", replicas=4, workers=4), 64, console(file=shown),
                          first_epoch=3, optimizer_steps=3 * 16)
    assert epochs_in_checkpoint(tmp_path, 3 * 16 + 2 * 15, 1000, 64) == 5
    assert epochs_in_checkpoint(tmp_path, 3 * 16 + 2 * 15 - 1, 1000, 64) == 4  # killed before epoch 5's checkpoint
    report_replica_change(tmp_path, Distribution("mirrored", replicas=2), 64, console(file=shown, width=400))
    text = shown.getvalue()
    assert "strategy multi_worker: 4 replica(s), per-replica batch 16, global batch 64" in text
    assert ("The run trained with multi_worker on 4 replica(s), per-replica batch 16; it continues with mirrored "
            "on 2, per-replica batch 32.") in text and "only how each batch is split changes" in text


@pytest.mark.parametrize("override, plan, where", [
    ([], LabelPlan("mse", one_hot=False, task="regression"), "train.distribute"),
    ([], LabelPlan("binary_crossentropy", one_hot=False, multi_label=True), "train.distribute"),
    (["train.class_weight=balanced"], LabelPlan("sparse_categorical_crossentropy", one_hot=False),
     "train.class_weight"),
    (["train.label_smoothing=0.1"], LabelPlan("categorical_crossentropy", one_hot=True), "train.label_smoothing"),
])
def test_the_multi_worker_loop_refuses_what_it_does_not_train_yet(override, plan, where):
    from cnnzoo.training.distributed_loop import _check_plan

    config = load_config(LENET, override)
    with pytest.raises(ConfigError) as caught:
        _check_plan(config, plan)
    assert caught.value.path == where
