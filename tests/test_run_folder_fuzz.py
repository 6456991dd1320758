"""Fuzz of the run-folder readers, as test_config_fuzz does for configs: each file a reader opens is
damaged in turn (emptied, cut in half, replaced by random bytes, by hostile content of its own format,
by deep nesting, by a folder), and `runs`, `compare`, `eval`, `predict` and `train --resume` must each
end in a located exit-2 error or carry on (the runs table shows a damaged row): never a traceback,
never an escape sequence on the terminal, never a write outside the run folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tiny_runs import invoke, tiny_setup, train_tiny

HOSTILE = {
    ".json": '{"test": {"accuracy": "\x1b[31mred", "loss": [1e999]}, "best": {"epoch": "x"}, '
             '"epochs_completed": -7, "config": "\x1b]8;;http://x\x1b\\\\", "distribute": 5}',
    ".yaml": 'name: "\x1b[2Jtiny"\ninput: {shape: [28, 28, 1]}\nmodel: {layers: [{Lambda: {function: "exec"}}]}\n'
             'data: {dataset: csv, path: /etc/passwd}\ntrain: {mlflow: {tracking_uri: "http://attacker.example"}}\n',
    ".csv": "epoch,loss,accuracy,\x1b[31m\n0,nan,abc,\n-5,1e999,2\n",
    ".keras": "PK\x03\x04 not really a zip",
}
NESTED = {".json": "[" * 100_000, ".yaml": "[" * 100_000, ".csv": '"' * 100_000, ".keras": "\0" * 100_000}


def _damage(path: Path, how: str) -> None:
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "random":
        path.write_bytes(np.random.default_rng(len(path.name)).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif how == "hostile":
        path.write_text(HOSTILE[path.suffix], encoding="utf-8")
    elif how == "nested":
        path.write_text(NESTED[path.suffix], encoding="utf-8")
    elif how == "folder":
        path.unlink()
        path.mkdir()
        (path / "inside").write_text("x")


READS = {  # the run files each reader opens
    "runs": ["config.yaml", "metrics.json", "history.csv", "distribute.json"],
    "compare": ["config.yaml", "metrics.json"],
    "eval": ["config.yaml", "best.keras", "data_dir.json"],
    "predict": ["config.yaml", "best.keras", "data_dir.json"],
    "resume": ["config.yaml", "last.keras", "history.csv", "distribute.json", "data_dir.json"],
}
DAMAGES = ["empty", "truncated", "random", "hostile", "nested", "folder"]
CASES = [(reader, name, how) for reader, names in READS.items() for name in names for how in DAMAGES]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    config, data_dir = tiny_setup(root)
    run = train_tiny(config, root / "runs", data_dir, "--epochs", "1")
    digit = root / "digit.npy"
    np.save(digit, np.random.default_rng(0).integers(0, 255, (28, 28, 1)).astype(np.uint8))
    return run, data_dir, digit


def _command(reader: str, run: Path, other: Path, data_dir: Path, digit: Path) -> list:
    return {
        "runs": ["runs", run.parent],
        "compare": ["compare", run, other, "--out", run / "comparison.png"],
        "eval": ["eval", run, "--data-dir", data_dir],
        "predict": ["predict", run, digit],
        "resume": ["train", "--resume", run, "--epochs", "2", "--data-dir", data_dir],
    }[reader]


@pytest.mark.parametrize("reader, name, how", CASES, ids=["-".join(case) for case in CASES])
def test_a_damaged_run_file_is_an_error_or_a_damaged_row(trained, tmp_path, reader, name, how):
    source, data_dir, digit = trained
    run, other = tmp_path / "runs" / source.name, tmp_path / "runs" / f"{source.name}-b"
    shutil.copytree(source, run)
    shutil.copytree(source, other)
    if not (run / name).exists():
        (run / name).write_text("{}")  # distribute.json exists only for some runs: damage one anyway
    _damage(run / name, how)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if run not in p.parents and p != run}

    result = invoke(*_command(reader, run, other, data_dir, digit))

    output = result.output
    assert "Traceback" not in output and not isinstance(result.exception, (AssertionError, RecursionError)), output
    assert result.exit_code in (0, 2), (result.exit_code, output[-2000:], repr(result.exception))
    assert "\x1b" not in output, output
    if reader == "runs":
        assert result.exit_code == 0 and run.name in " ".join(output.split())
    after = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if run not in p.parents and p != run}
    assert after == before  # nothing written beside the damaged run
