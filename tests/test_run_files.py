"""A run folder may come from someone else: its lock and files are never followed through a symbolic link,
never waited on (a FIFO), and never read beyond a size bound. Each case ends in a located exit-2 error or a
damaged row in `cnnzoo runs`, and no file outside the folder is read or written."""

from __future__ import annotations

import os
import shutil
import threading

import pytest

from cnnzoo.runs.folder import RunFolder, read_history
from cnnzoo.safe_read import read_run_file
from cnnzoo.runs.lock import is_locked, locked_run
from cnnzoo.runs.table import list_runs
from cnnzoo.errors import RunError
from tiny_runs import invoke, tiny_setup, train_tiny


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("run_files")
    config, data_dir = tiny_setup(root)
    return train_tiny(config, root / "runs", data_dir, "--epochs", "1"), data_dir


def _copy(trained, tmp_path):
    run, data_dir = trained
    runs = tmp_path / "runs"
    copy = runs / run.name
    shutil.copytree(run, copy)
    return copy, data_dir


def _within(seconds: float, work):
    """``work()``'s result, or a failure when it has not returned in ``seconds`` (it would block forever)."""
    result = {}

    def run():
        try:
            result["value"] = work()
        except Exception as exc:  # raised again in the test's thread
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "blocked"
    if "error" in result:
        raise result["error"]
    return result.get("value")


def test_a_symlinked_lock_is_refused_and_its_target_untouched(trained, tmp_path):
    run, data_dir = _copy(trained, tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's file\n")
    (run / ".lock").unlink(missing_ok=True)
    os.symlink(victim, run / ".lock")
    result = invoke("train", "--resume", run, "--epochs", "2", "--data-dir", data_dir)
    assert result.exit_code == 2 and "is a symbolic link" in result.output, result.output
    assert victim.read_text() == "the user's file\n"
    assert not is_locked(run)


def test_a_fifo_lock_neither_blocks_the_runs_table_nor_a_resume(trained, tmp_path):
    run, data_dir = _copy(trained, tmp_path)
    (run / ".lock").unlink(missing_ok=True)
    os.mkfifo(run / ".lock")
    rows = _within(30, lambda: list_runs(run.parent))
    assert [r.status for r in rows] == ["finished"]
    with pytest.raises(RunError, match="not a regular file"):
        _within(30, lambda: locked_run(run).__enter__())


@pytest.mark.parametrize("name", ["metrics.json", "history.csv"])
def test_a_symlinked_run_file_is_not_read(trained, tmp_path, name):
    run, _ = _copy(trained, tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("epoch,loss\n1,hunter2\n")
    (run / name).unlink()
    os.symlink(secret, run / name)
    (row,) = list_runs(run.parent)
    if name == "metrics.json":  # history.csv is not read while a current metrics.json stands
        assert row.status == "damaged" and "is a symbolic link" in row.problem, row.problem
    with pytest.raises(RunError, match="symbolic link"):
        read_run_file(run / name)
    result = invoke("plot", run)  # the best epoch comes from the history when metrics.json is refused
    assert result.exit_code == (2 if name == "history.csv" else 0) and "hunter2" not in result.output


def test_fifo_run_files_do_not_block(trained, tmp_path):
    run, _ = _copy(trained, tmp_path)
    for name in ("metrics.json", "history.csv"):
        (run / name).unlink()
        os.mkfifo(run / name)
    (row,) = _within(30, lambda: list_runs(run.parent))
    assert row.status == "damaged"
    with pytest.raises(RunError, match="not a regular file"):
        _within(30, lambda: read_history(run / "history.csv"))


def test_an_oversized_run_file_is_refused(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n" + "1,0.5\n" * 1000)
    with pytest.raises(RunError, match="more than the 100 a run file may have"):
        read_run_file(path, limit=100)


def test_a_symlinked_config_is_not_a_run_folder(trained, tmp_path):
    run, _ = _copy(trained, tmp_path)
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text((run / "config.yaml").read_text())
    (run / "config.yaml").unlink()
    os.symlink(outside, run / "config.yaml")
    with pytest.raises(RunError, match="symbolic link"):
        RunFolder.open(run)


BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(9))


@pytest.mark.parametrize("content, reason", [
    (BOMB, "cannot read the run's resolved config"),                # 10^10 leaves once aliases expand
    ("a: " + "[" * 5000 + "]" * 5000 + "\n", "cannot read the run's resolved config"),
])
def test_compare_reads_configs_with_the_bounded_reader(trained, tmp_path, content, reason):
    run, _ = _copy(trained, tmp_path)
    other = run.parent / "other"
    shutil.copytree(run, other)
    (other / "config.yaml").write_text(content)
    result = _within(60, lambda: invoke("compare", run, other, "--out", tmp_path / "c.png"))
    assert result.exit_code == 2 and reason in result.output, result.output
    assert "Traceback" not in result.output
